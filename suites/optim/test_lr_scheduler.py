"""torch.optim.lr_scheduler sets each parameter group's lr to the schedule its documentation
states.

Every test builds an optimizer with two parameter groups of different learning rates (each
group is scheduled from its own lr), steps the optimizer and then the scheduler, as the
documentation prescribes, and compares the lr of every group after construction and after
every step with torchconform.oracles_lr_scheduler: the documented formulas in float64.
Hypothesis draws the schedule's options; steps run well past the schedule's turning points.
"""

import copy
import math
import warnings

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import behavior
from torchconform import oracles_lr_scheduler as oracle

sched = torch.optim.lr_scheduler
BASE_LRS = (0.1, 0.03)
STEPS = 16

gammas = st.floats(0.1, 0.95)
small_ints = st.integers(1, 6)


def optimizer_for(device, base_lrs=BASE_LRS, **options):
    """SGD with one small parameter per group, group i at lr base_lrs[i]."""
    groups = [{"params": [torch.zeros(2, device=device, requires_grad=True)], "lr": lr}
              for lr in base_lrs]
    return torch.optim.SGD(groups, lr=base_lrs[0], **options)


def lrs_over(optimizer, scheduler, steps=STEPS, metrics=None):
    """The lr of every group after construction and after each optimizer.step() +
    scheduler.step() (with metrics[i] for ReduceLROnPlateau)."""
    seen = [[g["lr"] for g in optimizer.param_groups]]
    for i in range(steps):
        optimizer.step()
        scheduler.step() if metrics is None else scheduler.step(metrics[i])
        seen.append([g["lr"] for g in optimizer.param_groups])
        if metrics is None:  # get_last_lr(): what the step just set, composite schedulers too
            last = [float(lr) for lr in scheduler.get_last_lr()]
            assert last == [float(lr) for lr in seen[-1]], (
                f"get_last_lr() {last} after step {i + 1}, the groups have {seen[-1]}")
    return seen


def assert_schedule(actual, expected_per_group):
    """actual[t][g] equals expected_per_group[g](t) up to float64 rounding."""
    for t, row in enumerate(actual):
        for g, value in enumerate(row):
            want = expected_per_group[g](t)
            assert math.isclose(float(value), want, rel_tol=1e-9, abs_tol=1e-15), (
                f"group {g} after {t} step(s): lr {float(value)!r}, documented {want!r}")


def per_group(fn, base_lrs=BASE_LRS):
    return [lambda t, b=b: fn(b, t) for b in base_lrs]


@behavior("optim.lr_scheduler.step_lr")
@given(step_size=small_ints, gamma=gammas)
@example(step_size=3, gamma=0.1)
def test_step_lr_decays_by_gamma_every_step_size_epochs(device, step_size, gamma):
    opt = optimizer_for(device)
    actual = lrs_over(opt, sched.StepLR(opt, step_size=step_size, gamma=gamma))
    assert_schedule(actual, per_group(lambda b, t: oracle.step_lr(b, t, step_size, gamma)))


@behavior("optim.lr_scheduler.multi_step_lr")
@given(milestones=st.lists(st.integers(1, STEPS), min_size=1, max_size=4, unique=True),
       gamma=gammas)
@example(milestones=[2, 5, 6], gamma=0.5)
def test_multi_step_lr_decays_once_at_each_milestone(device, milestones, gamma):
    opt = optimizer_for(device)
    actual = lrs_over(opt, sched.MultiStepLR(opt, milestones=sorted(milestones), gamma=gamma))
    assert_schedule(actual, per_group(
        lambda b, t: oracle.multi_step_lr(b, t, milestones, gamma)))


@behavior("optim.lr_scheduler.exponential_lr")
@given(gamma=gammas)
def test_exponential_lr_decays_by_gamma_every_epoch(device, gamma):
    opt = optimizer_for(device)
    actual = lrs_over(opt, sched.ExponentialLR(opt, gamma=gamma))
    assert_schedule(actual, per_group(lambda b, t: oracle.exponential_lr(b, t, gamma)))


