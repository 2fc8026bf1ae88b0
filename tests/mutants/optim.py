"""Mutants of torch.optim: zero_grad, the SGD update rule, param groups, state_dict and the
training loop. SGD's rule is broken by wrapping `torch.optim.sgd.sgd`, the functional entry
point SGD.step calls for every implementation (for-loop, foreach, fused), or one
implementation function (`_single_tensor_sgd`, `_multi_tensor_sgd`, `_fused_sgd`, looked up
by `sgd` at call time) when the fault is about one implementation."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from . import around, mutant, option, replace, via, wrap

Opt = torch.optim.Optimizer
SGD = torch.optim.SGD
sgd_module = importlib.import_module("torch.optim.sgd")
OFF = 1.001


def sgd_option(name, breaks, **changes):
    """A mutant that changes hyperparameters of SGD.step's functional call (see option)."""
    option(name, breaks, sgd_module, "sgd", **changes)


def _times(factor):
    return lambda value: value * factor


def _sgd_split(mp, select, **changes):
    """SGD.step's functional call split in two: the parameters i for which select(i, param)
    holds are stepped in a second call with hyperparameters changed by changes (keyword ->
    function of the value SGD passed): a fault that hits some positions or sizes only."""
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

NONE_TRUE, NONE_FALSE = "optim.zero_grad.set_to_none_true", "optim.zero_grad.set_to_none_false"
option("zero_grad_default_zeros", "optim.zero_grad.default", Opt, "zero_grad",
       defaults={"set_to_none": False})
mutant((NONE_TRUE, "optim.training_loop.converges"), name="zero_grad_does_nothing")(
    lambda mp: mp.setattr(Opt, "zero_grad", lambda self, set_to_none=True: None))
option("zero_grad_ignores_set_to_none", (NONE_TRUE, "optim.zero_grad.unused_stays_none"), Opt,
       "zero_grad", set_to_none=False)
option("zero_grad_always_none", NONE_FALSE, Opt, "zero_grad", set_to_none=True)
replace(Opt, "zero_grad", NONE_FALSE, "zero_grad_false_keeps_the_grads")(
    lambda orig: lambda self, set_to_none=True: orig(self, True) if set_to_none else None)


@mutant(breaks=NONE_TRUE)
def zero_grad_first_group_only(mp):
    def zero_grad(self, set_to_none=True):
        for p in self.param_groups[0]["params"]:
            p.grad = None
    mp.setattr(Opt, "zero_grad", zero_grad)


@around(Opt, "zero_grad", breaks=NONE_TRUE)
def zero_grad_clears_every_tensor_it_can_reach(orig, self, set_to_none=True):
    orig(self, set_to_none)
    import gc
    for obj in gc.get_objects():  # also tensors the optimizer does not own
        if type(obj) is torch.Tensor and obj.is_leaf and obj.requires_grad:
            obj.grad = None


@around(Opt, "zero_grad", breaks=NONE_FALSE)
def zero_grad_false_first_group_only(orig, self, set_to_none=True):
    if set_to_none:
        return orig(self, True)
    for p in self.param_groups[0]["params"]:
        if p.grad is not None:
            p.grad.zero_()


# -- step ----------------------------------------------------------------------------------

SKIPS, CLOSURE = "optim.step.skips_params_without_grad", "optim.step.closure_returns_loss"
replace(SGD, "step", CLOSURE, "step_returns_none")(
    lambda orig: lambda self, closure=None: (orig(self, closure), None)[1])


def _params(optimizer):
    return [p for g in optimizer.param_groups for p in g["params"]]


@around(SGD, "step", breaks=SKIPS)
def step_treats_missing_grads_as_zero(orig, self, closure=None):
    missing = [p for p in _params(self) if p.grad is None]
    for p in missing:
        p.grad = torch.zeros_like(p)
    try:
        return orig(self, closure)
    finally:
        for p in missing:
            p.grad = None


