"""Standalone reproducers are evidence for a bug report: their arguments are Python, they
carry what the test uses and nothing it does not, and their exit status says what happened
(0: the device passes, 1: the device run fails, 2: the script itself could not replay the test,
never 1 for that). The "device" here is `meta`, where reading a value back fails inside torch:
a real device failure next to a CPU run that passes."""

import importlib.util
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from torchconform.report.repro import Unrenderable, call_spec, reproduction, source_of

SUITE = '''
import numpy as np
import torch
from hypothesis import strategies as st

etas = st.tuples(st.floats(0.2, 0.8), st.floats(1.1, 2.0))  # a strategy: never in a script
CASES = [
    (lambda x: x + 1, [2.0, 3.0]),
]
PAIR = (lambda x: x, lambda x: -x)  # two lambdas on one line: which one is ambiguous


def double(x):
    return x * 2


def _values(device):
    return torch.tensor([1.0, 2.0], device=device)


def test_applies(device, fn, expected, etas, bad):
    """`etas` is a parameter here: the module-level strategy of that name is not pulled in."""
    assert math.isnan(bad) and etas[0] < etas[1]
    assert fn(_values(device)).cpu().tolist() == expected


def test_wrong_expectation(device):
    assert _values(device).sum().item() == 4.0  # 3.0 on every device: the test is wrong


def test_uses_the_strategy(device):
    assert _values(device).shape == (2,) and etas is not None  # needs Hypothesis: cannot run


def test_array(device, values, bad, big):
    assert np.isnan(bad) and big == np.inf
    assert _values(device).cpu().numpy().tolist() == values.tolist()


def test_poison(device, hook):
    torch.poisoned = hook(torch.zeros(1)).item()


def test_after_poison(device):
    assert getattr(torch, "poisoned", 0.0) == 0.0
    assert _values(device).cpu().tolist() == [1.0, 2.0]
'''


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "test_suite.py"
    path.write_text("import math\n" + SUITE)
    spec = importlib.util.spec_from_file_location("repro_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def _replay(spec, tmp_path, preceding=()):
    script = reproduction(spec, 0, torch.__version__, preceding=list(preceding))
    assert script is not None
    for dropped in ("torchconform", "hypothesis", "pytest"):
        assert f"import {dropped}" not in script and f"from {dropped}" not in script
    path = tmp_path / "reproduce.py"
    path.write_text(script)
    # -I: torchconform is not importable there, as on a backend engineer's machine.
    run = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True,
                         timeout=300)
    return run, script


@pytest.mark.parametrize("value", [
    math.inf, -math.inf, (1.5, math.nan), {"eps": [math.inf, 2]},
    np.array([[1.0, np.inf], [np.nan, -0.5]], dtype=np.float32), np.float64(0.25),
    np.int64(3), torch.float16, torch.device("cpu"), "text", None,
    torch.tensor([[1.5, -2.0]], dtype=torch.float64), torch.optim.Adam, math.sqrt, np.exp,
])
def test_argument_sources_evaluate_to_the_argument(value):
    source = source_of(value)
    back = eval(source, {"np": np, "torch": torch})  # what the script's _arguments() does
    assert type(back) is type(value)
    if isinstance(value, torch.Tensor):
        assert back.dtype == value.dtype and torch.equal(back, value)
        return
    np.testing.assert_equal(back, value)  # nan == nan here
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype


def test_a_device_departure_reproduces_with_functions_lambdas_and_non_finite_floats(
        suite, tmp_path):
    path, module = suite
    for fn, expected, rendered in [(module.double, [2.0, 4.0], "fn=double"),
                                   (module.CASES[0][0], [2.0, 3.0], "fn=lambda x: x + 1")]:
        params = {"fn": fn, "expected": expected, "etas": (0.5, 1.5), "bad": math.nan}
        spec = call_spec(path, "test_applies", dict(params, device="cpu"), [])
        passes, script = _replay(spec, tmp_path)
        assert rendered in script and "bad=float('nan')" in script
        assert "st.tuples" not in script  # the parameter `etas` is not the strategy
        assert passes.returncode == 0, passes.stdout + passes.stderr
        assert "did not reproduce: the device passes" in passes.stdout
        spec = call_spec(path, "test_applies", dict(params, device="meta"), [])
        fails, _ = _replay(spec, tmp_path)
        assert fails.returncode == 1, fails.stdout + fails.stderr
        assert "device meta: failed" in fails.stdout and "cpu: passed" in fails.stdout
        assert "REPRODUCED: the device fails where the CPU passes" in fails.stdout


def test_a_wrong_test_fails_on_both_and_still_exits_1(suite, tmp_path):
    path, _ = suite
    run, _ = _replay(call_spec(path, "test_wrong_expectation", {"device": "meta"}, []),
                     tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "cpu: failed: AssertionError" in run.stdout
    assert "REPRODUCED: both depart from the oracle" in run.stdout


def test_a_script_that_cannot_replay_exits_2_not_1(suite, tmp_path):
    path, _ = suite
    # The test needs a Hypothesis strategy the script cannot carry: NameError in its own code.
    run, script = _replay(call_spec(path, "test_uses_the_strategy", {"device": "meta"}, []),
                          tmp_path)
    assert "st.tuples" not in script
    assert run.returncode == 2, run.stdout + run.stderr
    assert "could not replay: NameError: name 'etas' is not defined" in run.stdout
    assert "REPRODUCED" not in run.stdout
    # Arguments that do not fit the test (a Hypothesis example missing a drawn value).
    run, _ = _replay(call_spec(path, "test_applies", {"device": "meta"}, []), tmp_path)
    assert run.returncode == 2 and "missing a required argument: 'fn'" in run.stdout, (
        run.stdout + run.stderr)


def test_a_module_level_failure_of_the_script_exits_2(suite, tmp_path):
    path, _ = suite
    script = reproduction(call_spec(path, "test_wrong_expectation", {"device": "cpu"}, []),
                          0, torch.__version__, backends=["no_such_backend_module"])
    (tmp_path / "reproduce.py").write_text(script)
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "reproduce.py")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "could not replay: ModuleNotFoundError" in run.stdout


