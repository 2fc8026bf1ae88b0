"""Benchmark timing that is right for torch devices: the pytest side of suites/benchmarks.

pytest-benchmark calibrates, computes statistics, saves and compares. This plugin makes its
numbers mean what they claim on torch devices:

- The clock is read only after the device finished its queued work. Every benchmark item gets
  pytest-benchmark's own `benchmark(timer=...)` marker with a timer that synchronizes the
  item's device, then reads time.perf_counter: CUDA kernels run asynchronously, and an
  unsynchronized clock times their launch, not their work. A device without synchronize() is
  timed all the same but says so (a warning, extra_info["timing_warning"], the summary).
- Lazy initialization (CUDA context and kernels, optimizer state, allocator pools) is never
  timed: the `device_benchmark` fixture calls the body untimed first (warm-up).
- machine_info of every JSON result names torch (version, git hash, build, CUDA/cuDNN), the
  GPUs and driver, the CPU model and torch's thread count.
- Timing is refused under xdist (--benchmark-enable with -n is a usage error): workers share
  the cores the clock measures. Without --benchmark-enable, pytest-benchmark's own rule
  holds: under xdist it runs each body once, untimed, and warns.
- Memory-bound benchmarks report their effective bandwidth and its ratio to a plain copy of
  the same size measured in the same run.

With --benchmark-disable (in the project's addopts) each body runs once, untimed: a smoke test
whose assertions are the only thing that decides the test's outcome. Timing never fails a
test; a regression found by --benchmark-compare-fail fails the run, not a conformance check.

Registered at start-up through plugin.py's `pytest_plugins` (it adds command-line options).
"""

from __future__ import annotations

import math
import os
import statistics
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import torch

from . import __version__, devices
from .report import facts

#: Marks a case that needs much memory (100M elements): collected only with --bench-large.
LARGE = "large_benchmark"
#: Marks a case too slow for the untimed smoke run (seconds per call): collected only when
#: benchmarks are timed.
TIMED_ONLY = "timed_only_benchmark"

WARMUP_SECONDS = 0.05  # untimed calls before timing: at least two, then until this long
MAX_WARMUP_CALLS = 1000
SLOW_CALL_SECONDS = 0.1  # calls this slow are timed in a few single-call rounds
SLOW_ROUNDS = 3
MAX_PREPARED = 20_000  # inputs prepared in advance for one consuming benchmark, at most
COPY_SECONDS = 0.25  # time spent measuring each reference copy

Timer = Callable[[], float]

_TIMERS = pytest.StashKey[Dict[str, Tuple[Timer, Optional[str]]]]()
_COPIES = pytest.StashKey[Dict[Tuple[str, int, torch.dtype], float]]()
_BANDWIDTHS = pytest.StashKey[List[Dict[str, Any]]]()
_DROPPED = pytest.StashKey[Dict[str, int]]()


class BenchmarkTimingWarning(UserWarning):
    """A benchmark's times are not what they claim (e.g. a device without synchronize())."""


# -- options and configuration -----------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torchconform", "torchconform: PyTorch conformance suite")
    group.addoption(
        "--bench-large", action="store_true", default=False,
        help="also run the 100M-element optimizer benchmarks (several GB of memory; skipped "
             "where the device has too little free memory).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LARGE}: a benchmark case run only with --bench-large")
    config.addinivalue_line(
        "markers", f"{TIMED_ONLY}: a benchmark case too slow for the untimed smoke run")
    config.stash[_TIMERS] = {}
    config.stash[_COPIES] = {}
    config.stash[_BANDWIDTHS] = []
    config.stash[_DROPPED] = {}
    if config.getoption("benchmark_enable", default=False) and under_xdist(config):
        raise pytest.UsageError(
            "benchmarks cannot be timed under pytest-xdist (-n/--dist): parallel workers share "
            "the cores being measured. Time them in one process (python -m torchconform.bench), "
            "or leave timing off (--benchmark-disable, the default) to smoke-test them under -n.")


def timing_requested(config: pytest.Config) -> bool:
    """Will pytest-benchmark time this run (as opposed to calling each body once)? Not under
    xdist: an explicit --benchmark-enable is refused there (above), and otherwise
    pytest-benchmark turns timing off by itself, with a warning."""
    if config.getoption("benchmark_skip", default=False) or under_xdist(config):
        return False
    return bool(config.getoption("benchmark_enable", default=False)) or not config.getoption(
        "benchmark_disable", default=True)


