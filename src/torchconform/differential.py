"""Differential against the CPU: does a failure on a device come from the device, or from the
test and its oracle?

When a conformance test fails on a device other than the CPU, the plugin runs the test's
function once more, in the same process, with `device=cpu`, the same other parameters, the
same Hypothesis example (the last one the device run executed: Hypothesis replays its minimal
failing example last) and the same seeds. Every `assert_close` call records what it compared
(`observe`, called by tolerances.assert_close), in call order, in both runs; the k-th value of
the device run is paired with the k-th value of the CPU run. Tests need no change.

The comparison is the test's DEPARTURE fact (protocol.py), a JSON text:

    {"device": "cuda", "reference": "cpu",
     "cpu_outcome": "passed" | "failed: <message>",
     "kind": "device departs from CPU and oracle" | ...,
     "values": [{"what", "dtype", "index", "device", "cpu", "oracle", "device_ok", "cpu_ok"}]}

`kind` is the verdict:

    DEVICE_DEPARTS  the device fails, the CPU passes: the device departs from CPU and oracle
    BOTH_DEPART     the CPU fails too: the test or its oracle is wrong, not the device
    DEVICE_ERROR    the device run failed without a departed value (an exception), the CPU
                    passed: the device departs from CPU
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import json
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

from .examples import each_example

DEVICE_DEPARTS = "device departs from CPU and oracle"
BOTH_DEPART = "both depart from the oracle: the test or oracle is wrong"
DEVICE_ERROR = "device fails where the CPU passes"
REFERENCE = "cpu"

#: The values assert_close saw in the running test, or None when nobody is listening.
_observations: contextvars.ContextVar = contextvars.ContextVar(
    "torchconform_observations", default=None)


class Observation:
    """One assert_close call: its label, dtype, tolerance, actual and oracle values."""

    def __init__(self, what: str, dtype: str, got: np.ndarray, want: np.ndarray,
                 bound: Any, ok: bool) -> None:
        self.what, self.dtype, self.got, self.want, self.bound, self.ok = (
            what, dtype, got, want, bound, ok)


def observe(what: str, dtype: Any, got: np.ndarray, want: np.ndarray, bound: Any,
            ok: bool) -> None:
    """Called by assert_close before it decides: record the comparison if a run listens."""
    seen = _observations.get()
    if seen is not None:
        seen.append(Observation(what, str(dtype).replace("torch.", ""), got.copy(),
                                want.copy(), bound, bool(ok)))


@contextlib.contextmanager
def listening() -> Iterator[List[Observation]]:
    """Collect the assert_close calls made inside the block, in call order."""
    seen: List[Observation] = []
    token = _observations.set(seen)
    try:
        yield seen
    finally:
        _observations.reset(token)


class DeviceRun:
    """The device run of one test: its observations, and the arguments of the last call of
    the test's body (the Hypothesis example that failed, copied before the body ran)."""

    def __init__(self) -> None:
        self.observations: List[Observation] = []
        self.kwargs: Optional[Dict[str, Any]] = None

    @contextlib.contextmanager
    def watching(self, function: Any) -> Iterator[None]:
        """Listen during the test call; for a Hypothesis test each example starts a fresh
        list and leaves a copy of its arguments."""
        with listening() as seen:
            def before(kwargs: Dict[str, Any]) -> None:
                self.kwargs = {name: _snapshot(value) for name, value in kwargs.items()}
                del seen[:]

            try:
                with each_example(function, before):
                    yield
            finally:
                self.observations = list(seen)


def _snapshot(value: Any) -> Any:
    """A copy of what the test body could change in place (arrays, random generators,
    tensors, containers); immutable values (numbers, strings, dtypes, devices) as they are.
    Cheaper than deepcopy of everything, on every example of every test on the device."""
    if isinstance(value, (int, float, str, bytes, bool, type(None))) or type(value).__name__ in (
            "dtype", "device"):
        return value
    if isinstance(value, np.ndarray):
        return value.copy()
    try:
        return copy.deepcopy(value)
    except Exception:  # cannot be copied: reuse it as is
        return value


