"""backward() computes the analytic chain-rule values (seeds 000, 001, 004).

Each function gets the seed's printed values, a Hypothesis property over values and shapes
against the numpy float64 closed form in torchconform.oracles, and gradcheck/gradgradcheck in
float64. gradcheck only proves that backward matches forward's finite differences (and its
rtol is 1e-3), so the closed forms are what pin the values.
"""

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.seed_models import HandLogisticRegression
from torchconform.strategies import arrays, generators, shapes, signed_values
from torchconform.tolerances import sum_atol

# gradcheck needs float64: through the dtype fixture, so devices without it skip the test.
FLOAT64 = pytest.mark.parametrize("dtype", [torch.float64], indirect=True, ids=["float64"])


def _leaf(values, device, dtype):
    return torch.tensor(values, device=device, dtype=dtype, requires_grad=True)


# Large examples: the properties draw at most 64 elements, so an operator path taken only for
# big tensors (vectorized or parallel kernels) would never run. 65 x 67 = 4355 elements.
_LARGE = (65, 67)
_LARGE_POSITIVE = np.linspace(0.25, 4.0, _LARGE[0] * _LARGE[1]).astype(np.float32).astype(
    np.float64).reshape(_LARGE)
_LARGE_SIGNED = signed_values(np.random.default_rng(2024), _LARGE)


# -- z = 10 w**2 + 25 (seed 001) -------------------------------------------------------------

@behavior("autograd.chain_rule.square_scaled")
def test_seed_001_gradient_of_10w_squared_plus_25_at_2_is_40(device):
    w = torch.tensor(2.0, device=device, requires_grad=True)  # the seed's code, verbatim
    y = w**2
    z = 10 * y + 25
    z.backward()
    assert z.item() == 65.0 and w.grad.item() == 40.0  # exact in float32


@behavior("autograd.chain_rule.square_scaled")
@given(w=arrays(shapes(), 0.25, 4.0))
@example(w=np.array(2.0))
@example(w=_LARGE_POSITIVE)
def test_backward_of_10w_squared_plus_25_is_20w(device, dtype, w):
    wt = _leaf(w, device, dtype)
    z = 10 * wt**2 + 25
    z.backward(torch.ones_like(z))
    value, grad = oracles.square_scaled(to_numpy(wt))
    assert_close(z, value, what="z")
    assert_close(wt.grad, grad, what="dz/dw")


# w**2 spelled every way torch offers: w * w has the same tensor on both sides of the product,
# so its gradient is the sum of both operands' contributions (product rule), 2w.
_SQUARES = {
    "pow": lambda w: w**2,
    "self_product": lambda w: w * w,
    "torch.mul": lambda w: torch.mul(w, w),
    "torch.square": lambda w: torch.square(w),
    "torch.pow": lambda w: torch.pow(w, 2),
}


@behavior("autograd.chain_rule.square_scaled")
@pytest.mark.parametrize("square", sorted(_SQUARES))
def test_every_spelling_of_w_squared_gives_20w(device, dtype, square):
    for w in (np.array([2.0, -0.5, 1.25]), _LARGE_SIGNED):
        wt = _leaf(w, device, dtype)
        z = 10 * _SQUARES[square](wt) + 25
        z.sum().backward()
        value, grad = oracles.square_scaled(w)
        assert_close(z, value, what=f"z ({square})")
        assert_close(wt.grad, grad, what=f"dz/dw ({square}, {w.size} elements)")


@behavior("autograd.chain_rule.square_scaled")
@FLOAT64
def test_10w_squared_plus_25_passes_gradcheck_and_gradgradcheck(device, dtype):
    w = torch.tensor([2.0, -0.5, 1.25], device=device, dtype=dtype, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: 10 * t**2 + 25, (w,))
    assert torch.autograd.gradgradcheck(lambda t: 10 * t**2 + 25, (w,))


# -- Q = 3 a**3 - b**2 with an external gradient (seed 004) -------------------------------------

