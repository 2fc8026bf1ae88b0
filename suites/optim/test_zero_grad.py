"""Optimizer.zero_grad(): resets the gradients of the optimized parameters (seeds 000-004 call
it every epoch because backward accumulates).

The default changed in torch 2.0: set_to_none=True (grads become None); before, grads were
filled with zeros.
"""

import numpy as np
import torch
from torch import nn

from torchconform import behavior, since


def _net_with_grads(device):
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).to(device)
    net(torch.ones(4, 3, device=device)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    return net, torch.optim.SGD(net.parameters(), lr=0.1)


def _bystander(device):
    """A tensor with a gradient that the optimizer does not own."""
    t = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    (t * 5).sum().backward()
    return t


@behavior("optim.zero_grad.default")
def test_zero_grad_default_follows_the_torch_version(device):
    net, optimizer = _net_with_grads(device)
    optimizer.zero_grad()
    if since("2.0"):
        assert all(p.grad is None for p in net.parameters())
    else:
        assert all(p.grad is not None and torch.count_nonzero(p.grad) == 0
                   for p in net.parameters())


@behavior("optim.zero_grad.set_to_none_true")
def test_zero_grad_set_to_none_true_clears_every_optimized_grad(device):
    net, optimizer = _net_with_grads(device)
    other = _bystander(device)
    optimizer.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in net.parameters())
    assert other.grad.cpu().tolist() == [5.0, 5.0]  # not the optimizer's: left alone


def _groups_with_grads(device):
    """Three layers in three param groups, every parameter with a nonzero gradient."""
    layers = [nn.Linear(2, 1).to(device) for _ in range(3)]
    optimizer = torch.optim.SGD([{"params": layer.parameters(), "lr": 0.1 * (i + 1)}
                                 for i, layer in enumerate(layers)], lr=0.1)
    sum(layer(torch.ones(1, 2, device=device)) for layer in layers).backward()
    params = [p for layer in layers for p in layer.parameters()]
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in params)
    return params, optimizer


@behavior("optim.zero_grad.set_to_none_true")
def test_zero_grad_clears_every_param_group(device):
    params, optimizer = _groups_with_grads(device)
    optimizer.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in params)


@behavior("optim.zero_grad.set_to_none_false")
def test_zero_grad_set_to_none_false_zeros_every_param_group(device):
    params, optimizer = _groups_with_grads(device)
    optimizer.zero_grad(set_to_none=False)
    for i, p in enumerate(params):
        assert p.grad is not None and torch.count_nonzero(p.grad) == 0, f"parameter {i}"


@behavior("optim.zero_grad.set_to_none_false")
def test_zero_grad_set_to_none_false_fills_the_grads_with_zeros(device):
    net, optimizer = _net_with_grads(device)
    other = _bystander(device)
    optimizer.zero_grad(set_to_none=False)
    for p in net.parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) == 0
        assert p.grad.shape == p.shape and p.grad.device == p.device
    assert other.grad.cpu().tolist() == [5.0, 5.0]


@behavior("optim.zero_grad.unused_stays_none")
def test_after_zero_grad_only_parameters_in_the_graph_get_a_gradient(device):
    used = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    spare = torch.tensor([1.0, -1.0], device=device, requires_grad=True)
    optimizer = torch.optim.SGD([used, spare], lr=0.1)
    (10 * used**2 + 3 * spare).sum().backward()  # both get gradients first
    optimizer.zero_grad(set_to_none=True)
    (10 * used**2 + 25).sum().backward()  # seed 001's function: spare takes no part
    assert spare.grad is None
    assert np.array_equal(used.grad.cpu().numpy(), [40.0, 60.0])  # only the new gradient


@behavior("optim.zero_grad.unused_stays_none")
def test_unused_submodule_keeps_grad_none_across_epochs(device):
    model = nn.Module()
    model.used, model.spare = nn.Linear(1, 1).to(device), nn.Linear(1, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.arange(11.0, device=device).view(-1, 1)
    for _ in range(3):
        optimizer.zero_grad(set_to_none=True)
        nn.MSELoss()(model.used(x), 2 * x + 1).backward()
        optimizer.step()
    assert all(p.grad is None for p in model.spare.parameters())
