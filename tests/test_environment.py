"""A broken environment is a usage error with the fix, not a run of misleading failures.

The broken environments are simulated (monkeypatch); the real one (torch 1.13.1 with NumPy 2)
was checked by hand, see the README's set-up section."""

import sys

import numpy
import pytest
import torch

from torchconform import environment

from .conftest import ROOT, SUITES


def _numpy_bridge_broken(monkeypatch, numpy_version="2.4.6", torch_version="1.13.1"):
    """What torch 1.13 (built against NumPy 1.x) does next to NumPy 2."""
    def unavailable(*args, **kwargs):
        raise RuntimeError("Numpy is not available")

    monkeypatch.setattr(torch.Tensor, "numpy", unavailable)
    monkeypatch.setattr(torch, "from_numpy", unavailable)
    monkeypatch.setattr(numpy, "__version__", numpy_version)
    monkeypatch.setattr(torch, "__version__", torch_version)


def test_this_environment_can_run_the_suite():
    assert environment.problem() is None


def test_numpy_2_next_to_a_numpy_1_torch(monkeypatch):
    _numpy_bridge_broken(monkeypatch)
    assert environment.problem() == (
        "torch 1.13.1 was built against NumPy 1.x and cannot use NumPy 2.4.6: "
        "pip install 'numpy<2'")


def test_other_numpy_bridge_failure_names_the_error(monkeypatch):
    _numpy_bridge_broken(monkeypatch, numpy_version="1.26.4", torch_version="2.1.0")
    reason = environment.problem()
    assert reason.startswith("torch 2.1.0 cannot exchange tensors with NumPy 1.26.4 ")
    assert "RuntimeError: Numpy is not available" in reason


def test_missing_numpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy raises ImportError
    assert environment.problem() == (
        "NumPy is not installed (the suite's oracles use it): pip install numpy")


def test_torch_that_does_not_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert environment.problem() == (
        "torch cannot be imported (ModuleNotFoundError: import of torch halted; None in "
        "sys.modules): install the torch build to test, e.g. pip install torch")


def test_torch_older_than_supported(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "1.12.1+cu113")
    assert environment.problem() == (
        "torch 1.12.1+cu113 is older than 1.13, the oldest torch this suite supports: "
        "pip install 'torch>=1.13'")


def test_broken_environment_stops_the_run_with_a_usage_error(pytester, monkeypatch, capsys):
    _numpy_bridge_broken(monkeypatch)
    result = pytester.inline_run(
        str(SUITES / "module" / "test_mode.py"), "--device=cpu", "--no-report",
        "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("torchconform: torch 1.13.1 was built against NumPy 1.x and cannot use NumPy "
            "2.4.6: pip install 'numpy<2'") in capsys.readouterr().err
