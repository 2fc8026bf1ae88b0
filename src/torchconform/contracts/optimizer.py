"""Contracts of torch.optim.Optimizer, checked on an optimizer class supplied from outside.

Each check is a plain function `check(factory, device)`: `factory(params)` builds the optimizer
under test (applying the spec's declared adaptations) and `factory.step(...)` steps it the way
a training loop does. The expectations are relations the documentation states between runs of
the class under test (a loaded optimizer continues like the original, a group with lr=0 stays
put), so no oracle of the class's update rule is needed; `matches_reference` adds the
documented rule of a named torch optimizer as the oracle.
"""

from __future__ import annotations

import collections
import copy
import io
import json
import pickle
import warnings
from typing import Any, Dict, List, Optional, Sequence

import torch

from .. import protocol
from ..tolerances import assert_close, tolerance
from ..versions import since
from .config import Spec, contract, resolve

#: Parameter shapes: matrices (which factored and orthogonalizing optimizers need) and a
#: vector (biases), small enough that a contract takes milliseconds.
SHAPES = ((4, 3), (5,), (2, 3))
STEPS = 3
#: Steps a movement check allows: algorithms with a warm-up leave the parameters where they
#: are for the first few steps (ADOPT and SOAP on step 1, RAdam while the variance estimate is
#: not yet tractable: 5 steps with beta2 = 0.999).
MOVE_STEPS = 8


def make_params(device, dtype=torch.float32, shapes=SHAPES, seed=0) -> List[torch.Tensor]:
    """Leaf tensors with fixed standard-normal values (the same on every device)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
            .requires_grad_() for s in shapes]


def twin(params: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Independent leaf copies of `params` (same values, device, dtype)."""
    return [p.detach().clone().requires_grad_() for p in params]


def snapshot(params: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    return [p.detach().clone() for p in params]


class Problem:
    """A fixed loss over the parameters: sum_i sum(w_i * (p_i - t_i)^2) / 2 (quadratic: every
    parameter gets a non-zero gradient that depends on its value), or, with `linear`, a
    gradient that does not depend on the parameters at all (two optimizers on different
    values still see the same gradients)."""

    def __init__(self, device, dtype=torch.float32, shapes=SHAPES, seed=1, linear=False):
        g = torch.Generator().manual_seed(seed)
        self.linear = linear
        self.targets = [torch.randn(s, generator=g, dtype=torch.float64).to(device, dtype)
                        for s in shapes]
        self.weights = [(torch.rand(s, generator=g, dtype=torch.float64) + 0.5).to(device, dtype)
                        for s in shapes]

    def loss(self, params: Sequence[torch.Tensor], indices: Optional[Sequence[int]] = None):
        indices = range(len(params)) if indices is None else indices
        total = 0
        for p, i in zip(params, indices):
            if self.linear:
                total = total + (self.targets[i] * p).sum()
            else:
                total = total + (self.weights[i] * (p - self.targets[i]) ** 2).sum() / 2
        return total


class OptimizerFactory:
    """Builds and steps the optimizer of a spec the way a training loop does."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.closure = spec.has("needs_closure")

    def __call__(self, params: Any):
        optimizer = self.spec.build(params)
        if self.spec.has("train_eval_switch"):
            optimizer.train()
        return optimizer

    def plain(self, params: Any):
        """The optimizer as constructed, without any declared adaptation."""
        return self.spec.build(params)

    def step(self, optimizer, params: Sequence[torch.Tensor], problem: Problem,
             indices: Optional[Sequence[int]] = None, seed: int = 0, closure: bool = None):
        """One training step on `problem` over `params` (grads cleared by hand, so that no
        contract depends on zero_grad). Optimizers that draw random numbers see the same
        draws in twin runs: the RNG is seeded per step."""
        closure = self.closure if closure is None else closure

        def compute():
            for p in params:
                p.grad = None
            with torch.enable_grad():
                loss = problem.loss(params, indices)
                loss.backward(create_graph=self.spec.create_graph)
            return loss

        torch.manual_seed(1000 + seed)
        if closure:
            return optimizer.step(compute)
        compute()
        return optimizer.step()

    def run(self, optimizer, params, problem, steps=STEPS, indices=None, first=0):
        for k in range(steps):
            self.step(optimizer, params, problem, indices, seed=first + k)


def _moved(before: torch.Tensor, after: torch.Tensor) -> bool:
    return not torch.equal(before, after.detach())


def _same(a: Any, b: Any) -> bool:
    """Equal values: tensors elementwise, containers item by item, and objects that define no
    __eq__ of their own (a projector, a preconditioner) attribute by attribute."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.shape == b.shape and torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, collections.deque)) and type(a) is type(b):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if (type(a) is type(b) and type(a).__eq__ is object.__eq__ and hasattr(a, "__dict__")):
        return _same(vars(a), vars(b))
    return a == b or (a != a and b != b)  # nan options compare equal to themselves


def _options(group: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in group.items() if k != "params"}


def _assert_params_close(actual, expected, what):
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, what=f"{what}, parameter {i}")