def under_xdist(config: pytest.Config) -> bool:
    """Is this run an xdist controller or worker? From the configuration, not the environment:
    a pytest run nested inside an xdist worker (pytester) is not itself distributed.
    pytest-benchmark reads PYTEST_XDIST_WORKER instead, so such a nested run is untimed."""
    return (hasattr(config, "workerinput")
            or bool(config.getoption("numprocesses", default=None))
            or config.getoption("dist", default="no") != "no")


# -- timers ------------------------------------------------------------------------------------

def make_timer(device: str) -> Tuple[Timer, Optional[str]]:
    """(timer, problem) for benchmarks on `device`: a clock that first waits for the device's
    queued work, and None, or why its readings are not run times."""
    kind = torch.device(device).type
    if not devices.adapter(device).asynchronous:  # operators return when done: plain clock
        return time.perf_counter, None
    sync = devices.synchronizer(device)
    if sync is None:
        return time.perf_counter, (
            f"torch.{kind} has no synchronize(): {device} times are of queuing the work, not of "
            f"running it, and may be far too small")

    def timer() -> float:
        sync()
        return time.perf_counter()

    # pytest-benchmark records the timer's name in each result's options.
    timer.__name__ = timer.__qualname__ = f"perf_counter_after_{kind}_synchronize"
    return timer, None


def device_timer(config: pytest.Config, device: str) -> Tuple[Timer, Optional[str]]:
    """The run's one timer per device (pytest-benchmark measures each timer's precision once)."""
    timers = config.stash[_TIMERS]
    if device not in timers:
        timers[device] = make_timer(device)
    return timers[device]


def _item_device(item: pytest.Item) -> Optional[str]:
    callspec = getattr(item, "callspec", None)
    device = callspec.params.get("device") if callspec is not None else None
    return None if device is None else str(device)


