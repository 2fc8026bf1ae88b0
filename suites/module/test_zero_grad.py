"""Module.zero_grad(): resets the gradients of every parameter of the tree.

The default changed in torch 2.0: set_to_none=True (grads become None); before, grads were
filled with zeros.
"""

import torch
from torch import nn

from torchconform import behavior, since


def _model_with_grads(device):
    net = nn.Sequential(nn.Linear(3, 2), nn.Sequential(nn.Linear(2, 1))).to(device)
    net(torch.ones(4, 3, device=device)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    # Frozen after backward, it keeps its grad: zero_grad resets *all* parameters, frozen or not.
    net[1][0].bias.requires_grad_(False)
    return net


@behavior("module.zero_grad.default")
def test_zero_grad_default_follows_the_torch_version(device):
    net = _model_with_grads(device)
    net.zero_grad()
    if since("2.0"):
        assert all(p.grad is None for p in net.parameters())
    else:
        assert all(p.grad is not None and torch.count_nonzero(p.grad) == 0
                   for p in net.parameters())


@behavior("module.zero_grad.set_to_none_true")
def test_zero_grad_set_to_none_true_clears_every_grad(device):
    net = _model_with_grads(device)
    net.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in net.parameters())


@behavior("module.zero_grad.set_to_none_false")
def test_zero_grad_set_to_none_false_fills_grads_with_zeros(device):
    net = _model_with_grads(device)
    net.zero_grad(set_to_none=False)
    for p in net.parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) == 0
        assert p.grad.shape == p.shape and p.grad.device == p.device
