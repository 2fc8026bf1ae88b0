"""Benchmark timing (torchconform.timing): the synchronizing timer on a simulated CUDA device,
agreement with torch.utils.benchmark.Timer, warm-up, machine info, xdist refusal, and the
untimed smoke mode. The bench command and the plot are in test_bench.py."""

import json
import textwrap
import time
import types

import pytest
import torch
from torch.utils.benchmark import Timer

from torchconform import devices, timing

SAMPLE_ARGS = ["-p", "no:randomly", "-p", "no:cacheprovider", "--no-report"]
# Short timing: these tests check what is timed and recorded, not the numbers.
QUICK = ["--benchmark-enable", "--benchmark-max-time=0.02", "--benchmark-min-rounds=5"]


@pytest.fixture
def sample(pytester, monkeypatch):
    """Write a sample benchmark suite: sample("def test_x(device, device_benchmark): ...").
    Outside xdist, even when these tests run under `pytest -n`: pytest-benchmark reads the
    worker's PYTEST_XDIST_WORKER and would leave the nested run untimed."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")

    def write(body: str):
        path = pytester.path / "suites" / "test_sample_bench.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text("import pytest, time, torch\nfrom torchconform import behavior\n"
                        + textwrap.dedent(body))
        return pytester.path / "suites"

    return write


@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA 12.4 build with one GPU whose synchronize() is recorded in the returned list
    (kernels never run: the sample benchmarks time Python)."""
    calls = []
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: types.SimpleNamespace(
        name="Simulated GPU", total_memory=16 * 2**30, major=9, minor=0))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * 2**30, 16 * 2**30))
    return calls


def results(path):
    return json.loads(path.read_text())


# -- the timer ------------------------------------------------------------------------------------

def test_cpu_is_timed_with_the_plain_clock():
    assert timing.make_timer("cpu") == (time.perf_counter, None)


def test_cuda_timer_synchronizes_before_reading_the_clock(fake_cuda, monkeypatch):
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    monkeypatch.setattr(time, "perf_counter", lambda: events.append("clock") or 42.0)
    timer, problem = timing.make_timer("cuda")
    assert problem is None and timer.__name__ == "perf_counter_after_cuda_synchronize"
    assert timer() == 42.0
    assert events == ["sync", "clock"]


def test_device_without_synchronize_is_timed_but_flagged(monkeypatch):
    monkeypatch.setattr(torch.xpu, "is_available", lambda: True)
    monkeypatch.delattr(torch.xpu, "synchronize")
    assert devices.synchronizer("xpu") is None
    timer, problem = timing.make_timer("xpu")
    assert timer is time.perf_counter
    assert "torch.xpu has no synchronize()" in problem and "queuing" in problem


def test_benchmark_on_simulated_cuda_reads_the_clock_after_synchronizing(
        pytester, sample, fake_cuda):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_bench(device, device_benchmark):
            assert device.type == "cuda"
            device_benchmark(lambda: sum(range(100)))
    """)
    out = pytester.path / "out.json"
    result = pytester.runpytest(suite, "--device=cuda", *SAMPLE_ARGS, *QUICK,
                                f"--benchmark-json={out}")
    assert result.ret == 0, result.stdout.str()
    bench = results(out)["benchmarks"][0]
    assert bench["name"] == "test_bench[cuda]"
    assert bench["options"]["timer"] == "perf_counter_after_cuda_synchronize"
    assert bench["extra_info"]["synchronized"] is True
    # Two clock readings per round, each after a synchronize (plus calibration and warm-up).
    assert len(fake_cuda) >= 2 * bench["stats"]["rounds"]
    gpus = results(out)["machine_info"]["gpus"]
    assert [g["name"] for g in gpus] == ["Simulated GPU"]
    result.stdout.fnmatch_lines(["*torchconform timing: cuda: perf_counter_after_cuda_sync*"])


def test_device_without_synchronize_says_so_in_the_results(pytester, sample, monkeypatch):
    monkeypatch.setattr(torch.xpu, "is_available", lambda: True)
    monkeypatch.delattr(torch.xpu, "synchronize")
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_bench(device, device_benchmark):
            device_benchmark(lambda: sum(range(100)))
    """)
    out = pytester.path / "out.json"
    result = pytester.runpytest(suite, "--device=xpu", *SAMPLE_ARGS, *QUICK,
                                f"--benchmark-json={out}")
    assert result.ret == 0, result.stdout.str()
    extra = results(out)["benchmarks"][0]["extra_info"]
    assert extra["synchronized"] is False and "no synchronize()" in extra["timing_warning"]
    result.stdout.fnmatch_lines(["*BenchmarkTimingWarning*no synchronize()*",
                                 "*torchconform timing WARNING: torch.xpu has no synchronize()*"])


