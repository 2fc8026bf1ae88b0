"""The module-tree oracles of strategies.py, on DEEP_TREE, written out by hand."""

import torch
from hypothesis import given, settings

from torchconform import strategies
from torchconform.strategies import DEEP_TREE, TreeSpec

# DEEP_TREE:  root(w, b; running, scratch*) -> enc(w; steps) -> inner(g; tmp*), leaf()
#                                           -> head(w) -> out(; mean)       (* non-persistent)
NODES = ["", "enc", "enc.inner", "enc.leaf", "head", "head.out"]


def test_preorder_and_postorder():
    assert [name for name, _ in strategies.preorder(DEEP_TREE)] == NODES
    assert [name for name, _ in strategies.postorder(DEEP_TREE)] == [
        "enc.inner", "enc.leaf", "enc", "head.out", "head", ""]


def test_parameter_and_buffer_names():
    assert strategies.parameter_names(DEEP_TREE) == ["w", "b", "enc.w", "enc.inner.g", "head.w"]
    assert strategies.buffer_names(DEEP_TREE) == [
        "running", "scratch", "enc.steps", "enc.inner.tmp", "head.out.mean"]
    assert strategies.buffer_names(DEEP_TREE, persistent_only=True) == [
        "running", "enc.steps", "head.out.mean"]


def test_state_dict_keys_module_by_module():
    # Each module: its parameters, then its persistent buffers; then its children in order.
    assert strategies.state_dict_keys(DEEP_TREE) == [
        "w", "b", "running", "enc.w", "enc.steps", "enc.inner.g", "head.w", "head.out.mean"]


def test_empty_tree():
    assert [n for n, _ in strategies.preorder(TreeSpec())] == [""]
    assert strategies.state_dict_keys(TreeSpec()) == []


def test_build_registers_what_the_spec_says():
    index = {}
    module = strategies.build(DEEP_TREE, dtype=torch.float64, index=index)
    assert sorted(index) == sorted(NODES + [
        "w", "b", "enc.w", "enc.inner.g", "head.w",
        "running", "scratch", "enc.steps", "enc.inner.tmp", "head.out.mean"])
    assert index[""] is module and index["enc.inner.g"].shape == (2,)
    assert index["enc.w"].shape == (2, 3) and index["b"].shape == ()
    assert isinstance(index["w"], torch.nn.Parameter)
    assert not isinstance(index["running"], torch.nn.Parameter)
    assert index["head.out.mean"].dtype == torch.float64


@settings(max_examples=20, deadline=None)
@given(strategies.module_trees(max_depth=2))
def test_drawn_trees_have_unique_names_and_bounded_depth(spec):
    names = [n for n, _ in strategies.preorder(spec)]
    assert all(n.count(".") <= 2 for n in names)
    for _, node in strategies.preorder(spec):
        own = ([n for n, _ in node.params] + [n for n, _, _ in node.buffers]
               + [n for n, _ in node.children])
        assert len(own) == len(set(own)) and all(n.startswith("n_") for n in own)
