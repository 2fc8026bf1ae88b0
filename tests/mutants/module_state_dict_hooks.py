"""Mutants of extra state (get/set_extra_state) and of the state_dict / load_state_dict
hooks."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from . import mutant, wrap

M = nn.Module
EXTRA = "_extra_state"


# -- extra_state -----------------------------------------------------------------------------

@mutant(breaks="module.extra_state.saved_under_key")
def extra_state_saved_without_underscore(mp):
    def make(orig):
        def save(self, destination, prefix, keep_vars):
            orig(self, destination, prefix, keep_vars)
            if prefix + EXTRA in destination:
                destination[prefix + "extra_state"] = destination.pop(prefix + EXTRA)
        return save
    wrap(mp, M, "_save_to_state_dict", make)


@mutant(breaks="module.extra_state.round_trip")
def set_extra_state_gets_the_current_state(mp):
    """The saved value is swapped for the target's own get_extra_state() before loading."""
    def make(orig):
        def load(self, state_dict, prefix, *args):
            if prefix + EXTRA in state_dict:
                state_dict = dict(state_dict)
                state_dict[prefix + EXTRA] = self.get_extra_state()
            return orig(self, state_dict, prefix, *args)
        return load
    wrap(mp, M, "_load_from_state_dict", make)


@mutant(breaks="module.extra_state.missing_is_a_missing_key")
def missing_extra_state_forgiven(mp):
    def make(orig):
        def load(self, state_dict, prefix, local_metadata, strict, missing_keys, *rest):
            orig(self, state_dict, prefix, local_metadata, strict, missing_keys, *rest)
            if prefix + EXTRA in missing_keys:
                missing_keys.remove(prefix + EXTRA)
        return load
    wrap(mp, M, "_load_from_state_dict", make)


# -- state_dict hooks ------------------------------------------------------------------------

@mutant(breaks="module.state_dict_hooks.state_dict_pre_hook")
def state_dict_pre_hook_gets_no_prefix(mp):
    wrap(mp, M, "register_state_dict_pre_hook", lambda orig: lambda self, hook: orig(
        self, lambda module, prefix, keep_vars: hook(module, "", keep_vars)))


@mutant(breaks="module.state_dict_hooks.state_dict_post_hook")
def state_dict_post_hook_edits_a_copy(mp):
    wrap(mp, M, "register_state_dict_post_hook", lambda orig: lambda self, hook: orig(
        self, lambda module, sd, prefix, meta: hook(module, OrderedDict(sd), prefix, meta)))


@mutant(breaks="module.state_dict_hooks.load_state_dict_pre_hook")
def load_pre_hook_edits_a_copy(mp):
    wrap(mp, M, "register_load_state_dict_pre_hook", lambda orig: lambda self, hook: orig(
        self, lambda module, sd, *rest: hook(module, dict(sd), *rest)))


@mutant(breaks="module.state_dict_hooks.load_state_dict_post_hook")
def load_post_hook_edits_a_copy_of_the_keys(mp):
    wrap(mp, M, "register_load_state_dict_post_hook", lambda orig: lambda self, hook: orig(
        self, lambda module, keys: hook(module, type(keys)(
            list(keys.missing_keys), list(keys.unexpected_keys)))))


@mutant(breaks="module.extra_state.round_trip")
def extra_state_dropped_by_non_strict_load(mp):
    # A non-strict load "tolerates" extra state by not handing it to set_extra_state.
    def make(orig):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            if not strict:
                state_dict = {k: v for k, v in state_dict.items()
                              if not k.endswith("_extra_state")}
            return orig(self, state_dict, strict=strict, assign=assign)
        return load_state_dict
    wrap(mp, nn.Module, "load_state_dict", make)
