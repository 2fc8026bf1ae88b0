"""The harness under faults of the code under test (crash, hang), known-failure lists, bad
input, order and example independence, and GPU pinning of xdist workers."""

import json
import os
import random
import textwrap

import pytest
import torch

from torchconform import devices

from .conftest import ROOT, SUITES

FAULTS = {
    # A native crash in the middle of Module.apply: the interpreter dies with SIGSEGV.
    "crash": """
        import ctypes, torch
        def pytest_configure(config):
            torch.nn.Module.apply = lambda self, fn: ctypes.string_at(0)
    """,
    # Module.train never returns.
    "hang": """
        import time, torch
        def pytest_configure(config):
            def train(self, mode=True):
                while True:
                    time.sleep(0.05)
            torch.nn.Module.train = train
    """,
}


@pytest.fixture
def faulty_torch(pytester, monkeypatch):
    """Write a plugin that breaks torch in the given way; returns the -p arguments."""

    def make(kind: str):
        (pytester.path / f"fault_{kind}.py").write_text(textwrap.dedent(FAULTS[kind]))
        monkeypatch.setenv("PYTHONPATH", str(pytester.path), prepend=os.pathsep)
        return ["-p", f"fault_{kind}"]

    return make


def _run_suite(pytester, *args):
    out = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        str(SUITES / "module"), "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
        "--device=cpu", "-p", "no:cacheprovider", "--hypothesis-profile=ci",
        f"--report-dir={out}", "--isolate-failures=0", *args)
    doc = json.loads((out / "conformance.json").read_text())
    return result, doc, out


def _by_behavior(doc, prefix):
    return [t for t in doc["tests"] if t["behavior"].startswith(prefix)]


