"""Making failures actionable, proven on a deliberately broken device simulated on the CPU
(tests/triage_data/brokendev.py, device `cpu:0`): the differential against the CPU, grouping
by cause, order dependence, standalone reproducers that reproduce, and native crash stacks."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from torchconform import reruns
from torchconform.report import triage

DATA = Path(__file__).resolve().parent / "triage_data"
SRC = Path(__file__).resolve().parents[1] / "src"


def _env(broken: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(DATA), str(SRC)]))
    env.pop("BROKEN_DEVICE", None)
    if broken:
        env["BROKEN_DEVICE"] = "1"
    return env


def test_messages_are_normalized_so_instances_of_one_problem_compare_equal():
    a = ("z differs from the float64 oracle (torch.float32, rtol=1e-05, atol=1e-06): at index "
         "(1,) got np.float64(2.7454), expected np.float64(2.718)\n got: [1.6 2.7]")
    b = ("z differs from the float64 oracle (torch.float64, rtol=1e-10, atol=1e-12): at index "
         "(0, 2) got np.float64(65.04), expected np.float64(65.0)")  # the float64 test of it
    assert triage.normalize(a) == triage.normalize(b) == (
        "z differs from the float64 oracle (DTYPE, rtol=N, atol=N): at index SHAPE "
        "got N, expected N")
    assert (triage.normalize("no kernel for torch.Size([2, 3]) at 0x7f3a2b")
            == triage.normalize("no kernel for torch.Size([4]) at 0x55aa") ==
            "no kernel for SHAPE at ADDR")


CRASHING = """
    import os
    import torch
    from torchconform import behavior

    def _native_call():
        os.abort()  # what a native backend's failed check does

    @behavior("autograd.detach.shares_storage")
    def test_aborts(device):
        _native_call()

    @behavior("autograd.chain_rule.square_scaled")
    def test_fine(device):
        assert torch.ones(1, device=device).item() == 1.0
"""


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_crash_is_reported_with_the_python_stack_of_the_native_crash(pytester, workers):
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "test_crash.py").write_text(textwrap.dedent(CRASHING))
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess("suites", "--device=cpu", "-n", workers,
                                           "-p", "no:randomly", "-p", "no:cacheprovider",
                                           f"--report-dir={out}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    doc = json.loads((out / "conformance.json").read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}
    crashed = tests["test_aborts[cpu]"]
    assert crashed["outcome"] == "failed" and "crashed the interpreter" in crashed["message"]
    stack = crashed["crash_stack"]
    assert stack.startswith("Fatal Python error: Aborted")
    assert "in _native_call" in stack and "in test_aborts" in stack  # innermost first
    assert stack.index("_native_call") < stack.index("test_aborts")
    assert tests["test_fine[cpu]"]["outcome"] == "passed"
    assert crashed["isolation"]["classification"] == "fails alone"  # it crashes by itself too
    [cause] = doc["causes"]
    assert cause["kind"] == "crash" and "in _native_call (test_crash.py)" in cause["message"]
    page = (out / "conformance.html").read_text()
    assert "Fatal Python error: Aborted" in page and "1 distinct cause" in page
    # Its reproducer (from what the setup recorded) runs itself in a child: the crash, a
    # signal, is reported as reproduced with exit 1 and the native crash's Python stack.
    script = pytester.path / "crash.py"
    script.write_text(cause["reproduce"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "REPRODUCED: the run crashed the interpreter (SIGABRT" in run.stdout
    assert "Fatal Python error: Aborted" in run.stderr and "in _native_call" in run.stderr


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_a_listed_known_failure_that_crashes_is_xfailed_not_a_failure(pytester):
    """torch_xla's LBFGS segfault (expectations/xla-2.9.txt): a worker that dies in a listed
    test never applies the test's xfail marker; the controller must."""
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "test_crash.py").write_text(textwrap.dedent(CRASHING))
    (pytester.path / "known.txt").write_text(
        "suites/test_crash.py::test_aborts[cpu]  [order-dependent] aborts in the native call\n")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess("suites", "--device=cpu", "-n", "1",
                                           "-p", "no:randomly", "-p", "no:cacheprovider",
                                           "--xfails-file=known.txt", "--isolate-failures=0",
                                           f"--report-dir={out}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 passed*1 xfailed*"])
    tests = _by_name(json.loads((out / "conformance.json").read_text()))
    assert tests["test_aborts[cpu]"]["outcome"] == "xfailed"
    assert tests["test_aborts[cpu]"]["crash_stack"].startswith("Fatal Python error: Aborted")


