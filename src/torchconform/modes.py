"""Execution modes: the same checks run eagerly and under torch.compile.

`--mode eager,compile` (default `eager`) adds a mode axis to the tests whose behavior
compilation is documented to leave unchanged: a test opts in by taking the `mode` fixture and
passing its model or function through it (`mode.module(model)`, `mode.function(opt.step)`).
Their ids then end in the mode (`test_x[cpu-eager]`, `test_x[cpu-compile]`) and each result
records it (protocol.MODE). In an eager-only run the fixture hands out the eager mode without
parametrizing, so ids stay `test_x[cpu]`, and nothing of torch._dynamo is imported.

`--compile-backend` picks torch.compile's backend (default `aot_eager`: it traces forward and
backward through Dynamo and AOTAutograd, where compiled semantics can depart, in a fraction of
inductor's cost; `inductor` generates and builds C++/Triton kernels, `eager` stops at Dynamo).

Every compiled test starts from a reset Dynamo (a graph compiled for one test must not serve the
next, which may hold hooks the first had not), fails if nothing was compiled (a silent fallback
to eager would pass trivially), and makes hitting the recompile limit an error instead of a
silent fallback. Inductor's caches (TORCHINDUCTOR_CACHE_DIR, and TMPDIR, where it puts its
precompiled headers) go to <rootdir>/.cache/torchconform/inductor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest
import torch

from . import protocol, versions

MODES = ("eager", "compile")
BACKENDS = ("aot_eager", "inductor", "eager")
DEFAULT_BACKEND = "aot_eager"

_SELECTED = pytest.StashKey[List[str]]()


def add_options(group) -> None:
    """--mode and --compile-backend, in the plugin's option group."""
    group.addoption(
        "--mode", default="eager", metavar="LIST",
        help="execution modes, comma-separated: eager (default), compile. compile re-runs the "
             "tests of compile-transparent behaviors with torch.compile (ids end in -compile).")
    group.addoption(
        "--compile-backend", default=DEFAULT_BACKEND, choices=BACKENDS,
        help=f"torch.compile backend for --mode compile (default {DEFAULT_BACKEND}; inductor "
             f"builds real kernels: several seconds per test on a CPU).")


class ModeError(ValueError):
    """A --mode this torch or machine cannot run; the message says why."""


def parse_modes(text: Optional[str]) -> List[str]:
    modes: List[str] = []
    for token in (t.strip() for t in (text or "eager").split(",")):
        if token not in MODES:
            raise ModeError(f"unknown mode {token!r}; known: {', '.join(MODES)}")
        if token not in modes:
            modes.append(token)
    return modes


def why_compile_unavailable(backend: str, devices: List[str]) -> Optional[str]:
    """None when torch.compile with `backend` can run on `devices` here, else why not."""
    if not versions.torch_at_least("2.0"):
        return f"torch.compile needs torch>=2.0 (installed {versions.TORCH_VERSION})"
    try:
        from torch._dynamo.eval_frame import check_if_dynamo_supported
        check_if_dynamo_supported()
    except ImportError:
        pass
    except RuntimeError as exc:  # e.g. a Python newer than this torch's Dynamo
        return f"torch.compile is not supported here: {exc}"
    if backend == "inductor":
        if any(torch.device(d).type == "cpu" for d in devices):
            names = [os.environ.get("CXX"), "c++", "g++", "clang++"]
            if not any(n and shutil.which(n) for n in names):
                return ("the inductor backend builds C++ kernels for the CPU, but no C++ "
                        "compiler (CXX, c++, g++, clang++) is on PATH; try "
                        "--compile-backend aot_eager")
        if any(torch.device(d).type == "cuda" for d in devices):
            from torch.utils._triton import has_triton
            if not has_triton():
                return "the inductor backend needs Triton for CUDA, which is not installed"
    return None


def configure(config: pytest.Config, devices: List[str]) -> None:
    """Validate --mode once (a usage error names the reason) and prepare compilation."""
    try:
        modes = parse_modes(config.getoption("mode"))
    except ModeError as exc:
        raise pytest.UsageError(f"--mode: {exc}") from None
    config.stash[_SELECTED] = modes
    if "compile" not in modes:
        return
    backend = config.getoption("compile_backend")
    reason = why_compile_unavailable(backend, devices)
    if reason is not None:
        raise pytest.UsageError(f"--mode compile: {reason}")
    if backend == "inductor":
        cache = Path(str(config.rootpath)) / ".cache" / "torchconform" / "inductor"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))
        # Inductor's precompiled headers (~150 MB each) go to $TMPDIR/torchinductor_$USER.
        os.environ["TMPDIR"] = str(cache)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


