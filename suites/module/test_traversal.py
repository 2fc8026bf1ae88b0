"""Walking the module tree: modules, named_modules, children, get_submodule (seed 002)."""

import pytest
import torch
from hypothesis import example, given
from torch import nn

from torchconform import behavior
from torchconform.seed_models import LinearModel
from torchconform.strategies import DEEP_TREE, build, module_trees, preorder


def _seed_tree(device):
    """Seed 002: linear_model1.sub1 = linear_model2; linear_model2.sub2_1 = linear_model3."""
    m1, m2, m3 = (LinearModel().to(device) for _ in range(3))
    m1.sub1 = m2
    m2.sub2_1 = m3
    return m1, m2, m3


@behavior("module.traversal.modules_preorder")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_modules_yields_root_then_descendants_depth_first(device, spec):
    index = {}
    m = build(spec, device, index=index)
    expected = [index[name] for name, _ in preorder(spec)]
    got = list(m.modules())
    assert len(got) == len(expected) and all(a is b for a, b in zip(got, expected))
    assert got[0] is m


@behavior("module.traversal.named_modules_dotted")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_named_modules_names_root_empty_and_descendants_by_dotted_path(device, spec):
    m = build(spec, device)
    assert [name for name, _ in m.named_modules()] == [name for name, _ in preorder(spec)]


@behavior("module.traversal.named_modules_prefix")
def test_named_modules_prefix_names_the_root_and_goes_before_every_path(device):
    index = {}
    m = build(DEEP_TREE, device, index=index)
    got = list(m.named_modules(prefix="root"))
    names = [name for name, _ in preorder(DEEP_TREE)]
    assert [n for n, _ in got] == ["root"] + ["root." + n for n in names[1:]]
    assert all(module is index[name] for (_, module), name in zip(got, names))


@behavior("module.traversal.seed_002_walk")
def test_seed_002_tree_walk(device):
    m1, m2, m3 = _seed_tree(device)
    assert [mod for mod in m1.modules()] == [m1, m2, m3]
    assert [(n, mod) for n, mod in m1.named_modules()] == [
        ("", m1), ("sub1", m2), ("sub1.sub2_1", m3)]
    assert list(m1.children()) == [m2]
    assert list(m1.named_children()) == [("sub1", m2)]
    assert m1.get_submodule("sub1") is m2


@behavior("module.traversal.shared_module_once")
def test_shared_module_is_yielded_once_unless_remove_duplicate_false(device):
    shared = nn.Linear(1, 1).to(device)
    root = nn.Module()
    root.a = shared
    root.b = nn.Sequential(shared)
    assert [n for n, _ in root.named_modules()] == ["", "a", "b"]
    assert len(list(root.modules())) == 3
    everything = list(root.named_modules(remove_duplicate=False))
    assert [n for n, _ in everything] == ["", "a", "b", "b.0"]
    assert everything[3][1] is shared


@behavior("module.traversal.children_direct_only")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_children_yield_direct_children_in_registration_order(device, spec):
    index = {}
    m = build(spec, device, index=index)
    names = [name for name, _ in spec.children]
    assert [n for n, _ in m.named_children()] == names
    assert all(c is index[n] for c, n in zip(m.children(), names))
    assert len(list(m.children())) == len(names)


@behavior("module.traversal.get_submodule")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_get_submodule_follows_dotted_paths(device, spec):
    index = {}
    m = build(spec, device, index=index)
    for name, _ in preorder(spec):
        assert m.get_submodule(name) is index[name]


@behavior("module.traversal.get_submodule_empty_is_self")
def test_get_submodule_of_empty_string_is_the_module_itself(device):
    m1, _, _ = _seed_tree(device)
    assert m1.get_submodule("") is m1


@behavior("module.traversal.get_submodule_errors")
@pytest.mark.parametrize("target", ["missing", "sub1.missing", "sub1.sub2_1.x", "weight",
                                    "sub1.bias"])
def test_get_submodule_rejects_missing_or_non_module_targets(device, target):
    m1, _, _ = _seed_tree(device)
    with pytest.raises(AttributeError):
        m1.get_submodule(target)


@behavior("module.traversal.set_submodule")
def test_set_submodule_replaces_or_adds_under_an_existing_parent(device):
    m1, m2, _ = _seed_tree(device)
    replacement, added = LinearModel().to(device), LinearModel().to(device)
    m1.set_submodule("sub1.sub2_1", replacement)
    assert m1.get_submodule("sub1.sub2_1") is replacement and m2.sub2_1 is replacement
    m1.set_submodule("sub1.extra", added)
    assert m2.extra is added
    with pytest.raises(AttributeError):
        m1.set_submodule("missing.leaf", LinearModel().to(device))
    assert [n for n, _ in m1.named_modules()] == ["", "sub1", "sub1.sub2_1", "sub1.extra"]


@behavior("module.traversal.set_submodule_strict")
def test_set_submodule_strict_replaces_but_never_adds(device):
    m1, m2, _ = _seed_tree(device)
    replacement = LinearModel().to(device)
    m1.set_submodule("sub1.sub2_1", replacement, strict=True)
    assert m2.sub2_1 is replacement
    with pytest.raises(AttributeError):
        m1.set_submodule("sub1.extra", LinearModel().to(device), strict=True)
    assert [n for n, _ in m1.named_modules()] == ["", "sub1", "sub1.sub2_1"]


@behavior("module.traversal.add_module_registers")
@pytest.mark.parametrize("method", ["add_module", "register_module"])
def test_add_module_registers_under_the_name(device, method):
    m = nn.Module()
    child = nn.Linear(1, 1).to(device)
    getattr(m, method)("encoder", child)
    getattr(m, method)("unset", None)
    assert m.encoder is child
    assert list(m.named_children()) == [("encoder", child)]
    assert [n for n, _ in m.named_parameters()] == ["encoder.weight", "encoder.bias"]


@behavior("module.traversal.add_module_rejects_bad_name")
@pytest.mark.parametrize("method", ["add_module", "register_module"])
@pytest.mark.parametrize("name", ["a.b", "", "existing"])
def test_add_module_rejects_dotted_empty_or_taken_names(device, method, name):
    m = nn.Module()
    m.existing = 1
    with pytest.raises(KeyError):
        getattr(m, method)(name, nn.Linear(1, 1).to(device))
    assert list(m.children()) == []


@behavior("module.traversal.add_module_rejects_bad_type")
@pytest.mark.parametrize("method", ["add_module", "register_module"])
@pytest.mark.parametrize("name, value", [(3, "module"), ("child", 3),
                                         ("child", "tensor")], ids=["int-name", "int-value",
                                                                   "tensor-value"])
def test_add_module_rejects_non_string_name_or_non_module_value(device, method, name, value):
    m = nn.Module()
    child = {"module": nn.Linear(1, 1).to(device), "tensor": torch.zeros(1, device=device)}
    with pytest.raises(TypeError):
        getattr(m, method)(name, child.get(value, value) if isinstance(value, str) else value)
    assert list(m.children()) == []


@behavior("module.traversal.repr_nested")
def test_repr_shows_the_nested_tree_as_in_seed_002(device):
    m1, m2, m3 = _seed_tree(device)
    assert repr(m3) == "LinearModel()"
    assert repr(m2) == "LinearModel(\n  (sub2_1): LinearModel()\n)"
    assert repr(m1) == ("LinearModel(\n"
                        "  (sub1): LinearModel(\n"
                        "    (sub2_1): LinearModel()\n"
                        "  )\n"
                        ")")
