"""More dtype conversions of a module: bfloat16(), type(), to() with a complex or a rejected
integer dtype, and which objects survive a conversion (Parameter identity, the
torch.__future__ overwrite flag)."""

import pytest
import torch
from torch import nn

from torchconform import behavior


def _model(device):
    """Linear(2, 3) plus a float buffer 'mean' and an int64 buffer 'count', values set."""
    m = nn.Linear(2, 3).to(device)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[0.5, -1.25], [2.0, 0.75], [-3.0, 1.5]]))
        m.bias.copy_(torch.tensor([0.25, -0.5, 1.0]))
    m.register_buffer("mean", torch.full((2,), 0.125, device=device))
    m.register_buffer("count", torch.tensor([3, 4], device=device))
    m.bias.requires_grad_(False)
    return m


#: _model()'s values in float64: every one is exactly representable in bfloat16 and float16.
VALUES = {"weight": [[0.5, -1.25], [2.0, 0.75], [-3.0, 1.5]], "bias": [0.25, -0.5, 1.0],
          "mean": [0.125, 0.125], "count": [3, 4]}


def _values(m):
    return {k: v.detach().cpu().to(torch.float64 if not v.is_complex() else v.dtype).tolist()
            for k, v in m.state_dict().items()}


@behavior("module.dtype_conversion.bfloat16")
def test_bfloat16_casts_floating_state_only_in_place(device):
    m = _model(device)
    weight = m.weight
    assert m.bfloat16() is m
    assert [m.weight.dtype, m.bias.dtype, m.mean.dtype] == [torch.bfloat16] * 3
    assert m.count.dtype == torch.int64
    assert m.weight is weight and isinstance(m.bias, nn.Parameter)
    assert [m.weight.requires_grad, m.bias.requires_grad] == [True, False]
    assert _values(m) == VALUES


@behavior("module.dtype_conversion.type_casts_everything")
def test_type_casts_every_parameter_and_buffer_integer_ones_included(device):
    m = _model(device)
    assert m.type(torch.float16) is m
    assert {k: v.dtype for k, v in m.state_dict().items()} == dict.fromkeys(VALUES,
                                                                            torch.float16)
    assert _values(m) == VALUES
    assert isinstance(m.weight, nn.Parameter) and m.bias.requires_grad is False


@behavior("module.dtype_conversion.to_complex")
@pytest.mark.filterwarnings("ignore:Complex modules are a new feature")
def test_to_a_complex_dtype_makes_floating_state_complex(device):
    m = _model(device)
    assert m.to(torch.cfloat) is m
    assert [m.weight.dtype, m.bias.dtype, m.mean.dtype] == [torch.complex64] * 3
    assert m.count.dtype == torch.int64
    assert torch.equal(m.weight.detach().cpu().real, torch.tensor(VALUES["weight"]))
    assert torch.count_nonzero(m.weight.detach().cpu().imag).item() == 0
    x = torch.ones(1, 2, dtype=torch.cfloat, device=device)
    assert torch.equal(m(x).detach().cpu().real, torch.tensor([[-0.5, 2.25, -0.5]]))


@behavior("module.dtype_conversion.to_rejects_integer_dtype")
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool], ids=str)
def test_to_an_integer_dtype_raises_type_error_and_changes_nothing(device, dtype):
    m = _model(device)
    with pytest.raises(TypeError, match="only accepts floating point or complex dtypes"):
        m.to(dtype)
    assert [m.weight.dtype, m.count.dtype] == [torch.float32, torch.int64]
    assert _values(m) == VALUES


@behavior("module.dtype_conversion.parameter_identity_kept")
def test_conversions_keep_the_parameter_objects_and_convert_their_grads(device):
    assert torch.__future__.get_overwrite_module_params_on_conversion() is False  # default
    m = _model(device)
    m(torch.ones(1, 2, device=device)).sum().backward()
    weight, grad = m.weight, m.weight.grad
    for convert in (lambda: m.half(), lambda: m.to(device, torch.bfloat16),
                    lambda: m.float(), lambda: m.to(device)):
        assert convert() is m
        assert m.weight is weight  # the same Parameter object, new data
        assert m.weight.grad is grad and m.weight.grad.dtype == m.weight.dtype
    assert _values(m) == VALUES
    assert torch.equal(m.weight.grad.cpu(), torch.ones(3, 2))  # d sum(Wx+b)/dW, x = ones


@behavior("module.dtype_conversion.overwrite_flag_new_parameters")
def test_overwrite_flag_makes_conversions_assign_new_parameters(device):
    m = _model(device)
    before = list(m.parameters())
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        assert m.half() is m
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(False)
    after = list(m.parameters())
    assert all(a is not b for a, b in zip(after, before))  # new Parameter objects
    assert all(type(p) is nn.Parameter and p.dtype == torch.float16 for p in after)
    assert [p.requires_grad for p in after] == [True, False]
    assert [p.dtype for p in before] == [torch.float32] * 2  # the old ones are left as they were
    assert _values(m) == VALUES
