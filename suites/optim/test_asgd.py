"""torch.optim.ASGD: averaged SGD with the documented options lambd (decay term), alpha (power
of the eta update) and t0 (the step at which averaging starts).

The page has no pseudo-code box; oracles_optim.ASGD states the rule it implements (Polyak and
Juditsky's averaging, eta_t = lr / (1 + lambd lr t)^alpha, mu_t = 1 / max(1, t - t0)).
Parameters and state (eta, mu, ax, step) are compared every step. lambd is drawn large (0.05
to 0.5) and t0 small (0 to 2) so that the decay, the eta schedule and the averaging all show
within four steps; with the defaults (lambd = 1e-4, t0 = 1e6) ax only copies theta.

torch keeps eta and mu as float32 scalars (the scalar dtype of the default dtype) whatever the
parameters' dtype, so float64 parameters are held to float32's tolerance here (a relative
error of ~1e-9 at the first step; measured on 2.13).
"""

from functools import partial

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import behavior, optim_alongside, torch_at_least
from torchconform.optim_alongside import (
    MANY_TRAJECTORY,
    SEED_TRAJECTORY,
    few_examples,
    step_in_every_mode,
    trajectories,
    widest_float,
)

# Held to float32's tolerance in every dtype (the float32 scalar state, above).
step_alongside = partial(optim_alongside.step_alongside, tolerance_of=torch.float32)
check_implementation = partial(optim_alongside.check_implementation, tolerance_of=torch.float32)

lrs = st.floats(0.01, 0.5)
ALL = dict(lr=0.1, lambd=0.3, alpha=0.5, t0=1.0, weight_decay=0.1, maximize=True)


@behavior("optim.asgd.algorithm")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, lambd=st.floats(0.05, 0.5),
       alpha=st.floats(0.25, 1.0), weight_decay=st.sampled_from([0.0, 0.1]))
@example(trajectory=SEED_TRAJECTORY, lr=0.01, lambd=1e-4, alpha=0.75, weight_decay=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, lambd=0.3, alpha=0.5, weight_decay=0.1)
def test_asgd_decays_with_the_eta_schedule(device, dtype, trajectory, lr, lambd, alpha,
                                           weight_decay):
    step_alongside(device, dtype, "ASGD", trajectory, lr=lr, lambd=lambd, alpha=alpha,
                   weight_decay=weight_decay)


@behavior("optim.asgd.averaging")
@few_examples()
@given(trajectory=trajectories(steps=5), lr=lrs, t0=st.sampled_from([0.0, 1.0, 2.0]))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, t0=1.0)
def test_asgd_averages_the_parameters_from_t0(device, trajectory, lr, t0):
    dtype = widest_float(device)
    step_alongside(device, dtype, "ASGD", trajectory, lr=lr, lambd=0.1, t0=t0)


@behavior("optim.asgd.maximize")
@few_examples()
@given(trajectory=trajectories(), lr=lrs)
@example(trajectory=SEED_TRAJECTORY, lr=0.1)
def test_asgd_maximize_negates_the_gradient(device, trajectory, lr):
    dtype = widest_float(device)
    step_alongside(device, dtype, "ASGD", trajectory, **dict(ALL, lr=lr))


@behavior("optim.asgd.foreach")
@pytest.mark.xfail(torch_at_least("2.0") and not torch_at_least("2.1"), strict=True,
                   reason="torch 2.0.1's foreach ASGD updates eta without the power alpha "
                          "(1.13.1 and 2.6.0 follow it; see docs/torch-versions.md)")
@few_examples()
@given(trajectory=trajectories(), t0=st.sampled_from([0.0, 1.0, 2.0]), maximize=st.booleans())
@example(trajectory=MANY_TRAJECTORY, t0=1.0, maximize=True)
def test_asgd_foreach_implementation_follows_the_algorithm(device, trajectory, t0,
                                                           maximize):
    dtype = widest_float(device)
    check_implementation(device, dtype, "ASGD", "foreach", trajectory,
                         **dict(ALL, t0=t0, maximize=maximize))


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.asgd.algorithm")
def test_asgd_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "ASGD", ALL)
