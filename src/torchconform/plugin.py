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
from typing import List, Optional

import pytest
import torch

from . import capabilities, devices, expectations, isolation, profiles, protocol, versions
from .adapters import FLOAT64
from .adapters.cuda import build_name
from .behaviors import CatalogError, load_catalog
from .outcomes import CrashAttribution, RunCounter
from .report.repro import reproduction
from .report.session import configure_reports

profiles.register()
# Benchmark timing (timing.py) adds options, so it must load with this module, not at configure.
pytest_plugins = ["torchconform.timing"]

_PREVIOUS_PROFILE = pytest.StashKey[Optional[str]]()
_MOVED = pytest.StashKey[Path]()
_GPU = pytest.StashKey[str]()  # the GPU this xdist worker was pinned to (device type "cuda")
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
        help="print the behavior catalog (id, statement, documentation, seed, version facts) "
             "and exit.")
    parser.addini(
        "torchconform_suites", type="paths", default=[],
        help="folders whose tests are conformance checks (each must name a behavior).")


# -- configure: validate every input once ---------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
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
    config.pluginmanager.register(RunCounter(), "torchconform-run-counter")
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        timeout = getattr(config.option, "timeout", None)
        if timeout is None and config.pluginmanager.hasplugin("timeout"):
            timeout = float(config.getini("timeout") or 0) or None
        config.pluginmanager.register(CrashAttribution(config, timeout), "torchconform-crashes")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(
            capabilities.MissingCapabilitySummary(config.stash[devices.TESTED]),
            "torchconform-capabilities")
    moved = configure_reports(config, config.stash[devices.TESTED], _suite_roots(config))
    if moved is not None:
        config.stash[_MOVED] = moved


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config):
    if config.getoption("behaviors"):  # like --fixtures: print and exit, run nothing
        from .behaviors import format_catalog

        print(format_catalog(load_catalog()))
        return 0
    return None


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

    name = config.getoption("hypothesis_profile", default=None)
    known = set(getattr(settings, "_profiles", {})) or set(profiles.PROFILES)
    if name is not None and name not in known:
        raise pytest.UsageError(
            f"--hypothesis-profile: unknown profile {name!r}; known: {', '.join(sorted(known))}")
    config.stash[_PREVIOUS_PROFILE] = getattr(settings, "_current_profile", None)
    if name is None:  # Hypothesis' own plugin loads an explicitly named profile.
        name = profiles.default_profile()
        settings.load_profile(name)
    config.hypothesis_profile_name = name


def pytest_unconfigure(config: pytest.Config) -> None:
    # Nested runs (pytester) must not leave their profile behind in the calling process.
    previous = config.stash.get(_PREVIOUS_PROFILE, None)
    if previous is not None:
        from hypothesis import settings
        settings.load_profile(previous)


def pytest_report_header(config: pytest.Config) -> List[str]:
    gpu = config.stash.get(_GPU, None)
    tested = [f"{d} ({devices.adapter(d).backend()})" if devices.adapter(d).type != "cpu"
              else d for d in devices.tested(config)]
    return [
        f"torchconform: torch {versions.TORCH_VERSION} ({build_name()}), "
        f"devices: {', '.join(tested)}"
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

