"""Mutants: monkeypatches that break one documented behavior of torch each.

A mutant is registered with `@mutant(breaks="<behavior id>")`: the self-test applies it, runs
the behavior's area of the suite in-process, and asserts that a test of exactly that behavior
fails. Mutants wrap torch's own functions with `wrap`, so they track whatever torch is
installed instead of copying its code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import pytest


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str  # behavior id whose tests must fail
    apply: Callable[[pytest.MonkeyPatch], None]
    extra_args: Tuple[str, ...] = ()  # run options the mutant needs, e.g. ("--mode", "compile")

    @property
    def area(self) -> str:
        return self.breaks.split(".", 1)[0]


REGISTRY: Dict[str, Mutant] = {}


def mutant(breaks: str, extra_args: Tuple[str, ...] = ()) -> Callable:
    """Register the decorated `fn(monkeypatch)` as a mutant breaking `breaks`."""

    def register(fn: Callable[[pytest.MonkeyPatch], None]):
        name = fn.__name__
        assert name not in REGISTRY, f"duplicate mutant {name}"
        REGISTRY[name] = Mutant(name=name, breaks=breaks, apply=fn, extra_args=tuple(extra_args))
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


def all_mutants() -> List[Mutant]:
    """Every mutant of every area module in this package (tests/mutants/<area>.py)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return list(REGISTRY.values())
