"""Cost of nn.Module bookkeeping as module trees grow: construction and registration,
parameters(), named_modules(), state_dict(), load_state_dict() and apply().

Trees have 10, 100 and 1000 modules in two shapes: `wide` (a root with n - 1 children) and
`deep` (a chain n modules deep, so dotted names grow with depth). The size and shape are in
the test id ([cpu-wide-1000]) and in extra_info, so the growth of cost with size can be read
off the results. Each module holds two small parameters: what is timed is the Python-side
traversal, not tensor math, so the device only matters for where the parameters live.

Each benchmark asserts its result once (timed or not), against what the behavior states.
"""

import sys

import pytest
import torch
from torch import nn

from torchconform import assert_close, behavior
from torchconform.timing import TIMED_ONLY

SIZES = [10, 100, 1000]
SHAPES = ["wide", "deep"]


class Leaf(nn.Module):
    """One node of a tree: a weight and a bias of 4 elements each."""

    def __init__(self, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4, device=device))
        self.bias = nn.Parameter(torch.zeros(4, device=device))


def build(shape: str, size: int, device) -> nn.Module:
    """A tree of `size` Leaf modules: `wide` root with size - 1 children m0.., or `deep` chain
    root.child.child... (size modules in all)."""
    root = Leaf(device)
    if shape == "wide":
        for i in range(size - 1):
            root.add_module(f"m{i}", Leaf(device))
    else:
        node = root
        for _ in range(size - 1):
            node.child = Leaf(device)
            node = node.child
    return root


def module_names(shape: str, size: int):
    """named_modules() names in pre-order."""
    if shape == "wide":
        return [""] + [f"m{i}" for i in range(size - 1)]
    return [""] + [".".join(["child"] * depth) for depth in range(1, size)]


# The untimed smoke run (pytest suites/) checks the 10- and 100-module trees; 1000-module trees
# (up to 3 s per load_state_dict call, as torch filters the whole state_dict once per module)
# run only when timed.
BIG = 1000


def _case(*values, size):
    marks = [getattr(pytest.mark, TIMED_ONLY)] if size >= BIG else []
    return pytest.param(*values, id="-".join(map(str, values)), marks=marks)


TREES = [_case(shape, size, size=size) for shape in SHAPES for size in SIZES]
COUNTS = [_case(count, size=count) for count in SIZES]


@pytest.fixture
def deep_recursion():
    """Chains 1000 modules deep recurse deeper than Python's default limit (1000 frames):
    raise it for the test, and put it back."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, 20_000))
    yield
    sys.setrecursionlimit(before)


def record(device_benchmark, shape, size):
    device_benchmark.extra_info.update(shape=shape, modules=size, parameters=2 * size)


# -- construction ---------------------------------------------------------------------------------

class ManyParameters(nn.Module):
    """A module that assigns `count` parameters as attributes in __init__."""

    def __init__(self, count, device=None):
        super().__init__()
        for i in range(count):
            setattr(self, f"p{i}", nn.Parameter(torch.zeros(4, device=device)))


@behavior("module.parameter.assignment_registers_in_order")
@pytest.mark.parametrize("count", COUNTS)
def test_construct_module_with_many_parameters(device, device_benchmark, count):
    device_benchmark.extra_info.update(parameters=count)
    module = device_benchmark(lambda: ManyParameters(count, device))
    assert [name for name, _ in module.named_parameters()] == [f"p{i}" for i in range(count)]
    assert all(p.device.type == device.type for p in module.parameters())


# -- traversal ------------------------------------------------------------------------------------

@behavior("module.parameter.parameters_iterates_all")
@pytest.mark.parametrize("shape, size", TREES)
def test_parameters(device, device_benchmark, deep_recursion, shape, size):
    tree = build(shape, size, device)
    record(device_benchmark, shape, size)
    params = device_benchmark(lambda: list(tree.parameters()))
    assert len(params) == 2 * size
    assert params[0] is tree.weight and params[1] is tree.bias


@behavior("module.traversal.named_modules_dotted")
@pytest.mark.parametrize("shape, size", TREES)
def test_named_modules(device, device_benchmark, deep_recursion, shape, size):
    tree = build(shape, size, device)
    record(device_benchmark, shape, size)
    named = device_benchmark(lambda: list(tree.named_modules()))
    assert [name for name, _ in named] == module_names(shape, size)
    assert named[0][1] is tree


@behavior("module.state_dict.keys")
@pytest.mark.parametrize("shape, size", TREES)
def test_state_dict(device, device_benchmark, deep_recursion, shape, size):
    tree = build(shape, size, device)
    record(device_benchmark, shape, size)
    state = device_benchmark(tree.state_dict)
    expected = [f"{prefix}{'.' if prefix else ''}{name}" for prefix in module_names(shape, size)
                for name in ("weight", "bias")]
    assert list(state) == expected


@behavior("module.state_dict.load_restores")
@pytest.mark.parametrize("shape, size", TREES)
def test_load_state_dict(device, device_benchmark, deep_recursion, shape, size):
    tree = build(shape, size, device)
    source = build(shape, size, device)
    with torch.no_grad():
        for i, p in enumerate(source.parameters()):
            p.fill_(float(i))
    saved = source.state_dict()
    own = list(tree.parameters())
    record(device_benchmark, shape, size)
    device_benchmark(lambda: tree.load_state_dict(saved))
    params = list(tree.parameters())
    for i in (0, 1, len(params) - 1):  # first, second and last, by their saved values
        assert_close(params[i], [float(i)] * 4, what=f"parameter {i} after load_state_dict")
    # Copied into the module's own parameters, not assigned: compared as objects, since some
    # devices (torch_xla) have no storage pointers (data_ptr() is 0 for every tensor).
    assert all(a is b for a, b in zip(params, own)) and params[-1] is not list(
        source.parameters())[-1]


@behavior("module.apply.visits_children_then_self")
@pytest.mark.parametrize("shape, size", TREES)
def test_apply(device, device_benchmark, deep_recursion, shape, size):
    tree = build(shape, size, device)
    record(device_benchmark, shape, size)
    visited = []

    def visit(module):
        visited.append(module)

    def run():
        visited.clear()
        return tree.apply(visit)

    assert device_benchmark(run) is tree
    assert len(visited) == size and visited[-1] is tree
    if shape == "deep":  # children before their parent: the innermost module first
        assert visited[0] is list(tree.modules())[-1]
