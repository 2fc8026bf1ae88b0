"""Cost of autograd: forward, backward and forward + backward of the seeds' functions and of a
small MLP at three widths; k accumulated backward passes against zeroing between them.

`backward` times backward() alone: a backward frees its graph, so one graph per timed call is
built in advance, untimed (no retain_graph involved). `forward_backward` also clears the
gradients first, as a training step would. Each benchmark asserts its gradients once against the
closed forms in torchconform.oracles.
"""

import pytest
import torch
from torch import nn

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.tolerances import sum_atol

PHASES = ["forward", "backward", "forward_backward"]


# -- the seeds' functions -------------------------------------------------------------------------

def square_scaled(device):
    """Seed 001: z = 10 w**2 + 25 at w = 2 (dz/dw = 40)."""
    w = torch.tensor(2.0, device=device, requires_grad=True)

    def forward():
        return 10 * w**2 + 25

    def check(out):
        value, grad = oracles.square_scaled(to_numpy(w))
        assert_close(out, value, what="z")
        assert_close(w.grad, grad, what="dz/dw")

    return [w], forward, {}, check


def cubic_minus_square(device):
    """Seed 004: Q = 3 a**3 - b**2 backpropagated with gradient = ones (9a**2, -2b)."""
    a = torch.tensor([2.0, 3.0], device=device, requires_grad=True)
    b = torch.tensor([6.0, 4.0], device=device, requires_grad=True)
    v = torch.ones(2, device=device)

    def forward():
        return 3 * a**3 - b**2

    def check(out):
        value, grad_a, grad_b = oracles.cubic_minus_square(to_numpy(a), to_numpy(b), to_numpy(v))
        assert_close(out, value, what="Q")
        assert_close(a.grad, grad_a, what="dQ/da . v")
        assert_close(b.grad, grad_b, what="dQ/db . v")

    return [a, b], forward, {"gradient": v}, check


def mean_scaled_square(device):
    """Seed 000: o = mean(3 (x + 3)**2) over x = ones(3, 3) (do/dx = 8/3)."""
    x = torch.ones(3, 3, device=device, requires_grad=True)

    def forward():
        return (3 * (x + 3) ** 2).mean()

    def check(out):
        value, grad = oracles.mean_scaled_square(to_numpy(x))
        assert_close(out, value, what="o")
        assert_close(x.grad, grad, what="do/dx")

    return [x], forward, {}, check


def run_phase(device_benchmark, phase, leaves, forward, backward_kwargs):
    """Time one phase; returns the output whose backward left the leaves' final gradients."""
    device_benchmark.extra_info["phase"] = phase

    def clear():
        for leaf in leaves:
            leaf.grad = None

    def step():
        clear()
        forward().backward(**backward_kwargs)

    if phase == "forward":
        out = device_benchmark(forward)
    elif phase == "backward":  # graphs are built untimed, one per timed backward
        device_benchmark.consuming(lambda graph: graph.backward(**backward_kwargs), forward)
        out = forward()
    else:
        device_benchmark(step)
        out = forward()
    clear()
    out.backward(**backward_kwargs)  # one pass whose gradients the caller checks
    return out


def run_seed(device_benchmark, phase, seed):
    leaves, forward, backward_kwargs, check = seed
    check(run_phase(device_benchmark, phase, leaves, forward, backward_kwargs))


@behavior("autograd.chain_rule.square_scaled")
@pytest.mark.parametrize("phase", PHASES)
def test_square_scaled(device, device_benchmark, phase):
    run_seed(device_benchmark, phase, square_scaled(device))


@behavior("autograd.chain_rule.external_gradient")
@pytest.mark.parametrize("phase", PHASES)
def test_cubic_minus_square(device, device_benchmark, phase):
    run_seed(device_benchmark, phase, cubic_minus_square(device))


@behavior("autograd.chain_rule.mean_scaled_square")
@pytest.mark.parametrize("phase", PHASES)
def test_mean_scaled_square(device, device_benchmark, phase):
    run_seed(device_benchmark, phase, mean_scaled_square(device))


