"""torch.optim.Adagrad applies the algorithm printed on its documentation page: the sum of
squared gradients, started at initial_accumulator_value, divides the step, whose learning rate
decays as lr / (1 + (t - 1) lr_decay).

Stepped side by side with oracles_optim.Adagrad; parameters and state (sum, step) compared
every step.
"""

import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import behavior, since
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
ALL = dict(lr=0.1, lr_decay=0.5, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-3,
           maximize=True)


@st.composite
def adagrad_options(draw):
    return dict(lr=draw(lrs), lr_decay=draw(st.sampled_from([0.0, 0.5])),
                weight_decay=draw(st.sampled_from([0.0, 0.1])),
                initial_accumulator_value=draw(st.sampled_from([0.0, 0.5])), eps=1e-3,
                maximize=draw(st.booleans()))


@behavior("optim.adagrad.algorithm")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, eps=st.sampled_from([1e-10, 1e-3, 0.1]),
       weight_decay=st.sampled_from([0.0, 0.1]))
@example(trajectory=SEED_TRAJECTORY, lr=0.01, eps=1e-10, weight_decay=0.0)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, eps=0.1, weight_decay=0.1)
def test_adagrad_divides_by_the_root_of_the_sum_of_squares(device, dtype, trajectory, lr, eps,
                                                           weight_decay):
    step_alongside(device, dtype, "Adagrad", trajectory, lr=lr, eps=eps,
                   weight_decay=weight_decay)


@behavior("optim.adagrad.lr_decay")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, lr_decay=st.floats(0.05, 1.0))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, lr_decay=0.5)
def test_adagrad_lr_decays_from_the_second_step(device, trajectory, lr, lr_decay):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adagrad", trajectory, lr=lr, lr_decay=lr_decay, eps=1e-3)


@behavior("optim.adagrad.initial_accumulator_value")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, initial=st.floats(0.05, 2.0))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, initial=0.5)
def test_adagrad_sum_starts_at_the_initial_accumulator_value(device, trajectory, lr,
                                                             initial):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adagrad", trajectory, lr=lr, eps=1e-3,
                   initial_accumulator_value=initial)


@behavior("optim.adagrad.maximize")
@few_examples()
@given(trajectory=trajectories(), lr=lrs)
@example(trajectory=SEED_TRAJECTORY, lr=0.1)
def test_adagrad_maximize_negates_the_gradient(device, trajectory, lr):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adagrad", trajectory, **dict(ALL, lr=lr))


@behavior("optim.adagrad.foreach")
@few_examples()
@given(trajectory=trajectories(), options=adagrad_options())
@example(trajectory=MANY_TRAJECTORY, options=ALL)
def test_adagrad_foreach_implementation_follows_the_algorithm(device, trajectory,
                                                              options):
    """1.13.1 and 2.0.1 compute the foreach implementation's decayed learning rate from the
    float32 step tensor, also for float64 parameters (a relative error of ~1e-8); 2.6.0 on
    keeps it in Python floats. Before 2.1 float64 is held to float32's tolerance."""
    dtype = widest_float(device)
    if since("2.1") or dtype != torch.float64:
        check_implementation(device, dtype, "Adagrad", "foreach", trajectory, **options)
    else:
        step_alongside(device, dtype, "Adagrad", trajectory, implementation={"foreach": True},
                       tolerance_of=torch.float32, **options)


@behavior("optim.adagrad.fused")
@few_examples()
@given(trajectory=trajectories(), options=adagrad_options())
@example(trajectory=MANY_TRAJECTORY, options=ALL)
def test_adagrad_fused_implementation_follows_the_algorithm(device, trajectory,
                                                            options):
    dtype = widest_float(device)
    check_implementation(device, dtype, "Adagrad", "fused", trajectory, **options)


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.adagrad.algorithm")
def test_adagrad_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "Adagrad", ALL)