def rerun_on_cpu(function: Any, kwargs: Dict[str, Any],
                 fresh_state: Callable[[], Any]) -> Dict[str, Any]:
    """Call the test's plain function (the Hypothesis inner test, if any) with `kwargs` but
    device=cpu, after `fresh_state()` (the seeded start state). Returns the outcome and the
    observations."""
    import torch

    handle = getattr(function, "hypothesis", None)
    plain = getattr(handle, "inner_test", function)
    kwargs = dict(kwargs, device=torch.device(REFERENCE))
    fresh_state()
    started = time.perf_counter()
    with listening() as seen:
        try:
            plain(**kwargs)
            outcome = "passed"
        except BaseException as exc:  # noqa: B036 - a skip or exit is an outcome here too
            if isinstance(exc, KeyboardInterrupt):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            outcome = f"failed: {type(exc).__name__}: {first}"
    return {"outcome": outcome, "observations": list(seen),
            "seconds": time.perf_counter() - started}


def _value(array: np.ndarray, index) -> Any:
    if array.shape == ():
        return float(array)
    try:
        return float(array[index])
    except (IndexError, ValueError):
        return None


def _worst_index(obs: Observation):
    if obs.got.shape != obs.want.shape or obs.got.ndim == 0:
        return ()
    excess = np.abs(obs.got - obs.want) - np.broadcast_to(obs.bound, obs.got.shape)
    excess = np.where(np.isnan(excess), np.inf, excess)
    return tuple(int(i) for i in np.unravel_index(np.argmax(excess), excess.shape))


def compare(device: str, device_obs: List[Observation], cpu: Dict[str, Any],
            device_message: str) -> Dict[str, Any]:
    """The DEPARTURE record: the values of both runs paired in call order, and the verdict."""
    cpu_obs: List[Observation] = cpu["observations"]
    values = []
    # Past the device run's last comparison (it raised), the CPU's values still say what the
    # device should have produced.
    for k in range(max(len(device_obs), len(cpu_obs))):
        dev = device_obs[k] if k < len(device_obs) else None
        ref = cpu_obs[k] if k < len(cpu_obs) else None
        index = _worst_index(dev if dev is not None and (not dev.ok or ref is None) else ref)
        first = dev if dev is not None else ref
        values.append({
            "what": first.what, "dtype": first.dtype, "index": list(index),
            "device": _value(dev.got, index) if dev is not None else None,
            "cpu": _value(ref.got, index) if ref is not None else None,
            "oracle": _value(first.want, index),
            "device_ok": dev.ok if dev is not None else None,
            "cpu_ok": ref.ok if ref is not None else None,
        })
    cpu_passed = cpu["outcome"] == "passed"
    departed = [v for v in values if v["device_ok"] is False]
    if departed and any(v["cpu_ok"] is False for v in departed):
        kind = BOTH_DEPART
    elif not cpu_passed:
        kind = BOTH_DEPART
    elif departed:
        kind = DEVICE_DEPARTS
    else:
        kind = DEVICE_ERROR
    return {"device": device, "reference": REFERENCE, "kind": kind,
            "device_outcome": f"failed: {device_message}", "cpu_outcome": cpu["outcome"],
            "cpu_seconds": round(cpu["seconds"], 4), "values": values}


def to_json(departure: Dict[str, Any]) -> str:
    return json.dumps(departure, sort_keys=False)


def as_text(departure: Dict[str, Any]) -> str:
    """The departure side by side, for people (terminal, HTML extra)."""
    lines = [f"{departure['kind']} (device {departure['device']}, reference "
             f"{departure['reference']}: {departure['cpu_outcome']})"]
    if departure["values"]:
        lines.append(f"  {'value':<28} {'index':<10} {'device':>16} {'cpu':>16} "
                     f"{'oracle':>16}  departs")
    for v in departure["values"]:
        if v["device_ok"] is None:
            who = "(not reached on the device)"
        elif not v["device_ok"]:
            who = "device" if v["cpu_ok"] else "device and cpu"
        else:
            who = "cpu" if v["cpu_ok"] is False else "-"
        lines.append(f"  {v['what'][:28]:<28} {str(tuple(v['index'])):<10} "
                     f"{_fmt(v['device']):>16} {_fmt(v['cpu']):>16} {_fmt(v['oracle']):>16}  "
                     f"{who}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.9g}"