# -- a broken device: differential, causes, reproducers ------------------------------------

@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """The sample suite on the broken device, once for the tests below: (exit code,
    conformance.json, HTML page, terminal output, folder)."""
    folder = tmp_path_factory.mktemp("broken")
    (folder / "suites").mkdir()
    (folder / "suites" / "test_sample.py").write_text((DATA / "sample_suite.py").read_text())
    (folder / "pytest.ini").write_text("[pytest]\ntorchconform_suites = suites\n")
    out = folder / "out"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "--device=cpu:0", "-p", "no:randomly",
         "-p", "no:cacheprovider", "--hypothesis-profile=ci", f"--report-dir={out}",
         "--isolate-failures=600"],
        cwd=folder, env=_env(broken=True), capture_output=True, text=True, timeout=900)
    doc = json.loads((out / "conformance.json").read_text())
    return run.returncode, doc, (out / "conformance.html").read_text(), run.stdout, folder


def _by_name(doc):
    return {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_the_differential_says_whether_the_device_or_the_test_departs(broken_run):
    ret, doc, _, stdout, _ = broken_run
    assert ret == pytest.ExitCode.TESTS_FAILED
    tests = _by_name(doc)
    square = tests["test_square_values[cpu:0]"]["departure"]
    assert square["kind"] == "device departs from CPU and oracle"
    [z] = square["values"]
    assert z["what"] == "z" and z["index"] == [0]
    assert z["device"] == pytest.approx(65.04, rel=1e-6)  # 10 * 2**2 * 1.001 + 25
    assert z["cpu"] == 65.0 and z["oracle"] == 65.0
    assert (z["device_ok"], z["cpu_ok"]) == (False, True)
    # The Hypothesis test: the CPU rerun used the device run's failing example.
    prop = tests["test_square_property[cpu:0]"]["departure"]["values"][0]
    assert prop["cpu"] == prop["oracle"] and prop["device"] == pytest.approx(
        prop["oracle"] * 1.001, rel=1e-6)
    oracle = tests["test_wrong_oracle[cpu:0]"]["departure"]
    assert oracle["kind"] == "both depart from the oracle: the test or oracle is wrong"
    assert oracle["values"][0]["device"] == oracle["values"][0]["cpu"] == 61.5
    error = tests["test_cumsum[cpu:0-2]"]["departure"]
    assert error["kind"] == "device fails where the CPU passes"
    assert error["values"][0]["device"] is None and error["values"][0]["cpu"] == 0.0
    assert tests["test_bystander[cpu:0]"]["departure"] is None  # passed: no rerun
    assert "device departs from CPU and oracle (device cpu:0, reference cpu: passed)" in stdout


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_failures_are_grouped_into_distinct_causes(broken_run):
    _, doc, page, stdout, _ = broken_run
    causes = {(c["kind"], tuple(sorted(t.split("::")[-1] for t in c["tests"])))
              for c in doc["causes"]}
    departs = "device departs from CPU and oracle (AssertionError)"
    assert causes == {
        (departs, ("test_square_property[cpu:0]", "test_square_sizes[cpu:0-3]",
                   "test_square_sizes[cpu:0-5]")),
        (departs, ("test_square_values[cpu:0]",)),
        (departs, ("test_exp[cpu:0]",)),
        ("both depart from the oracle: the test or oracle is wrong (AssertionError)",
         ("test_wrong_oracle[cpu:0]",)),
        ("device fails where the CPU passes (RuntimeError)",
         ("test_cumsum[cpu:0-2]", "test_cumsum[cpu:0-4]")),
    }
    assert "torchconform triage: 8 failed tests from 5 distinct causes" in stdout
    assert "8 failed tests from 5 distinct causes" in page and page.count('id="cause-') == 5


def _reproduce(folder, cause, broken):
    script = folder / f"repro_{cause['id']}.py"
    script.write_text(cause["reproduce"])
    # -I: no PYTHONPATH, so the script cannot import torchconform; the fault comes from -c.
    shim = f"import sys; sys.path.insert(0, {str(DATA)!r}); import brokendev; " \
           f"sys.argv = [{str(script)!r}]; exec(open({str(script)!r}).read())"
    env = _env(broken)
    env.pop("PYTHONPATH")
    return subprocess.run([sys.executable, "-I", "-c", shim], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_order_dependent_failures_name_the_tests_that_make_them_fail(broken_run):
    _, doc, _, stdout, _ = broken_run
    tests = _by_name(doc)
    exp = tests["test_exp[cpu:0]"]["isolation"]
    assert exp["classification"] == "fails only after other tests"
    assert exp["preceding"] == ["suites/test_sample.py::test_poison[cpu:0]"]  # not bystander
    script = tests["test_exp[cpu:0]"]["reproduce"]
    # test_poison is a Hypothesis test: its script replays the examples the rerun recorded
    assert "def _preceding_1(device):" in script and "test_poison" in script
    assert "def _example_1():" in script and re.search(r"\bn=\d", script)
    for name, test in tests.items():
        if test["outcome"] == "failed" and name != "test_exp[cpu:0]":
            assert test["isolation"]["classification"] == "fails alone", name
            assert test["isolation"]["runs"] == 1
    assert "test_exp[cpu:0]: fails only after other tests after " in stdout


@pytest.mark.parametrize("culprits", [[7], [0], [3, 12], [15]])
def test_delta_debugging_finds_the_smallest_set_of_preceding_tests(culprits):
    calls = []

    def fails(subset):
        calls.append(subset)
        return all(c in subset for c in culprits)

    assert reruns.minimize(list(range(16)), fails) == culprits
    assert len(calls) <= (4 + 1) * len(culprits)  # log2(16) + 1 per culprit


class _Writer:
    def __init__(self):
        self.facts = {}

    def add_fact(self, nodeid, name, value):
        self.facts[(nodeid, name)] = value


def _isolation(order, breaks, budget_runs=1000):
    """A FailureIsolation over one worker's `order` whose reruns are simulated: a rerun
    fails when it holds the target and, for each target in `breaks`, every test of its
    culprit set (targets absent from `breaks` fail alone)."""
    config = type("Config", (), {"pluginmanager": type("PM", (), {
        "get_plugin": staticmethod(lambda name: None)})()})()
    isolation = reruns.FailureIsolation(config, budget=60)
    isolation.order = {"gw0": list(order)}
    isolation.worker_of = {t: "gw0" for t in order}
    runs = []

    def fails(nodeids, target, deadline):
        if len(runs) >= budget_runs:
            raise reruns._OutOfBudget
        runs.append(list(nodeids))
        isolation.recorded[tuple(nodeids)] = {}
        return all(c in nodeids for c in breaks.get(target, []))

    isolation._fails = fails
    return isolation, runs


def test_recorded_calls_keep_each_example_and_survive_a_crash_mid_write(tmp_path):
    """CallRecorder's file: a spec line per test, an example line per example, written before
    the example runs; a process that crashed leaves a torn last line."""
    path = tmp_path / "calls.jsonl"
    path.write_text(
        json.dumps({"nodeid": "t::a", "spec": {"arguments": "device=None"}}) + "\n"
        + json.dumps({"nodeid": "t::a", "example": "n=1"}) + "\n"
        + json.dumps({"nodeid": "t::a", "example": None}) + "\n"
        + json.dumps({"nodeid": "t::b", "spec": {"arguments": ""}}) + "\n"
        + json.dumps({"nodeid": "t::b", "example": "n=3"}) + "\n"
        + '{"nodeid": "t::b", "exam')
    calls = reruns._read_calls(str(path))
    assert calls["t::a"]["examples"] == ["n=1", None]
    assert calls["t::b"]["examples"] == ["n=3"]  # the example it crashed in is the last


def test_every_failure_is_rerun_alone_before_any_bisection():
    order = [f"suites/optim/test_a.py::t{i}" for i in range(8)] + [
        "suites/optim/test_b.py::late", "suites/optim/test_b.py::alone"]
    isolation, runs = _isolation(order, {"suites/optim/test_b.py::late": [order[2]]},
                                 budget_runs=2)
    isolation.failed = ["suites/optim/test_b.py::late", "suites/optim/test_b.py::alone"]
    writer = _Writer()
    isolation._isolate_all(writer, deadline=0)
    verdict = {t: json.loads(writer.facts[(t, "isolation")]) for t in isolation.failed}
    # Two runs: both alone. The bisection of the first ran out of budget, yet the second,
    # behind it in the list, is classified.
    assert runs == [["suites/optim/test_b.py::late"], ["suites/optim/test_b.py::alone"]]
    assert verdict["suites/optim/test_b.py::alone"]["classification"] == "fails alone"
    late = verdict["suites/optim/test_b.py::late"]
    assert late["classification"] == "not isolated" and late["passes_alone"]


def test_a_culprit_set_found_for_one_failure_is_tried_first_for_the_next():
    a = [f"suites/optim/test_a.py::t{i}" for i in range(40)]
    b = [f"suites/module/test_b.py::u{i}" for i in range(40)]
    order = a[:20] + b + a[20:] + ["suites/module/test_c.py::x", "suites/module/test_c.py::y"]
    breaks = {"suites/module/test_c.py::x": [a[3]], "suites/module/test_c.py::y": [a[3]]}
    isolation, runs = _isolation(order, breaks)
    isolation.failed = list(breaks)
    writer = _Writer()
    isolation._isolate_all(writer, deadline=0)
    for target in breaks:
        verdict = json.loads(writer.facts[(target, "isolation")])
        assert verdict["classification"] == "fails only after other tests"
        assert verdict["preceding"] == [a[3]]
    y_runs = [r for r in runs if r[-1] == "suites/module/test_c.py::y"]
    assert y_runs == [["suites/module/test_c.py::y"], [a[3], "suites/module/test_c.py::y"]]


def test_the_tests_of_the_failing_tests_file_are_tried_before_all_others():
    order = [f"suites/optim/test_a.py::t{i}" for i in range(64)] + [
        "suites/optim/test_b.py::setup", "suites/optim/test_b.py::target"]
    isolation, runs = _isolation(order, {"suites/optim/test_b.py::target":
                                         ["suites/optim/test_b.py::setup"]})
    isolation.failed = ["suites/optim/test_b.py::target"]
    isolation._isolate_all(_Writer(), deadline=0)
    # alone, then the same file's tests: found at once, nothing left to bisect
    assert runs == [["suites/optim/test_b.py::target"],
                    ["suites/optim/test_b.py::setup", "suites/optim/test_b.py::target"]]


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_each_cause_has_a_standalone_reproducer_that_reproduces(broken_run):
    _, doc, _, _, folder = broken_run
    for cause in doc["causes"]:
        script = cause["reproduce"]
        for module in ("torchconform", "hypothesis", "pytest"):
            assert f"import {module}" not in script and f"from {module}" not in script
        broken = _reproduce(folder, cause, broken=True)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        assert "REPRODUCED" in broken.stdout and "device cpu:0: failed" in broken.stdout
        fixed = _reproduce(folder, cause, broken=False)
        kind = cause["kind"]
        if kind.startswith("both depart"):  # the test's own error stays without the fault
            assert fixed.returncode == 1 and "cpu: failed" in fixed.stdout
        else:
            assert fixed.returncode == 0, fixed.stdout + fixed.stderr
            assert "did not reproduce: the device passes" in fixed.stdout
        if kind.startswith("device departs"):  # device, CPU and expected values printed
            line = next(x for x in broken.stdout.splitlines() if "(device departs" in x)
            device, cpu, expected = re.findall(r"(?:device|cpu|expected) ([-\d.e]+)", line)
            assert float(cpu) == pytest.approx(float(expected), rel=1e-6)
            assert float(device) != pytest.approx(float(expected), rel=1e-5)
