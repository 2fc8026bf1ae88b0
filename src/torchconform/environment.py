"""Can this environment run the suite at all? Checked once at start-up, before any test.

A broken environment (a torch that does not import, a torch too old for the suite, a NumPy the
installed torch cannot exchange tensors with) would otherwise show up as hundreds of test
failures that look like conformance failures. Each problem is one line: what is wrong and the
command that fixes it. Nothing here imports torch at module level: the import is one of the
checks.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from typing import Optional

OLDEST_TORCH = "1.13"


def problem() -> Optional[str]:
    """The first reason this environment cannot run the suite, or None when it can."""
    return torch_import_problem() or torch_version_problem() or numpy_problem()


def require() -> None:
    """Raise pytest.UsageError (exit code 4) with the reason when the suite cannot run."""
    _raise(problem())


def require_importable_torch() -> None:
    """The package's first statement: everything after it imports torch."""
    _raise(torch_import_problem())


def _raise(reason: Optional[str]) -> None:
    if reason is not None:
        import pytest

        raise pytest.UsageError(f"torchconform: {reason}")


def torch_import_problem() -> Optional[str]:
    try:
        importlib.import_module("torch")
    except Exception as exc:  # ImportError, OSError for a missing shared library, ...
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (f"torch cannot be imported ({type(exc).__name__}: {first_line}): install the "
                f"torch build to test, e.g. pip install torch")
    return None


def torch_version_problem() -> Optional[str]:
    import torch
    from packaging.version import Version

    installed = Version(torch.__version__.split("+")[0])
    if installed < Version(OLDEST_TORCH):
        return (f"torch {torch.__version__} is older than {OLDEST_TORCH}, the oldest torch this "
                f"suite supports: pip install 'torch>={OLDEST_TORCH}'")
    return None


def numpy_problem() -> Optional[str]:
    """The suite's oracles are NumPy: torch must hand tensors to NumPy and back."""
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:
        return "NumPy is not installed (the suite's oracles use it): pip install numpy"
    import torch

    try:
        # A NumPy 2 next to a torch built against NumPy 1.x prints a page of explanation and a
        # stack (NumPy) and a warning (torch) on the first use: the one-line reason replaces them.
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = torch.zeros(1).numpy()
            back = torch.from_numpy(numpy.ones(1))
        works = array.shape == (1,) and float(back[0]) == 1.0
    except Exception as exc:  # RuntimeError("Numpy is not available"), TypeError, ...
        works, error = False, f"{type(exc).__name__}: {exc}".splitlines()[0]
    else:
        error = "tensor.numpy() and torch.from_numpy() give wrong results"
    if works:
        return None
    if int(numpy.__version__.split(".")[0]) >= 2:
        return (f"torch {torch.__version__} was built against NumPy 1.x and cannot use NumPy "
                f"{numpy.__version__}: pip install 'numpy<2'")
    return (f"torch {torch.__version__} cannot exchange tensors with NumPy "
            f"{numpy.__version__} ({error}): reinstall a NumPy that this torch supports")
