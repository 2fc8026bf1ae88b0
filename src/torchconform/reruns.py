"""Order dependence: is a failure the test's own, or left behind by the tests before it?

On the process that receives the reports (the xdist controller under -n), FailureIsolation
records which tests each worker ran, in order. At the end of the session, within a time
budget (--isolate-failures SECONDS), each failed conformance test is run again alone in a
fresh process (`python -m pytest <nodeid>` with the run's device, seed, Hypothesis profile,
plugins and backend modules):

    fails alone                    it fails by itself: its own problem
    fails only after other tests   it passes alone but fails after the tests that ran before
                                   it in its worker; `preceding` is the smallest set of those
                                   (delta debugging over the run order) that makes it fail
    did not fail again             it passes alone and after its predecessors (flaky)
    not isolated                   the budget ran out first (`passes_alone` if it was
                                   rerun alone and passed)

Every failure is rerun alone before any is bisected; a bisection first tries likely sets
(_candidates). The verdict is the test's ISOLATION fact (protocol.py) in conformance.json; an
order-dependent failure's reproducer is rebuilt with the preceding tests' bodies first, called
with the examples CallRecorder saw on the rerun that failed.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import pytest

from . import protocol
from .examples import each_example
from .report.repro import item_params, item_spec, render_arguments, reproduction

FAILS_ALONE = "fails alone"
FAILS_AFTER = "fails only after other tests"
FLAKY = "did not fail again"
NOT_ISOLATED = "not isolated"


class _OutOfBudget(Exception):
    pass


# A process that imports torch and pytest once, then forks one child per rerun: each child
# starts from the state of a process that has imported torch and run nothing, as a new
# `python -m pytest` would, without paying the seconds of torch's import each time.
_FORK_SERVER = r"""
import importlib, json, os, sys
import numpy, torch, pytest
# The plugins every run loads (torchconform's own modules too: importing them runs no test).
for name in ("hypothesis", "xdist", "pytest_html", "pytest_metadata.plugin", "pytest_timeout",
             "pytest_benchmark.plugin", "torchconform.plugin", *sys.argv[1:]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            code = int(pytest.main(request["args"]))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"code": code}), flush=True)
"""


class _Runner:
    """Runs `pytest ARGS` in a fresh process: forked from a server where os.fork exists,
    else a new interpreter. run() returns (exit code, output)."""

    def __init__(self, cwd: str, preload: List[str] = ()) -> None:
        self.cwd = cwd
        self.preload = list(preload)  # backend packages the server imports once, too
        self.server: Optional[subprocess.Popen] = None
        self.folder = tempfile.mkdtemp(prefix="torchconform-reruns-")

    def run(self, args: List[str], timeout: float):
        out = os.path.join(self.folder, "out.txt")
        if not hasattr(os, "fork") or not hasattr(os, "waitstatus_to_exitcode"):
            done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=self.cwd,
                                  capture_output=True, text=True, timeout=timeout)
            return done.returncode, done.stdout
        if self.server is None or self.server.poll() is not None:
            self.server = subprocess.Popen([sys.executable, "-c", _FORK_SERVER,
                                            *self.preload],
                                           cwd=self.cwd, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)
        self.server.stdin.write(json.dumps({"args": args, "out": out}) + "\n")
        self.server.stdin.flush()
        reply = _readline(self.server, timeout)
        if reply is None:  # hung: end the server (and its child) and start anew next time
            self.close()
            raise subprocess.TimeoutExpired("pytest", timeout)
        with open(out, encoding="utf-8", errors="replace") as handle:
            return json.loads(reply)["code"], handle.read()

    def close(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
            self.server = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _readline(process: subprocess.Popen, timeout: float) -> Optional[str]:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if ready else None


def minimize(candidates: List[str], fails: Callable[[List[str]], bool]) -> List[str]:
    """The smallest subset of `candidates` (run order kept) for which `fails` holds, given
    that it holds for all of them and not for none. Binary search for the shortest prefix
    that still fails: its last test is needed; repeat below it, with the tests found so far
    always included, until those alone fail. log2(n) + 1 calls per test found."""
    position = {c: i for i, c in enumerate(candidates)}

    def ordered(tests: List[str]) -> List[str]:
        return sorted(tests, key=position.__getitem__)

    found: List[str] = []
    pool = list(candidates)
    while pool:
        low, high = 1, len(pool)  # pool[:high] + found fails
        while low < high:
            middle = (low + high) // 2
            if fails(ordered(pool[:middle] + found)):
                high = middle
            else:
                low = middle + 1
        found.append(pool[low - 1])
        pool = pool[:low - 1]
        if not pool or fails(ordered(found)):
            break
    return ordered(found)


def _read_calls(path: str) -> Dict[str, Dict[str, Any]]:
    """CallRecorder's file: {nodeid: call spec, with `examples` for a Hypothesis test}."""
    calls: Dict[str, Dict[str, Any]] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:  # the last line of a process that crashed mid-write
                    continue
                if "spec" in record:
                    calls[record["nodeid"]] = record["spec"]
                elif record["nodeid"] in calls:
                    calls[record["nodeid"]].setdefault("examples", []).append(
                        record["example"])
    return calls