@pytest.hookimpl(trylast=True)  # after the plugin's --behavior selection
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Install each benchmark's synchronizing timer; leave out the cases this run does not
    want (100M elements without --bench-large, timed-only cases when not timing)."""
    large = config.getoption("bench_large")
    timed = timing_requested(config)
    keep, dropped = [], []
    for item in items:
        if "benchmark" not in getattr(item, "fixturenames", ()):
            keep.append(item)
            continue
        if (item.get_closest_marker(LARGE) and not large) or (
                item.get_closest_marker(TIMED_ONLY) and not timed):
            reason = LARGE if item.get_closest_marker(LARGE) and not large else TIMED_ONLY
            config.stash[_DROPPED][reason] = config.stash[_DROPPED].get(reason, 0) + 1
            dropped.append(item)
            continue
        device = _item_device(item)
        if device is not None:
            timer, _ = device_timer(config, device)
            own = item.get_closest_marker("benchmark")
            options = dict(own.kwargs) if own is not None else {}
            options["timer"] = timer
            # Prepended, so that it is the closest `benchmark` marker pytest-benchmark reads.
            item.add_marker(pytest.mark.benchmark(**options), append=False)
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> List[str]:
    lines = []
    if timing_requested(config):
        described = []
        for device in devices.tested(config):
            timer, problem = device_timer(config, device)
            described.append(f"{device}: {getattr(timer, '__name__', timer)}"
                             + (" (NOT synchronized)" if problem else ""))
        lines.append(f"torchconform timing: {', '.join(described)}")
    return lines


# -- the fixture -------------------------------------------------------------------------------

class DeviceBenchmark:
    """pytest-benchmark's `benchmark` fixture for one device: warms up, then times; records
    sizes, bandwidth and timing caveats in extra_info. Untimed (disabled), it calls the body
    once, as pytest-benchmark does."""

    def __init__(self, benchmark, device: str, config: pytest.Config) -> None:
        self._benchmark = benchmark
        self._config = config
        self.device = device
        self.timer, self.problem = device_timer(config, device)
        if self.enabled:
            self.extra_info["device"] = device
            self.extra_info["timer"] = getattr(self.timer, "__name__", str(self.timer))
            self.extra_info["synchronized"] = self.problem is None
            if self.problem is not None:
                self.extra_info["timing_warning"] = self.problem
                warnings.warn(BenchmarkTimingWarning(self.problem), stacklevel=2)

    @property
    def enabled(self) -> bool:
        return self._benchmark.enabled

    @property
    def extra_info(self) -> Dict[str, Any]:
        return self._benchmark.extra_info

    @property
    def median(self) -> Optional[float]:
        """Median seconds per call once timed, else None."""
        stats = self._benchmark.stats
        return stats.stats.median if stats else None

    def __call__(self, fn: Callable[[], Any]) -> Any:
        """Time fn() (pytest-benchmark calibrates how many calls make one round)."""
        if not self.enabled:
            return self._benchmark(fn)
        duration = self._warm_up(fn)
        if duration >= SLOW_CALL_SECONDS:
            return self._benchmark.pedantic(fn, rounds=SLOW_ROUNDS)
        return self._benchmark(fn)

    def consuming(self, fn: Callable[[Any], Any], prepare: Callable[[], Any]) -> Any:
        """Time fn(prepare()) without timing prepare(): for operations that use up their input,
        such as backward() freeing its graph. The inputs for every timed call are prepared in
        advance, untimed, so that rounds can still hold many calls (steadier than one call
        per round with a setup in between)."""
        if not self.enabled:
            return self._benchmark.pedantic(fn, args=(prepare(),))
        duration = self._warm_up(lambda: fn(prepare()))
        if duration >= SLOW_CALL_SECONDS:
            rounds, iterations = SLOW_ROUNDS, 1
        else:
            round_time = float(self._config.getoption("benchmark_min_time"))
            iterations = max(1, math.ceil(round_time / max(duration, 1e-7)))
            budget = float(self._config.getoption("benchmark_max_time"))
            rounds = max(int(self._config.getoption("benchmark_min_rounds")),
                         math.ceil(budget / (duration * iterations)))
            rounds = min(rounds, max(1, MAX_PREPARED // iterations))
        # One more than timed: with iterations > 1 pytest-benchmark calls once more for the
        # result.
        inputs = iter([prepare() for _ in range(rounds * iterations + 1)])
        return self._benchmark.pedantic(lambda: fn(next(inputs)), rounds=rounds,
                                        iterations=iterations)

    def _warm_up(self, fn: Callable[[], Any]) -> float:
        """Call fn untimed: once for lazy initialization, then again until WARMUP_SECONDS
        have passed (at least once more). Returns the last call's duration: the steady cost
        that decides how the benchmark is timed."""
        fn()  # lazy initialization happens here, never in a timed call
        deadline = time.perf_counter() + WARMUP_SECONDS
        for _ in range(MAX_WARMUP_CALLS):
            start = self.timer()
            fn()
            duration = self.timer() - start
            if time.perf_counter() >= deadline:
                break
        return duration

    def bandwidth(self, bytes_moved: int, numel: int, dtype: torch.dtype = torch.float32
                  ) -> None:
        """After timing: record the effective bandwidth (bytes read + written per second at the
        median time) and its ratio to a copy of `numel` elements of `dtype` timed now."""
        self.extra_info["bytes_moved"] = int(bytes_moved)
        median = self.median
        if median is None:
            return
        achieved = bytes_moved / median / 1e9
        copy = copy_bandwidth(self._config, self.device, numel, dtype)
        self.extra_info.update({
            "bandwidth_GBps": _digits(achieved),
            "copy_bandwidth_GBps": _digits(copy),
            "bandwidth_vs_copy": _digits(achieved / copy),
        })
        self._config.stash[_BANDWIDTHS].append({
            "name": self._benchmark.name, "median": median, "bandwidth": achieved,
            "copy": copy})


def _digits(value: float) -> float:
    """Four significant digits: what the measurement supports, readable in the JSON."""
    return float(f"{value:.4g}")


@pytest.fixture
def device_benchmark(benchmark, device, request: pytest.FixtureRequest) -> DeviceBenchmark:
    """`benchmark` for the test's device: synchronizing timer, warm-up, bandwidth helpers."""
    return DeviceBenchmark(benchmark, str(device), request.config)


# -- reference copy, memory ----------------------------------------------------------------------

