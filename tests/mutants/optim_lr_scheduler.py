"""Mutants of torch.optim.lr_scheduler: each scheduler computes a schedule off by one
epoch, ignores one of its options, or mishandles state. Faults are injected through the
constructors' arguments, so they track whatever torch is installed."""

from __future__ import annotations

import importlib

from . import mutant, wrap

sched = importlib.import_module("torch.optim.lr_scheduler")


def _init_with(mp, cls, change):
    """cls.__init__ called with its keyword arguments rewritten by change(kwargs) -> kwargs.
    The suite passes options by keyword, so positional arguments are left alone."""
    wrap(mp, cls, "__init__", lambda orig: lambda self, *a, **k: orig(self, *a, **change(k)))


def _bump(key, by=1):
    return lambda k: {**k, key: k[key] + by} if key in k else k


@mutant(breaks="optim.lr_scheduler.step_lr")
def step_lr_decays_one_epoch_late(mp):
    _init_with(mp, sched.StepLR, _bump("step_size"))


@mutant(breaks="optim.lr_scheduler.multi_step_lr")
def multi_step_lr_milestones_one_late(mp):
    _init_with(mp, sched.MultiStepLR, lambda k: {**k, "milestones": [m + 1 for m in
                                                                     k["milestones"]]})


@mutant(breaks="optim.lr_scheduler.exponential_lr")
def exponential_lr_gamma_slightly_off(mp):
    _init_with(mp, sched.ExponentialLR, lambda k: {**k, "gamma": k["gamma"] * 1.001})


@mutant(breaks="optim.lr_scheduler.cosine_annealing_lr")
def cosine_annealing_ignores_eta_min(mp):
    _init_with(mp, sched.CosineAnnealingLR, lambda k: {**k, "eta_min": 0.0})


@mutant(breaks="optim.lr_scheduler.cosine_annealing_lr")
def cosine_annealing_period_one_longer(mp):
    _init_with(mp, sched.CosineAnnealingLR, _bump("T_max"))


@mutant(breaks="optim.lr_scheduler.cosine_annealing_warm_restarts")
def warm_restarts_ignore_t_mult(mp):
    _init_with(mp, sched.CosineAnnealingWarmRestarts, lambda k: {**k, "T_mult": 1})


@mutant(breaks="optim.lr_scheduler.linear_lr")
def linear_lr_one_iteration_longer(mp):
    _init_with(mp, sched.LinearLR, _bump("total_iters"))


@mutant(breaks="optim.lr_scheduler.constant_lr")
def constant_lr_holds_the_factor_one_epoch_longer(mp):
    _init_with(mp, sched.ConstantLR, _bump("total_iters"))


@mutant(breaks="optim.lr_scheduler.polynomial_lr")
def polynomial_lr_ignores_power(mp):
    _init_with(mp, sched.PolynomialLR, lambda k: {**k, "power": 1.0})


@mutant(breaks="optim.lr_scheduler.lambda_lr")
def lambda_lr_uses_the_first_groups_lambda_for_all(mp):
    _init_with(mp, sched.LambdaLR, lambda k: {**k, "lr_lambda": k["lr_lambda"][0]}
               if isinstance(k.get("lr_lambda"), list) else k)


@mutant(breaks="optim.lr_scheduler.multiplicative_lr")
def multiplicative_lr_passes_the_next_epoch(mp):
    def shift(k):
        fn = k["lr_lambda"]
        return {**k, "lr_lambda": lambda epoch: fn(epoch + 1)}
    _init_with(mp, sched.MultiplicativeLR, shift)


@mutant(breaks="optim.lr_scheduler.one_cycle_lr")
def one_cycle_ignores_final_div_factor(mp):
    _init_with(mp, sched.OneCycleLR, lambda k: {**k, "final_div_factor": 1e4})


@mutant(breaks="optim.lr_scheduler.one_cycle_lr")
def one_cycle_does_not_cycle_momentum(mp):
    _init_with(mp, sched.OneCycleLR, lambda k: {**k, "cycle_momentum": False})


@mutant(breaks="optim.lr_scheduler.cyclic_lr")
def cyclic_lr_triangular2_does_not_halve(mp):
    _init_with(mp, sched.CyclicLR, lambda k: {**k, "mode": "triangular"}
               if k.get("mode") == "triangular2" else k)


