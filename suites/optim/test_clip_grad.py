"""Gradient clipping (torch.nn.utils): clip_grad_norm_'s total norm and scaling,
error_if_nonfinite, the foreach implementation, clip_grad_value_, and (2.6) get_total_norm +
clip_grads_with_norm_.

Expected values come from oracles_autograd: the norm of all gradients concatenated, and the
documented scaling min(max_norm / (total + 1e-6), 1). Gradients are assigned to .grad directly
so only the clipping is under test.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from torchconform import assert_close, behavior, not_applicable, to_numpy
from torchconform import oracles_autograd as oracle
from torchconform.strategies import generators, shapes, signed_values

NORM_TYPES = [2.0, 1.0, 3.0, math.inf]


def _utils():
    return torch.nn.utils


def _params(grads, device, dtype=torch.float32, without_grad=0):
    """Parameters whose .grad are the given arrays, plus `without_grad` that have none."""
    params = []
    for g in grads:
        p = nn.Parameter(torch.zeros(np.shape(g), device=device, dtype=dtype))
        p.grad = torch.tensor(g, device=device, dtype=dtype)
        params.append(p)
    params += [nn.Parameter(torch.ones(2, device=device, dtype=dtype))
               for _ in range(without_grad)]
    return params


@st.composite
def gradient_sets(draw):
    """One to four gradients of up to 3x3 elements, their magnitude scaled by 10**k so the
    total norm falls on either side of max_norm = 1."""
    rng = draw(generators())
    sizes = draw(st.lists(shapes(max_dims=2, max_side=3), min_size=1, max_size=4))
    scale = 10.0 ** draw(st.integers(-2, 1))
    return [signed_values(rng, s) * scale for s in sizes]


def _example_grads():
    return [np.array([3.0, -4.0]), np.array([[12.0]])]  # 2-norm 13, 1-norm 19, inf-norm 12


#: Gradients of one shape (two biases, say), each scaled by the same factor: a scaling that
#: mixes up tensors of equal shape shows only here (torch_xla 2.9 writes the first gradient's
#: values into the second; docs/backends/xla.md).
SAME_SHAPE = [np.array([-1.5, 0.5]), np.array([-0.25, 2.0])]


# -- total norm -------------------------------------------------------------------------------

@behavior("optim.clip_grad.total_norm")
@given(grads=gradient_sets(), norm_type=st.sampled_from(NORM_TYPES))
@example(grads=_example_grads(), norm_type=2.0)
@example(grads=SAME_SHAPE, norm_type=2.0)
def test_returned_norm_is_the_norm_of_all_gradients_concatenated(device, grads, norm_type):
    params = _params(grads, device)
    total = _utils().clip_grad_norm_(params, max_norm=1e9, norm_type=norm_type)
    assert isinstance(total, torch.Tensor) and total.dim() == 0
    assert_close(total, oracle.total_norm(grads, norm_type), what=f"{norm_type}-norm")
    for p, g in zip(params, grads):  # far below max_norm: untouched
        assert_close(p.grad, g, what="gradient below max_norm")


@behavior("optim.clip_grad.total_norm")
@pytest.mark.parametrize("norm_type, expected", [(2.0, 13.0), (1, 19.0), (3.0, None),
                                                 (math.inf, 12.0), ("inf", 12.0)])
def test_documented_norm_types_and_parameters_without_grad(device, norm_type, expected):
    grads = _example_grads()
    params = _params(grads, device, without_grad=2)  # no .grad: left out of the norm
    params = params[2:] + params[:2]
    total = _utils().clip_grad_norm_(params, max_norm=100.0, norm_type=norm_type)
    if expected is None:
        expected = oracle.total_norm(grads, 3.0)  # (27 + 64 + 1728) ** (1/3)
    assert_close(total, expected, what=f"{norm_type}-norm")
    assert all(p.grad is None for p in params[:2])


@behavior("optim.clip_grad.total_norm")
def test_a_single_tensor_is_accepted(device):
    (p,) = _params([np.array([3.0, 4.0])], device)
    total = _utils().clip_grad_norm_(p, max_norm=1.0)
    assert_close(total, 5.0, what="2-norm")
    assert_close(p.grad, [0.6, 0.8], what="clipped gradient")


@behavior("optim.clip_grad.total_norm")
def test_norm_of_a_model_gradient_after_backward(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(device)
    model(torch.ones(5, 3, device=device)).pow(2).sum().backward()
    grads = [to_numpy(p.grad) for p in model.parameters()]
    total = _utils().clip_grad_norm_(model.parameters(), max_norm=1e9)
    assert_close(total, oracle.total_norm(grads), what="2-norm of the model's gradients")


# -- scaling ----------------------------------------------------------------------------------

@behavior("optim.clip_grad.scales_when_above")
@given(grads=gradient_sets(), norm_type=st.sampled_from(NORM_TYPES))
@example(grads=_example_grads(), norm_type=2.0)
@example(grads=[np.array([0.3, -0.4])], norm_type=2.0)
@example(grads=SAME_SHAPE, norm_type=2.0)
def test_gradients_are_scaled_in_place_exactly_when_the_norm_exceeds_max_norm(
        device, grads, norm_type):
    params = _params(grads, device)
    before = [p.grad for p in params]
    total = _utils().clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    want_total, want_grads = oracle.clip_grad_norm(grads, 1.0, norm_type)
    assert_close(total, want_total, what="returned norm (before clipping)")
    for p, old, want in zip(params, before, want_grads):
        assert p.grad is old  # modified in place
        assert_close(p.grad, want, what="clipped gradient")
    if want_total > 1.0:
        assert_close(oracle.total_norm([to_numpy(p.grad) for p in params], norm_type),
                     1.0, rtol=1e-5, atol=2e-6, what="norm after clipping")


@behavior("optim.clip_grad.scales_when_above")
def test_gradients_below_max_norm_are_bit_for_bit_unchanged(device, dtype):
    grads = [np.array([0.25, -0.5]), np.array([[0.125]])]
    params = _params(grads, device, dtype)
    _utils().clip_grad_norm_(params, max_norm=2.0)
    for p, g in zip(params, grads):
        assert p.grad.dtype == dtype and to_numpy(p.grad).tolist() == g.tolist()


@behavior("optim.clip_grad.scales_when_above")
def test_documented_scaling_in_each_dtype(device, dtype):
    params = _params(_example_grads(), device, dtype)  # 2-norm 13
    total = _utils().clip_grad_norm_(params, max_norm=1.0)
    _, want = oracle.clip_grad_norm(_example_grads(), 1.0)
    assert_close(total, 13.0, what="2-norm")
    for p, w in zip(params, want):
        assert_close(p.grad, w, what="gradient * 1 / (13 + 1e-6)")


# -- error_if_nonfinite -----------------------------------------------------------------------

@behavior("optim.clip_grad.error_if_nonfinite")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_non_finite_norm_raises_only_when_asked(device, bad, norm_type):
    grads = [np.array([1.0, bad]), np.array([2.0])]
    params = _params(grads, device)
    with pytest.raises(RuntimeError, match="non-finite"):
        _utils().clip_grad_norm_(params, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    for p, g in zip(params, grads):  # nothing was scaled
        np.testing.assert_array_equal(to_numpy(p.grad), g)
    total = _utils().clip_grad_norm_(params, 1.0, norm_type=norm_type)  # default: False
    assert not math.isfinite(total.item())
    if not math.isnan(bad):
        assert total.item() == math.inf


# -- foreach ----------------------------------------------------------------------------------

def _needs_foreach(device):
    if device.type not in ("cpu", "cuda"):
        not_applicable(f"foreach is documented for CPU and CUDA tensors, not {device.type}")


@behavior("optim.clip_grad.foreach")
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_foreach_and_for_loop_clip_norm_alike(device, norm_type):
    _needs_foreach(device)
    rng = np.random.default_rng(7)
    grads = [signed_values(rng, s) * 3 for s in [(3, 2), (4,), (), (2, 2)]]
    results = {}
    for foreach in (True, False):
        params = _params(grads, device)
        total = _utils().clip_grad_norm_(params, 1.0, norm_type=norm_type, foreach=foreach)
        results[foreach] = (total, [p.grad for p in params])
        want_total, want_grads = oracle.clip_grad_norm(grads, 1.0, norm_type)
        assert_close(total, want_total, what=f"total norm, foreach={foreach}")
        for got, want in zip(results[foreach][1], want_grads):
            assert_close(got, want, what=f"clipped gradient, foreach={foreach}")
    assert_close(results[True][0], to_numpy(results[False][0]), what="foreach vs for-loop")


@behavior("optim.clip_grad.foreach")
def test_foreach_and_for_loop_clip_values_alike(device):
    _needs_foreach(device)
    grads = [np.array([[3.0, -0.25], [-2.0, 0.5]]), np.array([1.5, -1.5, 0.0])]
    for foreach in (True, False):
        params = _params(grads, device)
        _utils().clip_grad_value_(params, 1.0, foreach=foreach)
        for p, want in zip(params, oracle.clip_grad_value(grads, 1.0)):
            assert_close(p.grad, want, what=f"clamped gradient, foreach={foreach}")


# -- clip_grad_value_ -------------------------------------------------------------------------

@behavior("optim.clip_grad.value")
@given(grads=gradient_sets(), clip_value=st.sampled_from([0.05, 0.5, 2.0]))
@example(grads=[np.array([3.0, -4.0, 0.5, -0.5])], clip_value=1.0)
def test_clip_grad_value_clamps_every_element(device, grads, clip_value):
    params = _params(grads, device, without_grad=1)  # clamping is exact in any dtype
    before = [p.grad for p in params]
    assert _utils().clip_grad_value_(params, clip_value) is None
    for p, old, want in zip(params, before, oracle.clip_grad_value(grads, clip_value)):
        assert p.grad is old
        assert_close(p.grad, want, what="clamped gradient")
    assert params[-1].grad is None


@behavior("optim.clip_grad.value")
def test_clip_grad_value_on_a_single_tensor(device):
    (p,) = _params([np.array([3.0, -0.5])], device)
    _utils().clip_grad_value_(p, 1.0)
    assert p.grad.cpu().tolist() == [1.0, -0.5]


# -- get_total_norm + clip_grads_with_norm_ (2.6) ---------------------------------------------

@behavior("optim.clip_grad.split_functions")
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_get_total_norm_then_clip_grads_with_norm(device, norm_type, max_norm):
    rng = np.random.default_rng(3)
    grads = [signed_values(rng, s) for s in [(2, 3), (3,)]]
    params = _params(grads, device)
    total = _utils().get_total_norm([p.grad for p in params], norm_type=norm_type)
    want_total, want_grads = oracle.clip_grad_norm(grads, max_norm, norm_type)
    assert_close(total, want_total, what="get_total_norm")
    assert _utils().clip_grads_with_norm_(params, max_norm, total) is None
    for p, want in zip(params, want_grads):
        assert_close(p.grad, want, what="clip_grads_with_norm_")
