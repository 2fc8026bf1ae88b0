"""Which results require grad: any operation, in place or not, on an input that does."""

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, to_numpy
from torchconform.strategies import signed_values
from torchconform.tolerances import sum_atol


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
