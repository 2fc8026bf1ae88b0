"""Mutants of the Optimizer contract as every built-in optimizer inherits it
(suites/optim/test_contract.py): they patch torch.optim.Optimizer itself, or every built-in
optimizer's step, so that the contract breaks for all of them."""

from __future__ import annotations

import copy

import torch

from . import mutant, wrap

Opt = torch.optim.Optimizer
BUILT_IN = [getattr(torch.optim, name) for name in (
    "SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta",
    "ASGD", "Rprop", "LBFGS", "SparseAdam")]


def _every_step(mp, make):
    """Wrap the step() each built-in optimizer defines itself (AdamW's is Adam's)."""
    for cls in BUILT_IN:
        if "step" in vars(cls):
            wrap(mp, cls, "step", make)


@mutant(breaks="optim.contract.per_group_options")
def group_lr_replaced_by_the_default(mp):
    """add_param_group drops a group's own lr, so the default applies."""
    wrap(mp, Opt, "add_param_group", lambda orig: lambda self, group: orig(
        self, {k: v for k, v in group.items() if k != "lr"}))


@mutant(breaks="optim.contract.per_group_options")
def groups_stepped_with_the_first_groups_lr(mp):
    def make(orig):
        def step(self, *args, **kwargs):
            saved = [g["lr"] for g in self.param_groups]
            for g in self.param_groups:
                g["lr"] = saved[0]
            try:
                return orig(self, *args, **kwargs)
            finally:
                for g, lr in zip(self.param_groups, saved):
                    g["lr"] = lr
        return step
    _every_step(mp, make)


@mutant(breaks="optim.contract.per_group_options")
def later_groups_stepped_with_the_default_options(mp):
    """Every group but the first is stepped with the optimizer's defaults for its options
    other than lr (its own betas, eps, momentum, decays are ignored)."""
    def make(orig):
        def step(self, *args, **kwargs):
            saved = [dict(g) for g in self.param_groups]
            for g in self.param_groups[1:]:
                g.update({k: v for k, v in self.defaults.items() if k not in ("lr", "params")})
            try:
                return orig(self, *args, **kwargs)
            finally:
                for g, s in zip(self.param_groups, saved):
                    g.update(s)
        return step
    _every_step(mp, make)


@mutant(breaks="optim.contract.per_group_options")
def adam_reads_betas_from_the_defaults(mp):
    """Adam's step takes betas from optimizer.defaults instead of the group (one option of one
    optimizer: the kind of slip a single implementation makes)."""
    def make(orig):
        def step(self, *args, **kwargs):
            saved = [g["betas"] for g in self.param_groups]
            for g in self.param_groups:
                g["betas"] = self.defaults["betas"]
            try:
                return orig(self, *args, **kwargs)
            finally:
                for g, b in zip(self.param_groups, saved):
                    g["betas"] = b
        return step
    wrap(mp, torch.optim.Adam, "step", make)


@mutant(breaks="optim.contract.per_group_options")
def adagrad_later_groups_accumulate_from_zero(mp):
    """Adagrad starts the sums of every group but the first at 0, not at
    initial_accumulator_value."""
    def make(orig):
        def step(self, *args, **kwargs):
            for group in self.param_groups[1:]:
                for p in group["params"]:
                    state = self.state.get(p, {})
                    if "sum" in state and float(state["step"]) == 0:
                        state["sum"].zero_()
            return orig(self, *args, **kwargs)
        return step
    wrap(mp, torch.optim.Adagrad, "step", make)


@mutant(breaks="optim.contract.invalid_hyperparameters_refused")
def negative_lr_accepted(mp):
    """Every built-in optimizer takes a negative lr (it ascends): the range check is gone."""
    def make(orig):
        def __init__(self, params, *args, **kwargs):
            lr = kwargs.get("lr")
            if isinstance(lr, float) and lr < 0:
                orig(self, params, *args, **dict(kwargs, lr=-lr))
                self.defaults["lr"] = lr
                for group in self.param_groups:
                    group["lr"] = lr
                return
            orig(self, params, *args, **kwargs)
        return __init__
    for cls in BUILT_IN:
        if "__init__" in vars(cls):
            wrap(mp, cls, "__init__", make)