# -- agreement with torch.utils.benchmark ---------------------------------------------------------

#: The stated tolerance: the same operation, timed in the same process by pytest-benchmark
#: (through the plugin) and by torch.utils.benchmark.Timer, gives per-call times within this
#: factor of each other. Compared: each tool's fastest round, with rounds of the same length
#: (ROUND seconds of calls), which load on a shared machine can only slow down; short rounds
#: make an undisturbed one likely even on a busy machine. The medians move with
#: that load (Timer's own median changed 2x between two readings a second apart on a busy
#: machine), and so does a fastest round of a different length. Both run single-threaded
#: (Timer's default), so that a busy second core cannot stall a worker thread.
AGREEMENT = 1.25
ROUND = 0.0005


def test_timing_agrees_with_torch_utils_benchmark_timer(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_mm(device, device_benchmark):
            torch.set_num_threads(1)  # like Timer; restored after the test
            a = torch.ones(128, 128, device=device)
            device_benchmark(lambda: torch.mm(a, a))
    """)
    a = torch.ones(128, 128)

    def timer_fastest():
        """Timer's per-call time in its fastest of 500 blocks of ROUND seconds, like ours."""
        timer = Timer("torch.mm(a, a)", globals={"torch": torch, "a": a}, num_threads=1)
        number = max(1, round(ROUND / timer.timeit(20).median))
        return min(timer.timeit(number).median for _ in range(500))

    ratios = []
    for attempt in range(3):  # a busy machine can disturb every round of one attempt
        before = timer_fastest()
        out = pytester.path / f"out{attempt}.json"
        result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, "--benchmark-enable",
                                    "--benchmark-max-time=0.5", f"--benchmark-min-time={ROUND}",
                                    f"--benchmark-json={out}")
        reference = min(before, timer_fastest())
        assert result.ret == 0, result.stdout.str()
        stats = results(out)["benchmarks"][0]["stats"]
        assert stats["iterations"] > 1  # rounds of many calls, like Timer's blocks
        ratios.append(stats["min"] / reference)
        print(f"fastest round per call: pytest-benchmark {stats['min'] * 1e6:.2f} us, Timer "
              f"{reference * 1e6:.2f} us, ratio {ratios[-1]:.3f}")
        if 1 / AGREEMENT <= ratios[-1] <= AGREEMENT:
            return
    raise AssertionError(f"pytest-benchmark / Timer per-call times: {ratios}, none within "
                         f"a factor {AGREEMENT}")


# -- warm-up, smoke mode, markers -----------------------------------------------------------------

def test_lazy_initialization_is_not_timed(pytester, sample):
    suite = sample("""
        state = {"initialized": False}

        def first_call_is_slow():
            if not state["initialized"]:  # like a CUDA context or an optimizer's lazy state
                time.sleep(0.2)
                state["initialized"] = True

        @behavior("module.apply.returns_self")
        def test_bench(device, device_benchmark):
            device_benchmark(first_call_is_slow)
    """)
    out = pytester.path / "out.json"
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, *QUICK,
                                f"--benchmark-json={out}")
    assert result.ret == 0, result.stdout.str()
    stats = results(out)["benchmarks"][0]["stats"]
    assert stats["max"] < 0.01 and stats["iterations"] > 1


def test_untimed_run_calls_each_body_once(pytester, sample):
    suite = sample("""
        calls = []

        @behavior("module.apply.returns_self")
        def test_plain(device, device_benchmark):
            device_benchmark(lambda: calls.append(1))
            assert device_benchmark.median is None and "timer" not in device_benchmark.extra_info

        @behavior("module.apply.returns_self")
        def test_consuming(device, device_benchmark):
            device_benchmark.consuming(lambda x: calls.append(x), lambda: 2)

        @behavior("module.apply.returns_self")
        def test_count():
            assert calls == [1, 2]
    """)
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, "--benchmark-disable")
    result.assert_outcomes(passed=3)


