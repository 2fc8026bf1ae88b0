"""Fixtures for the harness's own tests: run the suite (or a sample suite) in-process."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, Phase, settings

from torchconform import protocol
from torchconform.profiles import PROFILES

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"

# Mutation runs need the same examples every time and no shrinking (a failure is all we need).
# As many examples as the default profiles: a mutant is proven caught by the run users make.
settings.register_profile(
    "mutants", max_examples=PROFILES["ci"]["max_examples"], deadline=None, derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False,
        help="also run the self-tests marked slow (whole-suite repeats in random order, runs "
             "under xdist, hangs waiting for the timeout): CI and `tox -e selftest` do.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a self-test that runs the whole suite again, starts xdist workers "
                   "or waits for a test to hang; deselected unless --run-slow")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    if config.getoption("run_slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


def _preserve_imported_libraries() -> None:
    """Keep torch & co. in sys.modules across in-process runs.

    Pytester removes every module a nested run imported. torch registers native operator
    libraries when some of its submodules are first imported (lazily, during a run); importing
    them a second time fails ("Only a single TORCH_LIBRARY can be used ...").
    """
    take = getattr(pytest.Pytester, "_Pytester__take_sys_modules_snapshot", None)
    if take is None:  # pragma: no cover - a pytest without this private method
        return
    from _pytest.pytester import SysModulesSnapshot

    libraries = ("torch", "functorch", "torchgen", "numpy", "sympy", "mpmath", "triton")

    def preserve(name: str) -> bool:
        return name.split(".", 1)[0] in libraries

    pytest.Pytester._Pytester__take_sys_modules_snapshot = lambda self: SysModulesSnapshot(
        preserve=preserve)


_preserve_imported_libraries()


class SuiteRun:
    """Outcome of one in-process run: exit code and the behaviors of failed tests."""

    def __init__(self, ret, reports) -> None:
        self.ret = ret
        self.reports = reports

    def behaviors(self, outcome: str) -> List[str]:
        found = []
        for report in self.reports:
            if getattr(report, outcome) and report.when in ("setup", "call", "teardown"):
                bid = protocol.behavior_of(report)
                if bid and bid not in found:
                    found.append(bid)
        return found

    @property
    def counts(self) -> Tuple[int, int, int]:
        calls = [r for r in self.reports if r.when == "call"]
        return (sum(r.passed for r in calls), sum(r.failed for r in self.reports),
                sum(r.skipped for r in self.reports))


@pytest.fixture
def run_suite(pytester: pytest.Pytester):
    """Run suites/<area> (or any paths) in this process on the CPU; returns a SuiteRun."""

    def run(*paths: str, extra: Sequence[str] = ()) -> SuiteRun:
        targets = [str(SUITES / p) for p in paths] or [str(SUITES)]
        recorder = pytester.inline_run(
            *targets, "--device=cpu", "--hypothesis-profile=mutants", "-p", "no:randomly",
            "-p", "no:cacheprovider", "--no-report", "--rootdir", str(ROOT),
            "-c", str(ROOT / "pyproject.toml"), *extra)
        reports = recorder.getreports("pytest_runtest_logreport")
        return SuiteRun(recorder.ret, reports)

    return run
