"""backward() adds into .grad until something resets it (seeds 000, 003, 004).

On integer-valued points the gradients of these polynomials are exact in float32, so k passes
are compared with k times the closed form using ==: an accumulation that drops or repeats a
pass cannot hide in a tolerance.
"""


import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from torchconform import assert_close, behavior, oracles
from torchconform.seed_models import LinearRegression
from torchconform.strategies import generators, integer_arrays, shapes, signed_values
from torchconform.tolerances import sum_atol


def _exact(tensor, expected):
    assert np.array_equal(tensor.detach().cpu().double().numpy(), expected), (
        f"got {tensor.detach().cpu().numpy()}, expected {expected}")


@behavior("autograd.accumulation.repeated_backward")
@given(w=integer_arrays(shapes(max_dims=2)), k=st.integers(1, 4))
@example(w=np.array(2.0), k=3)
def test_k_backward_passes_leave_k_times_the_gradient(device, dtype, w, k):
    wt = torch.tensor(w, device=device, dtype=dtype, requires_grad=True)
    for _ in range(k):
        (10 * wt**2 + 25).sum().backward()  # a fresh graph each pass, as in a training loop
    _exact(wt.grad, k * oracles.square_scaled(w)[1])


@behavior("autograd.accumulation.repeated_backward")
def test_seed_004_second_backward_doubles_the_external_gradient_result(device):
    a = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    b = torch.tensor([6.0, 4.0], device=device, requires_grad=True)
    Q = 3 * a**3 - b**2
    Q.backward(gradient=torch.ones(2, device=device), retain_graph=True)
    Q.backward(gradient=torch.ones(2, device=device))
    assert a.grad.cpu().tolist() == [72.0, 162.0]
    assert b.grad.cpu().tolist() == [-24.0, -16.0]


@behavior("autograd.accumulation.different_losses_add")
@given(w=integer_arrays(shapes(max_dims=2)), c1=st.integers(-4, 4), c2=st.integers(-4, 4))
@example(w=np.array([2.0, -3.0]), c1=1, c2=3)
def test_gradients_of_different_losses_add_up(device, dtype, w, c1, c2):
    wt = torch.tensor(w, device=device, dtype=dtype, requires_grad=True)
    (c1 * wt**2).sum().backward()
    (c2 * wt).sum().backward()
    _exact(wt.grad, 2 * c1 * w + c2)


@behavior("autograd.accumulation.different_losses_add")
def test_autograd_backward_of_several_losses_sums_their_gradients(device):
    w = torch.tensor([2.0, -3.0], device=device, requires_grad=True)
    torch.autograd.backward([(w**2).sum(), (3 * w).sum(), (w**3).sum()])
    _exact(w.grad, 2 * np.array([2.0, -3.0]) + 3 + 3 * np.array([4.0, 9.0]))


@st.composite
def _batches(draw):
    """(x, y, weight, bias, k): k equal micro-batches of m rows through nn.Linear."""
    k, m = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    fan_in, fan_out = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    rng = draw(generators())
    return (signed_values(rng, (k * m, fan_in)), signed_values(rng, (k * m, fan_out), 0.25, 4.0),
            signed_values(rng, (fan_out, fan_in)), signed_values(rng, (fan_out,)), k)


_SEED_BATCHES = (np.arange(12.0).reshape(-1, 1), 2 * np.arange(12.0).reshape(-1, 1) + 1,
                 np.array([[0.5]]), np.array([-0.25]), 3)


@behavior("autograd.accumulation.micro_batches")
@given(batch=_batches())
@example(batch=_SEED_BATCHES)
def test_micro_batch_losses_divided_by_k_accumulate_the_full_batch_gradient(device, dtype,
                                                                            batch):
    x, y, weight, bias, k = batch
    model = LinearRegression(x.shape[1], y.shape[1]).to(device, dtype)
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor(weight, device=device, dtype=dtype))
        model.linear.bias.copy_(torch.tensor(bias, device=device, dtype=dtype))
    criterion = nn.MSELoss()
    xt = torch.tensor(x, device=device, dtype=dtype)
    yt = torch.tensor(y, device=device, dtype=dtype)
    for xs, ys in zip(xt.chunk(k), yt.chunk(k)):  # no zero_grad between micro-batches
        (criterion(model(xs), ys) / k).backward()

    _, grad_w, grad_b = oracles.linear_mse(x, weight, bias, y)  # the full batch at once
    r = np.abs(x) @ np.abs(weight).T + np.abs(bias) + np.abs(y)  # rounding scale per term
    d = 2 * r / r.size
    assert_close(model.linear.weight.grad, grad_w, atol=sum_atol(dtype, d.T @ np.abs(x)),
                 what="accumulated dL/dW")
    assert_close(model.linear.bias.grad, grad_b, atol=sum_atol(dtype, d.sum(axis=0)),
                 what="accumulated dL/db")


@behavior("autograd.accumulation.unused_leaf_stays_none")
@given(k=st.integers(1, 3))
@example(k=1)
def test_a_leaf_outside_the_graph_keeps_grad_none(device, k):
    used = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    unused = torch.tensor([1.0, 1.0], device=device, requires_grad=True)
    for _ in range(k):
        (10 * used**2 + 25).sum().backward()
    assert unused.grad is None
    _exact(used.grad, k * np.array([40.0, 60.0]))


@behavior("autograd.accumulation.unused_leaf_stays_none")
def test_parameters_of_an_unused_submodule_keep_grad_none(device):
    model = nn.Module()
    model.used = nn.Linear(2, 1).to(device)
    model.spare = nn.Linear(2, 1).to(device)
    model.used(torch.ones(3, 2, device=device)).sum().backward()
    assert all(p.grad is not None for p in model.used.parameters())
    assert all(p.grad is None for p in model.spare.parameters())


@behavior("autograd.accumulation.micro_batches")
def test_seed_micro_batches_accumulate_the_full_batch_gradient_in_every_mode(device, mode):
    """Seed 003's accumulation (k backward passes, no zero_grad between) through
    mode.module(model): compiled forward and backward accumulate into .grad like eager."""
    x, y, weight, bias, k = _SEED_BATCHES
    model = LinearRegression(1, 1).to(device)
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        model.linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    run = mode.module(model)
    xt = torch.tensor(x, device=device, dtype=torch.float32)
    yt = torch.tensor(y, device=device, dtype=torch.float32)
    for xs, ys in zip(xt.chunk(k), yt.chunk(k)):
        (nn.MSELoss()(run(xs), ys) / k).backward()
    _, grad_w, grad_b = oracles.linear_mse(x, weight, bias, y)
    r = np.abs(x) @ np.abs(weight).T + np.abs(bias) + np.abs(y)
    d = 2 * r / r.size
    assert_close(model.linear.weight.grad, grad_w,
                 atol=sum_atol(torch.float32, d.T @ np.abs(x)), what="accumulated dL/dW")
    assert_close(model.linear.bias.grad, grad_b, atol=sum_atol(torch.float32, d.sum(axis=0)),
                 what="accumulated dL/db")