@around(SGD, "step", breaks=SKIPS)
def skipped_parameter_loses_its_momentum_buffer(orig, self, closure=None):
    result = orig(self, closure)
    for p in _params(self):
        if p.grad is None and p in self.state:
            self.state[p].pop("momentum_buffer", None)
    return result


@around(SGD, "step", breaks="optim.step.steps_zero_grads")
def step_skips_zero_grads(orig, self, closure=None):
    hidden = {p: p.grad for p in _params(self) if p.grad is not None and not torch.any(p.grad)}
    for p in hidden:
        p.grad = None
    try:
        return orig(self, closure)
    finally:
        for p, g in hidden.items():
            p.grad = g


@around(SGD, "step", breaks=CLOSURE)
def step_calls_the_closure_twice(orig, self, closure=None):
    if closure is not None:
        with torch.enable_grad():
            closure()
    return orig(self, closure)


# -- the SGD rule --------------------------------------------------------------------------

PLAIN, MOMENTUM, DAMPENING = "optim.sgd.plain", "optim.sgd.momentum", "optim.sgd.dampening"
WEIGHT_DECAY, MAXIMIZE = "optim.sgd.weight_decay", "optim.sgd.maximize"
FOREACH = "optim.sgd.foreach_matches_for_loop"
sgd_option("sgd_lr_slightly_high", (PLAIN, "optim.training_loop.matches_gradient_descent"),
           lr=_times(OFF))
sgd_option("sgd_adds_the_gradient", PLAIN, maximize=lambda m: not m)
mutant(PLAIN, name="sgd_lr_off_from_the_third_parameter")(
    lambda mp: _sgd_split(mp, lambda i, p: i >= 2, lr=_times(OFF)))
mutant(PLAIN, name="sgd_lr_off_for_large_parameters")(
    lambda mp: _sgd_split(mp, lambda i, p: p.numel() > 16, lr=_times(OFF)))
sgd_option("tensor_lr_replaced_by_the_default", "optim.sgd.tensor_lr",
           lr=lambda lr: 1e-3 if isinstance(lr, torch.Tensor) else lr)
sgd_option("momentum_ignored", MOMENTUM, momentum=0.0)
sgd_option("momentum_slightly_off", MOMENTUM, momentum=_times(OFF))
sgd_option("momentum_buffer_reset_every_step", MOMENTUM,
           momentum_buffer_list=lambda buffers: [None] * len(buffers))
sgd_option("dampening_ignored", DAMPENING, dampening=0.0)
sgd_option("nesterov_ignored", "optim.sgd.nesterov", nesterov=False)
sgd_option("weight_decay_sign_flipped", WEIGHT_DECAY, weight_decay=lambda wd: -wd)
sgd_option("weight_decay_ignored", WEIGHT_DECAY, weight_decay=0.0)
sgd_option("maximize_ignored", MAXIMIZE, maximize=False)
sgd_option("training_lr_too_high", "optim.training_loop.converges", lr=_times(3))
option("lr_default_changed", "optim.sgd.lr_default", SGD, "__init__", defaults={"lr": 1e-2})
option("foreach_lr_slightly_high", FOREACH, sgd_module, "_multi_tensor_sgd", lr=_times(OFF))
option("foreach_ignores_dampening", FOREACH, sgd_module, "_multi_tensor_sgd", dampening=0.0)
option("fused_lr_slightly_high", "optim.sgd.fused_matches_for_loop", sgd_module, "_fused_sgd",
       lr=_times(OFF))
replace(sgd_module, "_default_to_fused_or_foreach", "optim.sgd.foreach_default",
        "foreach_by_default_everywhere")(lambda orig: lambda *a, **k: (False, True))