@mutant(breaks="optim.contract.invalid_hyperparameters_refused")
def adam_accepts_beta1_of_one(mp):
    """Adam checks beta1 < 1 as beta1 <= 1 (an off-by-one range check in one optimizer)."""
    def make(orig):
        def __init__(self, params, *args, **kwargs):
            betas = kwargs.get("betas")
            if betas is not None and betas[0] == 1.0:
                orig(self, params, *args, **dict(kwargs, betas=(0.5, betas[1])))
                self.defaults["betas"] = betas
                return
            orig(self, params, *args, **kwargs)
        return __init__
    wrap(mp, torch.optim.Adam, "__init__", make)


@mutant(breaks="optim.contract.add_param_group")
def group_added_after_a_step_is_frozen(mp):
    """A group added once the optimizer has state gets lr=0."""
    def make(orig):
        def add_param_group(self, group):
            if getattr(self, "state", None):
                group = dict(group, lr=0.0)
            return orig(self, group)
        return add_param_group
    wrap(mp, Opt, "add_param_group", make)


@mutant(breaks="optim.contract.duplicate_parameter_refused")
def duplicate_parameters_silently_dropped(mp):
    def make(orig):
        def add_param_group(self, group):
            params = group["params"]
            params = [params] if isinstance(params, torch.Tensor) else list(params)
            known = {id(p) for g in getattr(self, "param_groups", []) for p in g["params"]}
            return orig(self, dict(group, params=[p for p in params if id(p) not in known]))
        return add_param_group
    wrap(mp, Opt, "add_param_group", make)


@mutant(breaks="optim.contract.state_dict_round_trip")
def load_state_dict_keeps_the_current_options(mp):
    def make(orig):
        def load_state_dict(self, state_dict):
            current = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
            orig(self, state_dict)
            for g, c in zip(self.param_groups, current):
                g.update(c)
        return load_state_dict
    wrap(mp, Opt, "load_state_dict", make)


@mutant(breaks="optim.contract.state_dict_round_trip")
def load_state_dict_loses_the_step_count(mp):
    def make(orig):
        def load_state_dict(self, state_dict):
            orig(self, state_dict)
            for state in self.state.values():
                if isinstance(state.get("step"), torch.Tensor):
                    state["step"] = torch.zeros_like(state["step"])
                elif "step" in state:
                    state["step"] = 0
                if "n_iter" in state:  # LBFGS
                    state["n_iter"] = 0
        return load_state_dict
    wrap(mp, Opt, "load_state_dict", make)


@mutant(breaks="optim.contract.loaded_state_independence")
def load_state_dict_deep_copies(mp):
    """The pre-2.1 behavior on a torch that shares the loaded tensors."""
    wrap(mp, Opt, "load_state_dict", lambda orig: lambda self, state_dict: orig(
        self, copy.deepcopy(state_dict)))


@mutant(breaks="optim.contract.zero_grad")
def zero_grad_only_first_group(mp):
    def make(orig):
        def zero_grad(self, *args, **kwargs):
            later = self.param_groups[1:]
            del self.param_groups[1:]
            try:
                return orig(self, *args, **kwargs)
            finally:
                self.param_groups.extend(later)
        return zero_grad
    wrap(mp, Opt, "zero_grad", make)


@mutant(breaks="optim.contract.step_hooks")
def step_post_hooks_registered_as_pre_hooks(mp):
    wrap(mp, Opt, "register_step_post_hook", lambda orig: lambda self, hook: (
        self.register_step_pre_hook(hook)))


@mutant(breaks="optim.contract.step_closure_returns_loss")
def every_step_returns_none(mp):
    _every_step(mp, lambda orig: lambda self, *a, **k: (orig(self, *a, **k), None)[1])


@mutant(breaks="optim.contract.step_closure_returns_loss")
def step_evaluates_the_closure_again(mp):
    """A second evaluation before the step: the optimizers that need one call do two."""
    def make(orig):
        def step(self, closure=None):
            if closure is not None:
                with torch.enable_grad():
                    closure()
            return orig(self, closure)
        return step
    _every_step(mp, make)