@behavior("autograd.chain_rule.external_gradient")
def test_seed_004_external_gradient_gives_36_81_and_minus_12_minus_8(device):
    a = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    b = torch.tensor([6.0, 4.0], device=device, requires_grad=True)
    Q = 3 * a**3 - b**2
    Q.backward(gradient=torch.tensor([1.0, 1.0], device=device))
    assert a.grad.cpu().tolist() == [36.0, 81.0]  # 9 a**2, exact in float32
    assert b.grad.cpu().tolist() == [-12.0, -8.0]  # -2 b, as the seed prints


_Q_SHAPE = st.shared(shapes(max_dims=2), key="Q")


@behavior("autograd.chain_rule.external_gradient")
@given(a=arrays(_Q_SHAPE, 0.25, 2.0), b=arrays(_Q_SHAPE, 0.25, 4.0), v=arrays(_Q_SHAPE, 0.25, 2.0))
@example(a=np.array([2.0, 3.0]), b=np.array([6.0, 4.0]), v=np.array([1.0, 1.0]))  # seed 004
@example(a=np.array([2.0, 3.0]), b=np.array([6.0, 4.0]), v=np.array([0.5, -1.5]))
@example(a=_LARGE_SIGNED, b=2 * np.flipud(_LARGE_SIGNED).copy(), v=_LARGE_SIGNED.T.reshape(_LARGE))
def test_backward_with_external_gradient_is_the_vector_jacobian_product(device, dtype, a, b, v):
    at, bt = _leaf(a, device, dtype), _leaf(b, device, dtype)
    vt = torch.tensor(v, device=device, dtype=dtype)
    Q = 3 * at**3 - bt**2
    Q.backward(gradient=vt)
    value, grad_a, grad_b = oracles.cubic_minus_square(a, b, v)
    assert_close(Q, value, atol=sum_atol(dtype, 3 * np.abs(a) ** 3 + b**2), what="Q")
    assert_close(at.grad, grad_a, what="dQ/da . v")
    assert_close(bt.grad, grad_b, what="dQ/db . v")


# The same vector-Jacobian product through each API that takes the vector v: Tensor.backward
# (gradient=), torch.autograd.backward (grad_tensors=, one per output) and torch.autograd.grad
# (grad_outputs=, returned instead of accumulated).
def _vjp_backward(Q, v, a, b):
    Q.backward(gradient=v)
    return a.grad, b.grad


def _vjp_autograd_backward(Q, v, a, b):
    torch.autograd.backward([Q], grad_tensors=[v])
    return a.grad, b.grad


def _vjp_autograd_grad(Q, v, a, b):
    return torch.autograd.grad([Q], [a, b], grad_outputs=[v])


_VJP = {"Tensor.backward": _vjp_backward, "autograd.backward": _vjp_autograd_backward,
        "autograd.grad": _vjp_autograd_grad}


@behavior("autograd.chain_rule.external_gradient")
@pytest.mark.parametrize("api", sorted(_VJP))
def test_every_api_takes_the_external_gradient_as_the_vector(device, dtype, api):
    rng = np.random.default_rng(4)
    for shape in [(2,), (3, 4), _LARGE]:
        a, b = signed_values(rng, shape), signed_values(rng, shape, 0.25, 4.0)
        v = signed_values(rng, shape)
        at, bt = _leaf(a, device, dtype), _leaf(b, device, dtype)
        Q = 3 * at**3 - bt**2
        grad_a, grad_b = _VJP[api](Q, torch.tensor(v, device=device, dtype=dtype), at, bt)
        _, want_a, want_b = oracles.cubic_minus_square(a, b, v)
        assert_close(grad_a, want_a, what=f"dQ/da . v via {api} {shape}")
        assert_close(grad_b, want_b, what=f"dQ/db . v via {api} {shape}")


