"""Triage: failures grouped by cause, so "24 failed" reads as "N distinct problems".

A cause is (area, how it failed, normalized message):
- how it failed: the differential's verdict when there is one (differential.py: "device departs
  from CPU and oracle", "both depart ...", "device fails where the CPU passes"), then the
  exception type ("AssertionError", "RuntimeError", "crash" for a dead worker);
- the message's first line with what varies between instances of one problem replaced:
  addresses (0x7f..) by ADDR, shapes ((2, 3), torch.Size([2, 3])) by SHAPE, numbers by N,
  test ids by TEST.

Read by the JSON writer (the `causes` section), the HTML summary block and the terminal
summary. Works on the JSON test records (results.TestRecord.as_json), so it needs no pytest.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, List, Tuple

FAILED = ("failed", "error")

# In order: a rule must not see what an earlier one replaced.
_RULES = [
    (re.compile(r"0x[0-9a-fA-F]+"), "ADDR"),
    (re.compile(r"'[^']*::[^']*'"), "TEST"),
    (re.compile(r"\bgw\d+\b"), "WORKER"),
    (re.compile(r"torch\.Size\(\[[\d,\s]*\]\)"), "SHAPE"),
    (re.compile(r"\((?:\s*\d+\s*,)+\s*\d*\s*\)|\(\s*\)"), "SHAPE"),
    (re.compile(r"\b(?:np\.)?float(?:16|32|64)\(([^()]*)\)"), r"\1"),  # np.float64(2.5)
    # One problem seen in float32 and float64 tests: "(torch.float32, rtol=...)".
    (re.compile(r"\btorch\.(?:b?float(?:16|32|64)|half|double)\b"), "DTYPE"),
    (re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"), "N"),
]
_FRAME = re.compile(r'File "([^"]+)", line \d+ in (\S+)')
_EXCEPTION = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning|"
                        r"Failed|Timeout))\b:?\s*(.*)$", re.S)


def normalize(message: str) -> str:
    """The first line of `message` with its varying parts (numbers, addresses, shapes)
    replaced, so instances of one problem compare equal."""
    text = (message or "").strip()
    line = text.splitlines()[0] if text else ""
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return line[:300]


def _kind(test: Dict[str, Any]) -> Tuple[str, str]:
    """(how it failed, the rest of the message) of a failed test record."""
    message = test.get("message") or ""
    if "crashed the interpreter" in message:
        frame = _FRAME.search(test.get("crash_stack") or "")
        where = (f" in {frame.group(2)} ({frame.group(1).rsplit('/', 1)[-1]})" if frame
                 else " (or hung past the timeout)")
        return "crash", f"the test crashed the interpreter{where}"
    if message.startswith("assert "):  # a bare assert, as pytest reports it
        message = f"AssertionError: {message}"
    match = _EXCEPTION.match(message)
    exception, rest = (match.group(1).split(".")[-1], match.group(2)) if match else (
        "failure", message)
    departure = test.get("departure") or {}
    return (f"{departure['kind']} ({exception})" if departure.get("kind") else exception), rest


def cause_of(test: Dict[str, Any]) -> Dict[str, str]:
    kind, rest = _kind(test)
    return {"area": test.get("area") or "?", "kind": kind,
            "message": normalize(rest) if kind != "crash" else rest}


def causes(tests: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The distinct causes of the failed tests, most tests first. Each: id (stable hash),
    area, kind, message, tests (node ids), devices, order (the order-dependence classes seen
    among its tests), reproduce (the script of its first test)."""
    groups: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    for test in tests:
        if test.get("outcome") not in FAILED:
            continue
        cause = cause_of(test)
        key = (cause["area"], cause["kind"], cause["message"])
        group = groups.get(key)
        if group is None:
            digest = hashlib.sha1("\0".join(key).encode()).hexdigest()[:8]
            group = groups[key] = dict(id=digest, **cause, tests=[], devices=[], order=[],
                                       reproduce=None, departure=None)
        group["tests"].append(test["nodeid"])
        if test.get("device") and test["device"] not in group["devices"]:
            group["devices"].append(test["device"])
        order = (test.get("isolation") or {}).get("classification")
        if order and order not in group["order"]:
            group["order"].append(order)
        if group["reproduce"] is None and test.get("reproduce"):
            group["reproduce"] = test["reproduce"]
            group["departure"] = test.get("departure")
    return sorted(groups.values(), key=lambda g: (-len(g["tests"]), g["area"], g["kind"]))


def summary_line(tests: List[Dict[str, Any]], found: List[Dict[str, Any]]) -> str:
    failed = sum(t.get("outcome") in FAILED for t in tests)
    if not failed:
        return "torchconform triage: no failures"
    return (f"torchconform triage: {failed} failed test{'s' * (failed != 1)} from "
            f"{len(found)} distinct cause{'s' * (len(found) != 1)}")


def describe(found: List[Dict[str, Any]]) -> List[str]:
    """One line per cause, for the terminal."""
    lines = []
    for cause in found:
        order = f" [{', '.join(cause['order'])}]" if cause["order"] else ""
        lines.append(f"  {cause['id']} {cause['area']}: {cause['kind']}: {cause['message']}"
                     f" ({len(cause['tests'])} test{'s' * (len(cause['tests']) != 1)}){order}")
    return lines
