"""Mutants of documented forward-call clauses added after the first module catalog."""

from __future__ import annotations

from torch import nn

from . import mutant, wrap


@mutant(breaks="module.call.forward_hook_always_call")
def forward_hook_always_call_ignored(mp):
    wrap(mp, nn.Module, "register_forward_hook", lambda orig: (
        lambda self, hook, *, prepend=False, with_kwargs=False, always_call=False:
            orig(self, hook, prepend=prepend, with_kwargs=with_kwargs)))