@behavior("optim.lr_scheduler.cosine_annealing_lr")
@given(t_max=st.integers(2, 12), eta_min=st.floats(0.0, 0.01))
@example(t_max=10, eta_min=0.001)
def test_cosine_annealing_lr_follows_the_cosine_between_base_and_eta_min(device, t_max,
                                                                         eta_min):
    # Over 2 T_max epochs: the documented recursion continues the cosine past T_max.
    opt = optimizer_for(device)
    actual = lrs_over(opt, sched.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min),
                      steps=2 * t_max)
    assert_schedule(actual, per_group(
        lambda b, t: oracle.cosine_annealing_lr(b, t, t_max, eta_min)))


@behavior("optim.lr_scheduler.cosine_annealing_warm_restarts")
@given(t_0=st.integers(1, 5), t_mult=st.integers(1, 3), eta_min=st.floats(0.0, 0.01))
@example(t_0=2, t_mult=2, eta_min=0.001)
def test_cosine_annealing_warm_restarts_restart_after_each_period(device, t_0, t_mult,
                                                                   eta_min):
    opt = optimizer_for(device)
    scheduler = sched.CosineAnnealingWarmRestarts(opt, T_0=t_0, T_mult=t_mult, eta_min=eta_min)
    assert_schedule(lrs_over(opt, scheduler), per_group(
        lambda b, t: oracle.cosine_annealing_warm_restarts(b, t, t_0, t_mult, eta_min)))


@behavior("optim.lr_scheduler.linear_lr")
@given(start=st.floats(0.05, 1.0), end=st.floats(0.05, 1.0), total_iters=small_ints)
@example(start=1 / 3, end=1.0, total_iters=4)
def test_linear_lr_moves_the_factor_linearly_then_holds(device, start, end, total_iters):
    opt = optimizer_for(device)
    scheduler = sched.LinearLR(opt, start_factor=start, end_factor=end, total_iters=total_iters)
    assert_schedule(lrs_over(opt, scheduler), per_group(
        lambda b, t: oracle.linear_lr(b, t, start, end, total_iters)))


@behavior("optim.lr_scheduler.constant_lr")
@given(factor=st.floats(0.05, 0.95), total_iters=small_ints)
@example(factor=0.5, total_iters=4)
def test_constant_lr_scales_by_factor_until_total_iters(device, factor, total_iters):
    opt = optimizer_for(device)
    scheduler = sched.ConstantLR(opt, factor=factor, total_iters=total_iters)
    assert_schedule(lrs_over(opt, scheduler), per_group(
        lambda b, t: oracle.constant_lr(b, t, factor, total_iters)))


@behavior("optim.lr_scheduler.polynomial_lr")
@given(total_iters=st.integers(2, 10), power=st.floats(0.5, 3.0).filter(
    lambda p: abs(p - 1) > 0.05))
@example(total_iters=4, power=2.0)
def test_polynomial_lr_decays_polynomially_to_zero(device, total_iters, power):
    opt = optimizer_for(device)
    scheduler = sched.PolynomialLR(opt, total_iters=total_iters, power=power)
    assert_schedule(lrs_over(opt, scheduler), per_group(
        lambda b, t: oracle.polynomial_lr(b, t, total_iters, power)))


@behavior("optim.lr_scheduler.lambda_lr")
@given(a=st.floats(0.5, 0.99), b=st.floats(0.01, 0.5))
def test_lambda_lr_sets_base_lr_times_each_groups_lambda(device, a, b):
    opt = optimizer_for(device)
    lambdas = [lambda e: a ** e, lambda e: 1.0 / (1.0 + b * e)]  # one per group
    actual = lrs_over(opt, sched.LambdaLR(opt, lr_lambda=lambdas))
    assert_schedule(actual, [lambda t, fn=fn, base=base: oracle.lambda_lr(base, t, fn)
                             for fn, base in zip(lambdas, BASE_LRS)])


