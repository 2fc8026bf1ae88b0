"""Mutants: monkeypatches that break documented behaviors of torch.

A mutant names the behaviors it breaks; the self-test applies it, runs each behavior's area of
the suite in-process, and asserts that a test of exactly that behavior fails. Mutants wrap
torch's own functions, so they track whatever torch is installed instead of copying its code.
Four ways to write one, from the most general to the most compact:

    @mutant(breaks="area.topic.rule")                 # any monkeypatching: fn(monkeypatch)
    def name(mp): wrap(mp, owner, "attr", lambda original: replacement)

    @replace(owner, "attr", breaks="area.topic.rule")  # owner.attr = make(original)
    def name(original): return replacement

    @around(owner, "attr", breaks="area.topic.rule")   # owner.attr(*a, **k) runs
    def name(original, *a, **k): ...                  #   name(original, *a, **k) instead

    option("name", "area.topic.rule", owner, "attr", keyword=value or f(value), ...)

`breaks` is one behavior id or a tuple of them: a tuple claims that a test of EACH fails.
`attr` may be a tuple of attribute names of one owner, each replaced the same way.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import pytest

Breaks = Union[str, Sequence[str]]


@dataclass(frozen=True)
class Mutant:
    name: str
    behaviors: Tuple[str, ...]  # a test of each of these must fail under the mutant
    apply: Callable[[pytest.MonkeyPatch], None]
    extra_args: Tuple[str, ...] = ()  # run options the mutant needs, e.g. ("--mode", "compile")

    @property
    def breaks(self) -> str:
        """The first behavior (mutants written before multi-behavior mutants name one)."""
        return self.behaviors[0]

    @property
    def area(self) -> str:
        return area_of(self.behaviors[0])


def area_of(behavior: str) -> str:
    return behavior.split(".", 1)[0]


REGISTRY: Dict[str, Mutant] = {}


def _register(name: str, breaks: Breaks, apply: Callable[[pytest.MonkeyPatch], None],
              extra_args: Sequence[str] = ()) -> None:
    behaviors = (breaks,) if isinstance(breaks, str) else tuple(breaks)
    assert behaviors and name not in REGISTRY, f"duplicate or empty mutant {name}"
    REGISTRY[name] = Mutant(name=name, behaviors=behaviors, apply=apply,
                            extra_args=tuple(extra_args))


def mutant(breaks: Breaks, extra_args: Sequence[str] = (), name: Optional[str] = None) -> Callable:
    """Register the decorated `fn(monkeypatch)` as a mutant breaking `breaks` (its runs get
    `extra_args`, e.g. ("--mode", "compile"); named `name`, default the function's name)."""

    def register(fn: Callable[[pytest.MonkeyPatch], None]):
        _register(name or fn.__name__, breaks, fn, extra_args)
        return fn

    return register


def wrap(mp: pytest.MonkeyPatch, owner, attr: str, make: Callable[[Callable], Callable]) -> None:
    """Replace owner.attr by make(original), keeping the original's name and docs."""
    original = getattr(owner, attr)
    replacement = make(original)
    try:
        functools.update_wrapper(replacement, original)
    except (AttributeError, TypeError):
        pass
    mp.setattr(owner, attr, replacement)


def _attrs(attr: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    return (attr,) if isinstance(attr, str) else tuple(attr)


def replace(owner, attr: Union[str, Sequence[str]], breaks: Breaks,
            name: Optional[str] = None) -> Callable:
    """Register the decorated `make(original) -> replacement` as a mutant that replaces
    owner.attr (each of several attrs) by make(its original)."""

    def register(make: Callable[[Callable], Callable]):
        def apply(mp: pytest.MonkeyPatch) -> None:
            for a in _attrs(attr):
                wrap(mp, owner, a, make)

        _register(name or make.__name__, breaks, apply)
        return make

    return register


def via(fn: Callable) -> Callable[[Callable], Callable]:
    """A `make` for wrap: the replacement calls fn(original, *args, **kwargs)."""
    def make(original):
        def replacement(*args, **kwargs):
            return fn(original, *args, **kwargs)
        return replacement
    return make


def around(owner, attr: Union[str, Sequence[str]], breaks: Breaks,
           name: Optional[str] = None) -> Callable:
    """Register the decorated `fn(original, *args, **kwargs)` as a mutant: every call of
    owner.attr becomes a call of fn with the original in front."""

    def register(fn: Callable):
        replace(owner, attr, breaks, name or fn.__name__)(via(fn))
        return fn

    return register


def option(name: str, breaks: Breaks, owner, attr: Union[str, Sequence[str]], /, *,
           defaults: Optional[Dict[str, Any]] = None, **changes: Any) -> None:
    """Register a mutant that only changes arguments of owner.attr: each keyword of `changes`
    is set to its value, or to value(argument) when the value is callable (the argument as
    passed, or its default); `defaults` replaces defaults (used only when the caller does not
    pass the argument). Argument names are checked against the original's signature."""
    defaults = defaults or {}

    def make(original):
        signature = inspect.signature(original)
        unknown = set(changes) | set(defaults)
        assert unknown <= set(signature.parameters), (
            f"{name}: {sorted(unknown - set(signature.parameters))} not in {signature}")

        def replacement(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            for key, value in defaults.items():
                bound.arguments.setdefault(key, value)
            bound.apply_defaults()
            for key, change in changes.items():
                bound.arguments[key] = change(bound.arguments[key]) if callable(change) else change
            return original(*bound.args, **bound.kwargs)
        return replacement

    replace(owner, attr, breaks, name)(make)


def all_mutants() -> List[Mutant]:
    """Every mutant of every module in this package (tests/mutants/<area>[_<topic>].py)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return list(REGISTRY.values())
