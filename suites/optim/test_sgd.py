"""torch.optim.SGD applies exactly the algorithm on its documentation page.

Every test steps torch.optim.SGD and torchconform.oracles.SGD (the documented pseudo-code in
numpy float64) side by side with the same gradients and compares parameters and momentum
buffers after every step. Gradients are assigned to .grad directly so that only the optimizer
is under test. Hypothesis draws shapes, values and hyperparameters away from zero, where a
0.1% fault would hide; momentum and dampening only show from the second step, so each run
takes four.
"""

import importlib

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import (
    FUSED_OPTIMIZERS,
    assert_close,
    behavior,
    not_applicable,
    oracles,
    requires,
    since,
    to_numpy,
)
from torchconform.optim_alongside import compiled_sgd_alongside
from torchconform.strategies import generators, shapes, signed_values

STEPS = 4


@st.composite
def trajectories(draw, steps=STEPS):
    """(initial parameter values, gradients for each step) for one to five parameters of up to
    5x5 elements: the rule holds for every parameter of a group, whatever its position or size
    (implementations split long lists and large tensors into chunks)."""
    sizes = draw(st.lists(shapes(max_dims=2, max_side=5), min_size=1, max_size=5))
    rng = draw(generators())  # one draw for all values: see strategies.generators
    params = [signed_values(rng, s, 0.25, 2.0) for s in sizes]
    grads = [[signed_values(rng, s, 0.125, 2.0) for s in sizes] for _ in range(steps)]
    return params, grads


#: A fixed trajectory every rule is also checked on: two parameters, a scalar among them.
SEED_TRAJECTORY = (
    [np.array([[1.5, -0.75], [0.5, 2.0]]), np.array(-1.25)],
    [[np.array([[0.5, -1.0], [0.25, 1.5]]), np.array(0.75)],
     [np.array([[-0.5, 0.25], [1.0, -0.125]]), np.array(1.5)],
     [np.array([[1.25, 0.5], [-0.75, 0.5]]), np.array(-0.5)],
     [np.array([[0.125, -1.5], [0.5, 1.0]]), np.array(0.25)]])


def _many_trajectory(steps=STEPS):
    """Five parameters, a large one (33x65) among them and small ones after it, so that every
    position in the group and a size far beyond any chunk is checked on each run."""
    rng = np.random.default_rng(20240613)
    sizes = [(2, 2), (), (3,), (33, 65), (1, 4)]
    params = [signed_values(rng, s, 0.25, 2.0) for s in sizes]
    return params, [[signed_values(rng, s, 0.125, 2.0) for s in sizes] for _ in range(steps)]


MANY_TRAJECTORY = _many_trajectory()

lrs = st.floats(0.01, 1.0)
momenta = st.floats(0.5, 0.95)


def step_alongside(device, dtype, trajectory, implementation=(), tensor_lr=False, **options):
    """Step SGD(**options, **implementation) and the oracle with the same gradients; compare
    after each step. Returns the torch parameters and optimizer. With tensor_lr, torch gets
    the learning rate as a float64 0-dim tensor of the same value (the oracle the float).

    The oracle gets the gradients as they were before the step: on torch 2.13 the foreach
    implementation with nesterov (and no weight decay or maximize) adds momentum * buffer
    into .grad in place, which the Optimizer.step documentation up to 2.5 ruled out ("should
    not modify the .grad field") and later versions no longer mention."""
    values, grads = trajectory
    params = [torch.tensor(v, device=device, dtype=dtype, requires_grad=True) for v in values]
    given_options = dict(options, **dict(implementation))
    if tensor_lr:
        given_options["lr"] = torch.tensor(options["lr"], dtype=torch.float64)
    optimizer = torch.optim.SGD(params, **given_options)
    oracle = oracles.SGD([to_numpy(p) for p in params], **options)
    for t, step_grads in enumerate(grads, start=1):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, device=device, dtype=dtype)
        given = [to_numpy(p.grad) for p in params]  # read now: see the note above
        optimizer.step()
        expected = oracle.step(given)
        for i, p in enumerate(params):
            assert_close(p, expected[i], what=f"parameter {i} after step {t}")
            if options.get("momentum", 0):
                assert_close(optimizer.state[p]["momentum_buffer"], oracle.buffers[i],
                             what=f"momentum buffer {i} after step {t}")
    return params, optimizer


