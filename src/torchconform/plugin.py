"""pytest hooks and options of torchconform. Each hook delegates to one module:

devices.py       --device parsing, discovery, GPU pinning -> `device` fixture parametrization
behaviors.py     behavior marker and catalog   -> checked at collection, recorded per test
versions.py      version gates                 -> catalog `since` skips, since() in tests
isolation.py     known start state per test    -> autouse fixture
profiles.py      Hypothesis profiles           -> --hypothesis-profile (Hypothesis' own option)
expectations.py  --xfails-file / --skips-file  -> xfail / skip markers at collection
outcomes.py      empty runs fail; crashed xdist workers -> that test failed
report/          run facts, JSON, HTML columns, reproduction scripts

Per-test facts (behavior, area, device, dtype, gates, ...) are written and read only through
protocol.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import torch

from . import devices, environment, expectations, isolation, profiles, protocol, versions
from .behaviors import CatalogError, format_catalog, load_catalog
from .outcomes import CrashAttribution, RunCounter
from .report.repro import reproduction
from .report.session import configure_reports

profiles.register()
# Benchmark timing (timing.py) adds options, so it must load with this module, not at configure.
pytest_plugins = ["torchconform.timing"]

_PREVIOUS_PROFILE = pytest.StashKey[Optional[str]]()
_MOVED = pytest.StashKey[Path]()
_GPU = pytest.StashKey[str]()
_EXPECTATIONS = pytest.StashKey[dict]()

FLOAT_DTYPES = (torch.float32, torch.float64)


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
        config.pluginmanager.register(CrashAttribution(config, _timeout(config)),
                                      "torchconform-crashes")
    moved = configure_reports(config, config.stash[devices.TESTED], _suite_roots(config))
    if moved is not None:
        config.stash[_MOVED] = moved


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
    return [
        f"torchconform: torch {versions.TORCH_VERSION} ({devices.build_kind()} build), "
        f"devices: {', '.join(devices.tested(config))}"
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
        gpu = config.stash.get(_GPU, None)
        if gpu is not None and str(params.get("device", "")).startswith("cuda"):
            protocol.record(item, protocol.GPU, gpu)
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
    if dev.type == "cuda" and dev.index is not None:
        with torch.cuda.device(dev.index):
            yield dev
    else:
        yield dev
    # Asynchronous devices report kernel errors late: make them surface in this test.
    devices.synchronize(str(dev))


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """A floating dtype (float32, float64) for tests whose behavior ranges over dtypes."""
    value = request.param
    if value == torch.float64 and "device" in request.fixturenames:
        dev = request.getfixturevalue("device")
        if not devices.supports_float64(str(dev)):
            protocol.not_applicable(f"{dev.type} has no float64", request.node)
    return value


@pytest.fixture(autouse=True)
def _torchconform_state(request: pytest.FixtureRequest):
    """Seeded RNGs and full-precision math in; every tracked global restored out."""
    if request.node.get_closest_marker("behavior") is None:
        yield
        return
    snapshot = isolation.capture()
    isolation.start_state(request.config.getoption("torch_seed"))
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
        yield
    finally:
        protocol.current_item.reset(token)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach a reproduction script to a failed conformance test, where the test ran (so it
    travels to the xdist controller with the report)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or item.get_closest_marker("behavior") is None:
        return
    callspec = getattr(item, "callspec", None)
    notes = getattr(call.excinfo.value, "__notes__", []) if call.excinfo else []
    script = reproduction(Path(str(item.path)), getattr(item, "originalname", item.name),
                          dict(callspec.params) if callspec else {}, list(notes),
                          item.config.getoption("torch_seed"), versions.TORCH_VERSION)
    if script is None:
        return
    protocol.record(report, protocol.REPRODUCE, script)
    if item.config.pluginmanager.hasplugin("html"):
        from pytest_html import extras

        report.extras = list(getattr(report, "extras", [])) + [
            extras.text(script, name="reproduce.py")]


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    moved = config.stash.get(_MOVED, None)
    if moved is not None:
        terminalreporter.write_line(
            f"torchconform: the previous run's reports (another torch, device set or machine) "
            f"were moved to {moved}")

