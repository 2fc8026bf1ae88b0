"""Custom torch.autograd.Function: saved tensors, needs_input_grad, mark_dirty,
mark_non_differentiable, set_materialize_grads, once_differentiable, and gradcheck of a user
Function (which must accept a right backward and reject a wrong one).

The Functions compute closed forms (x**3, x * w) whose gradients the numpy oracles give.
"""

import importlib

import numpy as np
import pytest
import torch
from hypothesis import example, given

from torchconform import assert_close, behavior
from torchconform import oracles_autograd as oracle
from torchconform.strategies import generators, shapes, signed_values

Function = torch.autograd.Function
FLOAT64 = pytest.mark.parametrize("dtype", [torch.float64], indirect=True, ids=["float64"])


class Cube(Function):
    """y = x**3, backward 3 x**2 g from the saved input."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad


class Product(Function):
    """y = x * w: backward needs both saved tensors, in the order they were saved."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return grad * w, grad * x


def _tensor(values, device, dtype=torch.float32, requires_grad=True):
    return torch.tensor(values, device=device, dtype=dtype, requires_grad=requires_grad)


# -- save_for_backward ------------------------------------------------------------------------

@behavior("autograd.function.save_for_backward")
@given(rng=generators(), shape=shapes())
@example(rng=np.random.default_rng(0), shape=(3,))
def test_saved_tensors_come_back_in_order_and_give_the_closed_form(device, dtype, rng, shape):
    x, w, v = (signed_values(rng, shape) for _ in range(3))
    xt, wt = _tensor(x, device, dtype), _tensor(w, device, dtype)
    y = Product.apply(xt, wt)
    y.backward(torch.tensor(v, device=device, dtype=dtype))
    value, dx, dw = oracle.scaled_product(x, w, v)
    assert_close(y, value, what="x * w")
    assert_close(xt.grad, dx, what="dL/dx = w v")
    assert_close(wt.grad, dw, what="dL/dw = x v")


@behavior("autograd.function.save_for_backward")
def test_a_saved_input_gives_the_cube_gradient(device):
    x = _tensor([0.5, -1.5, 2.0], device)
    v = [1.0, 2.0, -0.5]
    Cube.apply(x).backward(torch.tensor(v, device=device))
    assert_close(x.grad, oracle.cube([0.5, -1.5, 2.0], v)[1], what="3 x**2 v")


@behavior("autograd.function.saved_tensor_version_check")
def test_modifying_a_saved_tensor_in_place_makes_backward_raise(device):
    a = _tensor([1.0, 2.0], device)
    b = a * 1  # a non-leaf, so it may be modified in place
    y = Cube.apply(b)
    b.add_(1.0)  # the tensor Cube saved has changed since forward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# -- needs_input_grad -------------------------------------------------------------------------

class _Recorder(Function):
    """forward(x, y, k, z) = (x + y + z) * k; backward records ctx.needs_input_grad."""

    seen = []

    @staticmethod
    def forward(ctx, x, y, k, z):
        ctx.k = k
        return (x + y + z) * k

    @staticmethod
    def backward(ctx, grad):
        _Recorder.seen.append(tuple(ctx.needs_input_grad))
        g = grad * ctx.k
        return (g if ctx.needs_input_grad[0] else None, None, None,
                g if ctx.needs_input_grad[3] else None)


@behavior("autograd.function.needs_input_grad")
@pytest.mark.parametrize("x_grad, z_grad", [(True, False), (False, True), (True, True)])
def test_needs_input_grad_has_one_flag_per_input(device, x_grad, z_grad):
    _Recorder.seen.clear()
    x = _tensor([1.0, 2.0], device, requires_grad=x_grad)
    y = _tensor([3.0, 4.0], device, requires_grad=False)
    z = _tensor([5.0, 6.0], device, requires_grad=z_grad)
    _Recorder.apply(x, y, 3.0, z).sum().backward()
    assert _Recorder.seen == [(x_grad, False, False, z_grad)]
    for t, wanted in ((x, x_grad), (z, z_grad)):
        assert (t.grad.cpu().tolist() == [3.0, 3.0]) if wanted else t.grad is None


# -- mark_dirty -------------------------------------------------------------------------------

class AddOneInPlace(Function):
    @staticmethod
    def forward(ctx, x):
        x.add_(1.0)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


@behavior("autograd.function.mark_dirty")
def test_in_place_function_returns_the_marked_input_with_its_grad_fn(device):
    a = _tensor([1.0, 2.0], device)
    b = a * 2
    out = AddOneInPlace.apply(b)
    assert out is b  # the modified input itself
    assert "AddOneInPlace" in type(b.grad_fn).__name__
    assert b.cpu().tolist() == [3.0, 5.0]
    (out * torch.tensor([3.0, -1.0], device=device)).sum().backward()
    assert a.grad.cpu().tolist() == [6.0, -2.0]  # d/da of (2a + 1) * c = 2c


