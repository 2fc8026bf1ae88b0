"""Mutants of Module.zero_grad beyond the first catalog's (frozen parameters)."""

from __future__ import annotations

from torch import nn

from . import mutant, wrap


@mutant(breaks="module.zero_grad.set_to_none_true")
def zero_grad_skips_frozen_parameters(mp):
    # Resets only the grads of parameters that still require grad.
    def make(orig):
        def zero_grad(self, set_to_none=True):
            kept = [(p, p.grad) for p in self.parameters() if not p.requires_grad]
            orig(self, set_to_none)
            for p, grad in kept:
                p.grad = grad
        return zero_grad
    wrap(mp, nn.Module, "zero_grad", make)