@behavior("optim.lr_scheduler.multiplicative_lr")
@given(a=st.floats(0.5, 0.99))
def test_multiplicative_lr_multiplies_by_the_lambda_every_epoch(device, a):
    opt = optimizer_for(device)
    fn = lambda e: a + (1 - a) / (e + 1)  # noqa: E731 - varies with the epoch it is given
    actual = lrs_over(opt, sched.MultiplicativeLR(opt, lr_lambda=fn))
    assert_schedule(actual, per_group(lambda b, t: oracle.multiplicative_lr(b, t, fn)))


@behavior("optim.lr_scheduler.one_cycle_lr")
@given(total_steps=st.integers(10, 30), pct_start=st.floats(0.15, 0.6),
       anneal=st.sampled_from(["cos", "linear"]), three_phase=st.booleans())
@example(total_steps=20, pct_start=0.3, anneal="cos", three_phase=False)
def test_one_cycle_lr_rises_to_max_lr_then_falls_below_the_start(device, total_steps,
                                                                   pct_start, anneal,
                                                                   three_phase):
    opt = optimizer_for(device, momentum=0.9)
    max_lrs = [1.0, 0.4]
    scheduler = sched.OneCycleLR(opt, max_lr=max_lrs, total_steps=total_steps,
                                 pct_start=pct_start, anneal_strategy=anneal,
                                 three_phase=three_phase, div_factor=10.0,
                                 final_div_factor=100.0)
    actual = lrs_over(opt, scheduler, steps=total_steps - 1)
    assert_schedule(actual, [
        lambda t, m=m: oracle.one_cycle(m, t, total_steps, pct_start, 10.0, 100.0, anneal,
                                        three_phase) for m in max_lrs])


@behavior("optim.lr_scheduler.one_cycle_lr")
def test_one_cycle_lr_cycles_momentum_inversely(device):
    # The documented defaults: momentum goes from max_momentum (0.95) down to base_momentum
    # (0.85) while the lr rises, and back while it falls.
    opt = optimizer_for(device, momentum=0.9)
    scheduler = sched.OneCycleLR(opt, max_lr=1.0, total_steps=20, pct_start=0.25)
    momenta = [opt.param_groups[0]["momentum"]]
    for _ in range(19):
        opt.step()
        scheduler.step()
        momenta.append(opt.param_groups[0]["momentum"])
    peak = momenta.index(min(momenta))
    assert math.isclose(momenta[0], 0.95) and math.isclose(momenta[-1], 0.95)
    assert math.isclose(min(momenta), 0.85) and peak == 4  # where the lr peaks: 0.25*20 - 1


@behavior("optim.lr_scheduler.one_cycle_lr")
def test_one_cycle_lr_refuses_to_step_past_total_steps(device):
    # total_steps steps after construction are accepted (1.13.1 through 2.13 alike); the next
    # raises. (1.13.1 counts that call as the 7th in its message, later versions as the 6th.)
    opt = optimizer_for(device, momentum=0.9)
    scheduler = sched.OneCycleLR(opt, max_lr=1.0, total_steps=5)
    for _ in range(5):
        opt.step()
        scheduler.step()
    opt.step()
    with pytest.raises(ValueError, match=r"Tried to step \d+ times\. The specified number of "
                                         r"total steps is 5"):
        scheduler.step()


@behavior("optim.lr_scheduler.cyclic_lr")
@given(up=small_ints, down=st.one_of(st.none(), small_ints),
       mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
       gamma=st.floats(0.8, 0.99))
@example(up=2, down=None, mode="triangular2", gamma=1.0)
@example(up=3, down=1, mode="exp_range", gamma=0.9)
def test_cyclic_lr_cycles_between_base_and_max_lr(device, up, down, mode, gamma):
    opt = optimizer_for(device, momentum=0.9)
    max_lrs = [0.5, 0.2]
    scheduler = sched.CyclicLR(opt, base_lr=list(BASE_LRS), max_lr=max_lrs, step_size_up=up,
                               step_size_down=down, mode=mode, gamma=gamma)
    assert_schedule(lrs_over(opt, scheduler), [
        lambda t, b=b, m=m: oracle.cyclic_lr(b, m, t, up, down, mode, gamma)
        for b, m in zip(BASE_LRS, max_lrs)])


