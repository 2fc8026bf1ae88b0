"""Contracts of torch.nn.Module, checked on a module class (or factory) supplied from outside.

Each check is a plain function `check(factory, device)`: `factory(seed)` builds a new instance
on the CPU in float32 (the seed makes two instances' initial values differ) and
`factory.inputs(device, dtype)` gives the call's arguments. The expectations are relations the
documentation states between instances of the class under test (a loaded instance computes
what the saved one computes), so no oracle of the module's own function is needed.
"""

from __future__ import annotations

import copy
import io
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

from ..tolerances import assert_close
from .config import Spec, contract


class ModuleFactory:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def __call__(self, seed: int = 0) -> nn.Module:
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            module = self.spec.build()
        finally:
            torch.random.set_rng_state(state)
        if not isinstance(module, nn.Module):
            raise TypeError(f"{self.spec.label} built a {type(module).__name__}, not an "
                            f"nn.Module")
        return module

    def inputs(self, device, dtype=torch.float32, seed: int = 7) -> Tuple[Any, ...]:
        if self.spec.inputs is not None:
            made = self.spec.inputs(device, dtype)
            return made if isinstance(made, tuple) else (made,)
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(self.spec.input_shape, generator=g, dtype=torch.float64)
                .to(device, dtype),)


def tensors(output: Any) -> List[torch.Tensor]:
    """Every tensor in a module's output (a tensor, or tuples, lists, dicts and dataclass-like
    outputs of them), in a fixed order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict) or hasattr(output, "items"):
        return [t for _, v in sorted(output.items(), key=lambda kv: str(kv[0]))
                for t in tensors(v)]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in tensors(v)]
    return []


def _outputs(module: nn.Module, inputs: Sequence[Any]) -> List[torch.Tensor]:
    with torch.no_grad():
        found = tensors(module(*inputs))
    assert found, f"the module returned no tensor ({type(module(*inputs)).__name__})"
    return found


def _assert_same_outputs(actual, expected, what):
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, not {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, f"{what}: output {i} has shape {tuple(a.shape)}, " \
                                   f"not {tuple(e.shape)}"
        if a.is_floating_point():
            assert_close(a, e, what=f"{what}, output {i}")
        else:
            assert torch.equal(a, e), f"{what}: output {i} differs"


def _state(module: nn.Module) -> Dict[str, torch.Tensor]:
    """Every parameter and buffer by name, aliases included."""
    found = dict(module.named_parameters(remove_duplicate=False))
    found.update(module.named_buffers(remove_duplicate=False))
    return found


# -- contracts -------------------------------------------------------------------------------

@contract("contract.module.state_dict_load")
def state_dict_load(factory: ModuleFactory, device) -> None:
    saved = factory(seed=0).to(device).eval()
    fresh = factory(seed=1).to(device).eval()
    result = fresh.load_state_dict(saved.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys, str(result)
    x = factory.inputs(device)
    _assert_same_outputs(_outputs(fresh, x), _outputs(saved, x),
                         "a fresh instance that loaded the state_dict, in eval mode")


@contract("contract.module.state_dict_keys")
def state_dict_keys(factory: ModuleFactory, device) -> None:
    module = factory().to(device)
    expected = set()
    for prefix, sub in module.named_modules(remove_duplicate=False):
        dot = f"{prefix}." if prefix else ""
        expected |= {dot + n for n, _ in sub.named_parameters(recurse=False)}
        expected |= {dot + n for n, _ in sub.named_buffers(recurse=False)
                     if n not in sub._non_persistent_buffers_set}
        if type(sub).get_extra_state is not nn.Module.get_extra_state:
            expected.add(dot + "_extra_state")
    keys = set(module.state_dict())
    assert keys == expected, (
        f"state_dict keys differ from the named parameters and persistent buffers: "
        f"extra {sorted(keys - expected)[:10]}, missing {sorted(expected - keys)[:10]}")


@contract("contract.module.deepcopy")
def deepcopy(factory: ModuleFactory, device) -> None:
    module = factory().to(device).eval()
    clone = copy.deepcopy(module)
    x = factory.inputs(device)
    original = _outputs(module, x)
    _assert_same_outputs(_outputs(clone, x), original, "the deepcopy, in eval mode")
    mine, theirs = _state(module), _state(clone)
    assert set(mine) == set(theirs), "the deepcopy has other parameters and buffers"
    shared = [n for n, t in mine.items()
              if t.numel() and t.untyped_storage().data_ptr()
              == theirs[n].untyped_storage().data_ptr()]
    assert not shared, f"the deepcopy shares storage with the original: {shared[:10]}"
    with torch.no_grad():
        for t in theirs.values():
            if t.is_floating_point():
                t.add_(1.0)
    _assert_same_outputs(_outputs(module, x), original,
                         "the original after the deepcopy's tensors were changed")


@contract("contract.module.to_dtype")
def to_dtype(factory: ModuleFactory, device) -> None:
    module = factory().to(device)
    before = {n: t.dtype for n, t in _state(module).items()}
    returned = module.to(torch.float64)
    assert returned is module, ".to(dtype) did not return the module itself"
    for name, t in _state(module).items():
        want = torch.float64 if before[name].is_floating_point else before[name]
        assert t.dtype == want, f"{name} is {t.dtype} after .to(torch.float64), not {want}"
    out = _outputs(module.eval(), factory.inputs(device, torch.float64))
    floating = [t.dtype for t in out if t.is_floating_point()]
    assert all(d == torch.float64 for d in floating), \
        f"after .to(torch.float64) the outputs are {floating}"


@contract("contract.module.to_device")
def to_device(factory: ModuleFactory, device) -> None:
    module = factory()
    returned = module.to(device)
    assert returned is module, ".to(device) did not return the module itself"
    wrong = {n: str(t.device) for n, t in _state(module).items() if t.device != device}
    assert not wrong, f"after .to({device}) these are elsewhere: {wrong}"
    out = _outputs(module.eval(), factory.inputs(device))
    assert all(t.device == device for t in out), \
        f"outputs on {[str(t.device) for t in out]}, not {device}"


@contract("contract.module.train_eval")
def train_eval(factory: ModuleFactory, device) -> None:
    module = factory().to(device)
    assert module.eval() is module, "eval() did not return the module"
    still = [n or "<root>" for n, m in module.named_modules() if m.training]
    assert not still, f"after eval() these submodules are in training mode: {still[:10]}"
    assert module.train() is module, "train() did not return the module"
    still = [n or "<root>" for n, m in module.named_modules() if not m.training]
    assert not still, f"after train() these submodules are in eval mode: {still[:10]}"
    module.eval()
    x = factory.inputs(device)
    torch.manual_seed(1)
    first = _outputs(module, x)
    torch.manual_seed(2)  # a module still drawing random numbers differs now
    _assert_same_outputs(_outputs(module, x), first, "a second call in eval mode")


@contract("contract.module.forward_hooks")
def forward_hooks(factory: ModuleFactory, device) -> None:
    module = factory().to(device).eval()
    x = factory.inputs(device)
    calls = []
    pre = module.register_forward_pre_hook(lambda m, args: calls.append(("pre", None)))
    post = module.register_forward_hook(lambda m, args, out: calls.append(("post", out)))
    with torch.no_grad():
        out = module(*x)
    assert [c for c, _ in calls] == ["pre", "post"], \
        f"calling the module ran the hooks as {[c for c, _ in calls]}"
    assert calls[1][1] is out, "the forward hook did not see the returned output"
    pre.remove()
    post.remove()
    replacement = object()
    handle = module.register_forward_hook(lambda m, args, out: replacement)
    with torch.no_grad():
        assert module(*x) is replacement, "a forward hook's return value did not replace " \
                                          "the output"
    handle.remove()


@contract("contract.module.gradients")
def gradients(factory: ModuleFactory, device) -> None:
    module = factory().to(device).train()
    out = [t for t in tensors(module(*factory.inputs(device))) if t.requires_grad]
    assert out, "no output requires grad"
    g = torch.Generator().manual_seed(3)
    loss = sum((t * torch.randn(t.shape, generator=g).to(t.device, t.dtype)).sum()
               for t in out if t.is_floating_point())
    loss.backward()
    unused = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f"parameters that get no gradient from the output (unused): {unused}"
    bad = [n for n, p in module.named_parameters()
           if p.grad is not None and (p.grad.shape != p.shape or not torch.isfinite(p.grad).all())]
    assert not bad, f"gradients of the wrong shape or not finite: {bad}"


@contract("contract.module.state_dict_weights_only")
def state_dict_weights_only(factory: ModuleFactory, device) -> None:
    module = factory().to(device).eval()
    saved = module.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert list(loaded) == list(saved), "torch.load returned other keys"
    for key, value in saved.items():
        other = loaded[key]
        if isinstance(value, torch.Tensor):
            assert isinstance(other, torch.Tensor) and other.dtype == value.dtype \
                and torch.equal(other, value), f"{key} did not round-trip"
        else:
            assert other == value, f"{key}: {other!r} came back for {value!r}"
