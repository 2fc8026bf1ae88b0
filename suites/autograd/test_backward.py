"""What backward() accepts and refuses, and which tensors it fills."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, oracles
from torchconform.strategies import arrays, shapes, signed_values


def _non_leaf_grad(tensor):
    """tensor.grad of a non-leaf, without the warning torch emits for reading it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return tensor.grad


@behavior("autograd.backward.non_scalar_needs_gradient")
@given(shape=shapes(max_dims=2).filter(lambda s: int(np.prod(s)) > 1))
@example(shape=(2,))
def test_backward_of_a_non_scalar_without_gradient_raises(device, shape):
    a = torch.full(shape, 2.0, device=device, requires_grad=True)
    Q = 3 * a**3
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        Q.backward()
    assert a.grad is None


@behavior("autograd.backward.non_scalar_needs_gradient")
def test_backward_of_a_one_element_output_needs_no_gradient(device):
    a = torch.tensor([2.0], device=device, requires_grad=True)
    (3 * a**3).backward()  # one element counts as a scalar
    assert a.grad.cpu().tolist() == [36.0]


# Gradients whose shape differs from the (2, 3) output: broadcastable ones included.
_WRONG_SHAPES = [(), (1,), (3,), (1, 3), (2, 1), (3, 2), (1, 2, 3), (6,)]


def _vjp_with(api, out, leaf, vector):
    if api == "Tensor.backward":
        out.backward(vector)
    elif api == "autograd.backward":
        torch.autograd.backward([out], grad_tensors=[vector])
    else:
        torch.autograd.grad([out], [leaf], grad_outputs=[vector])


@behavior("autograd.backward.gradient_shape")
@pytest.mark.parametrize("api", ["Tensor.backward", "autograd.backward", "autograd.grad"])
def test_a_gradient_of_another_shape_than_the_output_raises(device, api):
    a = torch.full((2, 3), 2.0, device=device, requires_grad=True)
    for shape in _WRONG_SHAPES:
        out = 3 * a**3
        with pytest.raises(RuntimeError, match="Mismatch in shape"):
            _vjp_with(api, out, a, torch.ones(shape, device=device))
        assert a.grad is None, f"gradient of shape {shape} was accepted"
    _vjp_with("Tensor.backward", 3 * a**3, a, torch.ones(2, 3, device=device))  # the right one
    assert a.grad.cpu().tolist() == [[36.0] * 3] * 2


