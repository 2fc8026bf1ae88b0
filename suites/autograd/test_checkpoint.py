"""torch.utils.checkpoint.checkpoint with use_reentrant=False: the same gradients as without
checkpointing (the numpy closed form), the forward recomputed during backward, parameters
reached without inputs that require grad, and the RNG state replayed for dropout.

`ckpt.checkpoint` is looked up at call time on purpose: it is the entry point users call.
"""

import numpy as np
import pytest
import torch
import torch.utils.checkpoint as ckpt
from torch import nn

from torchconform import assert_close, behavior, to_numpy
from torchconform import oracles_autograd as oracle
from torchconform.strategies import signed_values


def _layer(x, W):
    return torch.tanh(x @ W)


@behavior("autograd.checkpoint.gradients_match")
@pytest.mark.parametrize("n, k, m", [(1, 1, 1), (3, 4, 2), (5, 2, 6)])
def test_checkpointed_gradients_equal_the_closed_form(device, dtype, n, k, m):
    rng = np.random.default_rng(n * 100 + k * 10 + m)
    x_np, W_np = signed_values(rng, (n, k), 0.1, 0.7), signed_values(rng, (k, m), 0.1, 0.7)
    loss_np, dx, dW = oracle.tanh_square_loss(x_np, W_np)
    grads = {}
    for checkpointed in (True, False):
        x = torch.tensor(x_np, device=device, dtype=dtype, requires_grad=True)
        W = torch.tensor(W_np, device=device, dtype=dtype, requires_grad=True)
        y = ckpt.checkpoint(_layer, x, W, use_reentrant=False) if checkpointed else _layer(x, W)
        loss = (y**2).sum()
        assert_close(loss, loss_np, what="sum(tanh(x @ W)**2)")
        loss.backward()
        assert_close(x.grad, dx, what="dL/dx")
        assert_close(W.grad, dW, what="dL/dW")
        grads[checkpointed] = (x.grad, W.grad)
    for with_ckpt, without in zip(grads[True], grads[False]):
        assert_close(with_ckpt, to_numpy(without), what="checkpointed vs plain gradient")


@behavior("autograd.checkpoint.recomputes_forward")
def test_checkpointed_function_runs_again_during_backward(device):
    calls = []

    def layer(x, W):
        calls.append(torch.is_grad_enabled())
        return _layer(x, W)

    x = torch.tensor([[0.5, -0.25]], device=device, requires_grad=True)
    W = torch.tensor([[0.5], [1.0]], device=device, requires_grad=True)
    y = ckpt.checkpoint(layer, x, W, use_reentrant=False)
    assert len(calls) == 1 and y.requires_grad
    (y**2).sum().backward()
    assert len(calls) == 2  # recomputed once, during backward
    assert calls[1] is True  # and recorded, to backpropagate through it


@behavior("autograd.checkpoint.recomputes_forward")
def test_checkpointed_module_is_called_again_during_backward(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(device)
    calls = []
    # A pre-hook: the recomputation may stop early once it has what backward needs (2.x's
    # early stop), so the call is observed on entry.
    model.register_forward_pre_hook(lambda module, args: calls.append(torch.is_grad_enabled()))
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], device=device)
    out = ckpt.checkpoint(model, x, use_reentrant=False)
    assert len(calls) == 1
    out.sum().backward()
    assert calls == [True, True]
    with torch.no_grad():
        assert_close(out, to_numpy(model(x)), what="checkpointed vs plain output")


@behavior("autograd.checkpoint.inputs_without_grad")
def test_parameters_inside_get_gradients_when_no_input_requires_grad(device):
    linear = nn.Linear(3, 2).to(device)
    x_np = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [1.0, 1.0, 1.0]])
    x = torch.tensor(x_np, device=device, dtype=torch.float32)  # requires_grad=False
    out = ckpt.checkpoint(linear, x, use_reentrant=False)
    assert out.requires_grad
    out.sum().backward()
    # L = sum(x @ W.T + b): dL/dW[i, j] = sum_n x[n, j] for every output i, dL/db = n.
    assert_close(linear.weight.grad, np.tile(x_np.sum(axis=0), (2, 1)), what="dL/dW")
    assert_close(linear.bias.grad, [3.0, 3.0], what="dL/db")


@behavior("autograd.checkpoint.preserves_rng")
@pytest.mark.parametrize("checkpointed", [True, False])
def test_dropout_mask_is_replayed_in_the_recomputation(device, checkpointed):
    p = 0.5
    w = torch.full((64,), 1.5, device=device, requires_grad=True)
    x_np = np.linspace(0.5, 2.0, 64)
    x = torch.tensor(x_np, device=device, dtype=torch.float32)

    def layer(w):
        return nn.functional.dropout(x * w, p=p, training=True)

    torch.manual_seed(1234)
    y = ckpt.checkpoint(layer, w, use_reentrant=False) if checkpointed else layer(w)
    y.sum().backward()
    kept = to_numpy(y) != 0  # the forward's mask, read from its output
    assert 0 < kept.sum() < 64
    # y = mask * x w / (1 - p), so dL/dw = mask * x / (1 - p) with the forward's mask.
    assert_close(w.grad, np.where(kept, x_np / (1 - p), 0.0), what="dL/dw with the same mask")


@behavior("autograd.checkpoint.determinism_check")
def test_recomputation_with_other_shapes_raises_checkpoint_error(device):
    # The forward differs on its second run (as with a global flag that changed): by default
    # (determinism_check="default") backward compares the recomputed tensors' metadata with
    # what was saved and raises instead of returning wrong gradients.
    calls = []

    def fn(x):
        calls.append(1)
        return torch.sin(x if len(calls) == 1 else x[:1])

    x = torch.tensor([0.5, -1.0, 2.0], device=device, requires_grad=True)
    y = ckpt.checkpoint(fn, x, use_reentrant=False)
    with pytest.raises(ckpt.CheckpointError, match="different metadata"):
        y.sum().backward()
    assert issubclass(ckpt.CheckpointError, RuntimeError)