@behavior("optim.sgd.plain")
@given(trajectory=trajectories(), lr=lrs)
@example(trajectory=SEED_TRAJECTORY, lr=0.01)
@example(trajectory=MANY_TRAJECTORY, lr=0.01)
def test_plain_sgd_subtracts_lr_times_grad(device, dtype, trajectory, lr):
    params, optimizer = step_alongside(device, dtype, trajectory, lr=lr)
    if since("2.4"):  # plain SGD keeps no state at all
        assert all(len(optimizer.state[p]) == 0 for p in params)
    else:  # it records an empty momentum buffer for every parameter it stepped
        assert all(dict(optimizer.state[p]) == {"momentum_buffer": None} for p in params)


@behavior("optim.sgd.momentum")
@given(trajectory=trajectories(), lr=lrs, momentum=momenta)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, momentum=0.9)
@example(trajectory=MANY_TRAJECTORY, lr=0.1, momentum=0.9)
def test_momentum_buffer_starts_at_the_gradient_and_accumulates(device, dtype, trajectory, lr,
                                                               momentum):
    step_alongside(device, dtype, trajectory, lr=lr, momentum=momentum)


@behavior("optim.sgd.momentum")
def test_momentum_buffer_is_not_the_gradient_tensor(device, dtype):
    """The first buffer is the first gradient's value, not that tensor: the training loop with
    zero_grad(set_to_none=False) zeroes .grad in place and backward accumulates the next
    gradient into it, which must leave the buffer alone."""
    rng = np.random.default_rng(7)
    values = [signed_values(rng, s) for s in [(3, 2), (4,)]]
    coefficients = [[signed_values(rng, s, 0.125, 2.0) for s in [(3, 2), (4,)]]
                    for _ in range(STEPS)]
    params = [torch.tensor(v, device=device, dtype=dtype, requires_grad=True) for v in values]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    oracle = oracles.SGD(values, lr=0.1, momentum=0.9)
    for t, cs in enumerate(coefficients, start=1):
        optimizer.zero_grad(set_to_none=False)
        sum((torch.tensor(c, device=device, dtype=dtype) * p).sum()
            for c, p in zip(cs, params)).backward()  # d/dp = c, exactly
        optimizer.step()
        expected = oracle.step(cs)
        for i, p in enumerate(params):
            assert_close(p, expected[i], what=f"parameter {i} after step {t}")
            assert_close(optimizer.state[p]["momentum_buffer"], oracle.buffers[i],
                         what=f"momentum buffer {i} after step {t}")


@behavior("optim.sgd.dampening")
@given(trajectory=trajectories(), lr=lrs, momentum=momenta, dampening=st.floats(0.1, 0.9))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, momentum=0.9, dampening=0.5)
@example(trajectory=MANY_TRAJECTORY, lr=0.1, momentum=0.9, dampening=0.5)
def test_dampening_scales_new_gradients_from_the_second_step(device, dtype, trajectory, lr,
                                                             momentum, dampening):
    step_alongside(device, dtype, trajectory, lr=lr, momentum=momentum, dampening=dampening)


@behavior("optim.sgd.dampening")
def test_first_momentum_buffer_is_the_undampened_gradient(device):
    p = torch.tensor([1.0, -2.0], device=device, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=0.5, momentum=0.9, dampening=0.5)
    p.grad = torch.tensor([0.5, 1.0], device=device)
    optimizer.step()
    assert optimizer.state[p]["momentum_buffer"].cpu().tolist() == [0.5, 1.0]
    assert p.detach().cpu().tolist() == [0.75, -2.5]
    optimizer.step()  # b_2 = 0.9 * b_1 + 0.5 * g
    assert_close(optimizer.state[p]["momentum_buffer"], [0.7, 1.4])


@behavior("optim.sgd.nesterov")
@given(trajectory=trajectories(), lr=lrs, momentum=momenta)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, momentum=0.9)
@example(trajectory=MANY_TRAJECTORY, lr=0.1, momentum=0.9)
def test_nesterov_updates_with_gradient_plus_momentum_times_buffer(device, dtype, trajectory,
                                                                  lr, momentum):
    step_alongside(device, dtype, trajectory, lr=lr, momentum=momentum, nesterov=True)