@behavior("autograd.backward.gradient_shape")
def test_a_scalar_output_refuses_a_one_element_gradient_of_shape_1(device):
    w = torch.tensor(2.0, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (10 * w**2 + 25).backward(torch.ones(1, device=device))
    assert w.grad is None


@behavior("autograd.backward.freed_graph")
def test_second_backward_through_a_freed_graph_raises(device):
    w = torch.tensor(2.0, device=device, requires_grad=True)
    z = 10 * w**2 + 25
    z.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        z.backward()
    assert w.grad.item() == 40.0  # the failed pass added nothing


@behavior("autograd.backward.freed_graph")
@given(k=st.integers(2, 4))
@example(k=2)
def test_retain_graph_allows_repeated_backward_that_accumulates(device, k):
    w = torch.tensor(2.0, device=device, requires_grad=True)
    z = 10 * w**2 + 25
    for _ in range(k - 1):
        z.backward(retain_graph=True)
    z.backward()  # the last pass may free the graph
    assert w.grad.item() == 40.0 * k
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        z.backward()


@behavior("autograd.backward.freed_graph")
def test_autograd_grad_frees_the_graph_by_default_too(device):
    # retain_graph defaults to create_graph (False) in torch.autograd.grad as in backward().
    w = torch.tensor([2.0, -1.0], device=device, requires_grad=True)
    z = (10 * w**2 + 25).sum()
    (grad,) = torch.autograd.grad(z, w)
    assert grad.cpu().tolist() == [40.0, -20.0]
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(z, w)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        z.backward()
    assert w.grad is None


@behavior("autograd.backward.freed_graph")
def test_autograd_grad_with_retain_graph_can_run_again(device):
    w = torch.tensor([2.0, -1.0], device=device, requires_grad=True)
    z = (10 * w**2 + 25).sum()
    first = torch.autograd.grad(z, w, retain_graph=True)[0].cpu().tolist()
    second = torch.autograd.grad(z, w)[0].cpu().tolist()  # returned, so no accumulation
    assert first == second == [40.0, -20.0]
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(z, w)


@behavior("autograd.backward.non_leaf_grad")
def test_non_leaf_grad_stays_none_after_backward(device):
    x = torch.ones(3, 3, device=device, requires_grad=True)
    y = x + 3
    z = 3 * y**2
    z.mean().backward()
    assert x.is_leaf and not y.is_leaf and not z.is_leaf
    assert _non_leaf_grad(y) is None and _non_leaf_grad(z) is None
    assert y.retains_grad is False
    assert x.grad is not None


@behavior("autograd.backward.non_leaf_grad")
@given(x=arrays(shapes(max_dims=2), 0.25, 4.0))
@example(x=np.ones((3, 3)))
def test_retain_grad_makes_a_non_leaf_hold_its_gradient(device, dtype, x):
    xt = torch.tensor(x, device=device, dtype=dtype, requires_grad=True)
    y = xt + 3
    y.retain_grad()
    z = 3 * y**2
    z.mean().backward()
    assert y.retains_grad is True
    assert_close(y.grad, 6 * (x + 3) / x.size, what="do/dy")  # do/dy = 6y/n, y = x + 3
    assert_close(xt.grad, oracles.mean_scaled_square(x)[1], what="do/dx")
    assert _non_leaf_grad(z) is None  # only the tensor asked for keeps its gradient


@behavior("autograd.backward.non_leaf_grad")
@pytest.mark.parametrize("shape, k", [((), 2), ((3, 3), 2), ((2, 5), 3), ((65, 67), 2)])
def test_retained_non_leaf_grad_accumulates_like_a_leaf(device, dtype, shape, k):
    # Tensor.grad: later backward() calls add into it; a retained non-leaf is no exception.
    x = signed_values(np.random.default_rng(k), shape, 0.25, 4.0)
    xt = torch.tensor(x, device=device, dtype=dtype, requires_grad=True)
    y = xt + 3
    y.retain_grad()
    o = (3 * y**2).mean()
    for _ in range(k - 1):
        o.backward(retain_graph=True)
    o.backward()
    assert_close(y.grad, k * 6 * (x + 3) / x.size, what=f"do/dy after {k} passes")
    assert_close(xt.grad, k * oracles.mean_scaled_square(x)[1], what=f"do/dx after {k} passes")


@behavior("autograd.backward.no_grad_fn_raises")
def test_backward_on_a_tensor_without_grad_fn_raises(device):
    plain = torch.ones(3, device=device)
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        plain.sum().backward()


@behavior("autograd.backward.no_grad_fn_raises")
def test_backward_on_a_result_computed_under_no_grad_raises(device):
    w = torch.tensor(2.0, device=device, requires_grad=True)
    with torch.no_grad():
        z = 10 * w**2 + 25
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        z.backward()
    assert w.grad is None


def _exact(tensor, expected):
    assert np.array_equal(tensor.detach().cpu().double().numpy(), expected), (
        f"got {tensor.detach().cpu().numpy()}, expected {expected}")


_NAMES = ("a", "b", "c")


@behavior("autograd.backward.inputs")
@pytest.mark.parametrize("api", ["Tensor.backward", "autograd.backward"])
def test_backward_accumulates_only_into_the_listed_inputs(device, dtype, api):
    # f = sum(a * b * c): df/da = b c, df/db = a c, df/dc = a b (exact on integers). c starts
    # with a gradient already, a and b with None; every leaf not listed must stay as it was.
    # Every non-empty subset of the three leaves is listed once.
    rng = np.random.default_rng(8)
    w = [rng.integers(-8, 9, size=(2, 3)).astype(np.float64) for _ in _NAMES]
    a, b, c = w
    expected = {"a": b * c, "b": a * c, "c": 1 + a * b}
    for listed in itertools.chain.from_iterable(
            itertools.combinations(_NAMES, k) for k in (1, 2, 3)):
        leaves = {n: torch.tensor(v, device=device, dtype=dtype, requires_grad=True)
                  for n, v in zip(_NAMES, w)}
        leaves["c"].grad = torch.ones(2, 3, device=device, dtype=dtype)
        f = (leaves["a"] * leaves["b"] * leaves["c"]).sum()
        inputs = [leaves[n] for n in listed]
        if api == "Tensor.backward":
            f.backward(inputs=inputs)
        else:
            torch.autograd.backward([f], inputs=inputs)
        for name, t in leaves.items():
            if name in listed:
                _exact(t.grad, expected[name])
            elif name == "c":
                _exact(t.grad, np.ones((2, 3)))  # untouched, not zeroed or added to
            else:
                assert t.grad is None, f"{name} is not in inputs={listed} but got a gradient"