@behavior("autograd.function.mark_dirty")
def test_in_place_function_on_a_leaf_that_requires_grad_raises(device):
    a = _tensor([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        AddOneInPlace.apply(a)


# -- mark_non_differentiable ------------------------------------------------------------------

class AbsWithSign(Function):
    """(|x|, sign(x)): the sign is a float output marked non-differentiable."""

    received = []

    @staticmethod
    def forward(ctx, x):
        sign = torch.sign(x)
        ctx.mark_non_differentiable(sign)
        ctx.save_for_backward(sign)
        return x.abs(), sign

    @staticmethod
    def backward(ctx, grad_abs, grad_sign):
        AbsWithSign.received.append(grad_sign)
        (sign,) = ctx.saved_tensors
        return grad_abs * sign


@behavior("autograd.function.mark_non_differentiable")
def test_non_differentiable_output_does_not_require_grad_and_gets_zeros(device):
    AbsWithSign.received.clear()
    x = _tensor([-2.0, 0.5, 3.0], device)
    value, sign = AbsWithSign.apply(x)
    assert value.requires_grad is True
    assert sign.requires_grad is False and sign.grad_fn is None
    (value * torch.tensor([1.0, 2.0, 3.0], device=device)).sum().backward()
    (grad_sign,) = AbsWithSign.received
    assert grad_sign is not None and grad_sign.shape == sign.shape
    assert grad_sign.cpu().tolist() == [0.0, 0.0, 0.0]
    assert x.grad.cpu().tolist() == [-1.0, 2.0, 3.0]  # sign(x) * v


# -- set_materialize_grads --------------------------------------------------------------------

def _two_outputs(materialize):
    class TwoOutputs(Function):
        received = []

        @staticmethod
        def forward(ctx, x):
            if not materialize:
                ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g_double, g_triple):
            TwoOutputs.received.append((g_double, g_triple))
            grad = g_double * 2
            return grad if g_triple is None else grad + g_triple * 3

    return TwoOutputs


@behavior("autograd.function.set_materialize_grads")
@pytest.mark.parametrize("materialize", [True, False])
def test_unused_output_gradient_is_zeros_or_none(device, materialize):
    fn = _two_outputs(materialize)
    x = _tensor([1.0, -1.0], device)
    doubled, _ = fn.apply(x)  # only the first output reaches the loss
    doubled.sum().backward()
    ((g_double, g_triple),) = fn.received
    assert g_double.cpu().tolist() == [1.0, 1.0]
    if materialize:
        assert g_triple is not None and g_triple.cpu().tolist() == [0.0, 0.0]
    else:
        assert g_triple is None
    assert x.grad.cpu().tolist() == [2.0, 2.0]


# -- once_differentiable ----------------------------------------------------------------------

def _once_differentiable_cube():
    # Built at call time so the decorator is whatever torch provides now.
    once_differentiable = importlib.import_module("torch.autograd.function").once_differentiable

    class OnceCube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        @once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * grad

    return OnceCube


@behavior("autograd.function.once_differentiable")
def test_once_differentiable_gives_first_derivatives_and_refuses_second(device):
    x = _tensor([2.0, -0.5], device)
    y = _once_differentiable_cube().apply(x)
    # dL/dx of L = sum(y**2): 2 y 3 x**2 = 6 x**5; its incoming gradient 2y requires grad.
    (first,) = torch.autograd.grad((y**2).sum(), x, create_graph=True)
    assert_close(first, 6 * np.array([2.0, -0.5]) ** 5, what="6 x**5")
    with pytest.raises(RuntimeError, match="once_differentiable"):
        first.sum().backward()


@behavior("autograd.function.once_differentiable")
def test_without_create_graph_once_differentiable_backward_accumulates(device):
    x = _tensor([2.0, -0.5], device)
    _once_differentiable_cube().apply(x).backward(torch.tensor([1.0, 4.0], device=device))
    assert_close(x.grad, oracle.cube([2.0, -0.5], [1.0, 4.0])[1], what="3 x**2 v")


# -- gradcheck of a user Function -------------------------------------------------------------

class WrongCube(Function):
    """Forward x**3, backward 1% off: the kind of bug gradcheck exists to find."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3.03 * x**2 * grad


@behavior("autograd.function.gradcheck_accepts")
@FLOAT64
def test_gradcheck_accepts_correct_user_functions(device, dtype):
    x = _tensor([0.5, -1.5, 2.0], device, dtype)
    w = _tensor([[1.25, -0.75], [2.0, 0.5]], device, dtype)
    assert torch.autograd.gradcheck(Cube.apply, (x,)) is True
    assert torch.autograd.gradcheck(Product.apply, (w, w.detach().flip(0).requires_grad_()))


@behavior("autograd.function.gradcheck_rejects")
@FLOAT64
def test_gradcheck_rejects_a_backward_that_is_one_percent_off(device, dtype):
    x = _tensor([0.5, -1.5, 2.0], device, dtype)
    error = importlib.import_module("torch.autograd.gradcheck").GradcheckError
    assert issubclass(error, RuntimeError)
    with pytest.raises(error, match="Jacobian mismatch"):
        torch.autograd.gradcheck(WrongCube.apply, (x,))
    assert torch.autograd.gradcheck(WrongCube.apply, (x,), raise_exception=False) is False
