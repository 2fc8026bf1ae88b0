"""Per-run reports (JSON, HTML, reproduction scripts) and the cross-run matrix."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from torchconform.behaviors import load_catalog
from torchconform.report import matrix
from torchconform.report.__main__ import main as report_main
from torchconform.report.results import SCHEMA, SCHEMA_VERSION, keep_previous

from .conftest import ROOT, SUITES

SAMPLE = """
import pytest, torch
from hypothesis import given, strategies as st
from torchconform import behavior, since

@behavior("module.apply.returns_self")
def test_passes(device):
    assert torch.ones(1, device=device).sum().item() == 1.0

@behavior("module.mode.returns_self")
def test_fails(device, dtype):
    assert torch.zeros(1, device=device, dtype=dtype).item() == 1.0

@behavior("module.zero_grad.default")
def test_gated(device):
    assert since("2.0") or not since("2.0")

@behavior("module.parameter.remove_duplicate_false")
def test_skipped(device):
    pytest.skip("no reason to run")

@behavior("module.call.hook_removal")
@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_failure(device):
    assert False

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

@behavior("module.call.runs_forward")
def test_errors(device, broken):
    pass

@behavior("module.apply.weight_init")
@given(x=st.integers(0, 10))
def test_property_fails(device, x):
    assert x < 5
