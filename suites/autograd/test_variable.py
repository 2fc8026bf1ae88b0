"""torch.autograd.Variable, the seeds' wrapper, returns a plain tensor."""

import numpy as np
import pytest
import torch

from torchconform import behavior, shares_memory


@behavior("autograd.variable.returns_tensor")
@pytest.mark.parametrize("requires_grad", [False, True])
def test_variable_returns_a_plain_tensor_sharing_the_data(device, requires_grad):
    data = torch.from_numpy(np.arange(11, dtype=np.float32).reshape(-1, 1)).to(device)
    v = torch.autograd.Variable(data, requires_grad=requires_grad)  # the seeds' inputs
    assert type(v) is torch.Tensor
    assert v.requires_grad is requires_grad and v.is_leaf
    assert shares_memory(v, data) and v.device == data.device
    assert torch.equal(v.detach(), data)


@behavior("autograd.variable.returns_tensor")
def test_variable_with_requires_grad_receives_gradients(device):
    w = torch.autograd.Variable(torch.tensor([2.0], device=device), requires_grad=True)
    (10 * w**2 + 25).sum().backward()
    assert w.grad.cpu().tolist() == [40.0]