@pytest.mark.slow
def test_crashing_test_fails_alone_and_reports_stay_complete_under_xdist(pytester, faulty_torch):
    result, doc, out = _run_suite(pytester, "--behavior", "module.apply,module.mode", "-n", "2",
                                  *faulty_torch("crash"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    crashed = _by_behavior(doc, "module.apply")
    assert crashed and all(t["outcome"] == "failed" for t in crashed)
    assert all("crashed" in t["message"] and t["device"] == "cpu" for t in crashed)
    survivors = _by_behavior(doc, "module.mode")
    assert survivors and all(t["outcome"] == "passed" for t in survivors)
    assert doc["summary"]["passed"] == len(survivors)
    page = (out / "conformance.html").read_text()
    assert "module.apply.returns_self" in page and "crashed" in page


@pytest.mark.slow
def test_hung_test_fails_by_timeout_under_xdist(pytester, faulty_torch):
    # Few hanging tests on purpose: each costs the timeout plus a new worker's torch import.
    result, doc, _ = _run_suite(pytester, "--behavior", "module.mode.recursive,"
                                "module.mode.returns_self,module.apply.returns_self",
                                "-n", "2", "--timeout", "4", *faulty_torch("hang"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    hung = _by_behavior(doc, "module.mode")  # every one of them calls train()
    assert len(hung) >= 2 and all(t["outcome"] == "failed" for t in hung)
    assert all("4 s per-test timeout" in t["message"] for t in hung)
    assert [t["outcome"] for t in _by_behavior(doc, "module.apply")] == ["passed"]


@pytest.mark.slow
def test_hung_test_fails_by_timeout_without_xdist(pytester, faulty_torch):
    result, doc, _ = _run_suite(pytester, "--behavior", "module.mode.recursive,"
                                "module.apply.returns_self", "--timeout", "3",
                                *faulty_torch("hang"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [hung] = _by_behavior(doc, "module.mode")
    assert hung["outcome"] == "failed" and "Timeout" in hung["message"]
    assert [t["outcome"] for t in _by_behavior(doc, "module.apply")] == ["passed"]


# -- known failures and skips ----------------------------------------------------------------

@pytest.fixture
def listed(pytester):
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    suite = pytester.path / "suites"
    suite.mkdir()
    (suite / "test_sample.py").write_text(textwrap.dedent("""
        import torch
        from torchconform import behavior

        @behavior("module.apply.returns_self")
        def test_broken(device):
            assert False, "the bug"

        @behavior("module.mode.returns_self")
        def test_fine(device):
            pass

        @behavior("module.call.hook_removal")
        def test_flaky(device):
            pass
    """))

    def run(xfails: str = "", skips: str = "", args=()):
        extra = []
        for option, text in (("--xfails-file", xfails), ("--skips-file", skips)):
            if text:
                path = pytester.path / option.strip("-")
                path.write_text(textwrap.dedent(text))
                extra.append(f"{option}={path}")
        return pytester.runpytest(suite, "--device=cpu", "-p", "no:randomly", "--no-report",
                                  *extra, *args)

    return run


def test_known_failures_and_skips_are_applied_with_their_reasons(listed):
    result = listed(
        xfails="""
            # known bugs of this build
            module.apply.returns_self[cpu]   returns None here   https://bugs.example/1
        """,
        skips="suites/test_sample.py::test_flaky   flaky on this backend\n", args=["-rxs"])
    assert result.ret == 0
    result.assert_outcomes(passed=1, xfailed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*XFAIL*test_broken*known failure: returns None here (https://bugs.example/1)*",
        "*SKIPPED*known skip: flaky on this backend*"])


def test_known_failure_that_passes_fails_the_run(listed):
    result = listed(xfails="module.mode   fixed upstream?\n")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*XPASS(strict)*"])


def test_order_dependent_known_failure_may_pass_or_fail(listed):
    result = listed(xfails="""
        module.mode   [order-dependent] fails only after test_x in the same process
        module.apply.returns_self   [order-dependent] fails after test_y
    """, args=["-rxX"])
    assert result.ret == 0
    result.assert_outcomes(xpassed=1, xfailed=1, passed=1)
    result.stdout.fnmatch_lines(["*XPASS*test_fine*[[]order-dependent[]] fails only after*"])


@pytest.mark.parametrize("text, message", [
    ("module.nothing.like.this   some reason\n", "*:1: 'module.nothing.like.this' matches no"
                                                 " collected test*"),
    ("module.apply.returns_self[cuda]   gpu only\n", "*matches no collected test*"),
    ("\n# comment\nmodule.apply.returns_self\n", "*:3: 'module.apply.returns_self' needs a "
                                                  "reason*"),
    ("https://bugs/1 reason\n", "*:1: the line starts with a URL*"),
])
def test_stale_or_malformed_entries_are_usage_errors_naming_the_line(listed, text, message):
    result = listed(xfails=text)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


# -- bad input: a usage error (exit 4) naming the problem, never a traceback -----------------

@pytest.mark.parametrize("args, message", [
    (["--device=tpu"], "*--device: unknown device 'tpu'*"),
    (["--device=cuda:7"], "*--device: device 'cuda:7' is not available*"),
    (["--hypothesis-profile=nightly"], "*unknown profile 'nightly'*"),
    (["--xfails-file=missing.txt"], "*--xfails-file: *missing.txt: cannot read*"),
    (["--skips-file=."], "*--skips-file: *cannot read*"),
    (["--report-dir=/proc/forbidden"], "*--report-dir: cannot write reports to /proc/forbidden*"),
    (["--behavior=autograd.nope.none"], "*--behavior: no catalogued behavior matches*"),
])
def test_bad_input_is_a_usage_error_without_traceback(pytester, args, message):
    # In-process: configure refuses the input before any test file is imported, so a fresh
    # interpreter (and its torch import) would only add time.
    result = pytester.runpytest_inprocess(str(SUITES / "module"), "-c",
                                          str(ROOT / "pyproject.toml"), *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


# -- order and example independence ---------------------------------------------------------

REPEATS = int(os.environ.get("TORCHCONFORM_REPEATS", "20" if os.environ.get("CI") else "3"))


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(REPEATS))
def test_suite_passes_in_random_order_with_random_examples(run_suite, repeat):
    """Shuffled order (pytest-randomly) and fresh Hypothesis examples, REPEATS times
    (20 under CI), one test each so each whole-suite run gets its own timeout: order
    dependence or leaked global state shows up as a failure naming the seed."""
    seed = random.randrange(2**32)
    result = run_suite(extra=["-p", "randomly", f"--randomly-seed={seed}",
                              "--hypothesis-profile=dev", f"--hypothesis-seed={seed}"])
    assert result.ret == 0, f"seed {seed}: failed {result.behaviors('failed')}"


@pytest.mark.slow
def test_suite_passes_under_xdist(pytester):
    result = pytester.runpytest_subprocess(
        str(SUITES), "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
        "--device=cpu", "-n", "2", "--no-report", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert result.parseoutcomes().get("failed", 0) == 0


# -- one GPU per xdist worker, simulated -----------------------------------------------------

def test_workers_take_gpus_round_robin():
    assert [devices.gpu_for_worker(f"gw{i}", ["0", "1", "2"]) for i in range(5)] == [
        "0", "1", "2", "0", "1"]
    assert devices.gpu_for_worker("gw4", ["3", "5"]) == "3"
    assert devices.gpu_for_worker("gw0", []) is None


@pytest.fixture
def cuda_build(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


@pytest.mark.parametrize("worker, option, env, expected", [
    ("gw2", None, {}, "2"),
    ("gw5", "cpu,cuda", {}, "1"),
    ("gw1", "cuda", {"CUDA_VISIBLE_DEVICES": "4,6"}, "6"),
    ("gw1", "cuda:1", {}, None),
    ("gw1", "cpu", {}, None),
    (None, "cuda", {}, None),
])
def test_worker_is_pinned_to_one_gpu_before_cuda_starts(cuda_build, worker, option, env,
                                                        expected):
    environ = dict(env)
    if worker:
        environ["PYTEST_XDIST_WORKER"] = worker
    assert devices.pin_xdist_worker(option, environ) == expected
    if expected is not None:
        assert environ["CUDA_VISIBLE_DEVICES"] == expected
    else:
        assert environ.get("CUDA_VISIBLE_DEVICES") == env.get("CUDA_VISIBLE_DEVICES")


def test_rocm_workers_are_pinned_with_hip_visible_devices(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", "6.2")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    environ = {"PYTEST_XDIST_WORKER": "gw3"}
    assert devices.pin_xdist_worker("cuda", environ) == "1"
    assert environ == {"PYTEST_XDIST_WORKER": "gw3", "HIP_VISIBLE_DEVICES": "1"}
