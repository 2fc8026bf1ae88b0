"""What a run's outcome must say about faults of the code under test.

RunCounter        a run in which no conformance test ran (all skipped) is not a pass
CrashAttribution  a test whose xdist worker died is that test's failure, with its facts and
                  the Python stacks of the native crash (faulthandler, see NativeStacks)
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import pytest

from . import protocol

#: workerinput key: the folder where each xdist worker's faulthandler writes.
CRASH_DIR = "torchconform_crash_dir"


class NativeStacks:
    """In an xdist worker: faulthandler writes the Python stack of every thread to
    <crash dir>/<worker id>-<pid>.txt when the interpreter dies of a fatal signal (SIGSEGV,
    SIGABRT, SIGBUS, SIGFPE, SIGILL). Enabled at session start, after pytest's own
    faulthandler plugin (configure) pointed it at stderr, which xdist does not forward."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.handle = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        worker = session.config.workerinput.get("workerid", "worker")
        path = Path(self.directory) / f"{worker}-{os.getpid()}.txt"
        self.handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open until exit
        faulthandler.enable(self.handle, all_threads=True)

    @staticmethod
    def read(directory: str, worker: str) -> Optional[str]:
        """The newest stack dump of `worker`, or None."""
        dumps = sorted(Path(directory).glob(f"{worker}-*.txt"), key=lambda p: p.stat().st_mtime)
        for dump in reversed(dumps):
            text = dump.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                return NativeStacks.crashing_thread(text)
        return None

    @staticmethod
    def crashing_thread(dump: str) -> str:
        """The signal line and the crashing thread's frames down to the test (innermost
        first), without the pytest, pluggy and xdist frames beneath it."""
        lines = dump.splitlines()
        out = [lines[0]]
        start = next((i for i, line in enumerate(lines) if line.startswith("Current thread")),
                     None)
        if start is None:
            return dump
        out.append(lines[start])
        for line in lines[start + 1:]:
            if not line.startswith("  File "):
                break
            if any(f"/{lib}/" in line for lib in ("_pytest", "pluggy", "xdist", "execnet")):
                out.append("  ... (pytest and xdist frames)")
                break
            out.append(line)
        return "\n".join(out)


class CrashAttribution:
    """On the xdist controller, for a test whose worker died: xdist reports it as phase "???",
    without the test's facts and without a teardown report. Make it the test's failed call
    with the behavior, device, ... seen in its setup report, say what may have happened, and
    close the test with a teardown report, so report writers (pytest-html) list it."""

    def __init__(self, config: pytest.Config, timeout: Optional[float],
                 known_failures: Sequence[Any] = ()) -> None:
        self.config = config
        self.props: dict = {}
        self.timeout = timeout
        self.known_failures = list(known_failures)  # --xfails-file entries (expectations.Entry)
        self.crash_dir = tempfile.mkdtemp(prefix="torchconform-crashes-")

    def pytest_configure_node(self, node) -> None:
        node.workerinput[CRASH_DIR] = self.crash_dir

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        shutil.rmtree(self.crash_dir, ignore_errors=True)

    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched) -> None:
        report.user_properties = list(self.props.get(crashitem, []))
        report.when = "call"
        report.crashed = True
        limit = f" or hung past the {self.timeout:g} s per-test timeout" if self.timeout else ""
        report.longrepr = (f"{report.longrepr}: the test crashed the interpreter{limit}; "
                           "the worker was replaced and the run went on")
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", None)
        stack = NativeStacks.read(self.crash_dir, worker) if worker else None
        if stack:
            protocol.record(report, protocol.CRASH_STACK, stack)
            report.longrepr += "\n\nThe crash's Python stack (faulthandler):\n" + stack
        # A listed known failure that kills its worker is the known failure (the worker never
        # got to apply its xfail marker): xfailed, like any other listed failure.
        entry = next((e for e in self.known_failures if e.matches(report)), None)
        if entry is not None:
            report.outcome = "skipped"
            report.wasxfail = f"known failure: {entry.describe()} (crashed the interpreter)"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport):
        if report.user_properties and report.nodeid not in self.props:
            self.props[report.nodeid] = list(report.user_properties)
        yield
        if getattr(report, "crashed", False):
            self.config.hook.pytest_runtest_logreport(report=pytest.TestReport(
                nodeid=report.nodeid, location=report.location, keywords={},
                outcome="passed", longrepr=None, when="teardown",
                user_properties=list(report.user_properties)))


class RunCounter:
    """Counts conformance tests that actually ran (passed or failed, not skipped). Lives on the
    process that receives reports, so it also counts under xdist."""

    def __init__(self) -> None:
        self.collected = 0
        self.ran = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if protocol.behavior_of(report) is None:
            return
        if report.when == "setup":
            self.collected += 1
        if (report.when == "call" and not report.skipped) or (
                report.failed and report.when != "call"):
            self.ran += 1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if session.config.option.collectonly or exitstatus != pytest.ExitCode.OK:
            return
        if self.collected and not self.ran:
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(
                    f"torchconform: no conformance test ran ({self.collected} selected, all "
                    "skipped): an empty run is not a pass", red=True)