def test_benchmark_body_failure_is_the_test_failure_and_timing_never_is(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_wrong(device, device_benchmark):
            assert device_benchmark(lambda: 1 + 1) == 3

        @behavior("module.apply.returns_self")
        def test_slow_but_right(device, device_benchmark):
            assert device_benchmark(lambda: time.sleep(0.001) or 2) == 2
    """)
    for mode in (["--benchmark-disable"], QUICK):
        result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, *mode)
        result.assert_outcomes(passed=1, failed=1)


def test_large_and_timed_only_cases_are_opt_in(pytester, sample):
    suite = sample("""
        from torchconform.timing import LARGE, TIMED_ONLY

        @behavior("module.apply.returns_self")
        @pytest.mark.parametrize("n", [1, pytest.param(2, marks=getattr(pytest.mark, LARGE))])
        def test_sized(device, device_benchmark, n):
            device_benchmark(lambda: n)

        @behavior("module.apply.returns_self")
        @pytest.mark.timed_only_benchmark
        def test_slow(device, device_benchmark):
            device_benchmark(lambda: 0)
    """)
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, "--benchmark-disable")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*1 100M-element benchmark cases left out (add --bench-large)*",
                                 "*1 slow benchmark cases run only when timed*"])
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, *QUICK, "--bench-large")
    result.assert_outcomes(passed=3)


# -- bandwidth, machine info ----------------------------------------------------------------------

def test_bandwidth_is_reported_against_a_copy_of_the_same_size(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_fill(device, device_benchmark):
            g = torch.ones(100_000, device=device)
            device_benchmark(lambda: g.zero_())
            device_benchmark.bandwidth(g.numel() * 4, g.numel())
    """)
    out = pytester.path / "out.json"
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, *QUICK,
                                f"--benchmark-json={out}")
    assert result.ret == 0, result.stdout.str()
    bench = results(out)["benchmarks"][0]
    extra = bench["extra_info"]
    assert extra["bytes_moved"] == 400_000
    assert extra["bandwidth_GBps"] == pytest.approx(0.4e6 / bench["stats"]["median"] / 1e9,
                                                    rel=1e-2)
    assert extra["copy_bandwidth_GBps"] > 0
    assert extra["bandwidth_vs_copy"] == pytest.approx(
        extra["bandwidth_GBps"] / extra["copy_bandwidth_GBps"], rel=1e-2)
    result.stdout.fnmatch_lines(["*torchconform: effective bandwidth*",
                                 "test_fill[[]cpu[]]*GB/s*x copy*"])


def test_machine_info_names_torch_build_cpu_and_threads(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_bench(device, device_benchmark):
            device_benchmark(lambda: 0)
    """)
    out = pytester.path / "out.json"
    assert pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, *QUICK,
                              f"--benchmark-json={out}").ret == 0
    info = results(out)["machine_info"]
    assert info["torch"]["version"] == str(torch.__version__)  # labels the matrix charts
    assert info["torch"]["git_version"] == torch.version.git_version
    assert info["torch"]["build"] in ("cpu", "cuda", "rocm")
    assert {"cuda", "cudnn", "hip"} <= set(info["torch"])
    assert info["torch"]["threads"] == torch.get_num_threads()
    assert info["cpu_model"] and info["devices"] == ["cpu"] and info["gpus"] == []
    assert info["node"]  # pytest-benchmark's own fields stay


# -- xdist ----------------------------------------------------------------------------------------

def test_timing_under_xdist_is_refused(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_bench(device, device_benchmark):
            device_benchmark(lambda: 0)
    """)
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, "-n", "2",
                                "--benchmark-enable")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*benchmarks cannot be timed under pytest-xdist*"])


@pytest.mark.slow
def test_implicit_timing_under_xdist_runs_untimed_and_says_so(
        pytester, sample):
    """Without --benchmark-enable or --benchmark-disable (another project's configuration),
    pytest-benchmark's own rule holds: under xdist each body runs once; the summary says so."""
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_bench(device, device_benchmark):
            assert device_benchmark(lambda: 41 + 1) == 42
            assert device_benchmark.median is None  # not timed

        @behavior("module.apply.returns_self")
        @pytest.mark.timed_only_benchmark
        def test_slow(device, device_benchmark):
            device_benchmark(lambda: 0)
    """)
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, "-n", "2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*torchconform: benchmarks were NOT timed: pytest-xdist is "
                                 "active, so each benchmark body ran once, untimed*"])


@pytest.mark.slow
def test_untimed_benchmarks_run_under_xdist(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_bench(device, device_benchmark):
            assert device_benchmark(lambda: 41 + 1) == 42
    """)
    result = pytester.runpytest(suite, "--device=cpu", *SAMPLE_ARGS, "-n", "2",
                                "--benchmark-disable")
    result.assert_outcomes(passed=1)
    assert "NOT timed" not in result.stdout.str()  # nobody asked for timing