@behavior("optim.sgd.weight_decay")
@given(trajectory=trajectories(), lr=lrs, weight_decay=st.floats(0.05, 0.5),
       momentum=st.sampled_from([0.0, 0.9]))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.1, momentum=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.1, momentum=0.9)
@example(trajectory=MANY_TRAJECTORY, lr=0.1, weight_decay=0.1, momentum=0.9)
def test_weight_decay_adds_lambda_theta_before_momentum(device, dtype, trajectory, lr,
                                                       weight_decay, momentum):
    step_alongside(device, dtype, trajectory, lr=lr, weight_decay=weight_decay,
                   momentum=momentum)


@behavior("optim.sgd.maximize")
@given(trajectory=trajectories(), lr=lrs, weight_decay=st.sampled_from([0.0, 0.1]),
       momentum=st.sampled_from([0.0, 0.9]))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.0, momentum=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.1, momentum=0.9)
@example(trajectory=MANY_TRAJECTORY, lr=0.1, weight_decay=0.1, momentum=0.9)
def test_maximize_negates_the_gradient(device, dtype, trajectory, lr, weight_decay, momentum):
    step_alongside(device, dtype, trajectory, lr=lr, weight_decay=weight_decay,
                   momentum=momentum, maximize=True)


@behavior("optim.sgd.maximize")
def test_maximize_ascends_the_objective(device):
    w = torch.tensor(2.0, device=device, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.01, maximize=True)
    (10 * w**2 + 25).backward()  # dz/dw = 40
    optimizer.step()
    assert_close(w, 2.0 + 0.01 * 40.0)


@behavior("optim.sgd.lr_default")
def test_sgd_learning_rate_default_follows_the_torch_version(device):
    p = torch.tensor([1.0, -2.0], device=device, requires_grad=True)
    if since("2.2"):
        optimizer = torch.optim.SGD([p])
        assert optimizer.defaults["lr"] == 1e-3 and optimizer.param_groups[0]["lr"] == 1e-3
        p.grad = torch.tensor([0.5, 2.0], device=device)
        optimizer.step()
        assert_close(p, [1.0 - 1e-3 * 0.5, -2.0 - 1e-3 * 2.0])
    else:
        with pytest.raises(ValueError, match="required optimization parameter lr"):
            torch.optim.SGD([p])


@behavior("optim.sgd.tensor_lr")
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_tensor_lr_steps_like_the_same_float(device, dtype, foreach):
    for options in (dict(lr=0.1), dict(lr=0.1, momentum=0.9, weight_decay=0.1)):
        step_alongside(device, dtype, MANY_TRAJECTORY, implementation={"foreach": foreach},
                       tensor_lr=True, **options)


# -- implementations ---------------------------------------------------------------------------

@st.composite
def sgd_options(draw):
    """Any valid combination of SGD's hyperparameters (nesterov needs zero dampening)."""
    momentum = draw(st.sampled_from([0.0, 0.9]))
    nesterov = momentum > 0 and draw(st.booleans())
    return dict(lr=draw(lrs), momentum=momentum,
                dampening=0.0 if nesterov or momentum == 0 else draw(st.sampled_from([0.0, 0.5])),
                nesterov=nesterov, weight_decay=draw(st.sampled_from([0.0, 0.1])),
                maximize=draw(st.booleans()))


ALL_OPTIONS = dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.1,
                   maximize=True)
DAMPENED = dict(lr=0.1, momentum=0.9, dampening=0.5, nesterov=False, weight_decay=0.1,
                maximize=False)


def _implementations_agree(device, dtype, trajectory, options, **implementation):
    reference, ref_optimizer = step_alongside(device, dtype, trajectory,
                                              implementation={"foreach": False}, **options)
    other, optimizer = step_alongside(device, dtype, trajectory, implementation=implementation,
                                      **options)
    for i, (a, b) in enumerate(zip(other, reference)):
        assert_close(a, to_numpy(b), what=f"parameter {i} vs the for-loop implementation")
        if options["momentum"]:
            assert_close(optimizer.state[a]["momentum_buffer"],
                         to_numpy(ref_optimizer.state[b]["momentum_buffer"]),
                         what=f"momentum buffer {i} vs the for-loop implementation")


