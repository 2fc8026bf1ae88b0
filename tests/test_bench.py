"""`python -m torchconform.bench` end to end on a small subset of suites/benchmarks: results per
torch version and device, the storage, --compare, the plot, the exit status; and where the
results show up: the matrix and the conformance HTML report."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from torchconform import bench
from torchconform.report import matrix
from torchconform.report.benchplot import load_runs, render
from torchconform.report.html import benchmark_plot_href

from .conftest import ROOT

NAME = bench.run_name(str(torch.__version__), ["cpu"])
SUBSET = ["--", "-k", "test_named_modules[cpu-wide-10]"]


def run_bench(*args, out):
    # Not as an xdist worker, even under `pytest -n`: pytest-benchmark would not time.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    return subprocess.run([sys.executable, "-m", "torchconform.bench", "--device", "cpu",
                           "--out", str(out), *args], capture_output=True, text=True,
                          cwd=str(ROOT), env=env, timeout=300)


def test_run_names_carry_torch_version_and_devices():
    assert bench.run_name("2.13.0+cpu", ["cpu"]) == "torch2.13.0-cpu"
    assert bench.run_name("2.14.0.dev20260101+cu128", ["cpu", "cuda:1"]) == (
        "torch2.14.0.dev20260101-cpu+cuda1")


def test_compare_picks_the_newest_saved_run_of_that_name(tmp_path):
    machine = tmp_path / "Linux-CPython-3.11-64bit"
    machine.mkdir()
    for i, name in enumerate(["torch2.12.0-cpu", "torch2.13.0-cpu", "torch2.12.0-cpu"], 1):
        path = machine / f"{i:04d}_{name}.json"
        path.write_text("{}")
        os.utime(path, (1000 + i, 1000 + i))
    assert bench.saved_run(tmp_path, "torch2.12.0-cpu").name == "0003_torch2.12.0-cpu.json"
    assert bench.saved_run(tmp_path, True).name == "0003_torch2.12.0-cpu.json"
    with pytest.raises(SystemExit, match="no saved run torch1.13.1-cpu .*saved: "
                                         "torch2.12.0-cpu, torch2.13.0-cpu"):
        bench.saved_run(tmp_path, "torch1.13.1-cpu")


def test_command_times_in_one_process_and_saves_under_the_run_name(tmp_path):
    command = bench.pytest_command(ROOT / "suites" / "benchmarks", tmp_path, NAME, "cpu",
                                   large=True, compare=tmp_path / "old.json", threshold="15%",
                                   extra=["-k", "sgd"])
    assert "--benchmark-enable" in command and "--bench-large" in command
    assert f"--benchmark-save={NAME}" in command and "--no-report" in command
    assert f"--benchmark-json={tmp_path / (NAME + '.json')}" in command
    assert "--benchmark-compare-fail=median:15%" in command
    assert not any(arg.startswith(("-n", "--dist", "--numprocesses")) for arg in command)
    assert command[-2:] == ["-k", "sgd"]


def test_bench_command_end_to_end(tmp_path):
    out = tmp_path / "benchmarks"
    first = run_bench(*SUBSET, out=out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    result = out / f"{NAME}.json"
    doc = json.loads(result.read_text())
    assert [b["name"] for b in doc["benchmarks"]] == ["test_named_modules[cpu-wide-10]"]
    assert doc["benchmarks"][0]["extra_info"]["modules"] == 10
    assert doc["machine_info"]["torch"]["version"] == str(torch.__version__)
    saved = list((out / ".storage").glob(f"*/0001_{NAME}.json"))
    assert len(saved) == 1
    svg = (out / "benchmarks.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "IQR/median" in first.stdout and f"bench: results {result}" in first.stdout

    # A second run compares with the first, as if saved by another torch (machine_info
    # differs: pytest-benchmark warns); the threshold is wide so load cannot fail it.
    old = json.loads(saved[0].read_text())
    old["machine_info"]["torch"]["version"] = "2.12.0"
    saved[0].write_text(json.dumps(old))
    second = run_bench("--compare", NAME, "--fail-threshold", "1000%", *SUBSET, out=out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"compared with {saved[0]}" in second.stdout
    assert "0001_" in second.stdout  # pytest-benchmark's comparison table names the old run
    assert "machine_info is different" in second.stdout + second.stderr
    assert len(list((out / ".storage").glob("*/*.json"))) == 2

    # The matrix reads the result, not the copies in the hidden storage.
    columns, benchmarks = matrix.merge([str(out)], tmp_path / "matrix.html")
    assert (columns, benchmarks) == (0, 1)
    page = (tmp_path / "matrix.html").read_text()
    assert "test_named_modules[cpu-wide-10]" in page and str(torch.__version__) in page


def test_bench_command_fails_when_nothing_ran(tmp_path):
    empty = run_bench("--", "-k", "no_such_benchmark", out=tmp_path)
    assert empty.returncode == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "pytest exited with status 5" in empty.stderr


def test_bench_command_refuses_an_unknown_saved_run(tmp_path):
    refused = run_bench("--compare", "torch0.1.0-cpu", out=tmp_path)
    assert refused.returncode != 0 and "no saved run torch0.1.0-cpu" in refused.stderr


# -- the plot -------------------------------------------------------------------------------------

def _run_file(folder, version, medians):
    doc = {"machine_info": {"node": "box", "torch": {"version": version}, "devices": ["cpu"]},
           "benchmarks": [{"name": n, "stats": {"median": m, "q1": m * 0.98, "q3": m * 1.02}}
                          for n, m in medians.items()]}
    (folder / f"torch{version}-cpu.json").write_text(json.dumps(doc))


def test_plot_compares_every_saved_run_oldest_torch_first(tmp_path):
    _run_file(tmp_path, "2.13.0", {"test_step[cpu-1M]": 2e-3, "test_new[cpu]": 1e-5})
    _run_file(tmp_path, "2.9.1", {"test_step[cpu-1M]": 1e-3})
    runs = load_runs(tmp_path)
    assert [label for label, _ in runs] == ["torch 2.9.1 · cpu · box", "torch 2.13.0 · cpu · box"]
    svg = render(tmp_path, threshold=0.15).read_text()
    assert "test_step[cpu-1M]" in svg and "test_new[cpu]" in svg
    assert "torch 2.9.1 · cpu · box" in svg and "regression threshold (+15%)" in svg


def test_plot_of_an_empty_folder_says_so(tmp_path):
    assert "no benchmark results yet" in render(tmp_path).read_text()


# -- the HTML report links the plot ---------------------------------------------------------------

def test_plot_link_is_relative_to_the_report(tmp_path):
    page = tmp_path / "reports" / "torch213" / "conformance.html"
    assert benchmark_plot_href(page, tmp_path) is None
    plot = tmp_path / "reports" / "benchmarks" / "benchmarks.svg"
    plot.parent.mkdir(parents=True)
    plot.write_text("<svg/>")
    assert benchmark_plot_href(page, tmp_path) == "../benchmarks/benchmarks.svg"
    assert benchmark_plot_href(tmp_path / "reports" / "conformance.html", tmp_path) == (
        "benchmarks/benchmarks.svg")


def test_conformance_html_links_the_benchmark_plot(pytester):
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    suite = pytester.path / "suites"
    suite.mkdir()
    (suite / "test_x.py").write_text(textwrap.dedent("""
        from torchconform import behavior

        @behavior("module.apply.returns_self")
        def test_x(device):
            pass
    """))
    plot = pytester.path / "reports" / "benchmarks" / "benchmarks.svg"
    plot.parent.mkdir(parents=True)
    plot.write_text("<svg/>")
    result = pytester.runpytest(suite, "--device=cpu", "-p", "no:randomly",
                                "--report-dir=reports")
    assert result.ret == 0
    page = (pytester.path / "reports" / "conformance.html").read_text()
    assert 'href="benchmarks/benchmarks.svg"' in page
