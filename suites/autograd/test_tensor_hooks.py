"""Tensor hooks: Tensor.register_hook (observe or replace a gradient, order, removal, and how
retain_grad sees hooked gradients) and Tensor.register_post_accumulate_grad_hook (2.1).

The graph is seed 001's z = 10 y + 25 with y = w**2: dz/dy = 10 and dz/dw = 20 w, so a hook on
y that turns the gradient g into h(g) makes w.grad = 2 w h(10).
"""

import numpy as np
import pytest
import torch
from hypothesis import example, given

from torchconform import assert_close, behavior, oracles, since, to_numpy
from torchconform.strategies import arrays, shapes


def _w(device, dtype=torch.float32, values=(2.0, 3.0)):
    return torch.tensor(values, device=device, dtype=dtype, requires_grad=True)


@behavior("autograd.tensor_hooks.replace_gradient")
@given(w=arrays(shapes()))
@example(w=np.array([2.0, 3.0]))
def test_hook_on_a_leaf_replaces_the_accumulated_gradient(device, w):
    wt = torch.tensor(w, device=device, requires_grad=True)
    wt.register_hook(lambda grad: grad * 3)
    (10 * wt**2 + 25).sum().backward()
    assert_close(wt.grad, 3 * oracles.square_scaled(w)[1], what="hooked dz/dw")


@behavior("autograd.tensor_hooks.replace_gradient")
def test_documented_example_doubles_the_gradient(device):
    v = torch.tensor([0.0, 0.0, 0.0], device=device, requires_grad=True)
    v.register_hook(lambda grad: grad * 2)
    v.backward(torch.tensor([1.0, 2.0, 3.0], device=device))
    assert v.grad.cpu().tolist() == [2.0, 4.0, 6.0]


@behavior("autograd.tensor_hooks.replace_gradient")
@pytest.mark.parametrize("hook, dz_dy", [
    (lambda g: g * 3, 30.0),                  # a scaled gradient
    (lambda g: torch.ones_like(g), 1.0),      # a new tensor, unrelated to g
    (lambda g: g - 10, 0.0),                  # cancels the gradient entirely
])
def test_hook_on_an_intermediate_changes_everything_upstream(device, hook, dz_dy):
    w = _w(device)
    y = w**2
    y.register_hook(hook)
    (10 * y + 25).sum().backward()
    assert_close(w.grad, 2 * np.array([2.0, 3.0]) * dz_dy, what="dz/dw from the hooked dz/dy")


@behavior("autograd.tensor_hooks.observe")
def test_hook_sees_the_gradient_once_per_backward_and_returning_none_keeps_it(device):
    w = _w(device)
    seen = []
    y = w**2
    y.register_hook(lambda grad: seen.append(grad.detach().clone()))  # returns None
    z = (10 * y + 25).sum()
    z.backward(retain_graph=True)
    assert len(seen) == 1
    assert_close(seen[0], [10.0, 10.0], what="dz/dy seen by the hook")
    assert_close(w.grad, oracles.square_scaled([2.0, 3.0])[1], what="dz/dw (unchanged)")
    z.backward()
    assert len(seen) == 2  # one call per backward pass


@behavior("autograd.tensor_hooks.observe")
def test_hook_on_a_leaf_sees_the_external_gradient_vector_jacobian_product(device):
    a = _w(device)
    seen = []
    a.register_hook(lambda grad: seen.append(grad.detach().clone()))
    v = torch.tensor([0.5, -2.0], device=device)
    (3 * a**3).backward(gradient=v)
    _, expected, _ = oracles.cubic_minus_square([2.0, 3.0], [0.0, 0.0], [0.5, -2.0])
    assert len(seen) == 1
    assert_close(seen[0], expected, what="9 a**2 v seen by the hook")
    assert_close(a.grad, expected, what="a.grad")


@behavior("autograd.tensor_hooks.registration_order")
@pytest.mark.parametrize("first", ["add", "double"])
def test_hooks_run_in_registration_order_each_seeing_the_previous_result(device, first):
    w = _w(device)
    calls = []

    def add(grad):
        calls.append(("add", grad.detach().cpu().tolist()))
        return grad + 1

    def double(grad):
        calls.append(("double", grad.detach().cpu().tolist()))
        return grad * 2

    hooks = [add, double] if first == "add" else [double, add]
    for hook in hooks:
        w.register_hook(hook)
    (w * 3).sum().backward()  # the gradient reaching w is 3
    if first == "add":
        assert calls == [("add", [3.0, 3.0]), ("double", [4.0, 4.0])]
        assert w.grad.cpu().tolist() == [8.0, 8.0]  # (3 + 1) * 2
    else:
        assert calls == [("double", [3.0, 3.0]), ("add", [6.0, 6.0])]
        assert w.grad.cpu().tolist() == [7.0, 7.0]  # 3 * 2 + 1


