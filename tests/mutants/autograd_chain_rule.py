"""Mutant of the two-layer network's chain rule (autograd.chain_rule.mlp_mse)."""

from __future__ import annotations

from torch import nn

from . import mutant, wrap


@mutant(breaks="autograd.chain_rule.mlp_mse")
def tanh_scaled_by_1_001(mp):
    """nn.Tanh computes 1.001 tanh(x): a 0.1% error in the hidden layer, its output and its
    gradients."""
    wrap(mp, nn.Tanh, "forward", lambda forward: lambda self, x: forward(self, x) * 1.001)