def selected(config: pytest.Config) -> List[str]:
    return list(config.stash.get(_SELECTED, ["eager"]))


class Mode:
    """How a test runs its model: as given (eager) or through torch.compile."""

    def __init__(self, name: str, backend: Optional[str] = None) -> None:
        self.name = name
        self.backend = backend or (DEFAULT_BACKEND if name == "compile" else None)

    @property
    def compiled(self) -> bool:
        return self.name == "compile"

    def module(self, model: torch.nn.Module) -> Any:
        """The model to call: `model` itself, or torch.compile(model) (an OptimizedModule
        sharing its parameters)."""
        return torch.compile(model, backend=self.backend) if self.compiled else model

    def function(self, fn: Callable) -> Callable:
        """The function to call: `fn`, or torch.compile(fn), e.g. an optimizer's step."""
        return torch.compile(fn, backend=self.backend) if self.compiled else fn

    def __repr__(self) -> str:
        return f"Mode({self.name!r}{f', {self.backend!r}' if self.backend else ''})"


def _own_mode_argument(node: Any) -> bool:
    """The test parametrizes an argument of its own called `mode` (not this fixture)."""
    for mark in node.iter_markers("parametrize"):
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        if "mode" in names:
            return True
    return False


def parametrize(metafunc: pytest.Metafunc) -> None:
    modes = selected(metafunc.config)
    if ("mode" in metafunc.fixturenames and modes != ["eager"]
            and not _own_mode_argument(metafunc.definition)):
        metafunc.parametrize("mode", modes, indirect=True)


@contextlib.contextmanager
def _compiling(require_graphs: bool):
    """Around one compiled test: a fresh Dynamo, strict recompile limit, and (optionally) a
    failure if the test compiled nothing."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    config = torch._dynamo.config
    strict = hasattr(config, "fail_on_recompile_limit_hit")
    before = config.fail_on_recompile_limit_hit if strict else None
    if strict:
        config.fail_on_recompile_limit_hit = True
    try:
        yield
        if require_graphs and not counters["stats"]["unique_graphs"]:
            pytest.fail("--mode compile: torch.compile compiled no graph in this test, so it "
                        "ran eagerly and proves nothing about compilation")
    finally:
        if strict:
            config.fail_on_recompile_limit_hit = before
        torch._dynamo.reset()


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> Mode:
    """The execution mode of this test: eager, or torch.compile (see --mode)."""
    name = getattr(request, "param", "eager")
    if name != "compile":
        yield Mode("eager")
        return
    with _compiling(require_graphs=True):
        yield Mode("compile", request.config.getoption("compile_backend"))


@pytest.fixture
def compiler(request: pytest.FixtureRequest) -> Mode:
    """For suites/compile (the documented differences of torch.compile): the compile mode
    with the run's backend, around a fresh Dynamo. Those tests run only with --mode compile."""
    with _compiling(require_graphs=False):
        yield Mode("compile", request.config.getoption("compile_backend"))


def deselect(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Without --mode compile, leave out the tests of torch.compile's own behaviors (area
    `compile`): the default run pays nothing for compilation."""
    if "compile" in selected(config):
        return
    left_out = [i for i in items if "compiler" in getattr(i, "fixturenames", ())]
    if not left_out:
        return
    if len(left_out) == len(items):
        raise pytest.UsageError(
            "the selected tests check torch.compile itself: run them with --mode compile")
    config.hook.pytest_deselected(items=left_out)
    items[:] = [i for i in items if "compiler" not in getattr(i, "fixturenames", ())]


def record(item: pytest.Item) -> None:
    params = getattr(item, "callspec", None)
    if params is not None and "mode" in params.params and not _own_mode_argument(item):
        protocol.record(item, protocol.MODE, params.params["mode"])
    elif "compiler" in getattr(item, "fixturenames", ()):
        protocol.record(item, protocol.MODE, "compile")
