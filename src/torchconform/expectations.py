"""Known failures and known skips of a build: --xfails-file and --skips-file.

One entry per line, `#` starts a comment line:

    # TARGET                         REASON (required)                      [TRACKER URL]
    module.state_dict.keep_vars      keep_vars returns copies on our device  https://bugs/12
    optim.sgd[cuda]                  fused SGD not implemented yet
    suites/autograd/test_no_grad.py::test_decorator[npu]   flaky on npu

TARGET is a behavior id or id prefix (optionally with `[device]`), or a test id prefix.
Every entry must match at least one collected test: a list that names tests which no longer
exist hides regressions. Known failures are strict: one that passes fails the run, so fixed
bugs surface. The one exception is a known failure whose reason starts with `[order-dependent]`:
it fails only after certain other tests in the same process (the reason says which), so under
xdist or another order it may pass; it is reported as xfailed or xpassed, never failing the
run. Malformed lines are errors naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import pytest

from . import protocol

_URL = re.compile(r"^https?://\S+$")
_BEHAVIOR_TARGET = re.compile(r"^([a-z0-9_]+(?:\.[a-z0-9_]+)*)(?:\[([^\]]+)\])?$")


#: Reason prefix of a known failure that shows only after certain other tests (not strict).
ORDER_DEPENDENT = "[order-dependent]"


class ExpectationError(ValueError):
    """A list that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    target: str
    reason: str
    url: Optional[str]
    source: str  # "file:line"

    def describe(self) -> str:
        return self.reason + (f" ({self.url})" if self.url else "")

    @property
    def strict(self) -> bool:
        """An order-dependent failure may pass in another order: not strict."""
        return not self.reason.startswith(ORDER_DEPENDENT)

    def matches(self, item: pytest.Item) -> bool:
        if "::" in self.target or self.target.endswith(".py") or "/" in self.target:
            return item.nodeid.startswith(self.target)
        match = _BEHAVIOR_TARGET.match(self.target)
        if match is None:
            return False
        prefix, device = match.groups()
        found = protocol.facts(item)
        if not protocol.matches_behavior(found.get(protocol.BEHAVIOR), [prefix]):
            return False
        return device is None or found.get(protocol.DEVICE) == device


def parse(path: Path) -> List[Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExpectationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ExpectationError(f"{path}: not UTF-8 text: {exc}") from None
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        parts = line.split()
        url = parts.pop() if len(parts) > 2 and _URL.match(parts[-1]) else None
        if len(parts) < 2:
            raise ExpectationError(
                f"{where}: {line!r} needs a reason after the target "
                f"(format: TARGET REASON [TRACKER-URL])")
        target, reason = parts[0], " ".join(parts[1:])
        if _URL.match(target):
            raise ExpectationError(f"{where}: the line starts with a URL, not a target")
        entries.append(Entry(target, reason, url, where))
    return entries


def apply(items: Iterable[pytest.Item], xfails: List[Entry], skips: List[Entry]) -> List[str]:
    """Mark matching items; return errors for entries that match no collected test."""
    items = list(items)
    used: Dict[Entry, int] = {e: 0 for e in xfails + skips}
    for item in items:
        for entry in skips:
            if entry.matches(item):
                used[entry] += 1
                item.add_marker(pytest.mark.skip(reason=f"known skip: {entry.describe()}"))
                break
        for entry in xfails:
            if entry.matches(item):
                used[entry] += 1
                item.add_marker(pytest.mark.xfail(reason=f"known failure: {entry.describe()}",
                                                  strict=entry.strict))
                break
    return [f"{entry.source}: {entry.target!r} matches no collected test (stale entry?)"
            for entry, count in used.items() if count == 0]
