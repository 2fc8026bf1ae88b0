"""torch.no_grad() as a context manager and a decorator, and how it differs from eval()."""

import numpy as np
import pytest
import torch
from torch import nn

from torchconform import assert_close, behavior, to_numpy
from torchconform.seed_models import HandLogisticRegression, LinearRegression


def _w(device):
    return torch.tensor([2.0, 3.0], device=device, requires_grad=True)


@behavior("autograd.no_grad.context_manager")
def test_results_inside_no_grad_do_not_require_grad(device):
    w = _w(device)
    with torch.no_grad():
        z = 10 * w**2 + 25
        prediction = LinearRegression(1, 1).to(device)(torch.ones(4, 1, device=device))
        assert torch.is_grad_enabled() is False
    assert z.requires_grad is False and z.grad_fn is None
    assert prediction.requires_grad is False and prediction.grad_fn is None
    assert_close(z, [65.0, 115.0])  # values are computed as usual


@behavior("autograd.no_grad.context_manager")
def test_leaving_no_grad_restores_recording(device):
    w = _w(device)
    with torch.no_grad():
        pass
    assert torch.is_grad_enabled() is True
    z = 10 * w**2 + 25
    assert z.requires_grad is True and z.grad_fn is not None
    z.sum().backward()
    assert w.grad.cpu().tolist() == [40.0, 60.0]


@behavior("autograd.no_grad.context_manager")
def test_no_grad_restores_recording_after_an_exception(device):
    with pytest.raises(ValueError):
        with torch.no_grad():
            raise ValueError("inside")
    assert (_w(device) * 2).requires_grad is True


# Factory functions that take requires_grad: the no_grad documentation exempts them all.
_FACTORIES = {
    "tensor": lambda d: torch.tensor([1.0, 2.0], device=d, requires_grad=True),
    "zeros": lambda d: torch.zeros(2, 3, device=d, requires_grad=True),
    "ones": lambda d: torch.ones(2, device=d, requires_grad=True),
    "full": lambda d: torch.full((2,), 0.5, device=d, requires_grad=True),
    "empty": lambda d: torch.empty(2, device=d, requires_grad=True),
    "rand": lambda d: torch.rand(2, device=d, requires_grad=True),
    "randn": lambda d: torch.randn(2, device=d, requires_grad=True),
    "arange": lambda d: torch.arange(0.0, 3.0, device=d, requires_grad=True),
    "linspace": lambda d: torch.linspace(0, 1, 4, device=d, requires_grad=True),
    "eye": lambda d: torch.eye(2, device=d, requires_grad=True),
    "zeros_like": lambda d: torch.zeros_like(torch.ones(2, device=d), requires_grad=True),
    "ones_like": lambda d: torch.ones_like(torch.ones(2, device=d), requires_grad=True),
    "full_like": lambda d: torch.full_like(torch.ones(2, device=d), 3.0, requires_grad=True),
    "rand_like": lambda d: torch.rand_like(torch.ones(2, device=d), requires_grad=True),
    "randn_like": lambda d: torch.randn_like(torch.ones(2, device=d), requires_grad=True),
    "empty_like": lambda d: torch.empty_like(torch.ones(2, device=d), requires_grad=True),
    "Parameter": lambda d: nn.Parameter(torch.rand(10, device=d)),  # the docs' own example
}


@behavior("autograd.no_grad.context_manager")
def test_factory_functions_with_requires_grad_are_exempt_from_no_grad(device):
    with torch.no_grad():
        made = {name: make(device) for name, make in _FACTORIES.items()}
    wrong = [name for name, t in made.items()
             if not (t.requires_grad and t.is_leaf and t.grad_fn is None)]
    assert wrong == [], f"not a leaf that requires grad when made under no_grad: {wrong}"
    # They are ordinary leaves afterwards: gradients reach them.
    (made["zeros"] * 2).sum().backward()
    assert made["zeros"].grad.cpu().tolist() == [[2.0] * 3] * 2


@behavior("autograd.no_grad.decorator")
def test_no_grad_as_decorator_stops_recording_in_the_function(device):
    @torch.no_grad()
    def predict(w):
        return 10 * w**2 + 25

    w = _w(device)
    z = predict(w)
    assert z.requires_grad is False and z.grad_fn is None
    assert_close(z, [65.0, 115.0])
    assert (w * 2).requires_grad is True  # recording is back after the call


@behavior("autograd.no_grad.decorator")
def test_no_grad_decorator_keeps_the_function_result_and_name(device):
    def scale(w, factor=2.0):
        return w * factor

    decorated = torch.no_grad()(scale)
    out = decorated(_w(device), factor=3.0)
    assert decorated.__name__ == "scale"
    assert out.requires_grad is False
    assert out.cpu().tolist() == [6.0, 9.0]


