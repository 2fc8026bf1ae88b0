"""The per-test facts protocol: what a conformance test records, and how every reader gets it.

A conformance test carries its facts as `(key, value)` pairs in `item.user_properties`: the one
channel pytest copies into every report and pytest-xdist sends to the controller. This module
is the only place that writes or reads them; everyone else (plugin, results, HTML, known-failure
lists, reproduction, crash attribution, self-tests) calls the helpers below. No reader parses a
skip message to learn a fact.

Keys (one value each, except GATE and NOTE, which may repeat):

    behavior        catalog id the test asserts ("module.state_dict.keys")
    area            first part of the id ("module")
    device          device under test ("cpu", "cuda:1")
    dtype           dtype parameter, if any ("float64")
    mode            execution mode, if the run has a mode axis ("eager", "compile")
    gpu             GPU index an xdist worker was pinned to
    gate            "torch>=X: yes|no", one per version gate the test passed through
    not_applicable  why the behavior cannot be checked here (API too new, capability missing)
    capability      the device capability whose absence made the test not applicable
    departure       a JSON text: values that departed (device value, CPU value, oracle)
    reproduce       a script reproducing a failure outside pytest
    subject         the class under test of a contract test (torchconform.contracts)
    deviation       why a contract test's class declares it breaks the contract
    isolation       a JSON text: the failure rerun alone in a fresh process ("fails alone" or
                    "fails only after other tests", and the smallest set of preceding tests)
    call            a JSON text: file, function and parameter reprs of the test (what a
                    reproducer needs to replay it as a preceding test)
    crash_stack     the Python stacks faulthandler wrote when the test crashed its worker
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import pytest

BEHAVIOR = "behavior"
AREA = "area"
DEVICE = "device"
DTYPE = "dtype"
MODE = "mode"
GPU = "gpu"
GATE = "gate"
NOT_APPLICABLE = "not_applicable"
CAPABILITY = "capability"
DEPARTURE = "departure"
REPRODUCE = "reproduce"
SUBJECT = "subject"
DEVIATION = "deviation"
ISOLATION = "isolation"
CALL = "call"
CRASH_STACK = "crash_stack"

#: Keys that may occur more than once on a test (all others: the last value counts).
REPEATED = (GATE,)

#: Outcome name (results, matrix) and the prefix of the skip message shown to people.
NOT_APPLICABLE_OUTCOME = "not applicable"

#: Outcome of a contract test whose class declares that it breaks the contract (a strict
#: xfail carrying a DEVIATION fact): neither a pass nor a known failure of torch.
DECLARED_DEVIATION_OUTCOME = "declared deviation"

#: The pytest item whose setup or body is running (set by the plugin), so helpers called from
#: a test or fixture (since(), not_applicable(), the differential comparison) can record facts.
current_item: contextvars.ContextVar = contextvars.ContextVar("torchconform_item", default=None)

Properties = Sequence[Tuple[str, Any]]


# -- writing -------------------------------------------------------------------------------

def record(item: Any, key: str, value: Any) -> None:
    """Record one fact on `item`, a pytest item or report (the running test when None;
    ignored outside a test).
    A repeated key keeps each distinct value once."""
    item = item if item is not None else current_item.get()
    if item is None:
        return
    entry = (key, value)
    if key in REPEATED and entry in item.user_properties:
        return
    item.user_properties.append(entry)


def not_applicable(reason: str, item: Optional[pytest.Item] = None):
    """Stop the running test as not applicable: the behavior cannot be checked here (the API
    is newer than the installed torch, the device lacks a capability). Recorded as a fact and
    reported as "not applicable", never as a pass."""
    record(item, NOT_APPLICABLE, reason)
    pytest.skip(f"{NOT_APPLICABLE_OUTCOME}: {reason}")


def mark_not_applicable(item: pytest.Item, reason: str) -> None:
    """The collection-time form of not_applicable(): the test will not run at all."""
    record(item, NOT_APPLICABLE, reason)
    item.add_marker(pytest.mark.skip(reason=f"{NOT_APPLICABLE_OUTCOME}: {reason}"))


# -- reading -------------------------------------------------------------------------------

def facts(source: Any) -> Dict[str, Any]:
    """The facts of an item or a report as a dict: repeated keys become lists (always
    present, possibly empty), other keys their last value."""
    props: Properties = getattr(source, "user_properties", source) or ()
    out: Dict[str, Any] = {key: [] for key in REPEATED}
    for key, value in props:
        if key in REPEATED:
            if value not in out[key]:
                out[key].append(value)
        else:
            out[key] = value
    return out


def behavior_of(source: Any) -> Optional[str]:
    """The behavior id an item or report records, or None (not a conformance test)."""
    return facts(source).get(BEHAVIOR)


def matches_behavior(behavior_id: Optional[str], prefixes: Iterable[str]) -> bool:
    """True when `behavior_id` is one of `prefixes` or lies under one of them: "optim" and
    "optim.sgd" match "optim.sgd.momentum", "optim.sg" does not."""
    if not behavior_id:
        return False
    return any(behavior_id == p or behavior_id.startswith(p + ".") for p in prefixes)


def behavior_marker(item: pytest.Item) -> Optional[str]:
    """The id named by the test's @behavior marker, or None."""
    marker = item.get_closest_marker("behavior")
    return marker.args[0] if marker is not None and len(marker.args) == 1 else None


def is_conformance(item: pytest.Item, roots: List[Path]) -> bool:
    """A conformance test: marked with @behavior, or defined under a suite root
    (ini `torchconform_suites`), where a missing marker is an error."""
    if item.get_closest_marker("behavior") is not None:
        return True
    path = Path(str(item.path)).resolve()
    return any(root == path or root in path.parents for root in roots)
