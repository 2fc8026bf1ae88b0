"""torch.optim.Rprop applies the algorithm printed on its documentation page: per element,
the step size grows by eta_plus (up to the maximum step size) while the gradient keeps its
sign, shrinks by eta_minus (down to the minimum) when it flips, in which case that element's
gradient is zeroed (no step, and no sign change seen at the next step); the parameter moves by
the step size against the gradient's sign.

Stepped side by side with oracles_optim.Rprop; parameters and state (prev, step_size, step)
compared every step. Random signs make all three cases of the box occur. lr is kept inside
step_sizes: see the note on the first step in the report of this suite's departures.
"""

import numpy as np
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
etas = st.tuples(st.floats(0.2, 0.8), st.floats(1.1, 2.0))
ALL = dict(lr=0.1, etas=(0.5, 1.5), step_sizes=(0.05, 0.2), maximize=True)


@behavior("optim.rprop.algorithm")
@few_examples()
@given(trajectory=trajectories(steps=6), lr=lrs, etas=etas)
@example(trajectory=SEED_TRAJECTORY, lr=0.01, etas=(0.5, 1.2))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, etas=(0.3, 1.7))  # not exact in float32
def test_rprop_adapts_step_sizes_to_sign_changes(device, dtype, trajectory, lr, etas):
    step_alongside(device, dtype, "Rprop", trajectory, lr=lr, etas=etas)


#: Element 0's gradient keeps its sign (its step size grows into the maximum), element 1's
#: flips every step (shrinks into the minimum), element 2's flips every other step.
CLAMPING_TRAJECTORY = (
    [np.array([1.0, -1.0, 0.5])],
    [[np.array([0.5 + 0.25 * t, (-1.0) ** t, (-1.0) ** (t // 2)])] for t in range(6)])


@behavior("optim.rprop.step_sizes")
@few_examples()
@given(trajectory=trajectories(steps=6), etas=etas)
@example(trajectory=SEED_TRAJECTORY, etas=(0.5, 1.5))
@example(trajectory=CLAMPING_TRAJECTORY, etas=(0.5, 1.5))
def test_rprop_step_sizes_are_clamped(device, trajectory, etas):
    """Bounds close around lr: a few equal signs reach the maximum, a few flips the minimum."""
    dtype = widest_float(device)
    step_alongside(device, dtype, "Rprop", trajectory, lr=0.1, etas=etas,
                   step_sizes=(0.05, 0.2))


@behavior("optim.rprop.maximize")
@few_examples()
@given(trajectory=trajectories(steps=6))
@example(trajectory=SEED_TRAJECTORY)
def test_rprop_maximize_negates_the_gradient(device, trajectory):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Rprop", trajectory, **ALL)


@behavior("optim.rprop.foreach")
@few_examples()
@given(trajectory=trajectories(steps=6), etas=etas, maximize=st.booleans())
@example(trajectory=MANY_TRAJECTORY, etas=(0.5, 1.5), maximize=False)
def test_rprop_foreach_implementation_follows_the_algorithm(device, trajectory, etas,
                                                            maximize):
    dtype = widest_float(device)
    check_implementation(device, dtype, "Rprop", "foreach", trajectory,
                         **dict(ALL, etas=etas, maximize=maximize))


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.rprop.algorithm")
def test_rprop_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "Rprop", ALL)