@around(sgd_module, "sgd", breaks=MOMENTUM)
def momentum_buffer_aliases_the_grad(orig, params, grads, momentum_buffer_list, *args, **kwargs):
    """The first buffer is the .grad tensor itself instead of a copy, where their values agree
    (no weight decay, no maximize): zeroing or accumulating .grad in place rewrites it."""
    fresh = [i for i, b in enumerate(momentum_buffer_list) if b is None]
    result = orig(params, grads, momentum_buffer_list, *args, **kwargs)
    if kwargs["momentum"] and not kwargs["weight_decay"] and not kwargs["maximize"]:
        for i in fresh:
            momentum_buffer_list[i] = grads[i]
    return result


@around(sgd_module, "sgd", breaks=DAMPENING)
def momentum_buffer_starts_at_zero(orig, params, grads, momentum_buffer_list, *args, **kwargs):
    """The other frameworks' initialization the SGD note contrasts: b_0 = 0, so the first
    gradient is dampened too."""
    buffers = [torch.zeros_like(g) if b is None and kwargs["momentum"] else b
               for g, b in zip(grads, momentum_buffer_list)]
    result = orig(params, grads, buffers, *args, **kwargs)
    momentum_buffer_list[:] = buffers
    return result


@around(sgd_module, "sgd", breaks=MAXIMIZE)
def maximize_negates_after_weight_decay(orig, params, grads, *args, **kwargs):
    """g = -(grad + wd * theta) instead of the documented -grad + wd * theta."""
    if kwargs["maximize"] and kwargs["weight_decay"]:
        grads = [g.add(p, alpha=kwargs["weight_decay"]) for g, p in zip(grads, params)]
        kwargs["weight_decay"] = 0.0
    return orig(params, grads, *args, **kwargs)


# -- param groups --------------------------------------------------------------------------

PER_GROUP, ADD_GROUP = "optim.param_groups.per_group_options", "optim.param_groups.add_param_group"


def group_options(name, options):
    """A mutant stepping SGD with each group's options replaced during the step: options(
    optimizer, i, group) gives the values group i is stepped with; its own are put back after."""
    @around(SGD, "step", breaks=PER_GROUP, name=name)
    def step(orig, self, closure=None):
        replaced = [options(self, i, g) for i, g in enumerate(self.param_groups)]
        saved = [{k: g[k] for k in r} for g, r in zip(self.param_groups, replaced)]
        for g, r in zip(self.param_groups, replaced):
            g.update(r)
        try:
            return orig(self, closure)
        finally:
            for g, s in zip(self.param_groups, saved):
                g.update(s)


def _cached(opt, i, values):
    """values, as first seen for group i of opt (a step that reads options once)."""
    return opt.__dict__.setdefault("_mutant_cache", {}).setdefault(i, values)


group_options("groups_stepped_with_the_defaults", lambda opt, i, g: {
    k: opt.defaults[k] for k in ("lr", "momentum")})
# A step that caches each group's lr at its first step (a scheduler's change is lost).
group_options("group_lr_read_once", lambda opt, i, g: _cached(opt, i, {"lr": g["lr"]}))
# Every group stepped with the optimizer's dampening, nesterov and maximize.
group_options("group_flags_stepped_with_the_defaults", lambda opt, i, g: {
    k: opt.defaults[k] for k in ("dampening", "nesterov", "maximize")})
# Each group's options but lr cached at its first step: later edits are lost.
group_options("group_options_read_once", lambda opt, i, g: _cached(opt, i, {
    k: g[k] for k in ("momentum", "dampening", "weight_decay", "nesterov", "maximize")}))


@mutant(breaks=ADD_GROUP)
def added_group_gets_only_defaults(mp):
    _after_construction(mp)
    wrap(mp, Opt, "add_param_group", lambda orig: lambda self, group: orig(self, (
        {"params": group["params"]} if getattr(self, "_mutant_constructed", False) else group)))


