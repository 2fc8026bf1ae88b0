"""Mutants of documented state_dict clauses added after the first module catalog."""

from __future__ import annotations

from torch import nn

from . import mutant, wrap


@mutant(breaks="module.state_dict.load_into_none_raises")
def load_ignores_keys_of_none_slots(mp):
    # Silently drops incoming keys whose parameter or buffer is None instead of reporting them.
    def make(orig):
        def load(self, state_dict, prefix, *args, **kwargs):
            slots = {**self._parameters, **self._buffers}
            none = {prefix + k for k, v in slots.items() if v is None}
            state_dict = {k: v for k, v in state_dict.items() if k not in none}
            return orig(self, state_dict, prefix, *args, **kwargs)
        return load
    wrap(mp, nn.Module, "_load_from_state_dict", make)


@mutant(breaks="module.state_dict.destination")
def state_dict_ignores_destination(mp):
    def make(orig):
        def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
            if destination is not None and not prefix:  # top-level call: builds its own dict
                destination = None
            return orig(self, *args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        return state_dict
    wrap(mp, nn.Module, "state_dict", make)
