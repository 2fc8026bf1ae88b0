"""Hypothesis strategies shared by the suites, and the plain-Python oracles that go with them.

A `TreeSpec` describes a module tree independently of torch: the expected traversal orders,
names and state_dict keys are computed from the spec by the functions below, never by asking
the module under test.

`shapes`, `arrays`, `integer_arrays`, `generators` and `signed_values` draw the numbers the
autograd and optim suites feed both to torch and to the numpy oracles in oracles.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

# Names drawn from a fixed pool of 24, not as text: drawing text made the tree strategy about
# 2.5x slower, and what the tree properties need is names in an order that is not alphabetical
# (unique lists of the pool are drawn in any order), plus names that repeat across levels.
# The "n_" prefix keeps them from being Module attributes such as "eval" or "training".
IDENT = st.sampled_from(["n_" + a + b for a in "abcdefgh" for b in "xyz"])


@dataclass
class TreeSpec:
    """A node: its own parameter and buffer shapes and its named children, in order."""

    params: List[Tuple[str, Tuple[int, ...]]] = field(default_factory=list)
    buffers: List[Tuple[str, Tuple[int, ...], bool]] = field(default_factory=list)  # persistent?
    children: List[Tuple[str, TreeSpec]] = field(default_factory=list)


_shape = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


@st.composite
def _node(draw, depth: int) -> TreeSpec:
    names = draw(st.lists(IDENT, min_size=0, max_size=9, unique=True))
    if depth > 0:  # at least one child, so the tree really is `depth` levels deep
        names = draw(st.lists(IDENT, min_size=1, max_size=9, unique=True))
    n_children = draw(st.integers(1, min(3, len(names)))) if depth > 0 else 0
    rest = len(names) - n_children
    n_params = draw(st.integers(0, rest))
    spec = TreeSpec()
    spec.children = [(n, draw(_node(depth - 1))) for n in names[:n_children]]
    spec.params = [(n, draw(_shape)) for n in names[n_children:n_children + n_params]]
    spec.buffers = [(n, draw(_shape), draw(st.booleans()))
                    for n in names[n_children + n_params:]]
    return spec


def module_trees(max_depth: int = 3) -> st.SearchStrategy[TreeSpec]:
    """Random module trees 0 to `max_depth` levels deep, deep ones drawn as often as shallow."""
    return st.integers(0, max_depth).map(lambda d: max_depth - d).flatmap(_node)


def _p(name, shape=(2,)):
    return (name, shape)


#: A fixed tree every tree property is also checked on: three levels, a leaf beside a subtree,
#: non-persistent buffers, a childless middle node, scalars and empty shapes.
DEEP_TREE = TreeSpec(
    params=[_p("w"), _p("b", ())],
    buffers=[("running", (2,), True), ("scratch", (1,), False)],
    children=[
        ("enc", TreeSpec(params=[_p("w", (2, 3))], buffers=[("steps", (), True)], children=[
            ("inner", TreeSpec(params=[_p("g")], buffers=[("tmp", (2,), False)])),
            ("leaf", TreeSpec()),
        ])),
        ("head", TreeSpec(params=[_p("w", (3,))], children=[
            ("out", TreeSpec(buffers=[("mean", (1, 1), True)])),
        ])),
    ])


def build(spec: TreeSpec, device="cpu", dtype=torch.float32,
          index: Optional[Dict[str, object]] = None, _prefix: str = "") -> nn.Module:
    """An nn.Module shaped like `spec`, registered with the public API in spec order.

    If `index` is given it is filled with dotted path -> the object created for it (modules,
    parameters, buffers; the root is ""), so tests can compare what torch returns with what
    was registered without asking torch."""
    module = nn.Module()
    record = index.__setitem__ if index is not None else (lambda key, value: None)
    record(_prefix, module)
    for name, shape in spec.params:
        p = nn.Parameter(torch.randn(shape, device=device, dtype=dtype))
        module.register_parameter(name, p)
        record(_join(_prefix, name), p)
    for name, shape, persistent in spec.buffers:
        b = torch.randn(shape, device=device, dtype=dtype)
        module.register_buffer(name, b, persistent=persistent)
        record(_join(_prefix, name), b)
    for name, child in spec.children:
        module.add_module(name, build(child, device, dtype, index, _join(_prefix, name)))
    return module


def preorder(spec: TreeSpec, prefix: str = "") -> Iterator[Tuple[str, TreeSpec]]:
    """(dotted name, node) for the root and every descendant, parents before children."""
    yield prefix, spec
    for name, child in spec.children:
        yield from preorder(child, f"{prefix}.{name}" if prefix else name)


def postorder(spec: TreeSpec, prefix: str = "") -> Iterator[Tuple[str, TreeSpec]]:
    """Like preorder, but every node after its children."""
    for name, child in spec.children:
        yield from postorder(child, f"{prefix}.{name}" if prefix else name)
    yield prefix, spec


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def parameter_names(spec: TreeSpec) -> List[str]:
    """Dotted parameter names in the documented order: each module's own, then its children's."""
    return [_join(p, n) for p, node in preorder(spec) for n, _ in node.params]


def buffer_names(spec: TreeSpec, persistent_only: bool = False) -> List[str]:
    return [_join(p, n) for p, node in preorder(spec) for n, _, keep in node.buffers
            if keep or not persistent_only]


def state_dict_keys(spec: TreeSpec) -> List[str]:
    """Each module's parameters, then its persistent buffers, then its children's entries."""
    keys: List[str] = []
    for prefix, node in preorder(spec):
        keys += [_join(prefix, n) for n, _ in node.params]
        keys += [_join(prefix, n) for n, _, keep in node.buffers if keep]
    return keys


# -- numeric arrays for the autograd and optim suites -------------------------------------------

def shapes(max_dims: int = 2, max_side: int = 4) -> st.SearchStrategy[Tuple[int, ...]]:
    """Tensor shapes with 0 (a scalar) to `max_dims` dimensions of 1 to `max_side` elements."""
    return st.lists(st.integers(1, max_side), min_size=0, max_size=max_dims).map(tuple)


def signed_values(rng: np.random.Generator, shape, low: float = 0.25,
                  high: float = 2.0) -> np.ndarray:
    """float64 values of either sign with magnitude in [low, high], exactly representable in
    float32, drawn from `rng` (see `arrays`)."""
    magnitudes = rng.uniform(low, high, size=shape).astype(np.float32).astype(np.float64)
    return np.where(rng.random(size=shape) < 0.5, -magnitudes, magnitudes)


def generators() -> st.SearchStrategy[np.random.Generator]:
    """numpy generators seeded by Hypothesis. Drawing every element through a Hypothesis
    strategy costs ~10 ms per example, which a dozen examples x every test cannot afford: values
    come from the generator, while shapes and the seed come from (and shrink through)
    Hypothesis."""
    return st.integers(0, 2**32 - 1).map(np.random.default_rng)


@st.composite
def _signed_arrays(draw, shape, low: float, high: float) -> np.ndarray:
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    return signed_values(draw(generators()), shape, low, high)


def arrays(shape, low: float = 0.25, high: float = 2.0,
           elements: Optional[st.SearchStrategy] = None) -> st.SearchStrategy[np.ndarray]:
    """float64 numpy arrays of `shape` (a tuple or a strategy of tuples). By default the
    elements have either sign and a magnitude in [low, high], exactly representable in float32
    (so the float32 tensor under test and the float64 oracle start from identical values); the
    magnitude floor keeps a relative fault such as a 0.1% wrong gradient from hiding in values
    near zero. `elements` replaces that with any strategy of floats."""
    if elements is None:
        return _signed_arrays(shape, low, high)
    from hypothesis.extra import numpy as hnp

    return hnp.arrays(np.float64, shape, elements=elements)


def integer_arrays(shape, low: int = -8, high: int = 8) -> st.SearchStrategy[np.ndarray]:
    """Integer-valued float64 arrays: gradients of polynomials at such points are exact in
    float32, so accumulation can be compared with ==."""
    return arrays(shape, elements=st.integers(low, high).map(float))
