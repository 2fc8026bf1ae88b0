"""What backward() accepts and refuses, which tensors it fills, and what requires grad."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.strategies import arrays, shapes


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


_OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "sub": lambda a, b: a - b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**2 + b,
    "matmul": lambda a, b: a @ b.T,
    "exp": lambda a, b: torch.exp(a) * b,
    "mean": lambda a, b: (a * b).mean(),
    "index": lambda a, b: a[0] + b[-1],
    "view": lambda a, b: (a + b).view(-1),
}


@behavior("autograd.requires_grad.propagates")
@given(op=st.sampled_from(sorted(_OPS)), grad_a=st.booleans(), grad_b=st.booleans())
@example(op="mul", grad_a=True, grad_b=False)
@example(op="add", grad_a=False, grad_b=False)
def test_result_requires_grad_exactly_when_an_input_does(device, op, grad_a, grad_b):
    a = torch.tensor([[2.0, 3.0]], device=device, requires_grad=grad_a)
    b = torch.tensor([[6.0, 4.0]], device=device, requires_grad=grad_b)
    out = _OPS[op](a, b)
    tracked = grad_a or grad_b
    assert out.requires_grad is tracked
    assert (out.grad_fn is not None) is tracked
    assert out.is_leaf is (not tracked)


@behavior("autograd.requires_grad.propagates")
def test_seed_001_intermediate_of_w_squared_requires_grad(device):
    w = torch.tensor(2.0, device=device, requires_grad=True)
    y = w**2
    z = 10 * y + 25
    assert y.requires_grad and z.requires_grad
    assert w.is_leaf and not y.is_leaf and not z.is_leaf
    assert to_numpy(z) == 65.0


@behavior("autograd.variable.returns_tensor")
@pytest.mark.parametrize("requires_grad", [False, True])
def test_variable_returns_a_plain_tensor_sharing_the_data(device, requires_grad):
    data = torch.from_numpy(np.arange(11, dtype=np.float32).reshape(-1, 1)).to(device)
    v = torch.autograd.Variable(data, requires_grad=requires_grad)  # the seeds' inputs
    assert type(v) is torch.Tensor
    assert v.requires_grad is requires_grad and v.is_leaf
    assert v.data_ptr() == data.data_ptr() and v.device == data.device
    assert torch.equal(v.detach(), data)


@behavior("autograd.variable.returns_tensor")
def test_variable_with_requires_grad_receives_gradients(device):
    w = torch.autograd.Variable(torch.tensor([2.0], device=device), requires_grad=True)
    (10 * w**2 + 25).sum().backward()
    assert w.grad.cpu().tolist() == [40.0]
