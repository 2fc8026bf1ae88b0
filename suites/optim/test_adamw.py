"""torch.optim.AdamW applies the algorithm printed on its documentation page: Adam with the
weight decay decoupled from the gradient (theta -= lr lambda theta before the moments).

Stepped side by side with oracles_optim.AdamW; parameters and state compared every step.
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
ALL = dict(lr=0.1, betas=(0.8, 0.9), eps=1e-2, weight_decay=0.3, amsgrad=True, maximize=True)


@st.composite
def adamw_options(draw):
    return dict(lr=draw(lrs), betas=(draw(st.floats(0.5, 0.95)), draw(st.floats(0.6, 0.999))),
                eps=draw(st.sampled_from([1e-3, 0.1])), weight_decay=draw(st.floats(0.05, 0.5)),
                amsgrad=draw(st.booleans()), maximize=draw(st.booleans()))


@behavior("optim.adamw.decoupled_weight_decay")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, weight_decay=st.floats(0.05, 0.5),
       maximize=st.booleans())
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.3, maximize=False)
def test_adamw_decays_the_parameter_not_the_gradient(device, trajectory, lr,
                                                     weight_decay, maximize):
    dtype = widest_float(device)
    step_alongside(device, dtype, "AdamW", trajectory, lr=lr, betas=(0.8, 0.9), eps=1e-3,
                   weight_decay=weight_decay, maximize=maximize)


@behavior("optim.adamw.default_weight_decay")
def test_adamw_weight_decay_defaults_to_0_01(device, dtype):
    _, optimizer, _ = step_alongside(device, dtype, "AdamW", SEED_TRAJECTORY, lr=0.1)
    assert optimizer.defaults["weight_decay"] == 1e-2


@behavior("optim.adamw.amsgrad")
@few_examples()
@given(trajectory=trajectories(steps=6), lr=lrs)
@example(trajectory=SEED_TRAJECTORY, lr=0.1)
def test_adamw_amsgrad_divides_by_the_running_maximum(device, trajectory, lr):
    dtype = widest_float(device)
    step_alongside(device, dtype, "AdamW", trajectory, lr=lr, betas=(0.5, 0.6), eps=1e-3,
                   weight_decay=0.1, amsgrad=True)


@behavior("optim.adamw.foreach")
@few_examples()
@given(trajectory=trajectories(), options=adamw_options())
@example(trajectory=MANY_TRAJECTORY, options=ALL)
def test_adamw_foreach_implementation_follows_the_algorithm(device, trajectory,
                                                            options):
    dtype = widest_float(device)
    check_implementation(device, dtype, "AdamW", "foreach", trajectory, **options)


@behavior("optim.adamw.fused")
@few_examples()
@given(trajectory=trajectories(), options=adamw_options())
@example(trajectory=MANY_TRAJECTORY, options=ALL)
def test_adamw_fused_implementation_follows_the_algorithm(device, trajectory, options):
    dtype = widest_float(device)
    check_implementation(device, dtype, "AdamW", "fused", trajectory, **options)


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.adamw.decoupled_weight_decay")
def test_adamw_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "AdamW", ALL)
