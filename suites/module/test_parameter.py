"""nn.Parameter and how a Module registers, lists and finds its parameters (seeds 000-002)."""

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from torchconform import behavior
from torchconform.seed_models import LinearModel, MyLinear, MyLinearPlainTensors
from torchconform.strategies import DEEP_TREE, IDENT, build, module_trees, parameter_names

INTEGER_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool]


@behavior("module.parameter.is_tensor_subclass")
def test_parameter_is_a_tensor_subclass_sharing_the_data(device):
    data = torch.arange(3.0, device=device)
    p = nn.Parameter(data)
    assert isinstance(p, torch.Tensor) and isinstance(p, nn.Parameter)
    assert issubclass(nn.Parameter, torch.Tensor)
    assert p.device == data.device and p.dtype == data.dtype
    assert torch.equal(p.detach().cpu(), torch.tensor([0.0, 1.0, 2.0]))


@behavior("module.parameter.requires_grad_default")
def test_parameter_requires_grad_by_default(device, dtype):
    assert nn.Parameter(torch.zeros(2, device=device, dtype=dtype)).requires_grad is True


@behavior("module.parameter.requires_grad_false_honored")
def test_parameter_requires_grad_false_is_honored(device, dtype):
    p = nn.Parameter(torch.zeros(2, device=device, dtype=dtype), requires_grad=False)
    assert p.requires_grad is False
    assert isinstance(p, nn.Parameter)


@behavior("module.parameter.requires_grad_under_no_grad")
def test_parameter_created_under_no_grad_requires_grad(device):
    with torch.no_grad():
        p = nn.Parameter(torch.zeros(2, device=device))
    assert p.requires_grad is True
    (p * 3).sum().backward()
    assert torch.equal(p.grad.cpu(), torch.tensor([3.0, 3.0]))


@behavior("module.parameter.integer_dtype_rejected")
@pytest.mark.parametrize("int_dtype", INTEGER_DTYPES, ids=str)
def test_integer_parameter_is_rejected(device, int_dtype):
    with pytest.raises(RuntimeError, match="floating point and complex dtype"):
        nn.Parameter(torch.zeros(2, device=device, dtype=int_dtype))


@behavior("module.parameter.assignment_registers_in_order")
@given(names=st.lists(IDENT, min_size=1, max_size=8, unique=True))
def test_assigned_parameters_are_registered_in_assignment_order(device, names):
    m = nn.Module()
    created = {}
    for name in names:
        created[name] = nn.Parameter(torch.randn(2, device=device))
        setattr(m, name, created[name])
    assert [n for n, _ in m.named_parameters()] == names
    assert all(m.get_parameter(n) is created[n] for n in names)
    assert all(getattr(m, n) is created[n] for n in names)


@behavior("module.parameter.plain_tensor_not_registered")
def test_plain_tensor_attribute_is_not_a_parameter(device):
    layer = MyLinearPlainTensors(7, 12).to(device)
    assert list(layer.parameters()) == []
    assert isinstance(layer.weights, torch.Tensor)
    assert layer.weights.requires_grad is False
    reference = MyLinear(7, 12).to(device)
    assert [n for n, _ in reference.named_parameters()] == ["weights", "bias"]


@behavior("module.parameter.plain_tensor_not_saved")
def test_plain_tensor_attribute_is_not_in_state_dict(device):
    assert list(MyLinearPlainTensors(7, 12).to(device).state_dict()) == []
    assert list(MyLinear(7, 12).to(device).state_dict()) == ["weights", "bias"]


@behavior("module.parameter.plain_tensor_not_optimized")
def test_optimizer_updates_parameters_but_not_plain_tensors(device):
    model = MyLinear(3, 2).to(device)
    model.plain = torch.ones(3, 2, device=device, requires_grad=True)
    before_weights = model.weights.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x = torch.ones(4, 3, device=device)
    ((x @ model.weights + x @ model.plain + model.bias) ** 2).sum().backward()
    optimizer.step()
    assert not torch.equal(model.weights.detach(), before_weights)
    assert torch.equal(model.plain.detach().cpu(), torch.ones(3, 2))


@behavior("module.parameter.parameters_iterates_all")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_parameters_yields_every_parameter_of_the_tree(device, spec):
    index = {}
    m = build(spec, device, index=index)
    expected = [index[name] for name in parameter_names(spec)]
    got = list(m.parameters())
    assert len(got) == len(expected)
    assert all(a is b for a, b in zip(got, expected))


@behavior("module.parameter.named_parameters_dotted")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_named_parameters_uses_dotted_paths(device, spec):
    m = build(spec, device)
    assert [n for n, _ in m.named_parameters()] == parameter_names(spec)