@behavior("autograd.chain_rule.external_gradient")
@pytest.mark.parametrize("api", ["autograd.backward", "autograd.grad"])
def test_each_output_gets_its_own_vector(device, api):
    # Two outputs, two vectors: the result is the sum of both products, 9a**2 v - 2a w.
    a = torch.tensor([2.0, 3.0, -1.0], device=device, requires_grad=True)
    v = torch.tensor([0.5, -1.5, 2.0], device=device)
    w = torch.tensor([4.0, 1.0, -3.0], device=device)
    outputs = [3 * a**3, -(a**2)]
    if api == "autograd.backward":
        torch.autograd.backward(outputs, grad_tensors=[v, w])
        got = a.grad
    else:
        (got,) = torch.autograd.grad(outputs, [a], grad_outputs=[v, w])
    an, vn, wn = to_numpy(a), to_numpy(v), to_numpy(w)
    assert_close(got, 9 * an**2 * vn - 2 * an * wn, what=f"sum of VJPs via {api}")


@behavior("autograd.chain_rule.external_gradient")
@FLOAT64
def test_3a_cubed_minus_b_squared_passes_gradcheck_and_gradgradcheck(device, dtype):
    a = torch.tensor([2.0, 3.0], device=device, dtype=dtype, requires_grad=True)
    b = torch.tensor([6.0, 4.0], device=device, dtype=dtype, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: 3 * x**3 - y**2, (a, b))
    assert torch.autograd.gradgradcheck(lambda x, y: 3 * x**3 - y**2, (a, b))


# -- o = mean(3 (x + 3)**2) (seed 000) ---------------------------------------------------------

@behavior("autograd.chain_rule.mean_scaled_square")
def test_seed_000_mean_of_3_x_plus_3_squared_gives_2_6667(device):
    x = torch.ones(3, 3, device=device, requires_grad=True)
    y = x + 3
    z = 3 * (y**2)
    o = z.mean()
    o.backward()
    assert_close(x.grad, np.full((3, 3), 8 / 3), what="do/dx")  # the seed prints 2.6667
    assert_close(o, 48.0, what="o")


@behavior("autograd.chain_rule.mean_scaled_square")
@given(x=arrays(shapes(max_dims=3), 0.25, 4.0))
@example(x=np.ones((3, 3)))
@example(x=_LARGE_SIGNED)
def test_backward_of_mean_3_x_plus_3_squared_is_6_x_plus_3_over_n(device, dtype, x):
    xt = _leaf(x, device, dtype)
    o = (3 * (xt + 3) ** 2).mean()
    o.backward()
    value, grad = oracles.mean_scaled_square(to_numpy(xt))
    assert_close(xt.grad, grad, what="do/dx")
    # A mean of positive terms: its rounding error is relative to the result itself.
    assert_close(o, value, what="o")


@behavior("autograd.chain_rule.mean_scaled_square")
@FLOAT64
def test_mean_3_x_plus_3_squared_passes_gradcheck_and_gradgradcheck(device, dtype):
    x = torch.linspace(-2, 2, 6, device=device, dtype=dtype).view(2, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: (3 * (t + 3) ** 2).mean(), (x,))
    assert torch.autograd.gradgradcheck(lambda t: (3 * (t + 3) ** 2).mean(), (x,))


# -- MSE of a linear model (seeds 000-002) -------------------------------------------------------

def _linear(weight, bias, device, dtype):
    layer = nn.Linear(weight.shape[1], weight.shape[0]).to(device, dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, device=device, dtype=dtype))
        layer.bias.copy_(torch.tensor(bias, device=device, dtype=dtype))
    return layer


def _mse_magnitude(x, weight, bias, y):
    """Sum of |terms| behind each element of dL/dW and dL/db (their rounding scale)."""
    r = np.abs(x) @ np.abs(weight).T + np.abs(bias) + np.abs(y)
    d = 2 * r / r.size
    return d.T @ np.abs(x), d.sum(axis=0)


@st.composite
def _linear_problems(draw):
    """(x, weight, bias, y) for a batch of rows through an nn.Linear(fan_in, fan_out)."""
    rows, fan_in, fan_out = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(
        st.integers(1, 3))
    rng = draw(generators())
    return (signed_values(rng, (rows, fan_in)), signed_values(rng, (fan_out, fan_in)),
            signed_values(rng, (fan_out,)), signed_values(rng, (rows, fan_out), 0.25, 4.0))


_SEED_DATA = (np.arange(11.0).reshape(-1, 1), np.array([[0.5]]), np.array([-0.25]),
              2 * np.arange(11.0).reshape(-1, 1) + 1)  # seeds 000-002: y = 2x + 1


