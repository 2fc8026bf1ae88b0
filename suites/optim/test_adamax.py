"""torch.optim.Adamax applies the algorithm printed on its documentation page: an infinity
norm u = max(b2 u, |g| + eps) in place of Adam's second moment.

Stepped side by side with oracles_optim.Adamax; parameters and state (exp_avg, exp_inf, step)
compared every step. eps is drawn large (up to 0.5) so that |g| + eps wins the maximum on some
elements: eps outside the maximum would show there.
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

lrs = st.floats(0.01, 0.5)
betas = st.tuples(st.floats(0.5, 0.95), st.floats(0.3, 0.999))
ALL = dict(lr=0.1, betas=(0.8, 0.5), eps=0.1, weight_decay=0.1, maximize=True)


@behavior("optim.adamax.algorithm")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, betas=betas, eps=st.sampled_from([1e-3, 0.1, 0.5]),
       weight_decay=st.sampled_from([0.0, 0.1]))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.8, 0.5), eps=0.5, weight_decay=0.1)
def test_adamax_infinity_norm_update(device, dtype, trajectory, lr, betas, eps, weight_decay):
    step_alongside(device, dtype, "Adamax", trajectory, lr=lr, betas=betas, eps=eps,
                   weight_decay=weight_decay)


@behavior("optim.adamax.maximize")
@few_examples()
@given(trajectory=trajectories(), lr=lrs)
@example(trajectory=SEED_TRAJECTORY, lr=0.1)
def test_adamax_maximize_negates_the_gradient(device, trajectory, lr):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adamax", trajectory, lr=lr, betas=(0.8, 0.5), eps=0.1,
                   weight_decay=0.1, maximize=True)


@behavior("optim.adamax.foreach")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, betas=betas)
@example(trajectory=MANY_TRAJECTORY, lr=0.1, betas=(0.8, 0.5))
def test_adamax_foreach_implementation_follows_the_algorithm(device, trajectory, lr,
                                                             betas):
    dtype = widest_float(device)
    check_implementation(device, dtype, "Adamax", "foreach", trajectory,
                         **dict(ALL, lr=lr, betas=betas))


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.adamax.algorithm")
def test_adamax_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "Adamax", ALL)