@behavior("optim.lr_scheduler.cyclic_lr")
def test_cyclic_lr_cycles_momentum_inversely_to_the_lr(device):
    opt = optimizer_for(device, momentum=0.9)
    scheduler = sched.CyclicLR(opt, base_lr=0.1, max_lr=0.5, step_size_up=2,
                               base_momentum=0.8, max_momentum=0.9)
    seen = []
    for _ in range(8):
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
        opt.step()
        scheduler.step()
    for lr, momentum in seen:  # lr at base <-> momentum at max, linearly in between
        height = (lr - 0.1) / 0.4
        assert math.isclose(momentum, 0.9 - 0.1 * height, rel_tol=1e-9)


@behavior("optim.lr_scheduler.sequential_lr")
@given(milestone=st.integers(1, 8), factor=st.floats(0.05, 0.5), gamma=gammas)
@example(milestone=3, factor=0.1, gamma=0.9)
def test_sequential_lr_switches_schedulers_at_the_milestone(device, milestone, factor, gamma):
    # The documentation's example: ConstantLR until the milestone, then ExponentialLR starting
    # again from the base lr (0.05, 0.005 ... then 0.05, 0.045, 0.0405).
    opt = optimizer_for(device)
    first = sched.ConstantLR(opt, factor=factor, total_iters=milestone)
    second = sched.ExponentialLR(opt, gamma=gamma)
    scheduler = sched.SequentialLR(opt, schedulers=[first, second], milestones=[milestone])

    def expected(b, t):
        if t < milestone:
            return oracle.constant_lr(b, t, factor, milestone)
        return oracle.exponential_lr(b, t - milestone, gamma)

    assert_schedule(lrs_over(opt, scheduler), per_group(expected))


@behavior("optim.lr_scheduler.chained_scheduler")
@given(factor=st.floats(0.05, 0.5), total_iters=small_ints, gamma=gammas)
@example(factor=0.1, total_iters=2, gamma=0.9)
def test_chained_scheduler_multiplies_the_schedules(device, factor, total_iters, gamma):
    opt = optimizer_for(device)
    scheduler = sched.ChainedScheduler([
        sched.ConstantLR(opt, factor=factor, total_iters=total_iters),
        sched.ExponentialLR(opt, gamma=gamma)])
    assert_schedule(lrs_over(opt, scheduler), per_group(
        lambda b, t: oracle.constant_lr(1.0, t, factor, total_iters)
        * oracle.exponential_lr(b, t, gamma)))


plateau_options = st.fixed_dictionaries({
    "mode": st.sampled_from(["min", "max"]), "factor": st.floats(0.1, 0.9),
    "patience": st.integers(0, 3), "threshold": st.sampled_from([1e-4, 0.05, 0.2]),
    "threshold_mode": st.sampled_from(["rel", "abs"]), "cooldown": st.integers(0, 2),
    "min_lr": st.sampled_from([0.0, 0.004])})


@behavior("optim.lr_scheduler.reduce_lr_on_plateau")
@given(options=plateau_options,
       metrics=st.lists(st.sampled_from([1.0, 0.99, 0.9, 1.1, 2.0, 0.5, 10.0, 0.1]),
                        min_size=STEPS, max_size=STEPS))
@example(options={"mode": "min", "factor": 0.5, "patience": 1, "threshold": 1e-4,
                  "threshold_mode": "rel", "cooldown": 1, "min_lr": 0.004},
         metrics=[1.0] * STEPS)
# Metrics far from 1, where a relative and an absolute threshold disagree: 9 after 10 improves
# by more than 0.2 but by less than 20 %; 0.15 after 0.1 gains 50 % but less than 0.2.
@example(options={"mode": "min", "factor": 0.5, "patience": 0, "threshold": 0.2,
                  "threshold_mode": "rel", "cooldown": 0, "min_lr": 0.0},
         metrics=[10.0 - 0.5 * i for i in range(STEPS)])
@example(options={"mode": "max", "factor": 0.5, "patience": 0, "threshold": 0.2,
                  "threshold_mode": "abs", "cooldown": 2, "min_lr": 0.0},
         metrics=[0.1 + 0.05 * i for i in range(STEPS)])
