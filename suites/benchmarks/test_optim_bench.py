"""Cost of torch.optim: zero_grad(set_to_none=True/False), SGD step (plain and momentum) in its
for-loop, foreach and fused implementations, and one iteration of the seeds' training loop.

Parameter sets hold 1M and 10M float32 elements in PARAM_TENSORS tensors (100M with
--bench-large, where memory allows). zero_grad and step are memory-bound: each records its
effective bandwidth (bytes read + written per second) and the ratio to a plain copy of the
same number of elements timed in the same run (extra_info, terminal summary). Bytes counted
are the minimum the update rule needs per element, not what an implementation happens to move:
plain SGD reads p and g and writes p (12 B); momentum also reads and writes the buffer (20 B);
zero_grad(set_to_none=False) writes g (4 B); set_to_none=True touches no tensor data.

Each benchmark checks one more update against the documented rule once it has been timed.
"""

import pytest
import torch
from torch import nn

from torchconform import FUSED_OPTIMIZERS, assert_close, behavior, requires
from torchconform.seed_models import LinearRegression, linear_regression_data
from torchconform.timing import LARGE, TIMED_ONLY, require_memory

PARAM_TENSORS = 10
LR, MOMENTUM, GRAD = 0.01, 0.9, 0.5
# The untimed smoke run (pytest suites/) checks 1M elements; 10M run only when timed, 100M
# only with --bench-large.
SIZES = [pytest.param(1_000_000, id="1M"),
         pytest.param(10_000_000, id="10M", marks=getattr(pytest.mark, TIMED_ONLY)),
         pytest.param(100_000_000, id="100M", marks=getattr(pytest.mark, LARGE))]
IMPLEMENTATIONS = ["for_loop", "foreach", "fused"]
FLOAT_BYTES = 4


