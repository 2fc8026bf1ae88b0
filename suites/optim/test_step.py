"""Optimizer.step(): which parameters it updates, and step(closure).

Optimizer.zero_grad's documentation spells out the difference: a parameter whose gradient is
None is skipped altogether, one whose gradient is zero is stepped (weight decay and momentum
still act on it).
"""

import numpy as np
import torch
from torch import nn

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.tolerances import sum_atol

OPTIONS = dict(lr=0.1, momentum=0.9, weight_decay=0.1)


@behavior("optim.step.skips_params_without_grad")
def test_step_leaves_parameters_without_grad_untouched(device, dtype):
    used = torch.tensor([1.5, -0.5], device=device, dtype=dtype, requires_grad=True)
    frozen = torch.tensor([2.0, 1.0], device=device, dtype=dtype, requires_grad=False)
    unused = torch.tensor([-1.0, 0.5], device=device, dtype=dtype, requires_grad=True)
    optimizer = torch.optim.SGD([used, frozen, unused], **OPTIONS)
    oracle = oracles.SGD([to_numpy(used)], **OPTIONS)
    for _ in range(3):
        optimizer.zero_grad()
        (used**2).sum().backward()  # neither frozen nor unused takes part
        grad = to_numpy(used.grad)
        optimizer.step()
        assert_close(used, oracle.step([grad])[0], what="the parameter with a gradient")
    assert frozen.grad is None and unused.grad is None
    assert frozen.cpu().tolist() == [2.0, 1.0] and unused.detach().cpu().tolist() == [-1.0, 0.5]
    for p in (frozen, unused):
        assert "momentum_buffer" not in optimizer.state.get(p, {})


@behavior("optim.step.skips_params_without_grad")
def test_a_step_without_grad_leaves_the_momentum_buffer_as_it_was(device, dtype):
    """A parameter skipped for a step (grad None, e.g. a layer frozen for a while) keeps its
    state: when it gets a gradient again, momentum carries on from the buffer it had."""
    values = [np.array([[1.5, -0.5], [0.25, 2.0]]), np.array([-1.0, 0.75, 1.25])]
    params = [torch.tensor(v, device=device, dtype=dtype, requires_grad=True) for v in values]
    optimizer = torch.optim.SGD(params, **OPTIONS)
    oracle = oracles.SGD(values, **OPTIONS)
    schedule = [[np.array([[0.5, 1.0], [-1.0, 0.5]]), np.array([0.25, -1.5, 1.0])],
                [np.array([[-0.25, 0.75], [1.5, -0.5]]), None],
                [None, np.array([1.0, 0.5, -0.75])],
                [np.array([[1.25, -0.5], [0.5, 1.0]]), np.array([-0.5, 1.25, 0.25])],
                [np.array([[0.75, 0.25], [-1.25, 0.5]]), np.array([1.5, -0.25, 0.5])]]
    for t, grads in enumerate(schedule, start=1):
        before = [optimizer.state[p]["momentum_buffer"].clone() if t > 1 else None
                  for p in params]
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.tensor(g, device=device, dtype=dtype)
        optimizer.step()
        expected = oracle.step(grads)
        for i, p in enumerate(params):
            buffer = optimizer.state[p].get("momentum_buffer")
            assert buffer is not None, f"momentum buffer {i} gone after step {t}"
            if grads[i] is None:
                assert torch.equal(buffer, before[i]), f"buffer {i} changed in step {t}"
            assert_close(p, expected[i], what=f"parameter {i} after step {t}")
            assert_close(buffer, oracle.buffers[i], what=f"momentum buffer {i} after step {t}")


@behavior("optim.step.skips_params_without_grad")
def test_frozen_layer_of_a_model_is_not_updated(device):
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)).to(device)
    for p in model[0].parameters():
        p.requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.ones(3, 2, device=device)).sum().backward()
        optimizer.step()
    after = list(model.parameters())
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])
    assert not torch.equal(after[2].detach(), before[2])


@behavior("optim.step.steps_zero_grads")
def test_step_updates_parameters_whose_grad_is_zero(device, dtype):
    values = np.array([[1.5, -0.5], [0.25, 2.0]])
    p = torch.tensor(values, device=device, dtype=dtype, requires_grad=True)
    optimizer = torch.optim.SGD([p], **OPTIONS)
    oracle = oracles.SGD([values], **OPTIONS)
    grads = [np.array([[0.5, 1.0], [-1.0, 0.5]]), np.zeros((2, 2)), np.zeros((2, 2))]
    for t, g in enumerate(grads, start=1):  # a real gradient, then zeros: momentum carries on
        p.grad = torch.tensor(g, device=device, dtype=dtype)
        optimizer.step()
        assert_close(p, oracle.step([g])[0], what=f"parameter after step {t}")
        assert_close(optimizer.state[p]["momentum_buffer"], oracle.buffers[0],
                     what=f"momentum buffer after step {t}")


@behavior("optim.step.steps_zero_grads")
def test_weight_decay_alone_moves_a_parameter_with_zero_grad(device):
    p = torch.tensor([2.0, -4.0], device=device, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=0.5, weight_decay=0.1)
    p.grad = torch.zeros(2, device=device)
    optimizer.step()
    assert_close(p, [2.0 * (1 - 0.05), -4.0 * (1 - 0.05)])


def _seed_problem(device):
    x = torch.arange(11.0, device=device).view(-1, 1)
    model = nn.Linear(1, 1).to(device)
    return model, x, 2 * x + 1


@behavior("optim.step.closure_returns_loss")
def test_step_with_closure_returns_the_closures_loss_and_uses_its_gradients(device):
    model, x, y = _seed_problem(device)
    w, b = to_numpy(model.weight).item(), to_numpy(model.bias).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    calls = []

    def closure():
        optimizer.zero_grad()
        loss = nn.MSELoss()(model(x), y)
        loss.backward()
        calls.append(loss)
        return loss

    returned = optimizer.step(closure)
    assert len(calls) == 1 and returned is calls[0]
    losses, params = oracles.linear_regression_sgd(to_numpy(x), to_numpy(y), w, b, 0.01, 1)
    s = np.abs(w * to_numpy(x)) + abs(b) + to_numpy(y)  # rounding scale of each residual
    assert_close(returned, losses[0], atol=sum_atol(torch.float32, np.mean(2 * s * s)))
    assert_close(model.weight, [[params[0][0]]], what="weight after the step")
    assert_close(model.bias, [params[0][1]], what="bias after the step")