def test_hypothesis_reprs_in_the_failing_example_get_their_names(suite, tmp_path):
    path, _ = suite
    note = textwrap.dedent("""\
        Falsifying example: test_array(
            device=device(type='meta'),
            values=array([1., 2.], dtype=float32),
            bad=nan,
            big=inf,
        )""")
    spec = call_spec(path, "test_array", {"device": "meta"}, [note])
    run, script = _replay(spec, tmp_path)
    assert "from numpy import array  # a repr in the failing case" in script
    assert run.returncode == 1, run.stdout + run.stderr
    assert "cpu: passed" in run.stdout and "device meta: failed" in run.stdout


def test_an_abbreviated_failing_example_is_written_out_from_its_values(suite, tmp_path):
    """numpy prints arrays over 1000 elements with `...`, and Hypothesis' printout of the
    failing example with them: that text is not the case. The example's own values are."""
    path, _ = suite
    note = textwrap.dedent("""\
        Falsifying example: test_array(
            device=device(type='meta'),
            values=array([0., 1., 2., ..., 1197., 1198., 1199.], shape=(1200,)),
            bad=nan,
            big=inf,
        )""")
    printed = call_spec(path, "test_array", {"device": "meta"}, [note])
    assert printed["arguments"] is None and "abbreviated" in printed["unrenderable"]
    values = {"values": np.arange(1200.0), "bad": math.nan, "big": math.inf}
    spec = call_spec(path, "test_array", {"device": "meta"}, [note], example=values)
    assert "1199.0]" in spec["arguments"] and "..." not in spec["arguments"]
    run, _ = _replay(spec, tmp_path)  # the values replay (they are not [1, 2]: it fails)
    assert run.returncode == 1 and "could not replay" not in run.stdout, run.stdout


def test_the_mode_fixture_is_replayed_where_the_run_did_not_parametrize_it(tmp_path):
    """An eager-only run does not parametrize `mode`; the script must still pass one."""
    import torchconform.plugin  # noqa: F401 - the harness' modules, as in a run
    from torchconform.report.repro import item_params

    item = type("Item", (), {"fixturenames": ["device", "mode"], "callspec": type(
        "CallSpec", (), {"params": {"device": "cpu"}})()})()
    assert item_params(item) == {"device": "cpu", "mode": "eager"}
    root = Path(__file__).resolve().parents[1]
    spec = call_spec(root / "suites" / "autograd" / "test_accumulation.py",
                     "test_seed_micro_batches_accumulate_the_full_batch_gradient_in_every_mode",
                     item_params(item), [])
    path = tmp_path / "reproduce.py"
    path.write_text(reproduction(spec, 0, torch.__version__))
    run = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and "did not reproduce" in run.stdout, run.stdout + run.stderr


def test_arguments_without_python_source_give_no_reproducer(suite):
    path, module = suite
    ambiguous = call_spec(path, "test_poison", {"device": "cpu", "hook": module.PAIR[0]}, [])
    assert ambiguous["arguments"] is None and "2 lambdas on line" in ambiguous["unrenderable"]
    assert reproduction(ambiguous, 0, torch.__version__) is None
    opaque = call_spec(path, "test_poison", {"device": "cpu", "hook": object()}, [])
    assert opaque["arguments"] is None and "has no Python source" in opaque["unrenderable"]
    # ... also when such a value is an argument of a test that ran before the failing one.
    after = call_spec(path, "test_after_poison", {"device": "cpu"}, [])
    assert reproduction(after, 0, torch.__version__, preceding=[opaque]) is None
    scale = 3.0
    with pytest.raises(Unrenderable, match="closing over scale"):
        source_of(lambda x: x * scale)


def test_a_preceding_test_that_cannot_be_replayed_leaves_no_evidence(suite, tmp_path):
    """A predecessor needing a fixture the script lacks is skipped: if the failure then
    does not show, that is no evidence either way (exit 2, not 0)."""
    path, _ = suite
    poison = call_spec(path, "test_poison", {"device": "cpu"}, [])  # no `hook`: a fixture
    after = call_spec(path, "test_after_poison", {"device": "cpu"}, [])
    run, _ = _replay(after, tmp_path, preceding=[poison])
    assert run.returncode == 2, run.stdout + run.stderr
    assert "could not replay: 1 preceding test(s)" in run.stdout


def test_a_preceding_test_without_any_replayable_example_is_skipped_not_fatal(suite, tmp_path):
    path, _ = suite
    poison = dict(call_spec(path, "test_poison", {"device": "cpu"}, []), examples=[None, None])
    after = call_spec(path, "test_after_poison", {"device": "cpu"}, [])
    run, script = _replay(after, tmp_path, preceding=[poison])
    assert "2 recorded example(s) had no Python source" in script
    assert run.returncode == 2 and "could not replay: 1 preceding test(s)" in run.stdout


def test_a_preceding_test_with_a_lambda_is_replayed_first(suite, tmp_path):
    path, module = suite
    poison = call_spec(path, "test_poison", {"device": "cpu", "hook": module.CASES[0][0]}, [])
    after = call_spec(path, "test_after_poison", {"device": "cpu"}, [])
    run, script = _replay(after, tmp_path, preceding=[poison])
    assert "hook=lambda x: x + 1" in script
    assert run.returncode == 1, run.stdout + run.stderr  # the poison makes it fail
    assert "cpu: failed: AssertionError" in run.stdout