def _assert_state_equal(opt_a, params_a, opt_b, params_b, what):
    for i, (pa, pb) in enumerate(zip(params_a, params_b)):
        sa, sb = opt_a.state.get(pa, {}), opt_b.state.get(pb, {})
        assert set(sa) == set(sb), f"{what}: state keys of parameter {i}: {sorted(sb)} != " \
                                   f"{sorted(sa)}"
        for key in sa:
            assert _same(sa[key], sb[key]), f"{what}: state[{i}][{key!r}] differs"


def _lr(group: Dict[str, Any], what: str) -> float:
    assert "lr" in group, f"{what}: param_groups have no 'lr' entry (keys: {sorted(group)})"
    lr = group["lr"]
    assert isinstance(lr, (float, int, torch.Tensor)) and float(lr) > 0, \
        f"{what}: param_groups[0]['lr'] is {lr!r}, not a positive number"
    return float(lr)


# -- contracts -------------------------------------------------------------------------------

@contract("contract.optimizer.step_plain")
def step_plain(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    before = snapshot(params)
    optimizer = factory.plain(params)  # no closure, no mode switch: the documented loop
    for k in range(MOVE_STEPS):
        factory.step(optimizer, params, Problem(device), seed=k, closure=False)
    for i, (b, p) in enumerate(zip(before, params)):
        assert torch.isfinite(p).all(), f"parameter {i} is not finite after step()"
        assert _moved(b, p), f"{MOVE_STEPS} step() calls did not move parameter {i}, whose " \
                             f"gradient is not zero"


@contract("contract.optimizer.param_groups")
def param_groups(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    alone = twin(params[:2])
    frozen = params[2].detach().clone()
    problem = Problem(device)
    optimizer = factory([{"params": params[:2]}, {"params": params[2:], "lr": 0.0}])
    reference = factory(alone)
    assert len(optimizer.param_groups) == 2, "the optimizer did not keep two param groups"
    assert optimizer.param_groups[1]["lr"] == 0.0, "the group's own lr=0 was replaced"
    for key in optimizer.defaults:
        assert key in optimizer.param_groups[0], f"group 0 lacks default option {key!r}"
    before = snapshot(params)
    for k in range(MOVE_STEPS):
        factory.step(optimizer, params, problem, seed=k)
        factory.step(reference, alone, problem, seed=k)
    # Beyond rounding: an update computed with lr=0 may still round (x = c*x + (1-c)*x).
    assert_close(params[2], frozen, what="a parameter in a group with lr=0 moved")
    assert _moved(before[0], params[0]), "the group with the default lr did not move"
    _assert_params_close(params[:2], alone, "a group next to an lr=0 group stepped unlike the "
                                            "same parameters in an optimizer of their own")


@contract("contract.optimizer.add_param_group")
def add_param_group(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    optimizer = factory(params[:2])
    optimizer.add_param_group({"params": [params[2]]})
    assert len(optimizer.param_groups) == 2, "add_param_group did not add a group"
    added = optimizer.param_groups[1]
    for key, value in optimizer.defaults.items():
        assert key in added, f"the added group lacks default option {key!r}"
        assert _same(added[key], value), \
            f"the added group's {key!r} is {added[key]!r}, not the default {value!r}"
    before = params[2].detach().clone()
    factory.run(optimizer, params, Problem(device), steps=MOVE_STEPS)
    assert _moved(before, params[2]), "the parameter of the added group was not stepped"
    # The documented errors (the base class's checks must still run).
    errors = {
        "a parameter already in another group": ({"params": [params[0]]}, ValueError),
        "a non-leaf tensor": ({"params": [params[0] * 2]}, ValueError),
        "a set of parameters": ({"params": {make_params(device)[1]}}, TypeError),
    }
    for what, (group, error) in errors.items():
        try:
            optimizer.add_param_group(group)
        except error:
            continue
        except Exception as exc:  # noqa: BLE001 - the wrong error is the finding
            raise AssertionError(f"add_param_group with {what} raised {type(exc).__name__}: "
                                 f"{exc}, not {error.__name__}") from None
        raise AssertionError(f"add_param_group accepted {what}; torch raises {error.__name__}")


@contract("contract.optimizer.state_dict_round_trip")
def state_dict_round_trip(factory: OptimizerFactory, device) -> None:
    what = "after load_state_dict"
    problem = Problem(device)
    params = make_params(device)
    optimizer = factory(params)
    factory.run(optimizer, params, problem)
    group = optimizer.param_groups[0]
    if isinstance(group.get("lr"), float) and group["lr"] > 0:
        group["lr"] = group["lr"] / 2  # an edited option must come back too
    # deepcopy: load_state_dict may keep the saved tensors, and both runs go on stepping.
    saved = copy.deepcopy(optimizer.state_dict())
    copies = twin(params)
    loaded = factory(copies)
    loaded.load_state_dict(saved)
    for i, (a, b) in enumerate(zip(optimizer.param_groups, loaded.param_groups)):
        oa, ob = _options(a), _options(b)
        assert set(oa) == set(ob), f"{what}: group {i} options {sorted(ob)} != {sorted(oa)}"
        for key in oa:
            assert _same(oa[key], ob[key]), \
                f"{what}: group {i} option {key!r} is {ob[key]!r}, saved {oa[key]!r}"
    _assert_state_equal(optimizer, params, loaded, copies, what)
    factory.run(optimizer, params, problem, first=STEPS)
    factory.run(loaded, copies, problem, first=STEPS)
    _assert_params_close(copies, params, f"{what}: training did not continue identically")


@contract("contract.optimizer.state_dict_weights_only")
def state_dict_weights_only(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    optimizer = factory(params)
    factory.run(optimizer, params, Problem(device))
    saved = optimizer.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # what loading a checkpoint does by default
    assert _same(loaded, saved), "the state_dict read back by torch.load differs from the saved"


@contract("contract.optimizer.zero_grad_default")
def zero_grad_default(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    optimizer = factory(params)
    Problem(device).loss(params).backward()
    optimizer.zero_grad()
    if since("2.0"):
        assert all(p.grad is None for p in params), "zero_grad() left gradients; since torch " \
                                                    "2.0 the default is set_to_none=True"
    else:
        assert all(p.grad is not None and not p.grad.any() for p in params), \
            "zero_grad() did not fill the gradients with zeros (the default before torch 2.0)"


@contract("contract.optimizer.step_closure")
def step_closure(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    before = snapshot(params)
    optimizer = factory(params)
    problem = Problem(device)
    losses = []

    def closure():
        for p in params:
            p.grad = None
        with torch.enable_grad():
            loss = problem.loss(params)
            loss.backward(create_graph=factory.spec.create_graph)
        losses.append(loss)
        return loss

    for _ in range(MOVE_STEPS):
        losses.clear()
        returned = optimizer.step(closure)
        assert losses, "step(closure) never called the closure"
        assert any(returned is loss or (isinstance(returned, (torch.Tensor, float))
                                        and float(returned) == float(loss))
                   for loss in losses), \
            f"step(closure) returned {returned!r}, not the closure's loss " \
            f"({', '.join(f'{float(v.detach()):.6g}' for v in losses)})"
    assert any(_moved(b, p) for b, p in zip(before, params)), \
        f"{MOVE_STEPS} step(closure) calls moved nothing"


@contract("contract.optimizer.params_without_grad")
def params_without_grad(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    idle = params[2].detach().clone()
    optimizer = factory(params)
    # State made by the constructor (Adagrad's accumulators) is allowed; steps must not add to
    # or change it.
    initial = copy.deepcopy(dict(optimizer.state.get(params[2], {})))
    factory.run(optimizer, params, Problem(device), indices=[0, 1])
    # The loss uses params 0 and 1 only: params[2].grad stays None.
    assert torch.equal(params[2].detach(), idle), "a parameter whose grad is None moved"
    state = dict(optimizer.state.get(params[2], {}))
    assert _same(state, initial), \
        f"steps changed the state of a parameter whose grad is None: {sorted(state)} " \
        f"(after construction: {sorted(initial)})"


@contract("contract.optimizer.lr_edit")
def lr_edit(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    problem = Problem(device)
    optimizer = factory(params)
    lr = _lr(optimizer.param_groups[0], "editing lr")
    factory.run(optimizer, params, problem, steps=MOVE_STEPS)  # past any warm-up
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    held = snapshot(params)
    factory.step(optimizer, params, problem, seed=MOVE_STEPS)
    for i, (h, p) in enumerate(zip(held, params)):
        assert_close(p, h, what=f"parameter {i} moved after param_groups[...]['lr'] was set "
                                f"to 0 between steps")
    for group in optimizer.param_groups:
        group["lr"] = lr
    factory.step(optimizer, params, problem, seed=MOVE_STEPS + 1)
    assert any(_moved(h, p) for h, p in zip(held, params)), \
        "nothing moved after the lr was set back"


@contract("contract.optimizer.lr_scheduler")
def lr_scheduler(factory: OptimizerFactory, device) -> None:
    problem = Problem(device)
    params = make_params(device)
    manual = twin(params)
    optimizer, reference = factory(params), factory(manual)
    lr = _lr(optimizer.param_groups[0], "StepLR")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for k in range(STEPS):
        factory.step(optimizer, params, problem, seed=k)
        factory.step(reference, manual, problem, seed=k)
        with warnings.catch_warnings(record=True) as more:
            warnings.simplefilter("always")
            scheduler.step()
        caught += more
        for group in reference.param_groups:  # the same schedule, set by hand
            group["lr"] = lr * 0.5 ** (k + 1)
        got = float(optimizer.param_groups[0]["lr"])
        assert abs(got - lr * 0.5 ** (k + 1)) <= 1e-12 * lr, \
            f"after {k + 1} scheduler steps lr is {got}, StepLR set {lr * 0.5 ** (k + 1)}"
    # The scheduler warns when it cannot see optimizer.step() (it wraps it to check the order).
    own = [str(w.message) for w in caught if "optimizer.step()" in str(w.message)]
    assert not own, f"StepLR warned: {own}"
    _assert_params_close(params, manual, "stepping under StepLR differs from setting the same "
                                         "lr by hand")


@contract("contract.optimizer.step_hooks")
def step_hooks(factory: OptimizerFactory, device) -> None:
    params = make_params(device)
    optimizer = factory(params)
    events = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: events.append(("pre", opt)))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: events.append(("post", opt)))
    factory.run(optimizer, params, Problem(device), steps=2)
    names = [name for name, _ in events]
    assert names == ["pre", "post"] * 2, f"step hooks ran as {names} over two steps"
    assert all(opt is optimizer for _, opt in events), "a step hook got another optimizer"


@contract("contract.optimizer.state_device_dtype")
def state_device_dtype(factory: OptimizerFactory, device) -> None:
    for dtype in (torch.float32, torch.float64):
        params = make_params(device, dtype)
        optimizer = factory(params)
        factory.run(optimizer, params, Problem(device, dtype), steps=2)
        for i, p in enumerate(params):
            for key, value in optimizer.state.get(p, {}).items():
                # 0-dim tensors (the step count) are documented to live on the CPU.
                if not isinstance(value, torch.Tensor) or value.dim() == 0:
                    continue
                assert value.device == p.device, \
                    f"state[{i}][{key!r}] is on {value.device}, the parameter on {p.device}"
                if value.is_floating_point():
                    assert value.dtype == p.dtype, \
                        f"state[{i}][{key!r}] is {value.dtype}, the parameter {p.dtype}"


@contract("contract.optimizer.copy")
def copy_and_pickle(factory: OptimizerFactory, device) -> None:
    problem = Problem(device)
    params = make_params(device)
    optimizer = factory(params)
    factory.run(optimizer, params, problem, steps=2)
    copies = {"deepcopy": copy.deepcopy((params, optimizer)),
              "pickle": pickle.loads(pickle.dumps((params, optimizer)))}
    factory.run(optimizer, params, problem, first=2)
    for how, (other_params, other) in copies.items():
        assert other.param_groups[0]["params"][0] is other_params[0], \
            f"after {how}, the optimizer does not hold the copied parameters"
        factory.run(other, other_params, problem, first=2)
        _assert_params_close(other_params, params, f"the {how} stepped unlike the original")


@contract("contract.optimizer.matches_reference", optional=True)
def matches_reference(factory: OptimizerFactory, device) -> None:
    spec = factory.spec
    steps = 10
    params = make_params(device)
    copies = twin(params)
    optimizer = factory(params)
    kwargs = spec.reference_kwargs if spec.reference_kwargs is not None else spec.kwargs
    reference = resolve(spec.reference)(copies, **kwargs)
    worst = 0.0
    for k in range(steps):
        problem = Problem(device, seed=100 + k, linear=True)  # the same gradients for both
        factory.step(optimizer, params, problem, seed=k)
        factory.step(reference, copies, problem, seed=k, closure=False)
        for p, q in zip(params, copies):
            worst = max(worst, float((p.detach() - q.detach()).abs().max()))
    name = spec.reference if isinstance(spec.reference, str) else getattr(
        spec.reference, "__name__", repr(spec.reference))
    protocol.record(None, protocol.DEPARTURE, json.dumps(
        {"reference": name, "steps": steps, "max_abs_difference": worst}))
    rtol, atol = tolerance(torch.float32)
    for i, (p, q) in enumerate(zip(params, copies)):
        assert_close(p, q, rtol=rtol * steps, atol=atol * steps,
                     what=f"parameter {i} after {steps} steps next to {name} (largest "
                          f"difference over all steps {worst:.3g})")
