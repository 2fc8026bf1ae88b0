"""What backward() accepts and refuses, which tensors it fills, and what requires grad."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.strategies import arrays, shapes, signed_values
from torchconform.tolerances import sum_atol


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


def _in_place(method):
    """An in-place op applied to a fresh copy of b with operand a: b.clone().method(a)."""
    def op(a, b):
        out = b.clone()  # a leaf that requires grad may not be modified in place
        return getattr(out, method)(a)
    return op


_OPS = {
    "add_": _in_place("add_"),
    "mul_": _in_place("mul_"),
    "sub_": _in_place("sub_"),
    "div_": _in_place("div_"),
    "iadd": _in_place("__iadd__"),
    "imul": _in_place("__imul__"),
    "isub": _in_place("__isub__"),
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
@example(op="add_", grad_a=True, grad_b=False)  # in place: the target starts untracked
@example(op="imul", grad_a=True, grad_b=False)
def test_result_requires_grad_exactly_when_an_input_does(device, op, grad_a, grad_b):
    a = torch.tensor([[2.0, 3.0]], device=device, requires_grad=grad_a)
    b = torch.tensor([[6.0, 4.0]], device=device, requires_grad=grad_b)
    out = _OPS[op](a, b)
    tracked = grad_a or grad_b
    assert out.requires_grad is tracked
    assert (out.grad_fn is not None) is tracked
    assert out.is_leaf is (not tracked)


@behavior("autograd.requires_grad.propagates")
@pytest.mark.parametrize("grad_b", [False, True], ids=["plain_target", "tracked_target"])
def test_backward_through_in_place_ops_gives_the_closed_form(device, dtype, grad_b):
    # x = b; x += a; x *= a; x -= a; x /= c  is  x = ((b + a) a - a) / c:
    # dx/da = (b + 2a - 1) / c and dx/db = a / c. The target x starts as a copy of b that
    # requires grad only when b does, so the in-place ops themselves must start the recording.
    rng = np.random.default_rng(11)
    for shape in [(2, 3), (65, 67)]:
        a, b, c = (signed_values(rng, shape) for _ in range(3))
        at = torch.tensor(a, device=device, dtype=dtype, requires_grad=True)
        bt = torch.tensor(b, device=device, dtype=dtype, requires_grad=grad_b)
        ct = torch.tensor(c, device=device, dtype=dtype)
        x = bt.clone()
        x.add_(at)
        x.mul_(at)
        x.sub_(at)
        x /= ct
        assert x.requires_grad and x.grad_fn is not None and not x.is_leaf
        x.sum().backward()
        # Where the terms cancel, rounding is relative to their magnitudes, not the result.
        mag_x = ((np.abs(b) + np.abs(a)) * np.abs(a) + np.abs(a)) / np.abs(c)
        mag_a = (np.abs(b) + 2 * np.abs(a) + 1) / np.abs(c)
        assert_close(x, ((b + a) * a - a) / c, atol=sum_atol(dtype, mag_x), what="x")
        assert_close(at.grad, (b + 2 * a - 1) / c, atol=sum_atol(dtype, mag_a),
                     what=f"dx/da {shape}")
        if grad_b:
            assert_close(bt.grad, a / c, what=f"dx/db {shape}")


@behavior("autograd.requires_grad.propagates")
def test_seed_001_intermediate_of_w_squared_requires_grad(device):
    w = torch.tensor(2.0, device=device, requires_grad=True)
    y = w**2
    z = 10 * y + 25
    assert y.requires_grad and z.requires_grad
    assert w.is_leaf and not y.is_leaf and not z.is_leaf
    assert to_numpy(z) == 65.0


@behavior("autograd.detach.shares_storage")
@pytest.mark.parametrize("shape", [(2,), (65, 67)])
def test_detach_returns_an_untracked_view_of_the_same_storage(device, shape):
    x = torch.full(shape, 2.0, device=device, requires_grad=True)
    for source in (x, 3 * x):  # a leaf and a non-leaf
        d = source.detach()
        assert d.requires_grad is False and d.grad_fn is None and d.is_leaf
        assert d.data_ptr() == source.data_ptr() and d.shape == source.shape
        assert d.device == source.device
        d.add_(1.0)  # seen through the original: no copy was made
        assert torch.equal(source.detach(), d)
    assert float(x.detach().flatten()[0]) == 3.0


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
