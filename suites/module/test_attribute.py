"""Attribute semantics of nn.Module: deleting, reassigning and clearing (None) a registered
parameter, buffer or submodule, and dir() listing them."""

import pytest
import torch
from torch import nn

from torchconform import behavior


def _module(device):
    """A module with one of each kind: parameter w, buffer b, child c (parameters c.weight,
    c.bias)."""
    m = nn.Module()
    m.w = nn.Parameter(torch.ones(2, device=device))
    m.register_buffer("b", torch.zeros(2, device=device))
    m.c = nn.Linear(1, 1).to(device)
    return m


def _names(m):
    return {"parameters": [n for n, _ in m.named_parameters()],
            "buffers": [n for n, _ in m.named_buffers()],
            "modules": [n for n, _ in m.named_modules()],
            "state_dict": list(m.state_dict())}


@behavior("module.attribute.del_parameter_unregisters")
def test_deleting_a_parameter_attribute_unregisters_it(device):
    m = _module(device)
    del m.w
    assert _names(m) == {"parameters": ["c.weight", "c.bias"], "buffers": ["b"],
                         "modules": ["", "c"], "state_dict": ["b", "c.weight", "c.bias"]}
    assert not hasattr(m, "w")
    m.w = torch.ones(1, device=device)  # the name is free again: a plain tensor is accepted
    assert [n for n, _ in m.named_parameters()] == ["c.weight", "c.bias"]
    with pytest.raises(AttributeError):
        del m.missing


@behavior("module.attribute.del_buffer_unregisters")
def test_deleting_a_buffer_attribute_unregisters_it(device):
    m = _module(device)
    m.register_buffer("scratch", torch.zeros(1, device=device), persistent=False)
    del m.b
    del m.scratch
    assert _names(m) == {"parameters": ["w", "c.weight", "c.bias"], "buffers": [],
                         "modules": ["", "c"], "state_dict": ["w", "c.weight", "c.bias"]}
    assert not hasattr(m, "b") and not hasattr(m, "scratch")
    m.register_buffer("scratch", torch.ones(1, device=device))  # re-registered: persistent now
    assert list(m.state_dict()) == ["w", "scratch", "c.weight", "c.bias"]


@behavior("module.attribute.del_child_unregisters")
def test_deleting_a_submodule_attribute_unregisters_it_and_its_state(device):
    m = _module(device)
    del m.c
    assert _names(m) == {"parameters": ["w"], "buffers": ["b"], "modules": [""],
                         "state_dict": ["w", "b"]}
    assert not hasattr(m, "c")
    seq = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1))
    del seq._modules["1"]  # what del seq[1] does underneath: the child's state goes too
    assert list(seq.state_dict()) == ["0.weight", "0.bias"]


@behavior("module.attribute.parameter_slot_rejects_non_parameter")
@pytest.mark.parametrize("value", ["tensor", "int", "module"])
def test_assigning_a_non_parameter_to_a_parameter_name_raises_type_error(device, value):
    m = _module(device)
    new = {"tensor": torch.zeros(2, device=device), "int": 3, "module": nn.ReLU()}[value]
    kind = {"tensor": "torch", "int": "int", "module": "torch.nn"}[value]
    with pytest.raises(TypeError, match=rf"cannot assign '{kind}.*' as parameter 'w' "
                                        r"\(torch\.nn\.Parameter or None expected\)"):
        m.w = new
    assert isinstance(m.w, nn.Parameter) and torch.equal(m.w.detach().cpu(), torch.ones(2))
    m.w = None  # a None slot still only takes a Parameter (or None)
    with pytest.raises(TypeError, match="as parameter 'w'"):
        m.w = new
    assert m.w is None


@behavior("module.attribute.child_slot_rejects_non_module")
@pytest.mark.parametrize("value", ["tensor", "int"])
def test_assigning_a_non_module_to_a_submodule_name_raises_type_error(device, value):
    m = _module(device)
    child = m.c
    new = {"tensor": torch.zeros(2, device=device), "int": 3}[value]
    with pytest.raises(TypeError, match=r"cannot assign '.*' as child module 'c' "
                                        r"\(torch\.nn\.Module or None expected\)"):
        m.c = new
    assert m.c is child and [n for n, _ in m.named_modules()] == ["", "c"]


@behavior("module.attribute.buffer_slot_rejects_non_tensor")
@pytest.mark.parametrize("value", [3, "text", [1.0, 2.0]], ids=["int", "str", "list"])
def test_assigning_a_non_tensor_to_a_buffer_name_raises_type_error(device, value):
    m = _module(device)
    buffer = m.b
    # The message lists nn.Buffer among the accepted types from 2.5; "as buffer 'b'" always.
    with pytest.raises(TypeError, match=r"cannot assign '.*' as buffer 'b' \(.*Tensor or None"):
        m.b = value
    assert m.b is buffer and list(m.state_dict()) == ["w", "b", "c.weight", "c.bias"]


@behavior("module.attribute.none_keeps_slot")
def test_none_keeps_each_name_registered_without_state(device):
    m = _module(device)
    m.w, m.b, m.c = None, None, None
    assert m.w is None and m.b is None and m.c is None
    # Still registered, as None: left out of every listing and of state_dict.
    assert "w" in m._parameters and "b" in m._buffers and "c" in m._modules
    assert _names(m) == {"parameters": [], "buffers": [], "modules": [""], "state_dict": []}
    m.to(device, torch.float16)  # conversions skip the None slots
    # Refilling a slot registers the new value under the same name, in the same place.
    m.b = torch.full((3,), 2, device=device)  # a plain tensor fills a buffer slot
    m.w = nn.Parameter(torch.ones(3, device=device))
    m.c = nn.ReLU()
    assert _names(m) == {"parameters": ["w"], "buffers": ["b"], "modules": ["", "c"],
                         "state_dict": ["w", "b"]}


@behavior("module.attribute.parameter_replaces_other_kinds")
def test_assigning_a_parameter_over_a_buffer_or_child_makes_it_a_parameter(device):
    m = _module(device)
    pb = nn.Parameter(torch.full((1,), 3.0, device=device))
    pc = nn.Parameter(torch.full((1,), 4.0, device=device))
    m.b = pb
    m.c = pc
    assert m.b is pb and m.c is pc
    assert _names(m) == {"parameters": ["w", "b", "c"], "buffers": [], "modules": [""],
                         "state_dict": ["w", "b", "c"]}
    assert "b" not in m._buffers and "c" not in m._modules


@behavior("module.attribute.dir_lists_members")
def test_dir_lists_parameters_buffers_and_submodules(device):
    m = _module(device)
    m.register_buffer("scratch", torch.zeros(1, device=device), persistent=False)
    m.plain = 3
    listed = dir(m)
    for name in ("w", "b", "scratch", "c", "plain", "forward", "state_dict"):
        assert name in listed, name
    assert listed == sorted(listed)
    assert len(listed) == len(set(listed))
    del m.w
    assert "w" not in dir(m)
