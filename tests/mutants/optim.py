"""Mutants of torch.optim: zero_grad, the SGD update rule, param groups, state_dict and the
training loop. SGD's rule is broken by wrapping `torch.optim.sgd.sgd`, the functional entry
point SGD.step calls for every implementation (for-loop, foreach, fused), or one
implementation function (`_single_tensor_sgd`, `_multi_tensor_sgd`, `_fused_sgd`, looked up
by `sgd` at call time) when the fault is about one implementation."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from . import mutant, wrap

Opt = torch.optim.Optimizer
SGD = torch.optim.SGD
sgd_module = importlib.import_module("torch.optim.sgd")
OFF = 1.001


def _sgd_with(mp, **changes):
    """SGD.step's functional call with some hyperparameters replaced: changes maps a keyword
    to a function of the value SGD passed."""
    def make(orig):
        def sgd(*args, **kwargs):
            for key, change in changes.items():
                kwargs[key] = change(kwargs[key])
            return orig(*args, **kwargs)
        return sgd
    wrap(mp, sgd_module, "sgd", make)


def _sgd_split(mp, select, **changes):
    """SGD.step's functional call split in two: the parameters i for which select(i, param)
    holds are stepped in a second call with hyperparameters changed as in _sgd_with (a fault
    that hits some positions or sizes of a group only)."""
    def make(orig):
        def sgd(params, grads, momentum_buffer_list, *args, **kwargs):
            chosen = [i for i, p in enumerate(params) if select(i, p)]
            if not chosen:
                return orig(params, grads, momentum_buffer_list, *args, **kwargs)
            rest = [i for i in range(len(params)) if i not in chosen]
            changed = dict(kwargs, **{k: f(kwargs[k]) for k, f in changes.items()})
            per_param = len(momentum_buffer_list) == len(params)  # empty without momentum
            for indices, options in ((rest, kwargs), (chosen, changed)):
                if not indices:
                    continue
                buffers = [momentum_buffer_list[i] for i in indices] if per_param else []
                orig([params[i] for i in indices], [grads[i] for i in indices], buffers,
                     *args, **options)
                for i, b in zip(indices, buffers):
                    momentum_buffer_list[i] = b
        return sgd
    wrap(mp, sgd_module, "sgd", make)


def _after_construction(mp):
    """Mark optimizers once __init__ has run, so a mutant can spare the constructor's own
    add_param_group calls."""
    def make(orig):
        def init(self, *args, **kwargs):
            orig(self, *args, **kwargs)
            self._mutant_constructed = True
        return init
    wrap(mp, SGD, "__init__", make)


# -- zero_grad -----------------------------------------------------------------------------

@mutant(breaks="optim.zero_grad.default")
def zero_grad_default_zeros(mp):
    wrap(mp, Opt, "zero_grad", lambda orig: lambda self, set_to_none=None: orig(
        self, False if set_to_none is None else set_to_none))


@mutant(breaks="optim.zero_grad.set_to_none_true")
def zero_grad_does_nothing(mp):
    mp.setattr(Opt, "zero_grad", lambda self, set_to_none=True: None)


@mutant(breaks="optim.zero_grad.set_to_none_true")
def zero_grad_ignores_set_to_none(mp):
    wrap(mp, Opt, "zero_grad", lambda orig: lambda self, set_to_none=True: orig(self, False))


@mutant(breaks="optim.zero_grad.set_to_none_true")
def zero_grad_first_group_only(mp):
    def zero_grad(self, set_to_none=True):
        for p in self.param_groups[0]["params"]:
            p.grad = None
    mp.setattr(Opt, "zero_grad", zero_grad)


@mutant(breaks="optim.zero_grad.set_to_none_true")
def zero_grad_clears_every_tensor_it_can_reach(mp):
    def make(orig):
        def zero_grad(self, set_to_none=True):
            orig(self, set_to_none)
            import gc
            for obj in gc.get_objects():  # also tensors the optimizer does not own
                if type(obj) is torch.Tensor and obj.is_leaf and obj.requires_grad:
                    obj.grad = None
        return zero_grad
    wrap(mp, Opt, "zero_grad", make)


@mutant(breaks="optim.zero_grad.set_to_none_false")
def zero_grad_always_none(mp):
    wrap(mp, Opt, "zero_grad", lambda orig: lambda self, set_to_none=True: orig(self, True))


@mutant(breaks="optim.zero_grad.set_to_none_false")
def zero_grad_false_keeps_the_grads(mp):
    wrap(mp, Opt, "zero_grad", lambda orig: lambda self, set_to_none=True: (
        orig(self, True) if set_to_none else None))


@mutant(breaks="optim.zero_grad.set_to_none_false")
def zero_grad_false_first_group_only(mp):
    def make(orig):
        def zero_grad(self, set_to_none=True):
            if set_to_none:
                return orig(self, True)
            for p in self.param_groups[0]["params"]:
                if p.grad is not None:
                    p.grad.zero_()
        return zero_grad
    wrap(mp, Opt, "zero_grad", make)


@mutant(breaks="optim.zero_grad.unused_stays_none")
def zero_grad_leaves_zeros_behind(mp):
    wrap(mp, Opt, "zero_grad", lambda orig: lambda self, set_to_none=True: orig(self, False))


# -- step ----------------------------------------------------------------------------------

@mutant(breaks="optim.step.skips_params_without_grad")
def step_treats_missing_grads_as_zero(mp):
    def make(orig):
        def step(self, closure=None):
            missing = [p for g in self.param_groups for p in g["params"] if p.grad is None]
            for p in missing:
                p.grad = torch.zeros_like(p)
            try:
                return orig(self, closure)
            finally:
                for p in missing:
                    p.grad = None
        return step
    wrap(mp, SGD, "step", make)


@mutant(breaks="optim.step.skips_params_without_grad")
def skipped_parameter_loses_its_momentum_buffer(mp):
    def make(orig):
        def step(self, closure=None):
            result = orig(self, closure)
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None and p in self.state:
                        self.state[p].pop("momentum_buffer", None)
            return result
        return step
    wrap(mp, SGD, "step", make)


@mutant(breaks="optim.step.steps_zero_grads")
def step_skips_zero_grads(mp):
    def make(orig):
        def step(self, closure=None):
            hidden = {}
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None and not torch.any(p.grad):
                        hidden[p] = p.grad
                        p.grad = None
            try:
                return orig(self, closure)
            finally:
                for p, g in hidden.items():
                    p.grad = g
        return step
    wrap(mp, SGD, "step", make)


@mutant(breaks="optim.step.closure_returns_loss")
def step_returns_none(mp):
    wrap(mp, SGD, "step", lambda orig: lambda self, closure=None: (orig(self, closure), None)[1])


@mutant(breaks="optim.step.closure_returns_loss")
def step_calls_the_closure_twice(mp):
    def make(orig):
        def step(self, closure=None):
            if closure is not None:
                with torch.enable_grad():
                    closure()
            return orig(self, closure)
        return step
    wrap(mp, SGD, "step", make)


# -- the SGD rule --------------------------------------------------------------------------

@mutant(breaks="optim.sgd.plain")
def sgd_lr_slightly_high(mp):
    _sgd_with(mp, lr=lambda lr: lr * OFF)


@mutant(breaks="optim.sgd.plain")
def sgd_adds_the_gradient(mp):
    _sgd_with(mp, maximize=lambda m: not m)


@mutant(breaks="optim.sgd.plain")
def sgd_lr_off_from_the_third_parameter(mp):
    _sgd_split(mp, lambda i, p: i >= 2, lr=lambda lr: lr * OFF)


@mutant(breaks="optim.sgd.plain")
def sgd_lr_off_for_large_parameters(mp):
    _sgd_split(mp, lambda i, p: p.numel() > 16, lr=lambda lr: lr * OFF)


@mutant(breaks="optim.sgd.tensor_lr")
def tensor_lr_replaced_by_the_default(mp):
    _sgd_with(mp, lr=lambda lr: 1e-3 if isinstance(lr, torch.Tensor) else lr)


@mutant(breaks="optim.sgd.momentum")
def momentum_ignored(mp):
    _sgd_with(mp, momentum=lambda m: 0.0)


@mutant(breaks="optim.sgd.momentum")
def momentum_slightly_off(mp):
    _sgd_with(mp, momentum=lambda m: m * OFF)


@mutant(breaks="optim.sgd.momentum")
def momentum_buffer_reset_every_step(mp):
    def make(orig):
        def sgd(params, grads, momentum_buffer_list, *args, **kwargs):
            return orig(params, grads, [None] * len(momentum_buffer_list), *args, **kwargs)
        return sgd
    wrap(mp, sgd_module, "sgd", make)


@mutant(breaks="optim.sgd.momentum")
def momentum_buffer_aliases_the_grad(mp):
    """The first buffer is the .grad tensor itself instead of a copy, where their values agree
    (no weight decay, no maximize): zeroing or accumulating .grad in place rewrites it."""
    def make(orig):
        def sgd(params, grads, momentum_buffer_list, *args, **kwargs):
            fresh = [i for i, b in enumerate(momentum_buffer_list) if b is None]
            result = orig(params, grads, momentum_buffer_list, *args, **kwargs)
            if kwargs["momentum"] and not kwargs["weight_decay"] and not kwargs["maximize"]:
                for i in fresh:
                    momentum_buffer_list[i] = grads[i]
            return result
        return sgd
    wrap(mp, sgd_module, "sgd", make)


@mutant(breaks="optim.sgd.dampening")
def dampening_ignored(mp):
    _sgd_with(mp, dampening=lambda d: 0.0)


@mutant(breaks="optim.sgd.dampening")
def momentum_buffer_starts_at_zero(mp):
    """The other frameworks' initialization the SGD note contrasts: b_0 = 0, so the first
    gradient is dampened too."""
    def make(orig):
        def sgd(params, grads, momentum_buffer_list, *args, **kwargs):
            buffers = [torch.zeros_like(g) if b is None and kwargs["momentum"] else b
                       for g, b in zip(grads, momentum_buffer_list)]
            result = orig(params, grads, buffers, *args, **kwargs)
            momentum_buffer_list[:] = buffers
            return result
        return sgd
    wrap(mp, sgd_module, "sgd", make)


@mutant(breaks="optim.sgd.nesterov")
def nesterov_ignored(mp):
    _sgd_with(mp, nesterov=lambda n: False)


@mutant(breaks="optim.sgd.weight_decay")
def weight_decay_sign_flipped(mp):
    _sgd_with(mp, weight_decay=lambda wd: -wd)


@mutant(breaks="optim.sgd.weight_decay")
def weight_decay_ignored(mp):
    _sgd_with(mp, weight_decay=lambda wd: 0.0)


@mutant(breaks="optim.sgd.maximize")
def maximize_ignored(mp):
    _sgd_with(mp, maximize=lambda m: False)


@mutant(breaks="optim.sgd.maximize")
def maximize_negates_after_weight_decay(mp):
    """g = -(grad + wd * theta) instead of the documented -grad + wd * theta."""
    def make(orig):
        def sgd(params, grads, *args, **kwargs):
            if kwargs["maximize"] and kwargs["weight_decay"]:
                grads = [g.add(p, alpha=kwargs["weight_decay"]) for g, p in zip(grads, params)]
                kwargs["weight_decay"] = 0.0
            return orig(params, grads, *args, **kwargs)
        return sgd
    wrap(mp, sgd_module, "sgd", make)


@mutant(breaks="optim.sgd.lr_default")
def lr_default_changed(mp):
    wrap(mp, SGD, "__init__", lambda orig: lambda self, params, lr=1e-2, *a, **k: orig(
        self, params, lr, *a, **k))


@mutant(breaks="optim.sgd.foreach_matches_for_loop")
def foreach_lr_slightly_high(mp):
    wrap(mp, sgd_module, "_multi_tensor_sgd", lambda orig: lambda *a, **k: orig(
        *a, **dict(k, lr=k["lr"] * OFF)))


@mutant(breaks="optim.sgd.foreach_matches_for_loop")
def foreach_ignores_dampening(mp):
    wrap(mp, sgd_module, "_multi_tensor_sgd", lambda orig: lambda *a, **k: orig(
        *a, **dict(k, dampening=0.0)))


@mutant(breaks="optim.sgd.fused_matches_for_loop")
def fused_lr_slightly_high(mp):
    wrap(mp, sgd_module, "_fused_sgd", lambda orig: lambda *a, **k: orig(
        *a, **dict(k, lr=k["lr"] * OFF)))


@mutant(breaks="optim.sgd.foreach_default")
def foreach_by_default_everywhere(mp):
    wrap(mp, sgd_module, "_default_to_fused_or_foreach", lambda orig: lambda *a, **k: (
        False, True))


# -- param groups --------------------------------------------------------------------------

def _step_with_group_options(mp, options):
    """SGD.step with each group's options replaced during the step: options(optimizer, i,
    group) gives the values group i is stepped with; the group's own are put back after."""
    def make(orig):
        def step(self, closure=None):
            replaced = [options(self, i, g) for i, g in enumerate(self.param_groups)]
            saved = [{k: g[k] for k in r} for g, r in zip(self.param_groups, replaced)]
            for g, r in zip(self.param_groups, replaced):
                g.update(r)
            try:
                return orig(self, closure)
            finally:
                for g, s in zip(self.param_groups, saved):
                    g.update(s)
        return step
    wrap(mp, SGD, "step", make)


