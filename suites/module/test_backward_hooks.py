"""Module backward hooks: register_full_backward_hook sees the gradients with respect to the
module's inputs and outputs and may replace the input gradients; register_full_backward_pre_hook
sees the output gradients first and may replace them."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from torchconform import assert_close, behavior, to_numpy


class Bilinear(nn.Module):
    """out = (a * b) @ W.T + bias * k; k is keyword-only, so not in grad_input."""

    def __init__(self, features, outputs):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(outputs, features))
        self.bias = nn.Parameter(torch.randn(outputs))

    def forward(self, a, b, k=1.0):
        return (a * b) @ self.weight.t() + self.bias * k


def _case(device, batch, features, outputs):
    m = Bilinear(features, outputs).to(device)
    a = torch.randn(batch, features, device=device, requires_grad=True)
    b = torch.randn(batch, features, device=device, requires_grad=True)
    g = torch.randn(batch, outputs, device=device)  # d loss / d out
    return m, a, b, g


_sizes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))


@behavior("module.backward_hooks.full_backward_hook_values")
@given(sizes=_sizes)
def test_full_backward_hook_gets_input_and_output_gradients(device, sizes):
    m, a, b, g = _case(device, *sizes)
    seen = []
    m.register_full_backward_hook(lambda module, gin, gout: seen.append((module, gin, gout)))
    (m(a, b, k=2.0) * g).sum().backward()
    W, an, bn, gn = to_numpy(m.weight), to_numpy(a), to_numpy(b), to_numpy(g)
    assert len(seen) == 1 and seen[0][0] is m
    _, grad_input, grad_output = seen[0]
    # One entry per positional argument (the keyword k has none), one per output.
    assert len(grad_input) == 2 and len(grad_output) == 1
    assert_close(grad_output[0], gn)
    assert_close(grad_input[0], (gn @ W) * bn)  # d/da of sum(g * ((a*b) W^T))
    assert_close(grad_input[1], (gn @ W) * an)
    assert_close(a.grad, (gn @ W) * bn)


@behavior("module.backward_hooks.full_backward_hook_replaces_grad_input")
def test_full_backward_hook_return_value_replaces_the_input_gradients(device):
    m, a, b, g = _case(device, 2, 3, 2)
    m.register_full_backward_hook(lambda module, gin, gout: (gin[0] * 3, None))
    (m(a, b) * g).sum().backward()
    W, an, bn, gn = to_numpy(m.weight), to_numpy(a), to_numpy(b), to_numpy(g)
    assert_close(a.grad, 3 * (gn @ W) * bn)
    assert b.grad is None  # a None entry: no gradient flows to b
    # Parameter gradients are computed inside the module: untouched by the hook.
    assert_close(m.weight.grad, gn.T @ (an * bn))
    assert_close(m.bias.grad, gn.sum(axis=0))


@behavior("module.backward_hooks.full_backward_hook_without_input_grads")
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # newer torch says so
def test_full_backward_hook_fires_with_none_when_no_input_requires_grad(device):
    m, a, b, g = _case(device, 2, 2, 2)
    seen = []
    m.register_full_backward_hook(lambda module, gin, gout: seen.append((gin, gout)))
    (m(a.detach(), b.detach()) * g).sum().backward()  # only the parameters require grad
    assert len(seen) == 1
    assert seen[0][0] == (None, None)
    assert_close(seen[0][1][0], to_numpy(g))
    assert_close(m.bias.grad, to_numpy(g).sum(axis=0))
    seen.clear()
    with torch.no_grad():  # no output requires grad: the hook does not fire
        m(a, b)
    assert seen == []


@behavior("module.backward_hooks.full_backward_pre_hook")
@given(sizes=_sizes)
def test_full_backward_pre_hook_sees_and_may_replace_the_output_gradient(device, sizes):
    m, a, b, g = _case(device, *sizes)
    events = []

    def double(module, grad_output):
        events.append(("pre", module, grad_output[0].detach().clone()))
        return (grad_output[0] * 2,)

    m.register_full_backward_hook(
        lambda module, gin, gout: events.append(("hook", module, gout[0].detach().clone())))
    m.register_full_backward_pre_hook(double)
    (m(a, b) * g).sum().backward()
    W, an, bn, gn = to_numpy(m.weight), to_numpy(a), to_numpy(b), to_numpy(g)
    assert [(kind, module) for kind, module, _ in events] == [("pre", m), ("hook", m)]
    assert_close(events[0][2], gn)
    assert_close(events[1][2], 2 * gn)  # the full hook sees the replaced gradient
    # The whole backward of the module uses it: input and parameter gradients double.
    assert_close(a.grad, 2 * (gn @ W) * bn)
    assert_close(m.weight.grad, 2 * gn.T @ (an * bn))
    assert_close(m.bias.grad, 2 * gn.sum(axis=0))


@behavior("module.backward_hooks.hook_removal")
def test_removed_backward_hooks_no_longer_fire(device):
    m, a, b, g = _case(device, 2, 2, 2)
    calls = []
    handles = [m.register_full_backward_hook(lambda *args: calls.append("hook"))]
    if hasattr(m, "register_full_backward_pre_hook"):  # torch >= 2.0
        handles.append(m.register_full_backward_pre_hook(lambda *args: calls.append("pre")))
    (m(a, b) * g).sum().backward()
    assert len(calls) == len(handles)
    for handle in handles:
        handle.remove()
    calls.clear()
    a.grad = None
    (m(a, b) * g).sum().backward()
    assert calls == []
    assert_close(a.grad, (to_numpy(g) @ to_numpy(m.weight)) * to_numpy(b))


@behavior("module.backward_hooks.inplace_output_raises")
def test_modifying_the_output_in_place_under_a_backward_hook_raises(device):
    m, a, b, g = _case(device, 2, 2, 2)
    m.register_full_backward_hook(lambda *args: None)
    out = m(a, b)
    with pytest.raises(RuntimeError, match="view and is being modified inplace"):
        out.add_(1)
    plain = Bilinear(2, 2).to(device)
    plain(a, b).add_(1)  # without backward hooks the same in-place change is allowed
    assert np.isfinite(to_numpy(out)).all()

    class DoublesInPlace(nn.Module):
        def forward(self, x):
            return x.mul_(2)

    # Inputs too: forward() gets a view of each input and may not modify it in place.
    x = a.detach().clone().requires_grad_(True).clone()  # non-leaf, so in place is legal
    assert torch.equal(DoublesInPlace()(x), a.detach() * 2)  # no hook: allowed
    hooked = DoublesInPlace()
    hooked.register_full_backward_hook(lambda *args: None)
    with pytest.raises(RuntimeError, match="view and is being modified inplace"):
        hooked(a.detach().clone().requires_grad_(True).clone())


@behavior("module.backward_hooks.hook_order")
def test_backward_hooks_fire_in_registration_order_unless_prepended(device):
    m = nn.Linear(2, 1).to(device)
    calls = []
    for register, tag in ((m.register_full_backward_hook, "hook"),
                          (m.register_full_backward_pre_hook, "pre")):
        register(lambda *args, tag=tag: calls.append(f"{tag}:first"))
        register(lambda *args, tag=tag: calls.append(f"{tag}:second"))
        register(lambda *args, tag=tag: calls.append(f"{tag}:prepended"), prepend=True)
    m(torch.ones(1, 2, device=device, requires_grad=True)).sum().backward()
    # Pre-hooks (before the module's gradients are computed) come first.
    assert calls == ["pre:prepended", "pre:first", "pre:second",
                     "hook:prepended", "hook:first", "hook:second"]