"""


@pytest.fixture
def sample_run(pytester):
    """Run SAMPLE as a conformance suite; returns (result, report dir)."""
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    suite = pytester.path / "suites"
    suite.mkdir()
    (suite / "test_sample.py").write_text(SAMPLE)

    def run(*args):
        out = pytester.path / "out"
        result = pytester.runpytest_subprocess(
            suite, "--device=cpu", "-p", "no:randomly", "-p", "no:cacheprovider",
            "--hypothesis-profile=ci", f"--report-dir={out}", "--isolate-failures=0", *args)
        return result, out

    return run


def _tests_by_name(doc):
    return {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}


def test_json_report_records_every_outcome_with_its_facts(sample_run):
    result, out = sample_run()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    doc = json.loads((out / "conformance.json").read_text())
    assert doc["schema"] == SCHEMA and doc["schema_version"] == SCHEMA_VERSION
    run = doc["run"]
    for key in ("torch", "devices", "machine", "python", "suite_commit", "command",
                "hypothesis_profile", "torch_seed", "started", "duration", "exitstatus"):
        assert key in run
    assert run["devices"] == ["cpu"] and run["hypothesis_profile"] == "ci"
    assert run["exitstatus"] == 1
    tests = _tests_by_name(doc)
    assert tests["test_passes[cpu]"]["outcome"] == "passed"
    assert tests["test_passes[cpu]"]["behavior"] == "module.apply.returns_self"
    assert tests["test_passes[cpu]"]["area"] == "module"
    failed = tests["test_fails[cpu-float64]"]
    assert failed["outcome"] == "failed" and failed["dtype"] == "float64"
    assert "assert 0.0 == 1.0" in failed["message"]
    assert tests["test_gated[cpu]"]["gates"] == ["torch>=2.0: yes"]
    assert tests["test_skipped[cpu]"]["outcome"] == "skipped"
    assert tests["test_skipped[cpu]"]["reason"] == "no reason to run"
    assert tests["test_known_failure[cpu]"]["outcome"] == "xfailed"
    assert tests["test_errors[cpu]"]["outcome"] == "error"
    assert "fixture broke" in tests["test_errors[cpu]"]["message"]
    assert doc["summary"]["failed"] == 3 and doc["summary"]["error"] == 1


def test_reproduction_script_reproduces_the_failure_outside_pytest(sample_run, tmp_path):
    _, out = sample_run()
    tests = _tests_by_name(json.loads((out / "conformance.json").read_text()))
    for name, expected in [("test_fails[cpu-float32]", "dtype=torch.float32"),
                           ("test_property_fails[cpu]", "x=5")]:
        script = tests[name]["reproduce"]
        assert expected in script and "DEVICE = 'cpu'" in script
        path = tmp_path / "reproduce.py"
        path.write_text(script)
        run = subprocess.run([sys.executable, "-I", str(path)], capture_output=True,
                             text=True)  # -I: torchconform is not importable there
        assert run.returncode == 1 and "device cpu: failed: AssertionError" in run.stdout, (
            run.stdout + run.stderr)


def test_html_report_has_behavior_columns_environment_and_reproduction(sample_run):
    _, out = sample_run()
    page = (out / "conformance.html").read_text()
    assert "https://docs.pytorch.org/docs/stable/generated/torch.nn.Module.html" in page
    for text in ("Behavior", "Area", "Device", "torch build", "devices tested",
                 "hypothesis", "suite commit", "reproduce.py"):
        assert text in page


@pytest.mark.slow
def test_xdist_run_writes_one_complete_report(sample_run):
    result, out = sample_run("-n", "2")
    doc = json.loads((out / "conformance.json").read_text())
    assert len(doc["tests"]) == 8
    assert {t["device"] for t in doc["tests"]} == {"cpu"}
    assert _tests_by_name(doc)["test_fails[cpu-float32]"]["reproduce"]


def test_a_different_earlier_run_is_kept_not_overwritten(tmp_path):
    facts = {"torch": {"version": "2.13.0", "build": "cpu"}, "devices": ["cpu"],
             "machine": "a", "started": "2026-01-01T00:00:00+00:00"}
    doc = {"schema": SCHEMA, "schema_version": 1, "run": facts, "tests": []}
    (tmp_path / "conformance.json").write_text(json.dumps(doc))
    (tmp_path / "conformance.html").write_text("old html")
    assert keep_previous(tmp_path, facts, ["conformance.json", "conformance.html"]) is None
    other = dict(facts, torch={"version": "1.13.1", "build": "cuda"})
    moved = keep_previous(tmp_path, other, ["conformance.json", "conformance.html"])
    assert moved.parent == tmp_path / "previous"
    assert (moved / "conformance.html").read_text() == "old html"
    assert not (tmp_path / "conformance.json").exists()
    (tmp_path / "conformance.json").write_text("not ours")
    assert keep_previous(tmp_path, facts, ["conformance.json"]) is not None


def test_unwritable_report_dir_is_a_usage_error(pytester, tmp_path):
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = pytester.runpytest("--device=cpu", f"--report-dir={blocker}/sub")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--report-dir: cannot write reports to*"])


def test_behaviors_option_lists_each_behavior_with_its_tests(pytester):
    result = pytester.runpytest(
        str(SUITES / "module" / "test_zero_grad.py"), "--behaviors", "--device=cpu",
        "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "== module (* behaviors) ==",
        "module.traversal.*",
        "    test: none collected",
        "module.zero_grad.default",
        "*changed in torch 2.0: *",
        "    test: suites/module/test_zero_grad.py::*[[]cpu[]]",
    ])
    assert "passed" not in result.stdout.str()  # collected, listed, not run


def test_behaviors_option_follows_the_behavior_filter(pytester):
    result = pytester.runpytest(
        str(SUITES / "module"), "--behaviors", "--behavior=module.zero_grad.default",
        "--device=cpu", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
        "-p", "no:cacheprovider")
    assert result.ret == 0
    listed = [line for line in result.stdout.lines if line.startswith("module.")]
    assert listed == ["module.zero_grad.default"]
    assert all("test_zero_grad.py::" in line
               for line in result.stdout.lines if line.startswith("    test: "))


# -- matrix ---------------------------------------------------------------------------------

def _results(version, machine, outcomes, gates=()):
    tests = [{"nodeid": f"suites/t.py::{bid.replace('.', '_')}[cpu]", "behavior": bid,
              "area": bid.split(".")[0], "device": "cpu", "outcome": outcome,
              "reason": "not applicable: x" if outcome == "not applicable" else None,
              "message": "AssertionError: boom" if outcome == "failed" else None,
              "gates": list(gates) if bid == "module.zero_grad.default" else []}
             for bid, outcome in outcomes.items()]
    return {"schema": SCHEMA, "schema_version": 1,
            "run": {"torch": {"version": version, "build": "cpu"}, "devices": ["cpu"],
                    "machine": machine, "started": "2026-11-23T00:00:00+00:00"},
            "summary": {}, "tests": tests}


@pytest.fixture
def two_runs(tmp_path):
    old = _results("1.13.1", "box", {"module.zero_grad.default": "passed",
                                     "module.apply.returns_self": "passed",
                                     "module.parameter.remove_duplicate_false": "not applicable"},
                   gates=["torch>=2.0: no"])
    new = _results("2.13.0", "box", {"module.zero_grad.default": "passed",
                                     "module.apply.returns_self": "failed",
                                     "module.parameter.remove_duplicate_false": "passed"},
                   gates=["torch>=2.0: yes"])
    for env, doc in (("torch113", old), ("torch213", new)):
        (tmp_path / env).mkdir()
        (tmp_path / env / "conformance.json").write_text(json.dumps(doc))
    (tmp_path / "torch213" / "conformance.html").write_text("<html></html>")
    return tmp_path


def test_matrix_has_a_column_per_run_and_lists_what_changed(two_runs):
    out = two_runs / "matrix.html"
    assert report_main([str(two_runs), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.index("torch 1.13.1") < page.index("torch 2.13.0")  # ordered by version
    changed = page[page.index('id="changed"'):page.index('id="behaviors"')]
    for bid in ("module.zero_grad.default", "module.apply.returns_self",
                "module.parameter.remove_duplicate_false"):
        assert bid in changed
    assert "torch&gt;=2.0: no" in changed and "torch&gt;=2.0: yes" in changed
    assert 'href="torch213/conformance.html"' in page  # the failing cell links the report
    assert "module totals" in page and "2/2 pass" in page and "2/3 pass" in page
    assert "https://" not in page.split("<body>")[0]  # nothing fetched from the network
    assert "<script src" not in page and "@import" not in page


def test_matrix_gives_the_compiled_half_of_a_run_its_own_column(tmp_path):
    doc = _results("2.13.0", "box", {"module.call.forward_pre_hook": "passed"})
    eager = dict(doc["tests"][0], mode="eager")
    compiled = dict(doc["tests"][0], mode="compile", outcome="failed",
                    nodeid=doc["tests"][0]["nodeid"].replace("[cpu]", "[cpu-compile]"))
    doc["tests"] = [eager, compiled]
    (tmp_path / "conformance.json").write_text(json.dumps(doc))
    assert matrix.merge([str(tmp_path)], tmp_path / "m.html") == (2, 0)
    columns, _ = matrix.read_inputs([tmp_path / "conformance.json"])
    assert [(c.label, [t["outcome"] for t in c.tests]) for c in columns] == [
        ("cpu", ["passed"]), ("cpu · compile", ["failed"])]
    page = (tmp_path / "m.html").read_text()
    assert "cpu · compile" in page
    changed = page[page.index('id="changed"'):page.index('id="behaviors"')]
    assert "module.call.forward_pre_hook" in changed  # compiled differs from eager


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"hello": 1}', "not a torchconform results file"),
    (json.dumps({"schema": SCHEMA, "schema_version": 99, "run": {}, "tests": []}),
     "schema_version 99 is not supported"),
])
def test_matrix_refuses_bad_input_naming_it_and_keeps_the_old_page(two_runs, capsys,
                                                                   content, message):
    out = two_runs / "matrix.html"
    out.write_text("previous page")
    bad = two_runs / "foreign.json"
    bad.write_text(content)
    assert report_main([str(two_runs / "torch113" / "conformance.json"), str(bad),
                        "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err
    assert out.read_text() == "previous page"


def test_matrix_includes_benchmark_charts(two_runs):
    bench = {"machine_info": {"node": "box", "torch": {"version": "2.13.0"}},
             "benchmarks": [{"name": "test_step[cpu]", "fullname": "s.py::test_step[cpu]",
                             "stats": {"median": 0.00125}}]}
    (two_runs / "bench.json").write_text(json.dumps(bench))
    columns, benchmarks = matrix.merge([str(two_runs)], two_runs / "m.html")
    assert (columns, benchmarks) == (2, 1)
    page = (two_runs / "m.html").read_text()
    assert "<svg" in page and "test_step[cpu]" in page and "1.25e+03 µs" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: chromium)")
def test_matrix_renders_in_headless_chromium(two_runs):
    out = two_runs / "matrix.html"
    matrix.merge([str(two_runs)], out)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={two_runs / 'chromium-profile'}", "--window-size=1200,900"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", out.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    areas = {entry.area for entry in load_catalog().values()}
    assert dom.count("<details") == len(areas) and dom.count('class="cell') >= 6
    assert "Changed between versions" in dom
    shot = ROOT / "reports" / "matrix-selftest.png"
    shot.parent.mkdir(exist_ok=True)
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000


def test_report_cli_runs_as_a_module(two_runs):
    out = two_runs / "cli.html"
    run = subprocess.run([sys.executable, "-m", "torchconform.report", str(two_runs), "-o",
                          str(out)], capture_output=True, text=True, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert "wrote" in run.stdout and out.exists()
