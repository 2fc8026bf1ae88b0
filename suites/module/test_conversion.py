"""Module.to(), .double() and friends convert parameters and floating buffers alike, in place."""

import torch
from torch import nn

from torchconform import behavior
from torchconform.seed_models import LinearModel


def _model():
    m = LinearModel()
    m.register_buffer("mean", torch.full((2,), 0.25))
    m.register_buffer("count", torch.tensor([3], dtype=torch.int64))
    m.sub1 = nn.Linear(2, 3)
    return m


def _floating(m):
    return [t for t in list(m.parameters()) + list(m.buffers()) if t.is_floating_point()]


def _requires_grad(m):
    return {n: p.requires_grad for n, p in m.named_parameters()}


#: _model() with sub1.weight frozen: conversion in place keeps each parameter's flag.
FROZEN = {"weight": True, "bias": True, "sub1.weight": False, "sub1.bias": True}


@behavior("module.conversion.to_dtype")
def test_to_dtype_converts_parameters_and_floating_buffers_only(device):
    m = _model().to(device)
    m.sub1.weight.requires_grad_(False)
    values = {k: v.detach().cpu().double() for k, v in m.state_dict().items()}
    assert m.to(torch.float64) is m
    assert all(t.dtype == torch.float64 for t in _floating(m))
    assert m.count.dtype == torch.int64  # integer buffers keep their dtype
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())
    assert _requires_grad(m) == FROZEN
    for key, value in m.state_dict().items():
        assert torch.equal(value.cpu().double(), values[key])


@behavior("module.conversion.double")
def test_double_casts_floating_state_to_float64(device):
    m = _model().to(device)
    m.sub1.weight.requires_grad_(False)
    n_floating = len(_floating(m))  # counted before any cast, so a cast integer buffer shows
    for cast, dtype in [("double", torch.float64), ("half", torch.float16),
                        ("float", torch.float32)]:
        assert getattr(m, cast)() is m
        assert [t.dtype for t in _floating(m)] == [dtype] * n_floating, cast
        assert m.count.dtype == torch.int64, cast
        assert torch.equal(m.count.cpu(), torch.tensor([3])), cast
        assert _requires_grad(m) == FROZEN, cast


@behavior("module.conversion.to_device")
def test_to_device_moves_parameters_and_buffers(device):
    m = _model()
    expected = {k: v.clone() for k, v in m.state_dict().items()}
    assert m.to(device) is m
    state = list(m.parameters()) + list(m.buffers())
    assert all(t.device.type == device.type for t in state)
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())
    for key, value in m.state_dict().items():
        assert torch.equal(value.cpu(), expected[key])
    y = m(torch.ones(2, 1, device=device))
    assert y.device.type == device.type