@behavior("optim.sgd.foreach_matches_for_loop")
@given(trajectory=trajectories(), options=sgd_options())
@example(trajectory=SEED_TRAJECTORY, options=ALL_OPTIONS)
@example(trajectory=MANY_TRAJECTORY, options=ALL_OPTIONS)
@example(trajectory=SEED_TRAJECTORY, options=DAMPENED)
def test_foreach_implementation_matches_the_for_loop(device, dtype, trajectory, options):
    _implementations_agree(device, dtype, trajectory, options, foreach=True)


@behavior("optim.sgd.fused_matches_for_loop")
@given(trajectory=trajectories(), options=sgd_options())
@example(trajectory=SEED_TRAJECTORY, options=ALL_OPTIONS)
@example(trajectory=MANY_TRAJECTORY, options=ALL_OPTIONS)
@example(trajectory=SEED_TRAJECTORY, options=DAMPENED)
def test_fused_implementation_matches_the_for_loop(device, dtype, trajectory, options):
    requires(device, FUSED_OPTIMIZERS)  # the device's adapter knows where fused kernels exist
    _implementations_agree(device, dtype, trajectory, options, fused=True)


@behavior("optim.sgd.foreach_default")
def test_unspecified_foreach_uses_the_documented_implementation(device, monkeypatch):
    foreach_on_cuda = since("2.0")
    expected = {"cpu": "_single_tensor_sgd",
                "cuda": "_multi_tensor_sgd" if foreach_on_cuda else "_single_tensor_sgd"}
    if device.type not in expected:
        not_applicable(f"the documentation states the default for CUDA and CPU, "
                    f"not {device.type}")
    sgd_module = importlib.import_module("torch.optim.sgd")
    ran = []

    def spy(name):
        original = getattr(sgd_module, name)

        def record(*args, **kwargs):
            ran.append(name)
            return original(*args, **kwargs)
        return record

    for name in ("_single_tensor_sgd", "_multi_tensor_sgd"):
        monkeypatch.setattr(sgd_module, name, spy(name))
    p = torch.tensor([1.0, -2.0], device=device, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=0.5)
    assert optimizer.defaults["foreach"] is None
    p.grad = torch.tensor([0.5, 1.0], device=device)
    optimizer.step()
    assert ran == [expected[device.type]]
    assert p.detach().cpu().tolist() == [0.75, -2.5]


# -- the same rules with the step compiled (--mode compile) ------------------------------------

@pytest.mark.parametrize("options", [
    pytest.param({}, marks=behavior("optim.sgd.plain"), id="plain"),
    pytest.param({"momentum": 0.9}, marks=behavior("optim.sgd.momentum"), id="momentum"),
    pytest.param({"momentum": 0.9, "dampening": 0.5}, marks=behavior("optim.sgd.dampening"),
                 id="dampening"),
    pytest.param({"momentum": 0.9, "nesterov": True}, marks=behavior("optim.sgd.nesterov"),
                 id="nesterov"),
    pytest.param({"weight_decay": 0.1}, marks=behavior("optim.sgd.weight_decay"),
                 id="weight_decay"),
    pytest.param({"momentum": 0.5, "maximize": True}, marks=behavior("optim.sgd.maximize"),
                 id="maximize"),
])
def test_step_follows_the_documented_rule_in_every_mode(device, mode, options):
    """Each SGD variant on the seed trajectory, with the step called eagerly or compiled
    (torch.compile(optimizer.step), as the optimizer-compile tutorial does)."""
    compiled_sgd_alongside(device, mode, SEED_TRAJECTORY, options,
                           lrs=[0.1] * len(SEED_TRAJECTORY[1]))


@behavior("optim.sgd.tensor_lr")
def test_tensor_lr_filled_between_steps_takes_effect_in_every_mode(device, mode):
    """A Tensor lr changed in place between (compiled) steps is the lr of the next step."""
    compiled_sgd_alongside(device, mode, SEED_TRAJECTORY, {"momentum": 0.9},
                           lrs=[0.1, 0.05, 0.2, 0.01], tensor_lr=True)