class CallRecorder:
    """On a rerun (the internal option --record-calls FILE): per conformance test, a JSON line
    with its call spec, then one per Hypothesis example with the example's arguments as
    Python source, written before the example runs (so a test that crashes the interpreter
    leaves the example that crashed it). The main run records only the failing example; a
    predecessor's examples are what an order-dependent failure's reproducer must replay."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _write(self, record: Dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        if item.get_closest_marker("behavior") is None:
            yield
            return
        spec = item_spec(item)
        self._write({"nodeid": item.nodeid, "spec": spec})

        def before(kwargs: Dict[str, Any]) -> None:
            drawn = {k: v for k, v in kwargs.items() if k not in item.funcargs}
            try:  # before the body runs: it may change its arguments in place
                text: Optional[str] = render_arguments({**item_params(item), **drawn})
            except Exception:  # Unrenderable, or a value that cannot even be read
                text = None
            self._write({"nodeid": item.nodeid, "example": text})

        with each_example(item.obj, before):
            yield


class FailureIsolation:
    """pytest plugin object on the reporting process: run order per worker, then the reruns."""

    def __init__(self, config: pytest.Config, budget: float) -> None:
        self.config = config
        self.budget = budget
        self.order: Dict[str, List[str]] = {}
        self.worker_of: Dict[str, str] = {}
        self.specs: Dict[str, Dict[str, Any]] = {}
        self.failed: List[str] = []
        self.scripted: set = set()  # failures whose worker wrote a reproducer
        self.crashed: set = set()  # failures that killed their worker
        self.recorded: Dict[tuple, Dict[str, Dict[str, Any]]] = {}  # failing rerun: calls
        self.found: List[List[str]] = []  # culprit sets found so far
        self.runs = 0
        self.seconds = 0.0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        facts = protocol.facts(report)
        if facts.get(protocol.BEHAVIOR) is None:
            return
        if facts.get(protocol.CALL):
            self.specs[report.nodeid] = json.loads(facts[protocol.CALL])
        if facts.get(protocol.REPRODUCE):
            self.scripted.add(report.nodeid)
        gateway = getattr(getattr(report, "node", None), "gateway", None)
        worker = getattr(gateway, "id", "main")
        if report.when == "setup":
            self.order.setdefault(worker, []).append(report.nodeid)
            self.worker_of[report.nodeid] = worker
        if report.failed and report.when == "call" and report.nodeid not in self.failed:
            self.failed.append(report.nodeid)
        if getattr(report, "crashed", False):  # it killed its worker (CrashAttribution)
            self.crashed.add(report.nodeid)

    # -- the reruns ----------------------------------------------------------------------

    def _arguments(self) -> List[str]:
        """The options of this run that decide what a test does, for a one-process rerun."""
        option = self.config.getoption
        args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist",
                "--no-report", "-q", "-rfE",
                f"--torch-seed={option('torch_seed')}",
                f"--hypothesis-profile={self.config.hypothesis_profile_name}",
                "--rootdir", str(self.config.rootpath)]
        if self.config.inipath is not None:
            args += ["-c", str(self.config.inipath)]
        if option("device"):
            args.append(f"--device={option('device')}")
        for module in option("backend_module"):
            args.append(f"--backend-module={module}")
        timeout = getattr(self.config.option, "timeout", None)
        if timeout:
            args.append(f"--timeout={timeout}")
        given = list(self.config.invocation_params.args)
        for i, arg in enumerate(given[:-1]):  # plugins the run loaded by hand
            if arg == "-p" and not given[i + 1].startswith("no:"):
                args += ["-p", given[i + 1]]
        return args

    def _fails(self, nodeids: List[str], target: str, deadline: float) -> bool:
        """Run `nodeids` (ending with `target`) in a fresh process: did `target` fail? The
        rerun records the examples each test ran (CallRecorder); those of a failing rerun
        are kept for the reproducer of `target`."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise _OutOfBudget
        calls = os.path.join(self.runner.folder, "calls.jsonl")
        if os.path.exists(calls):
            os.remove(calls)
        started = time.monotonic()
        try:
            code, output = self.runner.run(
                [*nodeids, *self._arguments(), f"--record-calls={calls}"], max(left, 1))
        except subprocess.TimeoutExpired:
            raise _OutOfBudget from None
        finally:
            self.runs += 1
            self.seconds += time.monotonic() - started
        failed = code not in (0, 1, 5) or any(  # not 0/1/5: the target crashed the process
            line.startswith((f"FAILED {target}", f"ERROR {target}"))
            for line in output.splitlines())
        if failed:
            self.recorded[tuple(nodeids)] = _read_calls(calls)
        return failed

    def _record(self, nodeids: List[str], target: str, deadline: float) -> None:
        """The examples of a failing rerun of `nodeids`, for the reproducer, if no rerun of
        exactly these tests has recorded them yet (and the budget allows one)."""
        if len(nodeids) < 2 or tuple(nodeids) in self.recorded:
            return
        try:
            self._fails(nodeids, target, deadline)
        except _OutOfBudget:
            pass

    def _start(self, nodeid: str, deadline: float) -> Dict[str, Any]:
        """The first rerun: `nodeid` alone."""
        runs, seconds = self.runs, self.seconds
        result: Dict[str, Any] = {"classification": NOT_ISOLATED, "preceding": []}
        try:
            if self._fails([nodeid], nodeid, deadline):
                result["classification"] = FAILS_ALONE
            else:
                result["passes_alone"] = True
        except _OutOfBudget:
            pass
        result["runs"] = self.runs - runs
        result["seconds"] = round(self.seconds - seconds, 2)
        return result

    def _candidates(self, nodeid: str, before: List[str]) -> List[List[str]]:
        """Subsets of `before` to try first, cheapest first: a set already found to break
        another failure (one cause often breaks several tests), the tests of the same file,
        of the same folder, then all. On a lazy backend every rerun compiles its graphs
        anew: trying a small likely set saves most of the bisection."""
        sets: List[List[str]] = []
        for found in self.found:
            subset = [t for t in before if t in found]
            if len(subset) == len(found):
                sets.append(subset)
        path = nodeid.split("::")[0]
        sets.append([t for t in before if t.split("::")[0] == path])
        folder = os.path.dirname(path)
        sets.append([t for t in before if os.path.dirname(t.split("::")[0]) == folder])
        sets.append(list(before))
        unique: List[List[str]] = []
        for subset in sets:
            if subset and subset not in unique:
                unique.append(subset)
        return unique

    def _after_others(self, nodeid: str, result: Dict[str, Any], deadline: float) -> None:
        """`nodeid` passed alone: find the smallest set of the tests before it in its worker
        that makes it fail, or call it flaky."""
        runs, seconds = self.runs, self.seconds
        history = self.order.get(self.worker_of.get(nodeid, "main"), [])
        before = history[:history.index(nodeid)] if nodeid in history else []
        try:
            for subset in self._candidates(nodeid, before):
                if self._fails(subset + [nodeid], nodeid, deadline):
                    result["classification"] = FAILS_AFTER
                    result["preceding"] = subset
                    break
            else:
                result["classification"] = FLAKY
            if result["preceding"]:
                result["preceding"] = minimize(
                    result["preceding"],
                    lambda subset: self._fails(subset + [nodeid], nodeid, deadline))
                self.found.append(result["preceding"])
        except _OutOfBudget:
            if result["classification"] == FAILS_AFTER:
                result["minimal"] = False  # the smallest set found before the budget ended
        self._record(result["preceding"] + [nodeid], nodeid, deadline)
        result["runs"] += self.runs - runs
        result["seconds"] = round(result["seconds"] + self.seconds - seconds, 2)

    def _backends(self) -> List[str]:
        """The tested devices' backend packages this process has imported (torch_xla: 3 s
        per rerun saved; importing it without starting its runtime survives a fork)."""
        from . import devices

        names = list(self.config.getoption("backend_module"))
        for device in self.config.stash.get(devices.TESTED, []):
            try:
                package = devices.adapter(device).backend().package
            except Exception:
                continue
            if package in sys.modules and package != "torch" and package not in names:
                names.append(package)
        return names

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # tryfirst: before the JSON and HTML writers read the facts.
        writer = self.config.pluginmanager.get_plugin("torchconform-results")
        if not self.failed or self.budget <= 0 or writer is None:
            return  # no report to feed (--no-report: mutation runs, reruns themselves)
        deadline = time.monotonic() + self.budget
        self.runner = _Runner(str(self.config.invocation_params.dir), self._backends())
        try:
            self._isolate_all(writer, deadline)
        finally:
            self.runner.close()

    def _isolate_all(self, writer, deadline: float) -> None:
        """Every failure alone first (cheap, and it classifies most), then the bisections of
        those that passed alone, so one long bisection cannot leave the rest unclassified.
        Each verdict is printed as soon as it is final: on a slow backend this takes a while."""
        pending = []
        for nodeid in self.failed:
            result = self._start(nodeid, deadline)
            if result.get("passes_alone"):
                pending.append((nodeid, result))
            else:
                self._conclude(writer, nodeid, result)
        for nodeid, result in pending:
            self._after_others(nodeid, result, deadline)
            self._conclude(writer, nodeid, result)

    def _conclude(self, writer, nodeid: str, result: Dict[str, Any]) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            before = result["preceding"]
            named = ", ".join(before[:3]) + (f" and {len(before) - 3} more" if before[3:] else "")
            unfinished = "; not minimal: the budget ran out" if result.get("minimal") is False \
                else ""
            reporter.write_line(f"torchconform isolation: {nodeid}: {result['classification']}"
                                + (f" after {named}" if before else "")
                                + f" ({result['runs']} runs, {result['seconds']:.1f} s"
                                + f"{unfinished})")
            reporter.flush()  # shown as it comes, also when the output goes to a file
        writer.add_fact(nodeid, protocol.ISOLATION, json.dumps(result))
        script = self._reproducer(nodeid, result["preceding"])
        if script is not None:
            writer.add_fact(nodeid, protocol.REPRODUCE, script)

    def _reproducer(self, nodeid: str, preceding: List[str]) -> Optional[str]:
        """The script of an order-dependent failure (its predecessors first, with the
        examples they ran on the rerun that failed), or of a failure whose worker wrote none
        (it crashed the interpreter: the spec recorded at its setup)."""
        spec = self.specs.get(nodeid)
        if spec is None or (not preceding and nodeid in self.scripted):
            return None
        recorded = self.recorded.get(tuple(preceding + [nodeid]), {})
        specs = [recorded.get(p) or self.specs.get(p) for p in preceding]
        if any(s is None for s in specs):
            return None
        crashing = [e for e in (recorded.get(nodeid) or {}).get("examples") or [] if e]
        if nodeid in self.crashed and crashing:  # the example it crashed in, on the rerun
            spec = dict(spec, arguments=crashing[-1])
        from .versions import TORCH_VERSION

        return reproduction(spec, self.config.getoption("torch_seed"), TORCH_VERSION,
                            self.config.getoption("backend_module"),
                            preceding=specs, nodeid=nodeid, crashed=nodeid in self.crashed)