@mutant(breaks=ADD_GROUP)
def added_group_never_stepped(mp):
    _after_construction(mp)

    def add_param_group(orig, self, param_group):
        orig(self, param_group)
        if getattr(self, "_mutant_constructed", False):
            self.param_groups[-1]["_mutant_skip"] = True

    def step(orig, self, closure=None):
        skipped = [g for g in self.param_groups if g.get("_mutant_skip")]
        self.param_groups[:] = [g for g in self.param_groups if not g.get("_mutant_skip")]
        try:
            return orig(self, closure)
        finally:
            self.param_groups.extend(skipped)
    wrap(mp, Opt, "add_param_group", via(add_param_group))
    wrap(mp, SGD, "step", via(step))


# -- state_dict ----------------------------------------------------------------------------

CONTENTS, ROUND_TRIP = "optim.state_dict.contents", "optim.state_dict.round_trip"
replace(Opt, "state_dict", CONTENTS, "state_dict_without_state")(
    lambda orig: lambda self: dict(orig(self), state={}))
replace(Opt, "load_state_dict", ROUND_TRIP, "load_state_dict_drops_momentum_buffers")(
    lambda orig: lambda self, sd: orig(self, dict(sd, state={})))


@around(Opt, "state_dict", breaks=CONTENTS)
def state_dict_indices_in_reverse(orig, self):
    sd = orig(self)
    n = sum(len(g["params"]) for g in sd["param_groups"])
    sd["state"] = {n - 1 - k: v for k, v in sd["state"].items()}
    return sd


def _options(optimizer):
    return [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]


@around(Opt, "load_state_dict", breaks=ROUND_TRIP)
def load_state_dict_keeps_current_hyperparameters(orig, self, sd):
    current = _options(self)
    orig(self, sd)
    for g, c in zip(self.param_groups, current):
        g.update(c)


@around(Opt, "load_state_dict", breaks=ROUND_TRIP)
def load_state_dict_restores_the_first_groups_state_only(orig, self, sd):
    later = {i for g in sd["param_groups"][1:] for i in g["params"]}
    return orig(self, dict(sd, state={k: v for k, v in sd["state"].items() if k not in later}))


@around(Opt, "load_state_dict", breaks=ROUND_TRIP)
def load_state_dict_restores_the_first_groups_options_only(orig, self, sd):
    current = _options(self)
    orig(self, sd)
    for g, c in list(zip(self.param_groups, current))[1:]:
        g.update(c)


# -- training loop -------------------------------------------------------------------------

option("mse_loss_uses_sum", "optim.training_loop.matches_gradient_descent", nn.functional,
       "mse_loss", reduction="sum")


@mutant(breaks="optim.training_loop.deterministic")
def manual_seed_not_reproducible(mp):
    calls = []

    def manual_seed(orig, seed):
        calls.append(seed)
        return orig(seed + len(calls))
    wrap(mp, torch, "manual_seed", via(manual_seed))


# -- devices and dtypes --------------------------------------------------------------------

FOLLOW = "optim.device.grads_and_state_follow_parameter"
replace(Opt, "_process_value_according_to_param_policy", FOLLOW, "loaded_state_keeps_its_dtype")(
    lambda orig: staticmethod(lambda param, value, *a, **k: value))


@around(sgd_module, "sgd", breaks=FOLLOW)
def momentum_buffers_in_float64(orig, params, grads, momentum_buffer_list, *args, **kwargs):
    fresh = [i for i, b in enumerate(momentum_buffer_list) if b is None]
    result = orig(params, grads, momentum_buffer_list, *args, **kwargs)
    for i in fresh:
        if momentum_buffer_list[i] is not None:
            momentum_buffer_list[i] = momentum_buffer_list[i].double()
    return result


# -- hooks ---------------------------------------------------------------------------------

HOOKS = "optim.hooks.step_pre_and_post"
replace(Opt, "register_step_post_hook", HOOKS, "step_post_hooks_run_before_the_update")(
    lambda orig: lambda self, hook: self.register_step_pre_hook(hook))


@mutant(breaks=HOOKS)
def step_pre_hooks_never_run(mp):
    from torch.utils.hooks import RemovableHandle

    mp.setattr(Opt, "register_step_pre_hook", lambda self, hook: RemovableHandle({}))
