"""pytest hooks and options of torchconform. Each hook delegates to one module:

devices.py       --device parsing, discovery, GPU pinning -> `device` fixture parametrization
behaviors.py     behavior marker and catalog   -> checked at collection, recorded per test
versions.py      version gates                 -> catalog `since` skips, since() in tests
isolation.py     known start state per test    -> autouse fixture
profiles.py      Hypothesis profiles           -> --hypothesis-profile (Hypothesis' own option)
expectations.py  --xfails-file / --skips-file  -> xfail / skip markers at collection
outcomes.py      empty runs fail; crashed xdist workers -> that test failed
differential.py  a failure on a non-CPU device -> rerun on the CPU, DEPARTURE fact
reruns.py        failures rerun alone in fresh processes -> ISOLATION fact, bisected order
report/          run facts, JSON, HTML columns, reproduction scripts

Per-test facts (behavior, area, device, dtype, gates, ...) are written and read only through
protocol.py.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import torch

from . import (
    capabilities,
    devices,
    differential,
    environment,
    expectations,
    isolation,
    modes,
    profiles,
    protocol,
    versions,
)
from .adapters import FLOAT64
from .adapters.cuda import build_name
from .behaviors import CatalogError, format_catalog, load_catalog
from .modes import compiler, mode  # noqa: F401 - fixtures of the execution modes
from .outcomes import CRASH_DIR, CrashAttribution, NativeStacks, RunCounter
from .report.repro import item_spec, reproduction
from .report.session import configure_reports
from .reruns import CallRecorder, FailureIsolation

profiles.register()
# Benchmark timing (timing.py) adds options, distributed.py the `ranks` fixture and the contract
# kit (contracts/pytest_plugin.py) its collection of users' classes, so they load with this
# module, not at configure.
pytest_plugins = ["torchconform.timing", "torchconform.distributed",
                  "torchconform.contracts.pytest_plugin"]

_PREVIOUS_PROFILE = pytest.StashKey[Optional[str]]()
_MOVED = pytest.StashKey[Path]()
_GPU = pytest.StashKey[str]()  # the GPU this xdist worker was pinned to (device type "cuda")
_EXPECTATIONS = pytest.StashKey[dict]()
_DEVICE_RUN = pytest.StashKey[differential.DeviceRun]()

FLOAT_DTYPES = (torch.float32, torch.float64)
#: Default --isolate-failures budget in seconds (see README, "Making failures actionable").
ISOLATION_BUDGET = 120.0


# -- options -------------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torchconform", "torchconform: PyTorch conformance suite")
    group.addoption(
        "--device", default=None, metavar="LIST",
        help="comma-separated devices to test: cpu, cuda, cuda:1, mps, xpu or a PrivateUse1 "
             "backend name. Default: every available device type. An unknown or "
             "unavailable device is a usage error.")
    group.addoption(
        "--backend-module", action="append", default=[], metavar="MODULE",
        help="import MODULE before discovering devices (an out-of-tree backend such as "
             "torch_npu that registers its device on import). Repeatable.")
    group.addoption(
        "--behavior", default=None, metavar="IDS", dest="behavior_filter",
        help="run only tests of these behaviors: comma-separated ids or id prefixes such as "
             "'module.state_dict' or 'optim'.")
    group.addoption(
        "--torch-seed", type=int, default=0, metavar="N",
        help="seed of torch, numpy and random at the start of every test (default 0).")
    group.addoption(
        "--xfails-file", default=None, metavar="FILE",
        help="known failures: one 'TARGET REASON [URL]' per line (TARGET: behavior id or "
             "prefix, optionally [device], or test id prefix). Strict: a known failure that "
             "passes fails the run. An entry matching no test is an error.")
    group.addoption(
        "--skips-file", default=None, metavar="FILE",
        help="tests not to run on this build, same format as --xfails-file.")
    group.addoption(
        "--report-dir", default=None, metavar="DIR",
        help="where conformance.json and conformance.html go (default: <rootdir>/reports). "
             "Reports of a different earlier run are moved to DIR/previous/, never lost.")
    group.addoption(
        "--no-report", action="store_true", default=False,
        help="write no conformance.json / conformance.html.")
    group.addoption(
        "--behaviors", action="store_true", default=False,
        help="list every behavior (id, statement, documentation, seed, version facts) with the "
             "node ids of the tests that check it: collects, runs nothing.")
    modes.add_options(group)
    group.addoption(
        "--isolate-failures", type=float, default=None, metavar="SECONDS",
        help="rerun each failed test alone in a fresh process, and bisect the tests that ran "
             "before it when it passes alone, for at most SECONDS in total (default "
             f"{ISOLATION_BUDGET:g} times the largest timeout factor of the tested devices' "
             "adapters, e.g. 5 for xla; 0 turns it off).")
    group.addoption(  # internal: what the isolation reruns record for reproducers
        "--record-calls", default=None, metavar="FILE", help=argparse.SUPPRESS)
    parser.addini(
        "torchconform_suites", type="paths", default=[],
        help="folders whose tests are conformance checks (each must name a behavior).")


# -- configure: validate every input once ---------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    environment.require()  # a broken environment stops here, not in hundreds of tests
    config.addinivalue_line(
        "markers", "behavior(id): the documented behavior (catalog id) that the test asserts")
    for module in config.getoption("backend_module"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise pytest.UsageError(f"--backend-module {module}: {exc}") from None
    _configure_xdist_worker(config)
    try:
        config.stash[devices.TESTED] = devices.resolve_devices(config.getoption("device"))
    except devices.DeviceError as exc:
        raise pytest.UsageError(f"--device: {exc}") from None
    modes.configure(config, config.stash[devices.TESTED])
    config.stash[_EXPECTATIONS] = {}
    for option in ("xfails_file", "skips_file"):
        path = config.getoption(option)
        if path:
            try:
                config.stash[_EXPECTATIONS][option] = expectations.parse(
                    config.invocation_params.dir / path)
            except expectations.ExpectationError as exc:
                raise pytest.UsageError(f"--{option.replace('_', '-')}: {exc}") from None
    try:
        load_catalog()
    except CatalogError as exc:
        raise pytest.UsageError(f"torchconform catalog: {exc}") from None
    _select_hypothesis_profile(config)
    if config.getoption("behaviors"):  # like --collect-only: collect, list, run nothing
        config.option.collectonly = True
        config.option.verbose = min(config.option.verbose, -1)  # no header, no item list
        config.pluginmanager.register(BehaviorListing(), "torchconform-behavior-listing")
    config.pluginmanager.register(RunCounter(), "torchconform-run-counter")
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(
            CrashAttribution(config, _timeout(config),
                             config.stash[_EXPECTATIONS].get("xfails_file", [])),
            "torchconform-crashes")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(
            capabilities.MissingCapabilitySummary(config.stash[devices.TESTED]),
            "torchconform-capabilities")
    if not hasattr(config, "workerinput") and not config.option.collectonly:
        config.pluginmanager.register(
            FailureIsolation(config, _isolation_budget(config)), "torchconform-isolation")
    if config.getoption("record_calls"):
        config.pluginmanager.register(CallRecorder(config.getoption("record_calls")),
                                      "torchconform-call-recorder")
    moved = configure_reports(config, config.stash[devices.TESTED], _suite_roots(config))
    if moved is not None:
        config.stash[_MOVED] = moved


def _isolation_budget(config: pytest.Config) -> float:
    """--isolate-failures, or the default scaled like the per-test timeout: a rerun on a
    device that compiles a graph per shape costs as many times more."""
    given = config.getoption("isolate_failures")
    if given is not None:
        return given
    factors = [devices.adapter(d).timeout_factor for d in config.stash[devices.TESTED]]
    return ISOLATION_BUDGET * max(factors, default=1.0)


def _timeout(config: pytest.Config) -> Optional[float]:
    """The per-test timeout pytest-timeout applies, resolved by pytest-timeout itself
    (get_env_settings: --timeout, then PYTEST_TIMEOUT, then the ini file), or None."""
    if not config.pluginmanager.hasplugin("timeout"):
        return None
    import pytest_timeout

    return pytest_timeout.get_env_settings(config).timeout or None


def _configure_xdist_worker(config: pytest.Config) -> None:
    """In an xdist worker: pin it to one GPU before CUDA initializes, and stop hung tests with
    pytest-timeout's thread method, which ends the worker even inside native code; xdist then
    reports the test as failed and starts a new worker."""
    if not hasattr(config, "workerinput"):
        return
    crash_dir = config.workerinput.get(CRASH_DIR)
    if crash_dir:
        config.pluginmanager.register(NativeStacks(crash_dir), "torchconform-native-stacks")
    gpu = devices.pin_xdist_worker(config.getoption("device"))
    if gpu is not None:
        config.stash[_GPU] = gpu
    if (config.pluginmanager.hasplugin("timeout") and config.getoption("timeout_method") is None
            and not config.getini("timeout_method")):
        config.option.timeout_method = "thread"


def _select_hypothesis_profile(config: pytest.Config) -> None:
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    name = config.getoption("hypothesis_profile", default=None)
    if name is not None:
        try:
            settings.get_profile(name)
        except InvalidArgument:
            raise pytest.UsageError(
                f"--hypothesis-profile: unknown profile {name!r}; known here: "
                f"{', '.join(sorted(profiles.PROFILES))} (and any your conftest registers)"
            ) from None
    config.stash[_PREVIOUS_PROFILE] = profiles.current()
    if name is None:  # Hypothesis' own plugin loads an explicitly named profile.
        name = profiles.default_profile()
        settings.load_profile(name)
    config.hypothesis_profile_name = name


def pytest_unconfigure(config: pytest.Config) -> None:
    # Nested runs (pytester) must not leave their profile behind in the calling process.
    previous = config.stash.get(_PREVIOUS_PROFILE, None)
    if previous is not None:
        profiles.restore(previous)


def pytest_report_header(config: pytest.Config) -> List[str]:
    gpu = config.stash.get(_GPU, None)
    tested = [f"{d} ({devices.adapter(d).backend()})" if devices.adapter(d).type != "cpu"
              else d for d in devices.tested(config)]
    return [
        f"torchconform: torch {versions.TORCH_VERSION} ({build_name()}), "
        f"devices: {', '.join(tested)}, modes: {', '.join(modes.selected(config))}"
        f"{f' (this worker: GPU {gpu})' if gpu is not None else ''}, "
        f"hypothesis profile: {getattr(config, 'hypothesis_profile_name', '?')}, "
        f"seed: {config.getoption('torch_seed')}"
    ]


# -- collection: parametrize by device, check behaviors, apply gates ------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only conformance tests: another project's test with a `device` argument is not ours.
    if not protocol.is_conformance(metafunc.definition, _suite_roots(metafunc.config)):
        return
    names = metafunc.fixturenames
    if "device" in names and not _parametrized_by_test(metafunc, "device"):
        metafunc.parametrize("device", devices.tested(metafunc.config), indirect=True)
    if "dtype" in names and not _parametrized_by_test(metafunc, "dtype"):
        metafunc.parametrize("dtype", FLOAT_DTYPES, indirect=True, ids=_dtype_name)
    modes.parametrize(metafunc)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _parametrized_by_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0]
        if isinstance(argnames, str):
            argnames = [n.strip() for n in argnames.split(",")]
        if name in argnames:
            return True
    return False


def _suite_roots(config: pytest.Config) -> List[Path]:
    return [Path(str(p)).resolve() for p in config.getini("torchconform_suites")]


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    catalog = load_catalog()
    roots = _suite_roots(config)
    problems = []
    for item in items:
        if not protocol.is_conformance(item, roots):
            continue
        bid = protocol.behavior_marker(item)
        if bid is None:
            problems.append(f"{item.nodeid}: no @behavior(id) marker")
            continue
        entry = catalog.get(bid)
        if entry is None:
            problems.append(f"{item.nodeid}: behavior {bid!r} is not in the catalog")
            continue
        protocol.record(item, protocol.BEHAVIOR, entry.id)
        protocol.record(item, protocol.AREA, entry.area)
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        if "device" in params:
            protocol.record(item, protocol.DEVICE, str(params["device"]))
        if "dtype" in params:
            protocol.record(item, protocol.DTYPE, _dtype_name(params["dtype"]))
        modes.record(item)
        gpu = config.stash.get(_GPU, None)
        if gpu is not None and devices.is_pinned_type(str(params.get("device", ""))):
            protocol.record(item, protocol.GPU, gpu)
        if "device" in params:
            _scale_timeout(config, item, str(params["device"]))
        if entry.since and not versions.torch_at_least(entry.since):
            protocol.mark_not_applicable(item, (
                f"{entry.id} needs torch>={entry.since} (installed {versions.TORCH_VERSION})"))
    if problems:
        raise pytest.UsageError(
            "every conformance test names one catalogued behavior:\n  " + "\n  ".join(problems))
    lists = config.stash[_EXPECTATIONS]
    if lists:
        stale = expectations.apply(items, lists.get("xfails_file", []),
                                   lists.get("skips_file", []))
        if stale:
            raise pytest.UsageError("known-failure lists:\n  " + "\n  ".join(stale))
    _select_behaviors(config, items, catalog)
    modes.deselect(config, items)


def _scale_timeout(config: pytest.Config, item: pytest.Item, device: str) -> None:
    """A device whose adapter has a timeout_factor gets that many times the per-test timeout
    (pytest-timeout's marker), unless the test sets its own."""
    factor = devices.adapter(device).timeout_factor
    if factor == 1 or item.get_closest_marker("timeout") is not None:
        return
    base = getattr(config.option, "timeout", None)
    if base is None and config.pluginmanager.hasplugin("timeout"):
        base = float(config.getini("timeout") or 0)
    if base:
        item.add_marker(pytest.mark.timeout(float(base) * factor))


def _select_behaviors(config: pytest.Config, items: List[pytest.Item], catalog) -> None:
    wanted = config.getoption("behavior_filter")
    if not wanted:
        return
    prefixes = [p.strip() for p in wanted.split(",") if p.strip()]
    unknown = [p for p in prefixes if not any(protocol.matches_behavior(b, [p]) for b in catalog)]
    if unknown:
        raise pytest.UsageError(f"--behavior: no catalogued behavior matches {unknown}")

    def selected(item: pytest.Item) -> bool:
        return protocol.matches_behavior(protocol.behavior_of(item), prefixes)

    deselected = [item for item in items if not selected(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if selected(item)]


class BehaviorListing:
    """--behaviors: the catalog, each behavior with the node ids of the tests that check it
    (collected like any run, so --behavior and the known-failure lists apply)."""

    def __init__(self) -> None:
        self.tests: Dict[str, List[str]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: List[pytest.Item]) -> None:
        for item in items:
            bid = protocol.behavior_of(item)
            if bid is not None:
                self.tests.setdefault(bid, []).append(item.nodeid)
        items[:] = []  # listed here, not once more by --collect-only

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.testsfailed:  # collection errors: pytest reports them, nothing to list
            return
        catalog = load_catalog()
        wanted = session.config.getoption("behavior_filter")
        if wanted:
            prefixes = [p.strip() for p in wanted.split(",") if p.strip()]
            catalog = {k: v for k, v in catalog.items()
                       if protocol.matches_behavior(k, prefixes)}
        print(format_catalog(catalog, self.tests), flush=True)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and not session.testsfailed:
            session.exitstatus = pytest.ExitCode.OK  # the items were listed, then dropped


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    """The device under test; every suite test takes it, so ids read `test_x[cpu]`."""
    dev = torch.device(request.param)
    with devices.adapter(dev).device_context(dev):
        yield dev
    # Asynchronous devices report kernel errors late: make them surface in this test.
    devices.synchronize(str(dev))


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """A floating dtype (float32, float64) for tests whose behavior ranges over dtypes."""
    value = request.param
    if value == torch.float64 and "device" in request.fixturenames:
        capabilities.requires(request.getfixturevalue("device"), FLOAT64, request.node)
    return value


def _device_types(config: pytest.Config) -> List[str]:
    return [torch.device(name).type for name in devices.tested(config)]


@pytest.fixture(autouse=True)
def _torchconform_state(request: pytest.FixtureRequest):
    """Seeded RNGs and full-precision math in; every tracked global restored out."""
    if request.node.get_closest_marker("behavior") is None:
        yield
        return
    snapshot = isolation.capture()
    isolation.start_state(request.config.getoption("torch_seed"),
                          _device_types(request.config))
    yield
    isolation.restore(snapshot)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    # Fixtures may record facts too (a dtype the device lacks is not applicable).
    token = protocol.current_item.set(item)
    try:
        yield
    finally:
        protocol.current_item.reset(token)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    token = protocol.current_item.set(item)
    try:
        if _differential_device(item) is None:
            yield
        else:  # record what assert_close compared, for the CPU rerun of a failure
            run = item.stash[_DEVICE_RUN] = differential.DeviceRun()
            with run.watching(item.obj):
                yield
    finally:
        protocol.current_item.reset(token)


def _differential_device(item: pytest.Item) -> Optional[str]:
    """The device of a conformance test that runs on something other than the reference CPU
    (the differential applies to it), else None."""
    if item.get_closest_marker("behavior") is None:
        return None
    callspec = getattr(item, "callspec", None)
    device = callspec.params.get("device") if callspec is not None else None
    return None if device is None or str(device) == differential.REFERENCE else str(device)


def _compare_with_cpu(item: pytest.Item, report: pytest.TestReport) -> None:
    """A failed call on a non-CPU device: rerun the test's body on the CPU, pair the values
    both runs compared with their oracles, and record the verdict (DEPARTURE fact)."""
    run = item.stash.get(_DEVICE_RUN, None)
    if run is None or report.when != "call":
        return
    kwargs = run.kwargs
    if kwargs is None:
        kwargs = {name: item.funcargs[name] for name in item._fixtureinfo.argnames
                  if name in item.funcargs}
    seed = item.config.getoption("torch_seed")
    snapshot = isolation.capture()
    try:
        cpu = differential.rerun_on_cpu(item.obj, kwargs, lambda: isolation.start_state(seed))
    finally:
        isolation.restore(snapshot)
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(report.longrepr)[-500:]
    departure = differential.compare(_differential_device(item), run.observations, cpu,
                                     message.splitlines()[0] if message else "")
    protocol.record(report, protocol.DEPARTURE, differential.to_json(departure))
    text = differential.as_text(departure)
    report.sections.append(("differential against CPU", text))
    _html_extra(item, report, "differential.txt", text)


def _html_extra(item: pytest.Item, report: pytest.TestReport, name: str, text: str) -> None:
    if item.config.pluginmanager.hasplugin("html"):
        from pytest_html import extras

        report.extras = list(getattr(report, "extras", [])) + [extras.text(text, name=name)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach a reproduction script to a failed conformance test, where the test ran (so it
    travels to the xdist controller with the report)."""
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("behavior") is None:
        return
    if report.when == "setup":  # what a reproducer needs to replay it before another test
        protocol.record(report, protocol.CALL, json.dumps(item_spec(item)))
    if not report.failed:
        return
    _compare_with_cpu(item, report)
    notes = getattr(call.excinfo.value, "__notes__", []) if call.excinfo else []
    # The failing example's values, on a device; only for a failed call: after a teardown
    # error (or a flaky Hypothesis failure) the last example is not the failing case.
    run = item.stash.get(_DEVICE_RUN, None) if report.when == "call" else None
    example = run.kwargs if run is not None and not _flaky(call) else None
    spec = item_spec(item, list(notes), example)
    protocol.record(report, protocol.CALL, json.dumps(spec))
    script = reproduction(spec, item.config.getoption("torch_seed"), versions.TORCH_VERSION,
                          item.config.getoption("backend_module"), nodeid=item.nodeid)
    if script is None:
        return
    protocol.record(report, protocol.REPRODUCE, script)
    _html_extra(item, report, "reproduce.py", script)


def _flaky(call: pytest.CallInfo) -> bool:
    """Hypothesis' Flaky: the failing example passed when replayed (the last one ran)."""
    error = call.excinfo.value if call.excinfo is not None else None
    return error is not None and any(
        kind.__name__ in ("Flaky", "FlakyFailure") for kind in type(error).__mro__)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    moved = config.stash.get(_MOVED, None)
    if moved is not None:
        terminalreporter.write_line(
            f"torchconform: the previous run's reports (another torch, device set or machine) "
            f"were moved to {moved}")

