"""The JSON results of one run: one record per test, written by the process that receives the
test reports (the xdist controller when running with -n), so a run writes one complete file.

Schema: docs/report-schema.md (SCHEMA, SCHEMA_VERSION below). Per-test facts are read through
protocol.py.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from .. import protocol
from . import triage

SCHEMA = "torchconform-results"
SCHEMA_VERSION = 1
OUTCOMES = ("passed", "failed", "error", "skipped", protocol.NOT_APPLICABLE_OUTCOME, "xfailed",
            "xpassed", protocol.DECLARED_DEVIATION_OUTCOME)


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file and an
    interrupted write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a report is for sharing
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).replace("Skipped: ", "", 1)
    return str(longrepr or "")


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    text = str(report.longrepr or "")
    # A crashed worker's text (CrashAttribution) leads with what happened; others end with it.
    return text[:2000] if getattr(report, "crashed", False) else text[-2000:]


def _json_fact(text: Optional[str]) -> Any:
    """A fact recorded as JSON text (departure, isolation), as an object in the report."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


class TestRecord:
    """Folds the setup/call/teardown reports of one test into one outcome."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.props: Dict[str, Any] = {}
        self.outcome: Optional[str] = None
        self.reason: Optional[str] = None
        self.message: Optional[str] = None
        self.duration = 0.0

    def add(self, report: pytest.TestReport) -> None:
        found = protocol.facts(report)
        gates = self.props.get(protocol.GATE, []) + [
            g for g in found.pop(protocol.GATE) if g not in self.props.get(protocol.GATE, [])]
        self.props.update(found)
        self.props[protocol.GATE] = gates
        self.duration += getattr(report, "duration", 0.0) or 0.0
        xfail = hasattr(report, "wasxfail")
        if report.skipped:
            if xfail:
                declared = protocol.DEVIATION in self.props
                self.outcome = protocol.DECLARED_DEVIATION_OUTCOME if declared else "xfailed"
                self.reason = report.wasxfail or None
            elif self.outcome is None:
                na = protocol.NOT_APPLICABLE in found
                self.outcome = protocol.NOT_APPLICABLE_OUTCOME if na else "skipped"
                self.reason = _skip_reason(report)
        elif report.failed:
            if report.when not in ("setup", "teardown"):
                self.outcome = "failed"  # the test body, or its crash (see CrashAttribution)
            elif self.outcome in (None, "passed"):
                self.outcome = "error"  # a fixture failed around the test
            self.message = self.message or _message(report)
        elif report.when == "call":
            self.outcome = "xpassed" if xfail else "passed"

    def as_json(self) -> Dict[str, Any]:
        get = self.props.get
        return {
            "nodeid": self.nodeid,
            "behavior": get(protocol.BEHAVIOR),
            "area": get(protocol.AREA),
            "device": get(protocol.DEVICE),
            "dtype": get(protocol.DTYPE),
            "mode": get(protocol.MODE),
            "gpu": get(protocol.GPU),
            "outcome": self.outcome or "error",
            "reason": self.reason,
            "missing_capability": get(protocol.CAPABILITY),
            "duration": round(self.duration, 6),
            "message": self.message,
            "gates": list(get(protocol.GATE, [])),
            "reproduce": get(protocol.REPRODUCE),
            "subject": get(protocol.SUBJECT),
            "departure": _json_fact(get(protocol.DEPARTURE)),
            "isolation": _json_fact(get(protocol.ISOLATION)),
            "crash_stack": get(protocol.CRASH_STACK),
        }


class ResultsWriter:
    """pytest plugin object: gathers records and writes <dir>/conformance.json at the end."""

    def __init__(self, path: Path, facts: Dict[str, Any]) -> None:
        self.path = path
        self.facts = facts
        self.records: Dict[str, TestRecord] = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.records.get(report.nodeid)
        if record is None:
            record = self.records[report.nodeid] = TestRecord(report.nodeid)
        record.add(report)

    def document(self, exitstatus: int) -> Dict[str, Any]:
        tests = self.tests()
        summary = {outcome: 0 for outcome in OUTCOMES}
        for test in tests:
            summary[test["outcome"]] += 1
        finished = time.time()
        run = dict(self.facts)
        run.update({
            "started": _iso(self.started),
            "finished": _iso(finished),
            "duration": round(finished - self.started, 3),
            "exitstatus": int(exitstatus),
        })
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run": run,
                "summary": summary, "causes": triage.causes(tests), "tests": tests}

    def tests(self) -> List[Dict[str, Any]]:
        """The conformance tests' JSON records so far."""
        return [r.as_json() for r in self.records.values() if r.props.get(protocol.BEHAVIOR)]

    def add_fact(self, nodeid: str, key: str, value: Any) -> None:
        """A fact learned after the test's reports arrived (its isolated rerun)."""
        record = self.records.get(nodeid)
        if record is not None:
            record.props[key] = value

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # trylast: the exit status is final (the empty-run check may have changed it).
        document = self.document(session.exitstatus)
        write_atomically(self.path, json.dumps(document, indent=1, sort_keys=False) + "\n")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        tests = self.tests()
        found = triage.causes(tests)
        if found:
            terminalreporter.write_sep("-", triage.summary_line(tests, found))
            for line in triage.describe(found):
                terminalreporter.write_line(line)
        terminalreporter.write_sep("-", f"torchconform results: {self.path}")


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="seconds")


def run_key(facts: Dict[str, Any]) -> List[Any]:
    """What makes two runs 'the same run' for replacing reports: torch, devices, machine."""
    return [facts["torch"]["version"], facts["torch"]["build"], facts["devices"],
            facts["machine"]]


def keep_previous(directory: Path, facts: Dict[str, Any], names: List[str]) -> Optional[Path]:
    """Move the reports of a different earlier run out of the way instead of overwriting them.

    A run replaces its own reports (same torch, devices and machine); reports of any other run,
    or files that are not ours, go to <directory>/previous/<their date>-<torch>/. Returns where
    they went, or None when nothing was moved."""
    current = directory / names[0]
    if not current.exists():
        return None
    try:
        old = json.loads(current.read_text(encoding="utf-8"))
        if old.get("schema") == SCHEMA and run_key(old["run"]) == run_key(facts):
            return None
        label = f"{old['run']['started']}-torch{old['run']['torch']['version']}"
    except (ValueError, KeyError, TypeError, OSError):
        label = datetime.fromtimestamp(current.stat().st_mtime, tz=timezone.utc).isoformat(
            timespec="seconds") + "-unreadable"
    target = directory / "previous" / label.replace(":", "").replace("+", "_")
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (directory / name).exists():
            os.replace(directory / name, target / name)
    return target