# eps: a reduction smaller than eps is skipped (0.03 -> 0.027 here) while 0.1 -> 0.09 is not.
@example(options={"mode": "min", "factor": 0.9, "patience": 0, "threshold": 1e-4,
                  "threshold_mode": "rel", "cooldown": 0, "min_lr": 0.0, "eps": 0.005},
         metrics=[1.0] * STEPS)
def test_reduce_lr_on_plateau_reduces_after_patience_epochs_without_improvement(
        device, options, metrics):
    opt = optimizer_for(device)
    scheduler = sched.ReduceLROnPlateau(opt, **options)
    actual = lrs_over(opt, scheduler, metrics=metrics)
    oracles = [oracle.Plateau(b, **options) for b in BASE_LRS]
    expected = [list(BASE_LRS)] + [[o.step(m) for o in oracles] for m in metrics]
    assert_schedule(actual, [lambda t, g=g: expected[t][g] for g in range(len(BASE_LRS))])


@behavior("optim.lr_scheduler.get_last_lr")
@given(gamma=gammas, steps=st.integers(0, 6))
def test_get_last_lr_returns_the_lr_of_every_group_after_the_last_step(device, gamma, steps):
    opt = optimizer_for(device)
    scheduler = sched.ExponentialLR(opt, gamma=gamma)
    lrs_over(opt, scheduler, steps=steps)
    last = scheduler.get_last_lr()
    assert isinstance(last, list) and len(last) == len(BASE_LRS)
    for value, base in zip(last, BASE_LRS):
        assert math.isclose(float(value), oracle.exponential_lr(base, steps, gamma),
                            rel_tol=1e-9)


@behavior("optim.lr_scheduler.state_dict")
@given(split=st.integers(1, 10))
def test_loaded_scheduler_state_continues_the_schedule(device, split):
    # Interrupted training: save optimizer and scheduler state after `split` steps, build both
    # anew, load, go on: the lrs are those of the uninterrupted schedule.
    def build():
        opt = optimizer_for(device)
        return opt, sched.MultiStepLR(opt, milestones=[3, 7, 12], gamma=0.5)

    opt, scheduler = build()
    lrs_over(opt, scheduler, steps=split)
    saved_opt = copy.deepcopy(opt.state_dict())
    saved = copy.deepcopy(scheduler.state_dict())
    assert "last_epoch" in saved and saved["last_epoch"] == split
    resumed_opt, resumed = build()
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    # Before any further step, get_last_lr() is the checkpoint's, not the fresh scheduler's.
    assert resumed.get_last_lr() == scheduler.get_last_lr()
    actual = lrs_over(resumed_opt, resumed, steps=STEPS - split)
    assert_schedule(actual, per_group(
        lambda b, t: oracle.multi_step_lr(b, t + split, [3, 7, 12], 0.5)))


@behavior("optim.lr_scheduler.call_order_warning")
def test_stepping_the_scheduler_before_the_optimizer_warns(device):
    opt = optimizer_for(device)
    scheduler = sched.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match=r"lr_scheduler\.step\(\)` before `optimizer\.step\(\)"):
        scheduler.step()


@behavior("optim.lr_scheduler.call_order_warning")
def test_stepping_in_the_documented_order_does_not_warn(device):
    opt = optimizer_for(device)
    scheduler = sched.StepLR(opt, step_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        scheduler.step()


@behavior("optim.lr_scheduler.initial_lr")
def test_scheduler_records_each_groups_initial_lr_as_its_base(device):
    opt = optimizer_for(device)
    scheduler = sched.ExponentialLR(opt, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASE_LRS)
    assert list(scheduler.base_lrs) == list(BASE_LRS)
    opt.param_groups[0]["lr"] = 1.0  # a later lr edit does not move the base
    assert list(sched.ExponentialLR(opt, gamma=0.5).base_lrs) == list(BASE_LRS)


@behavior("optim.lr_scheduler.initial_lr")
def test_resuming_without_initial_lr_raises(device):
    opt = optimizer_for(device)
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(opt, step_size=1, last_epoch=3)