@behavior("autograd.tensor_hooks.remove")
def test_removed_hook_no_longer_runs_and_the_others_do(device):
    w = _w(device)
    calls = []
    doubling = w.register_hook(lambda grad: calls.append("double") or grad * 2)
    w.register_hook(lambda grad: calls.append("add") or grad + 1)
    (w * 3).sum().backward()
    assert calls == ["double", "add"] and w.grad.cpu().tolist() == [7.0, 7.0]
    doubling.remove()
    w.grad = None
    calls.clear()
    (w * 3).sum().backward()
    assert calls == ["add"] and w.grad.cpu().tolist() == [4.0, 4.0]


@behavior("autograd.tensor_hooks.remove")
def test_removing_the_only_hook_restores_the_plain_gradient(device):
    w = _w(device)
    handle = w.register_hook(lambda grad: grad * 100)
    handle.remove()
    (10 * w**2 + 25).sum().backward()
    assert_close(w.grad, oracles.square_scaled([2.0, 3.0])[1], what="dz/dw without the hook")


@behavior("autograd.tensor_hooks.retain_grad_sees_hooked")
@pytest.mark.parametrize("order", ["retain_grad_first", "hook_first"])
def test_retained_grad_and_hooks(device, order):
    w = _w(device)
    y = w * 3
    if order == "retain_grad_first":
        y.retain_grad()
        y.register_hook(lambda grad: grad * 10)
    else:
        y.register_hook(lambda grad: grad * 10)
        y.retain_grad()
    y.sum().backward()
    assert w.grad.cpu().tolist() == [30.0, 30.0]  # upstream always sees the hooked gradient
    if since("2.0") or order == "hook_first":
        assert y.grad.cpu().tolist() == [10.0, 10.0]  # after the hooks
    else:
        assert y.grad.cpu().tolist() == [1.0, 1.0]  # 1.13: retain_grad ran before the hook


@behavior("autograd.tensor_hooks.post_accumulate_grad")
def test_post_accumulate_hook_runs_after_accumulation_with_the_tensor(device):
    p = _w(device)
    seen = []
    p.register_post_accumulate_grad_hook(lambda t: seen.append(
        (t is p, t.grad.detach().clone(), torch.is_grad_enabled())))
    p.register_hook(lambda grad: grad * 2)  # tensor hooks run before the accumulation
    (p * 3 + p * 4).sum().backward()  # two contributions to p.grad, one accumulation
    (p * 3 + p * 4).sum().backward()
    assert [s[0] for s in seen] == [True, True]  # the tensor itself, once per backward
    assert_close(seen[0][1], [14.0, 14.0], what=".grad at the first call")
    assert_close(seen[1][1], [28.0, 28.0], what=".grad at the second call (accumulated)")
    assert [s[2] for s in seen] == [False, False]  # runs in no_grad mode


@behavior("autograd.tensor_hooks.post_accumulate_grad")
def test_post_accumulate_hook_documented_sgd_update(device):
    v = torch.tensor([0.0, 0.0, 0.0], device=device, requires_grad=True)
    lr = 0.01
    v.register_post_accumulate_grad_hook(lambda p: p.add_(p.grad, alpha=-lr))
    v.backward(torch.tensor([1.0, 2.0, 3.0], device=device))
    assert_close(v, [-0.01, -0.02, -0.03], what="v after the in-hook update")
    assert v.requires_grad and v.is_leaf
    assert to_numpy(v.grad).tolist() == [1.0, 2.0, 3.0]


@behavior("autograd.tensor_hooks.post_accumulate_grad_leaf_only")
def test_post_accumulate_hook_on_a_non_leaf_raises(device):
    w = _w(device)
    y = w * 2
    with pytest.raises(RuntimeError, match="(?i)leaf"):
        y.register_post_accumulate_grad_hook(lambda t: None)
    w.register_post_accumulate_grad_hook(lambda t: None)  # the leaf itself is fine
