"""Buffers: registered tensors that are state but not parameters (seed 002)."""

import pytest
import torch
from hypothesis import example, given
from torch import nn

from torchconform import behavior
from torchconform.seed_models import LinearModel
from torchconform.strategies import DEEP_TREE, buffer_names, build, module_trees


@behavior("module.buffer.register_makes_attribute")
def test_registered_buffer_is_an_attribute(device):
    m = LinearModel().to(device)
    buf = torch.tensor([4], device=device)
    m.register_buffer("buf", buf)
    assert m.buf is buf
    assert torch.equal(m.buf.cpu(), torch.tensor([4]))  # seed 002 prints tensor([4])
    assert m.get_buffer("buf") is buf


@behavior("module.buffer.not_a_parameter")
def test_buffer_is_not_a_parameter_and_needs_no_grad(device):
    m = LinearModel().to(device)
    m.register_buffer("running", torch.zeros(3, device=device))
    assert all(p is not m.running for p in m.parameters())
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.running.requires_grad is False
    assert not isinstance(m.running, nn.Parameter)


@behavior("module.buffer.named_buffers_dotted")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_named_buffers_lists_every_buffer_with_dotted_paths(device, spec):
    index = {}
    m = build(spec, device, index=index)
    assert [n for n, _ in m.named_buffers()] == buffer_names(spec)
    assert all(a is index[n] for a, n in zip(m.buffers(), buffer_names(spec)))
    assert len(list(m.buffers())) == len(buffer_names(spec))


@behavior("module.buffer.recurse_false")
def test_named_buffers_recurse_false_lists_own_buffers_only(device):
    outer = LinearModel().to(device)
    outer.register_buffer("buf", torch.tensor([4], device=device))
    outer.sub1 = LinearModel().to(device)
    outer.sub1.register_buffer("inner", torch.tensor([5], device=device))
    assert [n for n, _ in outer.named_buffers()] == ["buf", "sub1.inner"]
    assert [n for n, _ in outer.named_buffers(recurse=False)] == ["buf"]
    assert len(list(outer.buffers(recurse=False))) == 1


@behavior("module.buffer.named_buffers_prefix")
def test_named_buffers_prefix_goes_before_every_name(device):
    index = {}
    m = build(DEEP_TREE, device, index=index)
    got = list(m.named_buffers(prefix="root"))
    assert [n for n, _ in got] == ["root." + n for n in buffer_names(DEEP_TREE)]
    assert all(b is index[n[len("root."):]] for n, b in got)


@behavior("module.buffer.get_buffer_errors")
@pytest.mark.parametrize("target", ["missing", "sub1.missing", "weight", "plain", "sub1"])
def test_get_buffer_rejects_missing_or_non_buffer_target(device, target):
    outer = LinearModel().to(device)
    outer.sub1 = LinearModel().to(device)
    outer.sub1.register_buffer("buf", torch.zeros(1, device=device))
    outer.plain = torch.zeros(1, device=device)
    assert outer.get_buffer("sub1.buf") is outer.sub1.buf
    with pytest.raises(AttributeError):
        outer.get_buffer(target)


@behavior("module.buffer.reassignment_updates_buffer")
def test_assigning_a_tensor_to_a_buffer_name_replaces_the_buffer(device):
    m = nn.Module()
    m.register_buffer("running", torch.zeros(2, device=device))
    replacement = torch.ones(2, device=device)
    m.running = replacement
    assert m.get_buffer("running") is replacement
    assert [n for n, _ in m.named_buffers()] == ["running"]
    assert torch.equal(m.state_dict()["running"].cpu(), torch.ones(2))


@behavior("module.buffer.reassignment_updates_buffer")
def test_reassigned_buffers_keep_their_persistence(device):
    m = nn.Module()
    m.register_buffer("running", torch.zeros(2, device=device))
    m.register_buffer("scratch", torch.zeros(2, device=device), persistent=False)
    m.child = nn.Module()
    m.child.register_buffer("tmp", torch.zeros(1, device=device), persistent=False)
    m.running = torch.full((2,), 2.0, device=device)
    m.scratch = torch.ones(2, device=device)
    m.child.tmp = torch.ones(1, device=device)
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch", "child.tmp"]
    assert torch.equal(m.scratch.cpu(), torch.ones(2))
    assert list(m.state_dict()) == ["running"]  # the non-persistent ones stay unsaved


@behavior("module.buffer.register_rejects_bad_name")
@pytest.mark.parametrize("name", ["a.b", "", "existing"])
def test_register_buffer_rejects_dotted_empty_or_taken_names(device, name):
    m = nn.Module()
    m.existing = 1
    with pytest.raises(KeyError):
        m.register_buffer(name, torch.zeros(1, device=device))
    assert list(m.buffers()) == []


@behavior("module.buffer.register_rejects_non_str_name")
def test_register_buffer_rejects_non_string_name(device):
    with pytest.raises(TypeError, match="should be a string"):
        nn.Module().register_buffer(1, torch.zeros(1, device=device))


@behavior("module.buffer.register_rejects_non_tensor")
@pytest.mark.parametrize("value", [3, [1.0, 2.0], "x"], ids=["int", "list", "str"])
def test_register_buffer_rejects_a_non_tensor(device, value):
    m = nn.Module()
    with pytest.raises(TypeError, match="cannot assign"):
        m.register_buffer("b", value)
    assert list(m.buffers()) == []


@behavior("module.buffer.remove_duplicate_false")
def test_shared_buffer_is_yielded_once_unless_remove_duplicate_false(device):
    shared = torch.arange(3.0, device=device)
    m = nn.Module()
    m.register_buffer("a", shared)
    m.child = nn.Module()
    m.child.register_buffer("b", shared)
    assert [n for n, _ in m.named_buffers()] == ["a"]
    everything = list(m.named_buffers(remove_duplicate=False))
    assert [n for n, _ in everything] == ["a", "child.b"]
    assert everything[0][1] is shared and everything[1][1] is shared


@behavior("module.buffer.buffer_assignment_registers")
def test_assigning_an_nn_buffer_registers_it_as_a_buffer(device):
    m = nn.Module()
    m.running = nn.Buffer(torch.full((2,), 0.5, device=device))
    m.scratch = nn.Buffer(torch.ones(3, device=device), persistent=False)
    m.plain = torch.zeros(1, device=device)  # a plain Tensor: an ordinary attribute
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch"]
    assert list(m.state_dict()) == ["running"]
    assert torch.equal(m.get_buffer("running").cpu(), torch.full((2,), 0.5))
    assert m.running.device.type == device.type and m.running.requires_grad is False
    assert list(m.parameters()) == []
