"""Global module hooks (torch.nn.modules.module.register_module_*_hook): they fire for every
module, before the module's own hooks, may change values like module hooks, and are removed
through their handle. Every test removes its global hooks in a finally block."""

import contextlib

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as module_globals

from torchconform import assert_close, behavior, to_numpy


@contextlib.contextmanager
def registered(register, hook):
    handle = register(hook)
    try:
        yield handle
    finally:
        handle.remove()


def _net(device):
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU()).to(device)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
        net[0].bias.copy_(torch.tensor([0.5, -0.25]))
    return net


def _oracle(x):
    """numpy float64: relu(x W^T + b) for the weights _net sets."""
    W = np.array([[1.0, 2.0], [-1.0, 0.5]])
    return (x @ W.T + np.array([0.5, -0.25])).clip(min=0)


@behavior("module.global_hooks.forward_pre_hook")
def test_global_forward_pre_hook_fires_for_every_module_and_may_replace_input(device):
    net = _net(device)
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0]], device=device)
    events = []
    net[0].register_forward_pre_hook(lambda module, args: events.append(("local", module)))

    def double_linear_input(module, args):
        events.append(("global", module))
        return (args[0] * 2,) if isinstance(module, nn.Linear) else None

    with registered(module_globals.register_module_forward_pre_hook, double_linear_input):
        out = net(x)
        assert events == [("global", net), ("global", net[0]), ("local", net[0]),
                          ("global", net[1])]
        assert_close(out, _oracle(2 * to_numpy(x)))
    events.clear()
    assert_close(net(x), _oracle(to_numpy(x)))  # removed: only the module's own hook runs
    assert events == [("local", net[0])]


@behavior("module.global_hooks.forward_hook")
def test_global_forward_hook_fires_for_every_module_before_module_hooks(device):
    net = _net(device)
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0]], device=device)
    events = []
    net[0].register_forward_hook(lambda module, args, out: events.append(("local", module)))

    def negate_linear_output(module, args, out):
        events.append(("global", module))
        return -out if isinstance(module, nn.Linear) else None

    with registered(module_globals.register_module_forward_hook, negate_linear_output):
        out = net(x)
        # Each module's global hook runs right after its forward, before its own hooks.
        assert events == [("global", net[0]), ("local", net[0]), ("global", net[1]),
                          ("global", net)]
        lin = to_numpy(x) @ to_numpy(net[0].weight).T + to_numpy(net[0].bias)
        assert_close(out, (-lin).clip(min=0))
    events.clear()
    assert_close(net(x), _oracle(to_numpy(x)))
    assert events == [("local", net[0])]


@behavior("module.global_hooks.full_backward_hook")
def test_global_full_backward_hook_fires_for_every_module_and_may_replace_grads(device):
    net = _net(device)
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0]], device=device, requires_grad=True)
    events = []

    def halve_linear_input_grad(module, grad_input, grad_output):
        events.append(module)
        if isinstance(module, nn.Linear):
            return (grad_input[0] / 2,)
        return None

    with registered(module_globals.register_module_full_backward_hook,
                    halve_linear_input_grad):
        net(x).sum().backward()
        assert events == [net[1], net[0], net]  # backward order: last module first
    W = to_numpy(net[0].weight)
    active = (to_numpy(x) @ W.T + to_numpy(net[0].bias)) > 0  # relu mask
    assert_close(x.grad, (active.astype(float) @ W) / 2)
    events.clear()
    x.grad = None
    net(x).sum().backward()
    assert events == []
    assert_close(x.grad, active.astype(float) @ W)


@behavior("module.global_hooks.full_backward_pre_hook")
def test_global_full_backward_pre_hook_runs_before_module_pre_hooks(device):
    net = _net(device)
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0]], device=device, requires_grad=True)
    events = []
    net[0].register_full_backward_pre_hook(lambda module, gout: events.append(("local", module)))

    def triple(module, grad_output):
        events.append(("global", module))
        return (grad_output[0] * 3,) if isinstance(module, nn.Linear) else None

    with registered(module_globals.register_module_full_backward_pre_hook, triple):
        net(x).sum().backward()
        assert events == [("global", net), ("global", net[1]), ("global", net[0]),
                          ("local", net[0])]
    W = to_numpy(net[0].weight)
    active = ((to_numpy(x) @ W.T + to_numpy(net[0].bias)) > 0).astype(float)
    assert_close(x.grad, 3 * active @ W)
    assert_close(net[0].bias.grad, 3 * active.sum(axis=0))
