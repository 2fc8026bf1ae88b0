"""Real ranks for the distributed suite: a pool of processes on the torch.distributed engine.

A test of `suites/distributed/` takes the `ranks` fixture and calls
`ranks.run(check, *args)`: every rank process runs `check(rank, *args)` (a module-level function
of the test module, found again in the rank by its module and file) and the test gets the list of
their results, rank 0 first. The pool is two processes (`WORLD_SIZE`) in one process group:

- started once per pytest session (per xdist worker) and per device, and reused by every test;
  in a run without xdist it starts in the background as soon as collection selected a test that
  needs it, so its start-up (an interpreter, torch, the process group, a first DDP) overlaps the
  tests that run before it; one launched process imports torch, then forks the other rank;
- the backend follows the device: gloo for the CPU, nccl for CUDA (one GPU per rank); a device
  with no collective backend makes the tests not applicable;
- the store is a FileStore in a temporary folder (no TCP port to collide with another run);
- a collective that hangs fails its test: the process group has a short timeout and every call a
  deadline (`CALL_TIMEOUT`); after a rank raised or missed the deadline the pool is ended and the
  next test starts a fresh one;
- ranks end with os._exit(0): a normal interpreter exit after gloo sometimes aborts
  ("terminate called without an active exception").

Mutation self-tests break torch inside the ranks with `RANK_PATCHES`: functions called with a
MonkeyPatch in every rank before its process group starts.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import torch

WORLD_SIZE = 2
#: Seconds a rank waits in a collective before its process group gives up.
GROUP_TIMEOUT = 20.0
#: Seconds a test waits for the ranks' answers to one call.
CALL_TIMEOUT = 40.0
#: Seconds to wait for the ranks to start (interpreter, torch, process group, first DDP).
START_TIMEOUT = 120.0

#: Functions `fn(monkeypatch)` applied in every rank at start-up (mutation self-tests).
RANK_PATCHES: Tuple[Callable, ...] = ()

_POOLS = pytest.StashKey[Dict[str, "RankPool"]]()

# (module name, file, package root, function name): how a rank finds a function again.
FunctionRef = Tuple[str, str, str, str]


class RankError(AssertionError):
    """A rank raised, died or did not answer in time."""


@dataclass(frozen=True)
class Rank:
    """What a check function learns about the process it runs in."""

    rank: int
    world_size: int
    device: torch.device


def backend_for(device: str) -> Tuple[Optional[str], str]:
    """(backend, "") for a device the pool can run on, else (None, why not): the device's
    adapter names its collective backend (gloo for cpu, nccl for cuda, ...)."""
    import torch.distributed as dist

    from .adapters import adapter_for

    if not dist.is_available():
        return None, f"torch {torch.__version__} was built without torch.distributed"
    return adapter_for(device).collective_backend(WORLD_SIZE)


# -- the test side ---------------------------------------------------------------------------

def _ref(fn: Callable) -> FunctionRef:
    """How a rank imports `fn` again: its module name, file and the folder the name is
    relative to (suite modules are imported by pytest's importlib mode, not from sys.path)."""
    module = sys.modules[fn.__module__]
    path = Path(module.__file__).resolve()
    depth = fn.__module__.count(".") + (1 if path.name == "__init__.py" else 0)
    return fn.__module__, str(path), str(path.parents[depth]), fn.__name__


class RankPool:
    """WORLD_SIZE rank processes in one process group, started once and reused."""

    def __init__(self, device: str, backend: str, seed: int,
                 patches: Sequence[Callable] = ()) -> None:
        self.device, self.backend, self.seed = device, backend, seed
        self.patches = [_ref(p) for p in patches]
        self._procs: List[Any] = []
        self._conns: List[Any] = []
        self._folder: Optional[str] = None
        self._ready = False
        self._forked: List[int] = []
        self._lock = threading.Lock()
        self.start_seconds: Optional[float] = None

    def start(self) -> None:
        """Launch the ranks and return at once; they get ready in the background.

        One `python -m torchconform.distributed` process (not multiprocessing's spawn, which
        re-imports the caller's main script) imports torch and what DDP loads on first use,
        then forks the other ranks: the imports, most of a rank's start-up, are paid once.
        Each rank talks to this process over its own socket pair."""
        if self._procs:
            return
        self._started = time.perf_counter()
        self._folder = tempfile.mkdtemp(prefix="torchconform-ranks-")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        theirs = []
        for _ in range(WORLD_SIZE):
            mine, their = socket.socketpair()
            self._conns.append(Connection(mine.detach()))
            theirs.append(their)
        fds = [t.fileno() for t in theirs]
        setup = (WORLD_SIZE, self.backend, self.device, self._folder, self.patches,
                 GROUP_TIMEOUT)
        self._procs.append(subprocess.Popen(
            [sys.executable, "-m", "torchconform.distributed", ",".join(map(str, fds)),
             setup_text(setup)], pass_fds=fds, env=env, stdin=subprocess.DEVNULL))
        for their in theirs:
            their.close()

    def _wait_ready(self) -> None:
        if self._ready:
            return
        self.start()
        answers = self._collect(START_TIMEOUT, "start")
        failed = [(r, a) for r, a in enumerate(answers) if a[0] != "ready"]
        if failed:
            self.close()
            raise RankError("; ".join(f"rank {r} did not start:\n{a[1]}" for r, a in failed))
        self._ready = True
        self._forked = [a[1]["pid"] for a in answers[1:]]
        self.start_seconds = time.perf_counter() - self._started
        #: per rank, the seconds from launch to: torch imported, group formed, DDP warmed up
        self.start_phases = [{k: round(v - a[1]["launched"], 2) for k, v in a[1].items()
                              if k != "pid"} for a in answers]

    def run(self, check: Callable, *args: Any, timeout: float = CALL_TIMEOUT) -> List[Any]:
        """Run `check(rank, *args)` on every rank; return their results, rank 0 first."""
        with self._lock:
            self._wait_ready()
            ref = _ref(check)
            for conn in self._conns:
                conn.send(("run", ref, args, self.seed))
            answers = self._collect(timeout, check.__name__)
            problems = [f"rank {r} {a[1]}" for r, a in enumerate(answers) if a[0] != "ok"]
            if problems:
                # A rank that raised may have left the others inside a collective.
                self.close()
                raise RankError(f"{check.__name__}: " + "\n".join(problems))
            return [a[1] for a in answers]

    def _collect(self, timeout: float, what: str) -> List[Tuple[str, Any]]:
        deadline = time.monotonic() + timeout
        answers: List[Optional[Tuple[str, Any]]] = [None] * len(self._conns)
        while any(a is None for a in answers):
            for r, conn in enumerate(self._conns):
                if answers[r] is not None:
                    continue
                try:
                    if conn.poll(0.01):
                        answers[r] = conn.recv()
                except (EOFError, OSError):
                    # Only rank 0 is our child; the others are forked from it.
                    code = self._procs[r].poll() if r < len(self._procs) else None
                    answers[r] = ("died", f"died during {what} (exit code {code})")
            if time.monotonic() > deadline:
                for r, answer in enumerate(answers):
                    if answer is None:
                        answers[r] = ("timeout", f"did not answer {what} within {timeout:g} s "
                                      f"(a hung collective?)")
        return answers  # type: ignore[return-value]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close",))
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in self._forked:  # the other ranks are children of rank 0's process
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # already gone
                pass
        self._forked = []
        for conn in self._conns:
            conn.close()
        self._procs, self._conns, self._ready = [], [], False
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _pool(config: pytest.Config, device: str) -> RankPool:
    """The session's pool for `device`, created (not yet started) if needed. A pool ended by
    a failed call starts again on its next call."""
    pools = config.stash.setdefault(_POOLS, {})
    pool = pools.get(device)
    if pool is None:
        backend, why = backend_for(device)
        if backend is None:
            raise RuntimeError(why)
        pool = pools[device] = RankPool(device, backend, config.getoption("torch_seed"),
                                        RANK_PATCHES)
    return pool


@pytest.fixture
def ranks(request: pytest.FixtureRequest, device: torch.device) -> RankPool:
    """WORLD_SIZE real ranks on `device`'s collective backend (gloo on CPU, nccl on CUDA)."""
    from . import protocol

    backend, why = backend_for(str(device))
    if backend is None:
        protocol.not_applicable(why, request.node)
    return _pool(request.config, str(device))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Without xdist, start the pools the selected tests need now, in the background."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    wanted = []
    for item in session.items:
        if "ranks" not in getattr(item, "fixturenames", ()) or item.get_closest_marker("skip"):
            continue
        callspec = getattr(item, "callspec", None)
        device = str(callspec.params.get("device", "cpu")) if callspec else "cpu"
        if device not in wanted:
            wanted.append(device)
    for device in wanted:
        if backend_for(device)[0] is not None:
            _pool(config, device).start()


def pytest_unconfigure(config: pytest.Config) -> None:
    for pool in config.stash.get(_POOLS, {}).values():
        pool.close()


# -- the rank side ---------------------------------------------------------------------------

_LOADED: Dict[Tuple[str, str], Any] = {}


def _resolve(ref: FunctionRef) -> Callable:
    module_name, path, root, name = ref
    key = (module_name, path)
    module = _LOADED.get(key)
    if module is None:
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # not importable by name: load the file itself
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        _LOADED[key] = module
    return getattr(module, name)


def _warm_up(device: torch.device) -> None:
    """One DDP construction, forward and backward: the first in a process costs ~1 s (it
    imports torch._dynamo), which would otherwise land on the first test."""
    from torch.nn.parallel import DistributedDataParallel

    model = DistributedDataParallel(torch.nn.Linear(1, 1).to(device))
    model(torch.ones(1, 1, device=device)).sum().backward()


def setup_text(setup: Tuple[Any, ...]) -> str:
    return base64.b64encode(pickle.dumps(setup)).decode("ascii")


def _rank_main(fds: Sequence[int], setup: str) -> None:
    (world_size, backend, device, folder, patches,
     group_timeout) = pickle.loads(base64.b64decode(setup))
    phases = {"launched": time.time()}
    conn = Connection(fds[0])
    try:
        import torch.distributed as dist

        from . import isolation

        try:  # what the first DistributedDataParallel() imports (~1.4 s of CPU): once.
            # (import_module: an `import torch._dynamo` here would make `torch` a local name,
            # unbound on torch < 2.0 where the import fails.)
            importlib.import_module("torch._dynamo")
        except ImportError:  # torch < 2.0
            pass
        phases["imported"] = time.time()
        torch.set_num_threads(1)  # the ranks share the machine with the test process
        for ref in patches:
            _resolve(ref)(pytest.MonkeyPatch())
        rank = 0
        for other in range(1, world_size):  # before any thread or device exists
            if os.fork() == 0:
                rank = other
                break
        if rank != 0:
            conn = Connection(fds[rank])  # the dropped one closes fds[0] in this process
        for r, fd in enumerate(fds):
            if r not in (0, rank):
                os.close(fd)
        phases["pid"] = os.getpid()
        dev = torch.device(device)
        if dev.type == "cuda":
            dev = torch.device("cuda", rank)
            torch.cuda.set_device(dev)
        store = dist.FileStore(os.path.join(folder, "store"), world_size)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=group_timeout))
        phases["group"] = time.time()
        _warm_up(dev)
        phases["warm"] = time.time()
        conn.send(("ready", phases))
    except BaseException:  # noqa: B036 - report anything, then leave without cleanup
        conn.send(("error", traceback.format_exc()))
        os._exit(1)
    me = Rank(rank, world_size, dev)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the test process is gone
            os._exit(0)
        if message[0] == "close":
            conn.close()
            os._exit(0)
        _, ref, args, seed = message
        snapshot = isolation.capture()
        try:
            isolation.start_state(seed)
            answer = ("ok", _resolve(ref)(me, *args))
        except BaseException:  # noqa: B036
            answer = ("raised", "raised:\n" + traceback.format_exc())
        finally:
            isolation.restore(snapshot)
        try:
            conn.send(answer)
        except Exception:  # an unpicklable result
            conn.send(("raised", "returned a result that cannot be sent:\n"
                       + traceback.format_exc()))


if __name__ == "__main__":  # the ranks: python -m torchconform.distributed FD,FD SETUP
    _rank_main([int(fd) for fd in sys.argv[1].split(",")], sys.argv[2])


# -- what the checks share -----------------------------------------------------------------------

def mlp(values: Sequence[Any], device: torch.device) -> torch.nn.Sequential:
    """The suite's two-layer network, Linear(3, 4) -> Tanh -> Linear(4, 2) in float32, with the
    parameter values `values` = [w1, b1, w2, b2] (numpy arrays); oracles.mlp_mse computes
    the same network in float64."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p, value in zip(model.parameters(), values):
            p.copy_(torch.as_tensor(value, dtype=p.dtype))
    return model.to(device)


def local_batch(batches: Sequence[Any], me: Rank) -> List[torch.Tensor]:
    """This rank's share of the test's batches: (x, y) of rank `me.rank`, on its device."""
    return [torch.as_tensor(a, dtype=torch.float32, device=me.device)
            for a in batches[me.rank]]


def grads_of(model: torch.nn.Module) -> List[Any]:
    """The .grad of every parameter as a float64 numpy array (None where there is none)."""
    from .tolerances import to_numpy

    return [None if p.grad is None else to_numpy(p.grad) for p in model.parameters()]