def copy_bandwidth(config: pytest.Config, device: str, numel: int,
                   dtype: torch.dtype = torch.float32) -> float:
    """GB/s of dst.copy_(src) for `numel` elements (read + write), measured once per run with
    the device's timer: the ceiling a memory-bound operation of that size can expect."""
    key = (device, numel, dtype)
    cache = config.stash[_COPIES]
    if key not in cache:
        timer, _ = device_timer(config, device)
        src = torch.ones(numel, device=device, dtype=dtype)
        dst = torch.empty_like(src)
        dst.copy_(src)  # warm-up: first touch of dst's pages
        times: List[float] = []
        deadline = time.perf_counter() + COPY_SECONDS
        while len(times) < 5 or time.perf_counter() < deadline:
            start = timer()
            dst.copy_(src)
            times.append(timer() - start)
        cache[key] = 2 * src.numel() * src.element_size() / statistics.median(times) / 1e9
        del src, dst
    return cache[key]


def free_memory(device: str) -> Optional[int]:
    """Bytes free on `device` (MemAvailable for the CPU), or None if unknown (its adapter's)."""
    return devices.adapter(device).free_memory(torch.device(device))


def require_memory(device: str, nbytes: int) -> None:
    """Skip the test when `device` has less than `nbytes` (plus a quarter) free."""
    free = free_memory(device)
    if free is not None and nbytes * 1.25 > free:
        pytest.skip(f"needs {nbytes / 2**30:.1f} GiB on {device}; "
                    f"{free / 2**30:.1f} GiB free")


# -- machine info and the summary ----------------------------------------------------------------

def benchmark_machine_info(devices_tested: List[str]) -> Dict[str, Any]:
    """What a benchmark result depends on besides the suite: torch and its build, the GPUs and
    driver, the CPU and torch's threads. machine_info["torch"]["version"] labels runs in the
    matrix charts and the plot."""
    torch_info = facts.torch_build()
    torch_info["threads"] = torch.get_num_threads()
    torch_info["interop_threads"] = torch.get_num_interop_threads()
    return {
        "torch": torch_info,
        "gpus": facts.gpus(),
        "cpu_model": facts.cpu_model(),
        "cpu_count": os.cpu_count(),
        "devices": list(devices_tested),
        "torchconform": __version__,
    }


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: Dict[str, Any]
                                         ) -> None:
    machine_info.update(benchmark_machine_info(devices.tested(config)))


def untimed_by_xdist(config: pytest.Config) -> bool:
    """Benchmarks that would be timed, run untimed because of xdist (pytest-benchmark's rule;
    its own warning stays inside a worker and never reaches the terminal, so we say it)."""
    return (under_xdist(config) and not config.getoption("benchmark_disable", default=True)
            and not config.getoption("benchmark_skip", default=False))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if untimed_by_xdist(config) and not hasattr(config, "workerinput"):
        terminalreporter.write_line(
            "torchconform: benchmarks were NOT timed: pytest-xdist is active, so each benchmark "
            "body ran once, untimed (time them in one process: python -m torchconform.bench)",
            yellow=True)
    dropped = config.stash.get(_DROPPED, {})
    if dropped.get(LARGE):
        terminalreporter.write_line(f"torchconform: {dropped[LARGE]} 100M-element benchmark "
                                    f"cases left out (add --bench-large)")
    if dropped.get(TIMED_ONLY):
        terminalreporter.write_line(f"torchconform: {dropped[TIMED_ONLY]} slow benchmark cases "
                                    f"run only when timed (--benchmark-enable)")
    bandwidths = config.stash.get(_BANDWIDTHS, [])
    if bandwidths:
        terminalreporter.write_sep(
            "-", "torchconform: effective bandwidth (bytes read + written / median time)")
        width = max(len(b["name"]) for b in bandwidths)
        for b in bandwidths:
            terminalreporter.write_line(
                f"{b['name']:<{width}}  {b['median'] * 1e3:9.3f} ms  {b['bandwidth']:7.2f} GB/s"
                f"  = {b['bandwidth'] / b['copy']:5.2f} x copy ({b['copy']:.2f} GB/s)")
    problems = sorted({problem for _, problem in config.stash.get(_TIMERS, {}).values()
                       if problem} if timing_requested(config) else set())
    for problem in problems:
        terminalreporter.write_line(f"torchconform timing WARNING: {problem}", yellow=True)