@mutant(breaks="optim.lr_scheduler.cyclic_lr")
def cyclic_lr_ignores_step_size_down(mp):
    _init_with(mp, sched.CyclicLR, lambda k: {**k, "step_size_down": None})


@mutant(breaks="optim.lr_scheduler.sequential_lr")
def sequential_lr_switches_one_epoch_late(mp):
    _init_with(mp, sched.SequentialLR, lambda k: {**k, "milestones": [m + 1 for m in
                                                                      k["milestones"]]})


@mutant(breaks="optim.lr_scheduler.chained_scheduler")
def chained_scheduler_steps_only_the_last(mp):
    wrap(mp, sched.ChainedScheduler, "__init__",
         lambda orig: lambda self, schedulers, *a, **k: orig(self, list(schedulers)[-1:], *a,
                                                             **k))


@mutant(breaks="optim.lr_scheduler.reduce_lr_on_plateau")
def plateau_patience_one_short(mp):
    _init_with(mp, sched.ReduceLROnPlateau,
               lambda k: {**k, "patience": max(k.get("patience", 10) - 1, 0)}
               if k.get("patience", 10) > 0 else {**k, "cooldown": k.get("cooldown", 0) + 1})


@mutant(breaks="optim.lr_scheduler.reduce_lr_on_plateau")
def plateau_ignores_min_lr(mp):
    _init_with(mp, sched.ReduceLROnPlateau, lambda k: {**k, "min_lr": 0.0})


@mutant(breaks="optim.lr_scheduler.reduce_lr_on_plateau")
def plateau_threshold_modes_swapped(mp):
    """threshold_mode='rel' compares by difference and 'abs' by ratio."""
    swap = {"rel": "abs", "abs": "rel"}
    _init_with(mp, sched.ReduceLROnPlateau,
               lambda k: {**k, "threshold_mode": swap[k.get("threshold_mode", "rel")]})


@mutant(breaks="optim.lr_scheduler.reduce_lr_on_plateau")
def plateau_ignores_eps(mp):
    _init_with(mp, sched.ReduceLROnPlateau, lambda k: {**k, "eps": 0.0})


@mutant(breaks="optim.lr_scheduler.chained_scheduler")
def chained_last_lr_from_its_first_scheduler(mp):
    """ChainedScheduler reports its first scheduler's last lr, not the chained product."""
    def make(orig):
        def step(self, *args, **kwargs):
            orig(self, *args, **kwargs)
            self._last_lr = self._schedulers[0].get_last_lr()
        return step
    wrap(mp, sched.ChainedScheduler, "step", make)


@mutant(breaks="optim.lr_scheduler.state_dict")
def load_state_dict_keeps_the_stale_last_lr(mp):
    """load_state_dict restores everything but _last_lr: get_last_lr() is stale until the next
    step."""
    wrap(mp, sched.LRScheduler, "load_state_dict", lambda orig: lambda self, state: orig(
        self, {k: v for k, v in state.items() if k != "_last_lr"}))


@mutant(breaks="optim.lr_scheduler.get_last_lr")
def get_last_lr_returns_the_base_lrs(mp):
    wrap(mp, sched.LRScheduler, "get_last_lr", lambda orig: lambda self: list(self.base_lrs))


@mutant(breaks="optim.lr_scheduler.state_dict")
def load_state_dict_drops_last_epoch(mp):
    wrap(mp, sched.LRScheduler, "load_state_dict", lambda orig: lambda self, state: orig(
        self, {k: v for k, v in state.items() if k != "last_epoch"}))


@mutant(breaks="optim.lr_scheduler.call_order_warning")
def call_order_is_not_checked(mp):
    class Quiet:
        def __getattr__(self, name):
            return getattr(importlib.import_module("warnings"), name)

        @staticmethod
        def warn(message, *args, **kwargs):
            if "before `optimizer.step()`" not in str(message):
                importlib.import_module("warnings").warn(message, *args, **kwargs)

    mp.setattr(sched, "warnings", Quiet())


@mutant(breaks="optim.lr_scheduler.initial_lr")
def scheduler_bases_on_the_current_lr(mp):
    def make(orig):
        def init(self, optimizer, *a, **k):
            for group in optimizer.param_groups:
                group.pop("initial_lr", None)
            orig(self, optimizer, *a, **k)
        return init
    wrap(mp, sched.LRScheduler, "__init__", make)
