"""Stepping a torch optimizer and its documented algorithm (oracles_optim) side by side.

The optim suites' algorithm checks all read the same way: parameters and gradients drawn by
Hypothesis (or a fixed trajectory), assigned to `.grad` directly so that only the optimizer is
under test, one torch step and one oracle step per gradient, and after every step each
parameter and each documented state entry compared with the float64 oracle.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from . import oracles, oracles_optim
from .protocol import not_applicable
from .strategies import generators, shapes, signed_values
from .tolerances import assert_close, to_numpy, tolerance
from .versions import since

#: Enough steps for momentum, bias-correction and step-size adaptation terms to show.
STEPS = 4


@st.composite
def trajectories(draw, steps: int = STEPS, max_params: int = 3):
    """(initial values, gradients for each step) for one to `max_params` parameters of up to
    4x4 elements, magnitudes in [0.25, 2] (values) and [0.125, 2] (gradients), either sign."""
    sizes = draw(st.lists(shapes(max_dims=2, max_side=4), min_size=1, max_size=max_params))
    rng = draw(generators())
    params = [signed_values(rng, s, 0.25, 2.0) for s in sizes]
    grads = [[signed_values(rng, s, 0.125, 2.0) for s in sizes] for _ in range(steps)]
    return params, grads


def _fixed_trajectory(seed: int, sizes, steps: int = STEPS):
    rng = np.random.default_rng(seed)
    params = [signed_values(rng, s, 0.25, 2.0) for s in sizes]
    return params, [[signed_values(rng, s, 0.125, 2.0) for s in sizes] for _ in range(steps)]


#: Three parameters, a scalar and a 9x13 one (beyond a vector width or a small-size fast path)
#: among them, six steps: every rule is also checked on it.
SEED_TRAJECTORY = _fixed_trajectory(20240701, [(2, 2), (), (9, 13)], steps=6)
#: Four parameters, a large one (17x33) among them: positions and sizes beyond any chunk.
MANY_TRAJECTORY = _fixed_trajectory(20240702, [(2, 3), (), (17, 33), (4,)])


def make_params(values, device, dtype):
    return [torch.tensor(v, device=device, dtype=dtype, requires_grad=True) for v in values]


def step_alongside(device, dtype, name: str, trajectory, implementation: Optional[Dict] = None,
                   torch_options: Optional[Dict] = None, tolerance_of=None, mode=None,
                   **options):
    """Step torch.optim.<name>(**options, **implementation) and oracles_optim.<name>(**options)
    with the same gradients; after each step compare every parameter and every state entry
    the oracle keeps. torch_options are given to torch only (options the oracle does not
    model, with no effect on the result). tolerance_of: a dtype whose tolerance replaces the
    parameters' (see the NAdam suite). mode: the `mode` fixture (torchconform.modes), whose
    function() wraps optimizer.step: eager, or torch.compile'd as the optimizer-compile tutorial
    does. Returns (torch params, optimizer, oracle)."""
    values, grads = trajectory
    params = make_params(values, device, dtype)
    optimizer = getattr(torch.optim, name)(params, **options, **(implementation or {}),
                                           **(torch_options or {}))
    oracle = getattr(oracles_optim, name)([to_numpy(p) for p in params], **options)
    step = optimizer.step if mode is None else mode.function(optimizer.step)
    for t, step_grads in enumerate(grads, start=1):
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.tensor(g, device=device, dtype=dtype)
        given = [None if p.grad is None else to_numpy(p.grad) for p in params]
        step()
        expected = oracle.step(given)
        compare(params, optimizer, expected, oracle.state, tolerance_of or dtype,
                f"{name}: after step {t}", tol=_compiled_tolerance(name, mode))
    return params, optimizer, oracle


#: Compiled, torch.optim keeps `step` a float32 tensor where eager reads it as a Python float
#: (pytorch/pytorch#88173: no .item() under Dynamo), so bias corrections 1 - beta^t are computed
#: in float32: an absolute error of ~6e-8 in 1 - 0.999^t is 6e-5 relative. Compiled steps of
#: the optimizers with such corrections are compared at this (rtol, atol); a compiled step that
#: drifts by 1e-3 still fails.
BIAS_CORRECTED = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam")
COMPILED_BIAS_CORRECTION_TOLERANCE = (3e-4, 1e-5)


def _compiled_tolerance(name: str, mode) -> Optional[Tuple[float, float]]:
    if mode is not None and mode.compiled and name in BIAS_CORRECTED:
        return COMPILED_BIAS_CORRECTION_TOLERANCE
    return None


def step_in_every_mode(device, mode, name: str, options: Dict) -> None:
    """The documented algorithm with every option in `options`, float32, on the seed
    trajectory, with optimizer.step called eagerly or compiled (the `mode` fixture; the
    optimizer-compile tutorial's torch.compile(optimizer.step))."""
    step_alongside(device, torch.float32, name, SEED_TRAJECTORY, mode=mode, **options)


def compare(params, optimizer, expected, expected_state, dtype, what: str,
            tol: Optional[Tuple[float, float]] = None) -> None:
    """Every parameter and every state entry the oracle keeps (by name) against torch's, at
    `dtype`'s tolerance or `tol` (rtol, atol). One vectorized check first; on a mismatch,
    assert_close entry by entry says where."""
    pairs = []
    for i, p in enumerate(params):
        pairs.append((p, expected[i], f"{what}: parameter {i}"))
        actual = optimizer.state[p]
        missing = sorted(set(expected_state[i]) - set(actual))
        assert not missing, f"{what}: parameter {i}'s state has no {missing} ({sorted(actual)})"
        pairs += [(actual[k], v, f"{what}: parameter {i}'s state[{k!r}]")
                  for k, v in expected_state[i].items()]
    got = [to_numpy(a).ravel() for a, _, _ in pairs]
    want = [np.asarray(e, dtype=np.float64).ravel() for _, e, _ in pairs]
    if all(g.shape == w.shape for g, w in zip(got, want)):
        rtol, atol = tol or tolerance(dtype)
        g, w = np.concatenate(got), np.concatenate(want)
        if np.all(np.abs(g - w) <= atol + rtol * np.abs(w)) and np.all(np.isfinite(g)):
            return
    rtol, atol = tol or (None, None)
    for actual, want, label in pairs:
        assert_close(actual, want, dtype=dtype, rtol=rtol, atol=atol, what=label)
    raise AssertionError(f"{what}: mismatch")  # pragma: no cover - assert_close raised


def implementation_available(device, name: str, implementation: str) -> bool:
    """Whether torch.optim.<name>(<implementation>=True) steps on this device. Where the
    documented availability says no (fused on the CPU before 2.4), assert the refusal and
    return False; an undocumented backend that refuses is not applicable."""
    if implementation == "foreach":
        return True
    cpu_fused_since = {"Adam": "2.4", "AdamW": "2.4", "SGD": "2.4", "Adagrad": "2.6"}
    if device.type == "cpu" and not since(cpu_fused_since[name]):
        p = torch.zeros(1, device=device, requires_grad=True)
        p.grad = torch.ones(1, device=device)
        with pytest.raises((RuntimeError, TypeError)):
            getattr(torch.optim, name)([p], lr=0.1, fused=True).step()
        return False
    if device.type in ("cpu", "cuda"):
        return True
    p = torch.zeros(1, device=device, requires_grad=True)
    p.grad = torch.ones(1, device=device)
    try:
        getattr(torch.optim, name)([p], lr=0.1, fused=True).step()
    except RuntimeError as exc:
        not_applicable(f"no fused {name} for {device.type} ({exc})")
    return True


def check_implementation(device, dtype, name: str, implementation: str, trajectory,
                         **options) -> None:
    """The foreach or fused implementation applies the documented algorithm too."""
    if implementation_available(device, name, implementation):
        step_alongside(device, dtype, name, trajectory, implementation={implementation: True},
                       **options)


def grads_from(values: Sequence, device, dtype):
    return [torch.tensor(v, device=device, dtype=dtype) for v in values]


def few_examples(divisor: int = 10):
    """Hypothesis settings with 1/divisor of the profile's examples (at least 2): the optim
    area has a dozen optimizers and stays within its time budget this way, while the
    `thorough` profile still scales them up."""
    from hypothesis import settings

    return settings(max_examples=max(2, settings().max_examples // divisor))


def widest_float(device) -> torch.dtype:
    """float64 where the device has it (MPS has not: float32 there). The option and
    implementation checks run in this one dtype, where a fault shows soonest; each optimizer's
    main algorithm check runs in every dtype (the `dtype` fixture)."""
    try:
        torch.zeros(1, dtype=torch.float64, device=device)
    except (RuntimeError, TypeError):
        return torch.float32
    return torch.float64


def compiled_sgd_alongside(device, mode, trajectory, options, lrs, tensor_lr=False):
    """Step SGD's `mode.function(optimizer.step)` (eager or compiled, torchconform.modes) on
    `trajectory` next to the documented rule, setting the learning rate to lrs[t] before step t
    (a float in param_groups, or the Tensor lr filled in place). Compares parameters after
    every step."""
    values, grads = trajectory
    params = [torch.tensor(v, device=device, dtype=torch.float32, requires_grad=True)
              for v in values]
    lr = torch.tensor(lrs[0], dtype=torch.float64) if tensor_lr else lrs[0]
    optimizer = torch.optim.SGD(params, lr=lr, **options)
    step = mode.function(optimizer.step)
    oracle = oracles.SGD([to_numpy(p) for p in params], lr=lrs[0], **options)
    for t, (step_grads, value) in enumerate(zip(grads, lrs), start=1):
        if tensor_lr:
            optimizer.param_groups[0]["lr"].fill_(value)
        else:
            optimizer.param_groups[0]["lr"] = value
        oracle.lr = value
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, device=device, dtype=torch.float32)
        step()
        expected = oracle.step(step_grads)
        for i, p in enumerate(params):
            assert_close(p, expected[i], what=f"parameter {i} after step {t}")