@behavior("autograd.no_grad.decorator_restores_after_exception")
@pytest.mark.parametrize("depth", [1, 2])
def test_no_grad_decorated_function_that_raises_restores_grad_mode(device, depth):
    @torch.no_grad()
    def fail(w):
        assert torch.is_grad_enabled() is False
        raise ValueError("inside")

    @torch.no_grad()
    def nested(w):
        return fail(w)

    w = _w(device)
    with pytest.raises(ValueError, match="inside"):
        (fail if depth == 1 else nested)(w)
    assert torch.is_grad_enabled() is True
    assert (w * 2).requires_grad is True


@behavior("autograd.no_grad.decorator_restores_after_exception")
def test_no_grad_decorated_function_that_raises_inside_no_grad_leaves_it_off(device):
    # The previous mode is what comes back: disabled, when the call was made under no_grad.
    @torch.no_grad()
    def fail():
        raise ValueError("inside")

    with torch.no_grad():
        with pytest.raises(ValueError):
            fail()
        assert torch.is_grad_enabled() is False
    assert torch.is_grad_enabled() is True


@behavior("autograd.no_grad.in_place_update")
def test_in_place_update_of_a_leaf_is_allowed_inside_no_grad(device):
    w = _w(device)
    (10 * w**2 + 25).sum().backward()
    with torch.no_grad():
        w -= 0.01 * w.grad  # a hand-written SGD step, as in seed 000's LR.optimize()
    assert w.requires_grad is True and w.is_leaf and w.grad_fn is None
    assert_close(w, [2.0 - 0.01 * 40.0, 3.0 - 0.01 * 60.0])


@behavior("autograd.no_grad.in_place_update")
def test_in_place_update_of_a_leaf_that_requires_grad_raises_outside_no_grad(device):
    w = _w(device)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w -= 1.0
    assert w.cpu().tolist() == [2.0, 3.0]


@behavior("autograd.no_grad.in_place_update")
def test_seed_000_hand_written_update_under_no_grad(device):
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], device=device)
    y = torch.tensor([[1.0, 0.0, 1.0]], device=device)
    model = HandLogisticRegression(2, lr=0.5, device=device)
    model.W.requires_grad_()
    y_hat = model(x)
    model.backward(x, y_hat.detach(), y)
    with torch.no_grad():
        model.optimize()  # W -= lr * dw in place on a leaf that requires grad
    # W started at zero, so y_hat = 0.5 and W = -lr * (0.5 - y) @ x.T / n.
    expected = -0.5 * (0.5 - to_numpy(y)) @ to_numpy(x).T / 3
    assert_close(model.W, expected)
    assert model.W.is_leaf and model.W.requires_grad


@behavior("autograd.no_grad.keeps_training_mode")
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_no_grad_leaves_the_training_flag_alone(device, p):
    # p != 0.5 too: at 0.5 the drop and keep probabilities (and scales) cannot be told apart.
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(p=p)).to(device)
    assert model.training
    with torch.no_grad():
        out = model(torch.ones(2000, 2, device=device))
        assert model.training and model[1].training
    assert model.training and all(m.training for m in model.modules())
    # Dropout still drops in training mode under no_grad: a fraction p of the outputs is zero
    # (4000 draws: 0.05 is more than 6 standard deviations), the rest are scaled by 1/(1 - p).
    zeros = (out == 0).float().mean().item()
    assert abs(zeros - p) < 0.05
    linear = to_numpy(model[0].weight).sum(axis=1) + to_numpy(model[0].bias)  # x is all ones
    kept = to_numpy(out) != 0
    expected = np.broadcast_to(linear / (1 - p), out.shape)
    assert_close(out[torch.from_numpy(kept).to(device)], expected[kept], what="kept outputs")


@behavior("autograd.no_grad.keeps_training_mode")
def test_no_grad_leaves_an_eval_model_in_eval(device):
    model = LinearRegression(1, 1).to(device).eval()
    with torch.no_grad():
        model(torch.ones(1, 1, device=device))
    assert model.training is False and model.linear.training is False


@behavior("autograd.no_grad.eval_keeps_gradients")
def test_eval_mode_still_records_and_backpropagates(device):
    model = LinearRegression(1, 1).to(device)
    model.eval()
    x = torch.arange(11.0, device=device).view(-1, 1)
    out = model(x)
    assert torch.is_grad_enabled() is True
    assert out.requires_grad is True and out.grad_fn is not None
    assert all(p.requires_grad for p in model.parameters())
    out.sum().backward()
    assert model.linear.weight.grad.item() == 55.0  # sum of x = 0..10
    assert model.linear.bias.grad.item() == 11.0