@mutant(breaks="optim.param_groups.per_group_options")
def groups_stepped_with_the_defaults(mp):
    _step_with_group_options(mp, lambda opt, i, g: {
        k: opt.defaults[k] for k in ("lr", "momentum")})


@mutant(breaks="optim.param_groups.per_group_options")
def group_lr_read_once(mp):
    """A step that caches each group's lr at its first step (a scheduler's change is lost)."""
    def first_lr(opt, i, g):
        return {"lr": opt.__dict__.setdefault("_mutant_lrs", {}).setdefault(i, g["lr"])}
    _step_with_group_options(mp, first_lr)


@mutant(breaks="optim.param_groups.per_group_options")
def group_flags_stepped_with_the_defaults(mp):
    """Every group stepped with the optimizer's dampening, nesterov and maximize."""
    _step_with_group_options(mp, lambda opt, i, g: {
        k: opt.defaults[k] for k in ("dampening", "nesterov", "maximize")})


@mutant(breaks="optim.param_groups.per_group_options")
def group_options_read_once(mp):
    """Each group's options but lr cached at its first step: later edits are lost."""
    keys = ("momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def first_options(opt, i, g):
        cache = opt.__dict__.setdefault("_mutant_options", {})
        return cache.setdefault(i, {k: g[k] for k in keys})
    _step_with_group_options(mp, first_options)


@mutant(breaks="optim.param_groups.add_param_group")
def added_group_gets_only_defaults(mp):
    _after_construction(mp)

    def make(orig):
        def add_param_group(self, param_group):
            if getattr(self, "_mutant_constructed", False):
                param_group = {"params": param_group["params"]}
            return orig(self, param_group)
        return add_param_group
    wrap(mp, Opt, "add_param_group", make)


@mutant(breaks="optim.param_groups.add_param_group")
def added_group_never_stepped(mp):
    _after_construction(mp)

    def make_add(orig):
        def add_param_group(self, param_group):
            orig(self, param_group)
            if getattr(self, "_mutant_constructed", False):
                self.param_groups[-1]["_mutant_skip"] = True
        return add_param_group

    def make_step(orig):
        def step(self, closure=None):
            skipped = [g for g in self.param_groups if g.get("_mutant_skip")]
            self.param_groups[:] = [g for g in self.param_groups if not g.get("_mutant_skip")]
            try:
                return orig(self, closure)
            finally:
                self.param_groups.extend(skipped)
        return step
    wrap(mp, Opt, "add_param_group", make_add)
    wrap(mp, SGD, "step", make_step)


# -- state_dict ----------------------------------------------------------------------------

@mutant(breaks="optim.state_dict.contents")
def state_dict_indices_in_reverse(mp):
    def make(orig):
        def state_dict(self):
            sd = orig(self)
            n = sum(len(g["params"]) for g in sd["param_groups"])
            sd["state"] = {n - 1 - k: v for k, v in sd["state"].items()}
            return sd
        return state_dict
    wrap(mp, Opt, "state_dict", make)


@mutant(breaks="optim.state_dict.contents")
def state_dict_without_state(mp):
    wrap(mp, Opt, "state_dict", lambda orig: lambda self: dict(orig(self), state={}))


@mutant(breaks="optim.state_dict.round_trip")
def load_state_dict_drops_momentum_buffers(mp):
    wrap(mp, Opt, "load_state_dict", lambda orig: lambda self, sd: orig(self, dict(sd, state={})))


@mutant(breaks="optim.state_dict.round_trip")
def load_state_dict_keeps_current_hyperparameters(mp):
    def make(orig):
        def load_state_dict(self, sd):
            current = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
            orig(self, sd)
            for g, c in zip(self.param_groups, current):
                g.update(c)
        return load_state_dict
    wrap(mp, Opt, "load_state_dict", make)


@mutant(breaks="optim.state_dict.round_trip")
def load_state_dict_restores_the_first_groups_state_only(mp):
    def make(orig):
        def load_state_dict(self, sd):
            later = {i for g in sd["param_groups"][1:] for i in g["params"]}
            return orig(self, dict(sd, state={k: v for k, v in sd["state"].items()
                                              if k not in later}))
        return load_state_dict
    wrap(mp, Opt, "load_state_dict", make)


@mutant(breaks="optim.state_dict.round_trip")
def load_state_dict_restores_the_first_groups_options_only(mp):
    def make(orig):
        def load_state_dict(self, sd):
            current = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
            orig(self, sd)
            for g, c in list(zip(self.param_groups, current))[1:]:
                g.update(c)
        return load_state_dict
    wrap(mp, Opt, "load_state_dict", make)


# -- training loop -------------------------------------------------------------------------

@mutant(breaks="optim.training_loop.matches_gradient_descent")
def training_lr_slightly_high(mp):
    _sgd_with(mp, lr=lambda lr: lr * OFF)


@mutant(breaks="optim.training_loop.matches_gradient_descent")
def mse_loss_uses_sum(mp):
    wrap(mp, nn.functional, "mse_loss", lambda orig: lambda a, b, *args, **kwargs: orig(
        a, b, reduction="sum"))


@mutant(breaks="optim.training_loop.converges")
def training_without_zero_grad(mp):
    mp.setattr(Opt, "zero_grad", lambda self, set_to_none=True: None)


@mutant(breaks="optim.training_loop.converges")
def training_lr_too_high(mp):
    _sgd_with(mp, lr=lambda lr: lr * 3)


@mutant(breaks="optim.training_loop.deterministic")
def manual_seed_not_reproducible(mp):
    calls = []

    def make(orig):
        def manual_seed(seed):
            calls.append(seed)
            return orig(seed + len(calls))
        return manual_seed
    wrap(mp, torch, "manual_seed", make)


@mutant(breaks="optim.training_loop.call_equals_forward")
def module_call_scales_output(mp):
    wrap(mp, nn.Module, "__call__", lambda orig: lambda self, *a, **k: (
        lambda out: out * OFF if isinstance(out, torch.Tensor) else out)(orig(self, *a, **k)))


# -- devices and dtypes --------------------------------------------------------------------

@mutant(breaks="optim.device.grads_and_state_follow_parameter")
def momentum_buffers_in_float64(mp):
    def make(orig):
        def sgd(params, grads, momentum_buffer_list, *args, **kwargs):
            fresh = [i for i, b in enumerate(momentum_buffer_list) if b is None]
            result = orig(params, grads, momentum_buffer_list, *args, **kwargs)
            for i in fresh:
                if momentum_buffer_list[i] is not None:
                    momentum_buffer_list[i] = momentum_buffer_list[i].double()
            return result
        return sgd
    wrap(mp, sgd_module, "sgd", make)


@mutant(breaks="optim.device.grads_and_state_follow_parameter")
def loaded_state_keeps_its_dtype(mp):
    wrap(mp, Opt, "_process_value_according_to_param_policy",
         lambda orig: staticmethod(lambda param, value, *a, **k: value))


# -- hooks ---------------------------------------------------------------------------------

@mutant(breaks="optim.hooks.step_pre_and_post")
def step_pre_hooks_never_run(mp):
    from torch.utils.hooks import RemovableHandle

    mp.setattr(Opt, "register_step_pre_hook", lambda self, hook: RemovableHandle({}))


@mutant(breaks="optim.hooks.step_pre_and_post")
def step_post_hooks_run_before_the_update(mp):
    def make(orig):
        def register(self, hook):
            return self.register_step_pre_hook(hook)
        return register
    wrap(mp, Opt, "register_step_post_hook", make)
