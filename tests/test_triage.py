"""Making failures actionable, proven on a deliberately broken device simulated on the CPU
(tests/triage_data/brokendev.py, device `cpu:0`): the differential against the CPU, grouping
by cause, order dependence, standalone reproducers that reproduce, and native crash stacks."""

import json
import os
import textwrap
from pathlib import Path

import pytest

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
    b = ("z differs from the float64 oracle (torch.float32, rtol=1e-05, atol=1e-06): at index "
         "(0, 2) got np.float64(65.04), expected np.float64(65.0)")
    assert triage.normalize(a) == triage.normalize(b) == (
        "z differs from the float64 oracle (torch.float32, rtol=N, atol=N): at index SHAPE "
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
    [cause] = doc["causes"]
    assert cause["kind"] == "crash" and "in _native_call (test_crash.py)" in cause["message"]
    page = (out / "conformance.html").read_text()
    assert "Fatal Python error: Aborted" in page and "1 distinct cause" in page
