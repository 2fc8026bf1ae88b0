"""torch.optim.Adadelta applies the algorithm printed on its documentation page: the step
sqrt(u + eps) / sqrt(v + eps) g from the running averages v of squared gradients and u of
squared steps (decay rho), scaled by lr.

Stepped side by side with oracles_optim.Adadelta; parameters and state (square_avg,
acc_delta, step) compared every step. eps is drawn up to 0.1: at the first step u = 0 and the
whole update is sqrt(eps) / sqrt(v + eps) g, so eps outside a root shows at once.
"""

from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import behavior
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

ALL = dict(lr=0.5, rho=0.8, eps=1e-2, weight_decay=0.1, maximize=True)


@behavior("optim.adadelta.algorithm")
@few_examples()
@given(trajectory=trajectories(), lr=st.floats(0.1, 2.0), rho=st.floats(0.5, 0.95),
       eps=st.sampled_from([1e-6, 1e-3, 0.1]), weight_decay=st.sampled_from([0.0, 0.1]))
@example(trajectory=SEED_TRAJECTORY, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.5, rho=0.5, eps=0.1, weight_decay=0.1)
def test_adadelta_step_is_the_ratio_of_running_roots(device, dtype, trajectory, lr, rho, eps,
                                                     weight_decay):
    step_alongside(device, dtype, "Adadelta", trajectory, lr=lr, rho=rho, eps=eps,
                   weight_decay=weight_decay)


@behavior("optim.adadelta.maximize")
@few_examples()
@given(trajectory=trajectories(), lr=st.floats(0.1, 2.0))
@example(trajectory=SEED_TRAJECTORY, lr=1.0)
def test_adadelta_maximize_negates_the_gradient(device, trajectory, lr):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adadelta", trajectory, **dict(ALL, lr=lr))


@behavior("optim.adadelta.foreach")
@few_examples()
@given(trajectory=trajectories(), rho=st.floats(0.5, 0.95), maximize=st.booleans())
@example(trajectory=MANY_TRAJECTORY, rho=0.8, maximize=True)
def test_adadelta_foreach_implementation_follows_the_algorithm(device, trajectory, rho,
                                                               maximize):
    dtype = widest_float(device)
    check_implementation(device, dtype, "Adadelta", "foreach", trajectory,
                         **dict(ALL, rho=rho, maximize=maximize))


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.adadelta.algorithm")
def test_adadelta_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "Adadelta", ALL)