@behavior("autograd.chain_rule.linear_mse")
@given(problem=_linear_problems())
@example(problem=_SEED_DATA)
def test_backward_of_mse_of_linear_model_is_the_closed_form(device, dtype, problem):
    x, weight, bias, y = problem
    layer = _linear(weight, bias, device, dtype)
    xt = torch.tensor(x, device=device, dtype=dtype)
    yt = torch.tensor(y, device=device, dtype=dtype)
    loss = nn.MSELoss()(layer(xt), yt)
    loss.backward()
    value, grad_w, grad_b = oracles.linear_mse(x, weight, bias, y)
    mag_w, mag_b = _mse_magnitude(x, weight, bias, y)
    assert_close(layer.weight.grad, grad_w, atol=sum_atol(dtype, mag_w), what="dL/dW")
    assert_close(layer.bias.grad, grad_b, atol=sum_atol(dtype, mag_b), what="dL/db")
    assert_close(loss, value, atol=sum_atol(dtype, value), what="loss")


@behavior("autograd.chain_rule.linear_mse")
@FLOAT64
def test_mse_of_linear_model_passes_gradcheck_and_gradgradcheck(device, dtype):
    x = torch.linspace(0, 1, 8, device=device, dtype=dtype).view(4, 2)
    y = torch.linspace(-1, 1, 4, device=device, dtype=dtype).view(4, 1)
    w = torch.tensor([[0.5, -1.0]], device=device, dtype=dtype, requires_grad=True)
    b = torch.tensor([0.25], device=device, dtype=dtype, requires_grad=True)

    def mse(weight, bias):
        return nn.functional.mse_loss(nn.functional.linear(x, weight, bias), y)

    assert torch.autograd.gradcheck(mse, (w, b))
    assert torch.autograd.gradgradcheck(mse, (w, b))


# -- seed 000's logistic regression with a hand-written backward --------------------------------

@st.composite
def _logistic_problems(draw):
    """(x, labels, W, b): x holds n samples of dim features in its columns, as in seed 000."""
    dim, n = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    rng = draw(generators())
    labels = rng.integers(0, 2, size=(1, n)).astype(np.float64)
    # Small weights keep |W @ x + b| <= 2.25, so y_hat stays within [0.09, 0.91]: the seed's
    # loss goes through log(1 - y_hat), whose float32 rounding grows like 1 / (1 - y_hat).
    return (signed_values(rng, (dim, n)), labels, signed_values(rng, (1, dim), 0.0625, 0.25),
            signed_values(rng, (), 0.0625, 0.25))


@behavior("autograd.chain_rule.hand_written_backward")
@given(problem=_logistic_problems())
@example(problem=(np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.75, -0.5, -2.0]]),
                  np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[0.5, -0.25]]), np.array(0.125)))
def test_autograd_equals_seed_000_hand_written_logistic_regression_backward(device, dtype,
                                                                            problem):
    x, y, W, b = problem
    n = x.shape[1]
    model = HandLogisticRegression(x.shape[0], device=device, dtype=dtype)
    # Non-zero weights: with the seed's zero initialization y_hat is 0.5 everywhere.
    model.W, model.b = _leaf(W, device, dtype), _leaf(b, device, dtype)
    xt = torch.tensor(x, device=device, dtype=dtype)
    yt = torch.tensor(y, device=device, dtype=dtype)
    y_hat = model(xt)
    loss = -(yt * torch.log(y_hat) + (1 - yt) * torch.log(1 - y_hat)).mean()
    loss.backward()
    model.backward(xt, y_hat.detach(), yt)  # the seed's hand-written gradients

    value, p, grad_w, grad_b = oracles.logistic_regression(x, W, b, y)
    # Rounding scale: the sum of |terms| of (y_hat - y) @ x.T / n; autograd's path through
    # log(y_hat) and log(1 - y_hat) also amplifies rounding by 1 / min(y_hat, 1 - y_hat) (< 11).
    amplified = np.abs(p - y) / np.minimum(p, 1 - p)
    mag_w, mag_b = np.abs(p - y) @ np.abs(x).T / n, np.sum(np.abs(p - y)) / n
    auto_w, auto_b = amplified @ np.abs(x).T / n, np.sum(amplified) / n
    assert_close(y_hat, p, what="y_hat")
    assert_close(loss, value, atol=sum_atol(dtype, value), what="loss")
    for what, got, want, mag in [("autograd dL/dW", model.W.grad, grad_w, auto_w),
                                 ("autograd dL/db", model.b.grad, grad_b, auto_b),
                                 ("hand-written dL/dW", model.grad["dw"], grad_w, mag_w),
                                 ("hand-written dL/db", model.grad["db"], grad_b, mag_b)]:
        assert_close(got, want, atol=sum_atol(dtype, mag), what=what)


