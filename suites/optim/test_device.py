"""Gradients and optimizer state live where the parameter lives, in its dtype."""

import pytest
import torch
from torch import nn

from torchconform import behavior


@behavior("optim.device.grads_and_state_follow_parameter")
def test_grads_and_momentum_buffers_have_the_parameters_device_and_dtype(device, dtype):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).to(device, dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.ones(4, 3, device=device, dtype=dtype)).sum().backward()
        optimizer.step()
    for p in model.parameters():
        assert p.device == device or p.device.type == device.type
        assert p.dtype == dtype
        for tensor in (p.grad, optimizer.state[p]["momentum_buffer"]):
            assert tensor.device == p.device and tensor.dtype == p.dtype
            assert tensor.shape == p.shape


@behavior("optim.device.grads_and_state_follow_parameter")
@pytest.mark.parametrize("dtype", [torch.float64], indirect=True, ids=["float64"])
def test_loaded_state_follows_the_new_parameters_dtype(device, dtype):
    source = torch.tensor([1.0, 2.0], device=device, dtype=dtype, requires_grad=True)
    optimizer = torch.optim.SGD([source], lr=0.1, momentum=0.9)
    source.grad = torch.ones(2, device=device, dtype=dtype)
    optimizer.step()
    target = torch.tensor([1.0, 2.0], device=device, requires_grad=True)  # float32
    resumed = torch.optim.SGD([target], lr=0.1, momentum=0.9)
    resumed.load_state_dict(optimizer.state_dict())
    buffer = resumed.state[target]["momentum_buffer"]
    assert buffer.dtype == torch.float32 and buffer.device == target.device
    assert buffer.cpu().tolist() == [1.0, 1.0]