def parameter_set(numel, device, buffers=0):
    """PARAM_TENSORS parameters of numel elements in all (value 1), each with a gradient
    GRAD; skips when the device lacks the memory for them, their gradients, `buffers` more
    copies (momentum) and the reference copy's two tensors."""
    require_memory(str(device), numel * FLOAT_BYTES * (2 + buffers + 2))
    params = [torch.ones(numel // PARAM_TENSORS, device=device, requires_grad=True)
              for _ in range(PARAM_TENSORS)]
    for p in params:
        p.grad = torch.full_like(p, GRAD)
    return params


def record(device_benchmark, numel, **extra):
    device_benchmark.extra_info.update(numel=numel, tensors=PARAM_TENSORS,
                                       dtype="float32", **extra)


def assert_uniform(tensor, value, what):
    """Every element of `tensor` (filled uniformly by construction) equals `value`."""
    assert_close(tensor[:4], [value] * 4, what=what)
    assert bool((tensor == tensor[0]).all()), f"{what}: elements differ"


# -- zero_grad ------------------------------------------------------------------------------------

# Both variants first re-attach the gradients (p.grad = g: an attribute store per tensor),
# since zero_grad(set_to_none=True) drops them; the difference is what zeroing costs.

def zero_grad_benchmark(device_benchmark, device, numel, set_to_none):
    params = parameter_set(numel, device)
    grads = [p.grad for p in params]
    optimizer = torch.optim.SGD(params, lr=LR)
    record(device_benchmark, numel, set_to_none=set_to_none)

    def zero_grad():
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.zero_grad(set_to_none=set_to_none)

    device_benchmark(zero_grad)
    return params, grads


@behavior("optim.zero_grad.set_to_none_true")
@pytest.mark.parametrize("numel", SIZES)
def test_zero_grad_set_to_none_true(device, device_benchmark, numel):
    params, _ = zero_grad_benchmark(device_benchmark, device, numel, set_to_none=True)
    device_benchmark.extra_info["bytes_moved"] = 0  # no tensor data touched
    assert all(p.grad is None for p in params)


@behavior("optim.zero_grad.set_to_none_false")
@pytest.mark.parametrize("numel", SIZES)
def test_zero_grad_set_to_none_false(device, device_benchmark, numel):
    params, grads = zero_grad_benchmark(device_benchmark, device, numel, set_to_none=False)
    device_benchmark.bandwidth(numel * FLOAT_BYTES, numel)  # writes g
    for i, (p, g) in enumerate(zip(params, grads)):
        assert p.grad is g, "zero_grad(set_to_none=False) keeps the gradient tensor"
        assert_uniform(p.grad, 0.0, f"grad {i}")


# -- SGD step -------------------------------------------------------------------------------------

def implementation_options(implementation, device):
    """SGD keyword arguments selecting `implementation`, or a skip saying why this torch or
    device has none."""
    if implementation == "for_loop":
        return {"foreach": False}
    if implementation == "foreach":
        return {"foreach": True}
    requires(device, FUSED_OPTIMIZERS)  # the device's adapter knows where fused kernels exist
    return {"fused": True}


def sgd(params, device, implementation, **options):
    """An SGD of the implementation, stepped once (so momentum buffers exist), or a skip
    where the device has no such implementation."""
    optimizer = torch.optim.SGD(params, lr=LR, **options,
                                **implementation_options(implementation, device))
    optimizer.step()
    return optimizer


@behavior("optim.sgd.plain")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("numel", SIZES)
def test_sgd_step(device, device_benchmark, numel, implementation):
    params = parameter_set(numel, device)
    optimizer = sgd(params, device, implementation)
    record(device_benchmark, numel, implementation=implementation, momentum=0.0)
    device_benchmark(optimizer.step)
    device_benchmark.bandwidth(3 * numel * FLOAT_BYTES, numel)  # read p, g; write p
    before = params[0][0].item()
    optimizer.step()  # theta <- theta - lr * g
    assert_uniform(params[0].detach(), before - LR * GRAD, "parameter after one more step")


@behavior("optim.sgd.momentum")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("numel", SIZES)
def test_sgd_momentum_step(device, device_benchmark, numel, implementation):
    params = parameter_set(numel, device, buffers=1)
    optimizer = sgd(params, device, implementation, momentum=MOMENTUM)
    record(device_benchmark, numel, implementation=implementation, momentum=MOMENTUM)
    device_benchmark(optimizer.step)
    # read p, g, buffer; write p, buffer
    device_benchmark.bandwidth(5 * numel * FLOAT_BYTES, numel)
    p, buffer = params[0], optimizer.state[params[0]]["momentum_buffer"]
    theta, b = p[0].item(), buffer[0].item()
    optimizer.step()  # b <- mu b + g; theta <- theta - lr b
    assert_uniform(buffer, MOMENTUM * b + GRAD, "momentum buffer after one more step")
    assert_uniform(p.detach(), theta - LR * (MOMENTUM * b + GRAD),
                   "parameter after one more step")


# -- the seeds' training loop ---------------------------------------------------------------------

@behavior("optim.training_loop.matches_gradient_descent")
def test_training_loop_iteration(device, device_benchmark):
    """One epoch of seeds 000/001: zero_grad, nn.Linear(1, 1), MSELoss, backward, SGD(0.01)
    step on y = 2x + 1."""
    x_np, y_np = linear_regression_data()
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
    model = LinearRegression(1, 1).to(device)
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def iteration():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    device_benchmark(iteration)
    w, b = model.linear.weight.item(), model.linear.bias.item()
    iteration()  # one gradient-descent step on the mean squared error, in float64
    r = w * x_np.ravel().astype("float64") + b - y_np.ravel()
    assert_close(model.linear.weight, [[w - 0.01 * 2 * (r * x_np.ravel()).mean()]],
                 atol=1e-5, what="weight after one more epoch")
    assert_close(model.linear.bias, [b - 0.01 * 2 * r.mean()], atol=1e-5,
                 what="bias after one more epoch")
