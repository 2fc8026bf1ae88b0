"""torch.autograd.grad(): gradients returned instead of accumulated, and higher derivatives."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.strategies import arrays, shapes


@behavior("autograd.grad.returns_without_accumulating")
@given(w=arrays(shapes(), 0.25, 4.0))
@example(w=np.array(2.0))
def test_autograd_grad_returns_the_gradient_and_leaves_grad_unset(device, dtype, w):
    wt = torch.tensor(w, device=device, dtype=dtype, requires_grad=True)
    z = 10 * wt**2 + 25
    (grad,) = torch.autograd.grad(z.sum(), wt)
    assert_close(grad, oracles.square_scaled(to_numpy(wt))[1], what="dz/dw")
    assert wt.grad is None  # returned, not accumulated into .grad
    assert grad.requires_grad is False  # create_graph defaults to False


@behavior("autograd.grad.returns_without_accumulating")
def test_autograd_grad_leaves_an_existing_grad_unchanged(device):
    a = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    (3 * a**3).sum().backward()
    before = a.grad.clone()
    (grad,) = torch.autograd.grad((3 * a**3).sum(), a)
    assert torch.equal(a.grad, before)
    assert grad.cpu().tolist() == [36.0, 81.0]


@behavior("autograd.grad.create_graph")
@given(a=arrays(shapes(), 0.25, 2.0))
@example(a=np.array([2.0, 3.0]))
def test_create_graph_makes_the_gradient_differentiable(device, dtype, a):
    at = torch.tensor(a, device=device, dtype=dtype, requires_grad=True)
    (first,) = torch.autograd.grad((3 * at**3).sum(), at, create_graph=True)
    assert first.requires_grad is True
    assert_close(first, 9 * a**2, what="dQ/da")
    (second,) = torch.autograd.grad(first.sum(), at)
    assert_close(second, oracles.cubic_second(a, np.ones_like(a)), what="d2Q/da2")


@behavior("autograd.grad.create_graph")
def test_second_derivative_of_10w_squared_plus_25_is_20(device):
    w = torch.tensor([2.0, -1.5], device=device, requires_grad=True)
    (dz,) = torch.autograd.grad((10 * w**2 + 25).sum(), w, create_graph=True)
    dz.sum().backward()  # the second derivative accumulates into w.grad
    assert_close(w.grad, oracles.square_scaled_second([2.0, -1.5]), what="d2z/dw2")


@behavior("autograd.grad.create_graph")
@given(a=arrays(shapes(), 0.25, 2.0))
@example(a=np.array([2.0, 3.0]))
def test_backward_with_create_graph_makes_grad_differentiable(device, dtype, a):
    # Tensor.backward(create_graph=True): .grad itself is built as a graph, so backpropagating
    # it again gives the second derivative d/da sum(9a**2) = 18a.
    at = torch.tensor(a, device=device, dtype=dtype, requires_grad=True)
    with warnings.catch_warnings():  # the documented reference-cycle warning; broken below
        warnings.simplefilter("ignore", UserWarning)
        (3 * at**3).sum().backward(create_graph=True)
    first = at.grad
    assert first.requires_grad is True and first.grad_fn is not None
    assert_close(first, 9 * a**2, what="dQ/da")
    at.grad = None  # break the cycle, and collect the second derivative alone
    first.sum().backward()
    assert_close(at.grad, oracles.cubic_second(a, np.ones_like(a)), what="d2Q/da2")


@behavior("autograd.grad.create_graph")
def test_autograd_backward_with_create_graph_makes_grad_differentiable(device):
    w = torch.tensor([2.0, -1.5], device=device, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.autograd.backward([(10 * w**2 + 25).sum()], create_graph=True)
    dz = w.grad
    assert dz.requires_grad is True
    w.grad = None
    dz.sum().backward()
    assert_close(w.grad, oracles.square_scaled_second([2.0, -1.5]), what="d2z/dw2")


@behavior("autograd.grad.allow_unused")
@pytest.mark.parametrize("position", [0, 1, 2])
def test_an_input_the_outputs_do_not_use_raises_unless_allow_unused(device, position):
    used = [torch.tensor([2.0, 3.0], device=device, requires_grad=True) for _ in range(2)]
    unused = torch.tensor([1.0, -1.0], device=device, requires_grad=True)  # requires grad too
    inputs = list(used)
    inputs.insert(position, unused)
    out = (used[0] ** 2 * used[1]).sum()
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        torch.autograd.grad(out, inputs, retain_graph=True)
    grads = torch.autograd.grad(out, inputs, allow_unused=True)
    assert grads[position] is None
    rest = [g for i, g in enumerate(grads) if i != position]
    assert [g.cpu().tolist() for g in rest] == [[8.0, 18.0], [4.0, 9.0]]  # 2 u0 u1, u0**2
    assert unused.grad is None


@behavior("autograd.grad.materialize_grads")
def test_materialize_grads_returns_zeros_for_an_unused_input(device):
    a = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    unused = torch.tensor([1.0, -1.0, 4.0], device=device, requires_grad=True)
    ga, gu = torch.autograd.grad((a**2).sum(), [a, unused], allow_unused=True,
                                 materialize_grads=True)
    assert ga.cpu().tolist() == [4.0, 6.0]
    assert gu is not None and gu.shape == unused.shape and gu.device == unused.device
    assert gu.cpu().tolist() == [0.0, 0.0, 0.0]


@behavior("autograd.grad.materialize_grads_allow_unused")
def test_materialize_grads_implies_allow_unused_and_refuses_an_explicit_false(device):
    a = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    unused = torch.tensor([1.0, -1.0], device=device, requires_grad=True)
    _, gu = torch.autograd.grad((a**2).sum(), [a, unused], materialize_grads=True)
    assert gu.cpu().tolist() == [0.0, 0.0]  # allow_unused not passed: no error, zeros
    with pytest.raises(ValueError, match="allow_unused"):
        torch.autograd.grad((a**2).sum(), [a, unused], allow_unused=False,
                            materialize_grads=True)