# -- a small MLP ----------------------------------------------------------------------------------

BATCH = 64


class MLP(nn.Module):
    """width -> width (ReLU) -> 1: a regression MLP trained with MSELoss."""

    def __init__(self, width):
        super().__init__()
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)

    def features(self, x):
        return torch.relu(self.hidden(x))

    def forward(self, x):
        return self.out(self.features(x))


def mlp_problem(width, device):
    model = MLP(width).to(device)
    x = torch.randn(BATCH, width, device=device)
    y = torch.randn(BATCH, 1, device=device)
    return model, x, y


def check_output_layer(model, x, y, scale=1.0):
    """The output layer's gradients are linear_mse's closed form at its input features
    (times `scale`): dL/dW = (2/N) r.T @ h, dL/db = (2/N) sum(r)."""
    with torch.no_grad():
        h = model.features(x)
    _, grad_w, grad_b = oracles.linear_mse(to_numpy(h), to_numpy(model.out.weight),
                                           to_numpy(model.out.bias), to_numpy(y))
    r = to_numpy(model.out(h).detach()) - to_numpy(y)
    magnitude = 2 * abs(r).T @ abs(to_numpy(h)) / r.size * scale
    assert_close(model.out.weight.grad, scale * grad_w, atol=sum_atol(torch.float32, magnitude),
                 what="dL/dW of the output layer")
    assert_close(model.out.bias.grad, scale * grad_b,
                 atol=sum_atol(torch.float32, 2 * abs(r).sum() / r.size * scale),
                 what="dL/db of the output layer")


@behavior("autograd.chain_rule.linear_mse")
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("width", [16, 256, 1024], ids=lambda w: f"w{w}")
def test_mlp(device, device_benchmark, width, phase):
    model, x, y = mlp_problem(width, device)
    loss_fn = nn.MSELoss()
    device_benchmark.extra_info.update(width=width, batch=BATCH,
                                       parameters=sum(p.numel() for p in model.parameters()))
    run_phase(device_benchmark, phase, list(model.parameters()),
              lambda: loss_fn(model(x), y), {})
    check_output_layer(model, x, y)


# -- accumulation ---------------------------------------------------------------------------------

K = 8  # micro-batches of BATCH // K samples
ACCUMULATION_WIDTH = 64


def micro_batches(x, y):
    return list(zip(x.chunk(K), y.chunk(K)))


@behavior("autograd.accumulation.micro_batches")
def test_accumulate_k_backward_passes(device, device_benchmark):
    """k backward passes of loss / k accumulate into .grad: the full-batch gradient."""
    model, x, y = mlp_problem(ACCUMULATION_WIDTH, device)
    loss_fn = nn.MSELoss()
    batches = micro_batches(x, y)
    device_benchmark.extra_info.update(k=K, width=ACCUMULATION_WIDTH, batch=BATCH)

    def accumulate():
        model.zero_grad(set_to_none=True)  # once, before the k passes
        for xb, yb in batches:
            (loss_fn(model(xb), yb) / K).backward()

    device_benchmark(accumulate)
    check_output_layer(model, x, y)


@behavior("module.zero_grad.set_to_none_true")
def test_zero_grad_between_k_backward_passes(device, device_benchmark):
    """The same k passes with zero_grad(set_to_none=True) before each: only the last micro-batch's
    gradient remains."""
    model, x, y = mlp_problem(ACCUMULATION_WIDTH, device)
    loss_fn = nn.MSELoss()
    batches = micro_batches(x, y)
    device_benchmark.extra_info.update(k=K, width=ACCUMULATION_WIDTH, batch=BATCH)

    def zero_between():
        for xb, yb in batches:
            model.zero_grad(set_to_none=True)
            (loss_fn(model(xb), yb) / K).backward()

    device_benchmark(zero_between)
    check_output_layer(model, *batches[-1], scale=1 / K)
