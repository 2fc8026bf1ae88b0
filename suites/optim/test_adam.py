"""torch.optim.Adam applies the algorithm printed on its documentation page.

torch and oracles_optim.Adam (that pseudo-code in numpy float64) are stepped side by side on
the same gradients; parameters and the state (step, exp_avg, exp_avg_sq, max_exp_avg_sq) are
compared after every step. Hyperparameters are drawn away from their defaults, where eps
placement or a bias correction would otherwise hide (eps from 1e-3: the oracle divides by
sqrt(v_hat) + eps, so eps inside the square root or before the bias correction shows).
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
betas = st.tuples(st.floats(0.5, 0.95), st.floats(0.6, 0.999))
epss = st.sampled_from([1e-3, 1e-2, 0.1])

#: Every option away from its default at once.
ALL = dict(lr=0.1, betas=(0.8, 0.9), eps=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)


@st.composite
def adam_options(draw):
    return dict(lr=draw(lrs), betas=draw(betas), eps=draw(epss),
                weight_decay=draw(st.sampled_from([0.0, 0.1])), amsgrad=draw(st.booleans()),
                maximize=draw(st.booleans()))


@behavior("optim.adam.algorithm")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, betas=betas, eps=epss)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.5, 0.6), eps=0.1)
def test_adam_moments_bias_correction_and_eps(device, dtype, trajectory, lr, betas, eps):
    step_alongside(device, dtype, "Adam", trajectory, lr=lr, betas=betas, eps=eps)


@behavior("optim.adam.weight_decay")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, weight_decay=st.floats(0.05, 0.5))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.1)
def test_adam_weight_decay_is_added_to_the_gradient(device, trajectory, lr,
                                                    weight_decay):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adam", trajectory, lr=lr, betas=(0.8, 0.9), eps=1e-3,
                   weight_decay=weight_decay)


@behavior("optim.adam.amsgrad")
@few_examples()
@given(trajectory=trajectories(steps=6), lr=lrs, betas=betas)
@example(trajectory=SEED_TRAJECTORY, lr=0.1, betas=(0.5, 0.6))
def test_adam_amsgrad_divides_by_the_running_maximum(device, trajectory, lr, betas):
    """Six steps with beta2 down to 0.6: the second moment falls below its running maximum
    on some elements, where the maximum and the current value give different updates."""
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adam", trajectory, lr=lr, betas=betas, eps=1e-3,
                   amsgrad=True)


@behavior("optim.adam.maximize")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, weight_decay=st.sampled_from([0.0, 0.1]))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.1)
def test_adam_maximize_negates_the_gradient_before_weight_decay(device, trajectory, lr,
                                                                weight_decay):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adam", trajectory, lr=lr, eps=1e-3,
                   weight_decay=weight_decay, maximize=True)


@behavior("optim.adam.decoupled_weight_decay")
@few_examples()
@given(trajectory=trajectories(), lr=lrs, weight_decay=st.floats(0.05, 0.5))
@example(trajectory=SEED_TRAJECTORY, lr=0.1, weight_decay=0.1)
def test_adam_decoupled_weight_decay_is_adamw(device, trajectory, lr, weight_decay):
    dtype = widest_float(device)
    step_alongside(device, dtype, "Adam", trajectory, lr=lr, betas=(0.8, 0.9), eps=1e-3,
                   weight_decay=weight_decay, decoupled_weight_decay=True, amsgrad=True)


@behavior("optim.adam.foreach")
@few_examples()
@given(trajectory=trajectories(), options=adam_options())
@example(trajectory=MANY_TRAJECTORY, options=ALL)
def test_adam_foreach_implementation_follows_the_algorithm(device, trajectory, options):
    dtype = widest_float(device)
    check_implementation(device, dtype, "Adam", "foreach", trajectory, **options)


@behavior("optim.adam.fused")
@few_examples()
@given(trajectory=trajectories(), options=adam_options())
@example(trajectory=MANY_TRAJECTORY, options=ALL)
def test_adam_fused_implementation_follows_the_algorithm(device, trajectory, options):
    dtype = widest_float(device)
    check_implementation(device, dtype, "Adam", "fused", trajectory, **options)


# -- the same algorithm with the step compiled (--mode compile) --------------------------------

@behavior("optim.adam.algorithm")
def test_adam_step_follows_the_algorithm_in_every_mode(device, mode):
    """Every option of ALL at once, with optimizer.step called eagerly or compiled."""
    step_in_every_mode(device, mode, "Adam", ALL)
