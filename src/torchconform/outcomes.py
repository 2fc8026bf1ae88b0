"""What a run's outcome must say about faults of the code under test.

RunCounter        a run in which no conformance test ran (all skipped) is not a pass
CrashAttribution  a test whose xdist worker died is that test's failure, with its facts
"""

from __future__ import annotations

from typing import Optional

import pytest

from . import protocol


class CrashAttribution:
    """On the xdist controller, for a test whose worker died: xdist reports it as phase "???",
    without the test's facts and without a teardown report. Make it the test's failed call
    with the behavior, device, ... seen in its setup report, say what may have happened, and
    close the test with a teardown report, so report writers (pytest-html) list it."""

    def __init__(self, config: pytest.Config, timeout: Optional[float]) -> None:
        self.config = config
        self.props: dict = {}
        self.timeout = timeout

    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched) -> None:
        report.user_properties = list(self.props.get(crashitem, []))
        report.when = "call"
        report.crashed = True
        limit = f" or hung past the {self.timeout:g} s per-test timeout" if self.timeout else ""
        report.longrepr = (f"{report.longrepr}: the test crashed the interpreter{limit}; "
                           "the worker was replaced and the run went on")

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
