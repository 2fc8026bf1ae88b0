"""torch.optim.RAdam applies the algorithm printed on its documentation page: Adam's moments
with the variance rectification r_t l_t once rho_t > 5, bias-corrected momentum SGD before.

Stepped side by side with oracles_optim.RAdam; parameters and state (exp_avg, exp_avg_sq,
step) compared every step. For beta2 in {0.9, 0.99, 0.999}, rho_t first exceeds 5 at step 6
(rho_6 = 5.39, 5.94, 5.99): six-step trajectories cover both branches, and the algorithm test
asserts that they do.
"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import behavior, oracles_optim, torch_at_least
from torchconform.optim_alongside import (
    MANY_TRAJECTORY,
    SEED_TRAJECTORY,
    check_implementation,
    few_examples,
    step_alongside,
    step_in_every_mode,
    trajectories,
    widest_float,
)

lrs = st.floats(0.01, 0.5)
betas = st.tuples(st.floats(0.5, 0.95), st.sampled_from([0.9, 0.99, 0.999]))


@behavior("optim.radam.algorithm")
@few_examples()
@given(trajectory=trajectories(steps=6), lr=lrs, betas=betas,
       weight_decay=st.sampled_from([0.0, 0.1]))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.9, 0.999), weight_decay=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.8, 0.9), weight_decay=0.1)
def test_radam_rectifies_once_rho_exceeds_5(device, dtype, trajectory, lr, betas,
                                            weight_decay):
    steps = len(trajectory[1])
    assert oracles_optim.RAdam.rho(5, betas[1]) <= 5 < oracles_optim.RAdam.rho(steps, betas[1])
    step_alongside(device, dtype, "RAdam", trajectory, lr=lr, betas=betas, eps=1e-3,
                   weight_decay=weight_decay)


@behavior("optim.radam.decoupled_weight_decay")
@few_examples()
@given(trajectory=trajectories(steps=6), lr=lrs, weight_decay=st.floats(0.05, 0.5))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.3)
def test_radam_decoupled_weight_decay_decays_the_parameter(device, trajectory, lr,
                                                           weight_decay):
    dtype = widest_float(device)
    step_alongside(device, dtype, "RAdam", trajectory, lr=lr, betas=(0.8, 0.9), eps=1e-3,
                   weight_decay=weight_decay, decoupled_weight_decay=True)


@behavior("optim.radam.maximize")
@few_examples()
@given(trajectory=trajectories(steps=6), lr=lrs)
@example(trajectory=SEED_TRAJECTORY, lr=0.1)
def test_radam_maximize_negates_the_gradient(device, trajectory, lr):
    dtype = widest_float(device)
    step_alongside(device, dtype, "RAdam", trajectory, lr=lr, betas=(0.8, 0.9), eps=1e-3,
                   weight_decay=0.1, maximize=True)


@behavior("optim.radam.foreach")
@pytest.mark.xfail(not torch_at_least("2.0"), strict=True,
                   reason="torch 1.13.1's foreach RAdam takes a wrong rectified step once "
                          "rho_t > 5 (fixed in 2.0.1; see docs/torch-versions.md)")
@few_examples()
@given(trajectory=trajectories(steps=6), lr=lrs, betas=betas)
@example(trajectory=MANY_TRAJECTORY, lr=0.1, betas=(0.8, 0.9))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.8, 0.9))
def test_radam_foreach_implementation_follows_the_algorithm(device, trajectory, lr,
                                                            betas):
    dtype = widest_float(device)
    check_implementation(device, dtype, "RAdam", "foreach", trajectory, lr=lr, betas=betas,
                         eps=1e-3, weight_decay=0.1)


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.radam.algorithm")
def test_radam_step_follows_the_algorithm_in_every_mode(device, mode):
    """The default betas (where a compiled step's float32 bias corrections show), with
    optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "RAdam", dict(lr=0.1, weight_decay=0.1, eps=1e-3))
