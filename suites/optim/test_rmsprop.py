"""torch.optim.RMSprop applies the algorithm printed on its documentation page: a running
average of squared gradients (alpha), centered by the squared running mean of the gradients
when centered=True, with an optional momentum buffer over the normalized gradient.

Stepped side by side with oracles_optim.RMSprop; parameters and state (square_avg, grad_avg,
momentum_buffer, step) compared every step. alpha is drawn from [0.8, 0.99]: below that the
centered variance v - g_ave^2 of four steps cancels to a few float32 ulps.
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
alphas = st.floats(0.8, 0.99)
ALL = dict(lr=0.05, alpha=0.9, eps=1e-3, weight_decay=0.1, momentum=0.9, centered=True,
           maximize=True)


@behavior("optim.rmsprop.algorithm")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, alpha=alphas, eps=st.sampled_from([1e-3, 0.1]),
       weight_decay=st.sampled_from([0.0, 0.1]))
@example(trajectory=SEED_TRAJECTORY, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, alpha=0.8, eps=0.1, weight_decay=0.1)
def test_rmsprop_divides_by_the_root_mean_square(device, dtype, trajectory, lr, alpha, eps,
                                                 weight_decay):
    step_alongside(device, dtype, "RMSprop", trajectory, lr=lr, alpha=alpha, eps=eps,
                   weight_decay=weight_decay)


@behavior("optim.rmsprop.centered")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, alpha=alphas)
@example(trajectory=SEED_TRAJECTORY, lr=0.05, alpha=0.9)
def test_rmsprop_centered_subtracts_the_squared_mean_gradient(device, trajectory, lr,
                                                             alpha):
    dtype = widest_float(device)
    step_alongside(device, dtype, "RMSprop", trajectory, lr=lr, alpha=alpha, eps=1e-3,
                   centered=True)


@behavior("optim.rmsprop.momentum")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, alpha=alphas, momentum=st.floats(0.5, 0.95),
       centered=st.booleans())
@example(trajectory=SEED_TRAJECTORY, lr=0.05, alpha=0.9, momentum=0.9, centered=False)
def test_rmsprop_momentum_accumulates_the_normalized_gradient(device, trajectory, lr,
                                                             alpha, momentum, centered):
    dtype = widest_float(device)
    step_alongside(device, dtype, "RMSprop", trajectory, lr=lr, alpha=alpha, eps=1e-3,
                   momentum=momentum, centered=centered)


@behavior("optim.rmsprop.maximize")
@few_examples()
@given(trajectory=trajectories(), lr=lrs)
@example(trajectory=SEED_TRAJECTORY, lr=0.05)
def test_rmsprop_maximize_negates_the_gradient(device, trajectory, lr):
    dtype = widest_float(device)
    step_alongside(device, dtype, "RMSprop", trajectory, **dict(ALL, lr=lr))


@behavior("optim.rmsprop.foreach")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, centered=st.booleans(),
       momentum=st.sampled_from([0.0, 0.9]))
@example(trajectory=MANY_TRAJECTORY, lr=0.05, centered=True, momentum=0.9)
def test_rmsprop_foreach_implementation_follows_the_algorithm(device, trajectory, lr,
                                                              centered, momentum):
    dtype = widest_float(device)
    check_implementation(device, dtype, "RMSprop", "foreach", trajectory,
                         **dict(ALL, lr=lr, centered=centered, momentum=momentum))


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.rmsprop.algorithm")
def test_rmsprop_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "RMSprop", ALL)