@behavior("autograd.chain_rule.hand_written_backward")
@FLOAT64
def test_logistic_regression_loss_passes_gradcheck_and_gradgradcheck(device, dtype):
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], device=device, dtype=dtype)
    y = torch.tensor([[1.0, 0.0, 1.0]], device=device, dtype=dtype)
    W = torch.tensor([[0.25, -0.5]], device=device, dtype=dtype, requires_grad=True)
    b = torch.tensor(0.125, device=device, dtype=dtype, requires_grad=True)

    def loss(weight, bias):
        y_hat = 1 / (1 + torch.exp(-(weight @ x + bias)))  # seed 000's sigmoid
        return -(y * torch.log(y_hat) + (1 - y) * torch.log(1 - y_hat)).mean()

    assert torch.autograd.gradcheck(loss, (W, b))
    assert torch.autograd.gradgradcheck(loss, (W, b))


@behavior("autograd.chain_rule.linear_mse")
def test_seed_linear_model_loss_and_gradients_in_every_mode(device, mode):
    """The seeds' y = 2x + 1 regression, forward and backward through mode.module(layer):
    torch.compile must give the closed form too (`--mode compile`)."""
    x, weight, bias, y = _SEED_DATA
    layer = _linear(weight, bias, device, torch.float32)
    model = mode.module(layer)
    xt = torch.tensor(x, device=device, dtype=torch.float32)
    yt = torch.tensor(y, device=device, dtype=torch.float32)
    for _ in range(2):  # a second call runs the compiled graph from the cache
        layer.zero_grad()
        loss = nn.MSELoss()(model(xt), yt)
        loss.backward()
        value, grad_w, grad_b = oracles.linear_mse(x, weight, bias, y)
        mag_w, mag_b = _mse_magnitude(x, weight, bias, y)
        assert_close(loss, value, atol=sum_atol(torch.float32, value), what="loss")
        assert_close(layer.weight.grad, grad_w, atol=sum_atol(torch.float32, mag_w),
                     what="dL/dW")
        assert_close(layer.bias.grad, grad_b, atol=sum_atol(torch.float32, mag_b), what="dL/db")


@behavior("autograd.chain_rule.mlp_mse")
def test_two_layer_network_output_and_gradients_in_every_mode(device, mode):
    """nn.Sequential(Linear, Tanh, Linear) with MSELoss: output and every parameter's gradient
    equal the float64 chain rule (oracles.mlp_mse), eagerly and compiled."""
    rng = np.random.default_rng(5)
    values = [rng.uniform(-1, 1, s) for s in [(4, 3), (4,), (2, 4), (2,)]]
    x, y = rng.uniform(-2, 2, (5, 3)), rng.uniform(-2, 2, (5, 2))
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(device)
    with torch.no_grad():
        for p, v in zip(net.parameters(), values):
            p.copy_(torch.tensor(v, dtype=torch.float32))
    model = mode.module(net)
    out = model(torch.tensor(x, dtype=torch.float32, device=device))
    nn.functional.mse_loss(out, torch.tensor(y, dtype=torch.float32, device=device)).backward()
    _, expected_out, expected_grads = oracles.mlp_mse(x, *values, y)
    assert_close(out, expected_out, what="output")
    for name, p, want in zip(["w1", "b1", "w2", "b2"], net.parameters(), expected_grads):
        assert_close(p.grad, want, what=f"dL/d{name}")