@behavior("module.parameter.named_parameters_recurse_false")
def test_named_parameters_recurse_false_lists_own_parameters_only(device):
    outer = LinearModel().to(device)
    outer.sub1 = LinearModel().to(device)
    assert [n for n, _ in outer.named_parameters()] == [
        "weight", "bias", "sub1.weight", "sub1.bias"]
    assert [n for n, _ in outer.named_parameters(recurse=False)] == ["weight", "bias"]
    assert len(list(outer.parameters(recurse=False))) == 2


@behavior("module.parameter.named_parameters_prefix")
def test_named_parameters_prefix_goes_before_every_name(device):
    index = {}
    m = build(DEEP_TREE, device, index=index)
    got = list(m.named_parameters(prefix="root"))
    assert [n for n, _ in got] == ["root." + n for n in parameter_names(DEEP_TREE)]
    assert all(p is index[n[len("root."):]] for n, p in got)
    assert [n for n, _ in m.enc.named_parameters(prefix="enc")] == [
        n for n in parameter_names(DEEP_TREE) if n.startswith("enc.")]


@behavior("module.parameter.requires_grad_recursive")
def test_requires_grad_switches_every_parameter_of_the_tree(device):
    m = build(DEEP_TREE, device)
    n = len(parameter_names(DEEP_TREE))
    assert m.requires_grad_(False) is m
    assert [p.requires_grad for p in m.parameters()] == [False] * n
    assert m.enc.requires_grad_() is m.enc  # the default flag is True, for that subtree only
    assert [p.requires_grad for p in m.parameters()] == [
        name.startswith("enc.") for name in parameter_names(DEEP_TREE)]
    m.requires_grad_(True)
    assert [p.requires_grad for p in m.parameters()] == [True] * n


@behavior("module.parameter.shared_yielded_once")
def test_shared_parameter_is_yielded_once(device):
    shared = nn.Parameter(torch.ones(2, device=device))
    m = nn.Module()
    m.a = shared
    m.child = nn.Module()
    m.child.b = shared
    m.c = nn.Parameter(torch.zeros(2, device=device))
    assert [n for n, _ in m.named_parameters()] == ["a", "c"]
    assert len(list(m.parameters())) == 2


@behavior("module.parameter.remove_duplicate_false")
def test_named_parameters_remove_duplicate_false_yields_every_name(device):
    shared = nn.Parameter(torch.ones(2, device=device))
    m = nn.Module()
    m.a = shared
    m.child = nn.Module()
    m.child.b = shared
    named = list(m.named_parameters(remove_duplicate=False))
    assert [n for n, _ in named] == ["a", "child.b"]
    assert named[0][1] is named[1][1] is shared


@behavior("module.parameter.get_parameter")
def test_get_parameter_returns_the_registered_object(device):
    outer = LinearModel().to(device)
    outer.sub1 = LinearModel().to(device)
    assert outer.get_parameter("weight") is outer.weight
    assert outer.get_parameter("sub1.bias") is outer.sub1.bias


@behavior("module.parameter.get_parameter_errors")
@pytest.mark.parametrize("target", ["missing", "sub1.missing", "buf", "plain", "sub1"])
def test_get_parameter_rejects_missing_or_non_parameter_target(device, target):
    outer = LinearModel().to(device)
    outer.sub1 = LinearModel().to(device)
    outer.register_buffer("buf", torch.zeros(1, device=device))
    outer.plain = torch.zeros(1, device=device)
    with pytest.raises(AttributeError):
        outer.get_parameter(target)


@behavior("module.parameter.register_rejects_bad_name")
@pytest.mark.parametrize("name", ["a.b", "", "existing"])
def test_register_parameter_rejects_dotted_empty_or_taken_names(device, name):
    m = nn.Module()
    m.existing = 1
    with pytest.raises(KeyError):
        m.register_parameter(name, nn.Parameter(torch.zeros(1, device=device)))
    assert list(m.parameters()) == []


@behavior("module.parameter.register_rejects_non_str_name")
def test_register_parameter_rejects_non_string_name(device):
    with pytest.raises(TypeError, match="should be a string"):
        nn.Module().register_parameter(1, nn.Parameter(torch.zeros(1, device=device)))


@behavior("module.parameter.register_rejects_non_parameter")
def test_register_parameter_rejects_a_plain_tensor(device):
    m = nn.Module()
    with pytest.raises(TypeError, match=r"torch\.nn\.Parameter or None"):
        m.register_parameter("p", torch.zeros(1, device=device))
    assert list(m.parameters()) == []


@behavior("module.parameter.register_none")
def test_register_parameter_accepts_none_and_lists_nothing(device):
    m = nn.Module()
    m.register_parameter("p", None)
    assert m.p is None
    assert list(m.named_parameters()) == []
    assert "p" not in m.state_dict()
