"""Mutants of module backward hooks and of the global module hooks."""

from __future__ import annotations

from collections import OrderedDict

import torch.utils.hooks as hooks
from torch import nn
from torch.nn.modules import module as module_globals

from . import mutant, wrap

M = nn.Module


def _ignore_result(hook):
    return lambda *args: (hook(*args), None)[1]


# -- backward_hooks --------------------------------------------------------------------------

@mutant(breaks="module.backward_hooks.full_backward_hook_values")
def backward_hook_grad_input_reversed(mp):
    wrap(mp, M, "register_full_backward_hook", lambda orig: lambda self, hook, **kw: orig(
        self, lambda m, gin, gout: hook(m, tuple(reversed(gin)), gout), **kw))


@mutant(breaks="module.backward_hooks.full_backward_hook_replaces_grad_input")
def backward_hook_result_ignored(mp):
    wrap(mp, M, "register_full_backward_hook", lambda orig: lambda self, hook, **kw: orig(
        self, _ignore_result(hook), **kw))


@mutant(breaks="module.backward_hooks.full_backward_hook_without_input_grads")
def backward_hook_needs_an_input_grad(mp):
    wrap(mp, M, "register_full_backward_hook", lambda orig: lambda self, hook, **kw: orig(
        self, lambda m, gin, gout: hook(m, gin, gout)
        if any(g is not None for g in gin) else None, **kw))


@mutant(breaks="module.backward_hooks.full_backward_pre_hook")
def backward_pre_hook_result_ignored(mp):
    wrap(mp, M, "register_full_backward_pre_hook", lambda orig: lambda self, hook, **kw: orig(
        self, _ignore_result(hook), **kw))


@mutant(breaks="module.backward_hooks.hook_removal")
def backward_hook_handles_detached(mp):
    """The handle returned for a full backward hook points nowhere: remove() does nothing."""
    def make(orig):
        def register(self, hook, **kw):
            orig(self, hook, **kw)
            return hooks.RemovableHandle(OrderedDict())
        return register
    wrap(mp, M, "register_full_backward_hook", make)


@mutant(breaks="module.backward_hooks.hook_order")
def backward_hook_prepend_inverted(mp):
    wrap(mp, M, "register_full_backward_hook", lambda orig: (
        lambda self, hook, prepend=False: orig(self, hook, prepend=not prepend)))


@mutant(breaks="module.backward_hooks.inplace_output_raises")
def backward_hook_output_not_wrapped(mp):
    mp.setattr(hooks.BackwardHook, "setup_output_hook", lambda self, args: args)


@mutant(breaks="module.backward_hooks.inplace_output_raises")
def backward_hook_inputs_not_wrapped(mp):
    # forward() then gets the caller's own tensors, so in-place changes to them go unnoticed.
    mp.setattr(hooks.BackwardHook, "setup_input_hook", lambda self, args: args)


# -- global_hooks ----------------------------------------------------------------------------

@mutant(breaks="module.global_hooks.forward_pre_hook")
def global_pre_hook_result_ignored(mp):
    wrap(mp, module_globals, "register_module_forward_pre_hook", lambda orig: lambda hook: orig(
        _ignore_result(hook)))


@mutant(breaks="module.global_hooks.forward_hook")
def global_forward_hook_leaves_only(mp):
    wrap(mp, module_globals, "register_module_forward_hook", lambda orig: lambda hook, **kw: orig(
        lambda m, args, out: hook(m, args, out) if not list(m.children()) else None, **kw))


@mutant(breaks="module.global_hooks.full_backward_hook")
def global_backward_hook_result_ignored(mp):
    wrap(mp, module_globals, "register_module_full_backward_hook", lambda orig: lambda hook: orig(
        _ignore_result(hook)))


@mutant(breaks="module.global_hooks.full_backward_pre_hook")
def global_backward_pre_hook_result_ignored(mp):
    wrap(mp, module_globals, "register_module_full_backward_pre_hook",
         lambda orig: lambda hook: orig(_ignore_result(hook)))
