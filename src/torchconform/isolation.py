"""Known starting state for every conformance test, and restoration of what it changed.

Each test starts from seeded RNGs, full-precision float32 matmuls (TF32 would hide a 0.1%
error) and the process's defaults; afterwards every global below is put back, so tests pass in
any order and under xdist.
"""

from __future__ import annotations

import pickle
import random
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch

# (name, read, write) for each global torch setting a test might change.
_Setting = Tuple[str, Callable[[], Any], Callable[[Any], None]]


def _attr(obj: Any, name: str) -> Tuple[Callable[[], Any], Callable[[Any], None]]:
    return (lambda: getattr(obj, name)), (lambda value: setattr(obj, name, value))


def _settings() -> List[_Setting]:
    found: List[_Setting] = [
        ("default_dtype", torch.get_default_dtype, torch.set_default_dtype),
        ("grad_enabled", torch.is_grad_enabled, torch.set_grad_enabled),
        ("anomaly", torch.is_anomaly_enabled, torch.set_anomaly_enabled),
        ("num_threads", torch.get_num_threads, torch.set_num_threads),
        ("deterministic", torch.are_deterministic_algorithms_enabled,
         torch.use_deterministic_algorithms),
        ("float32_matmul_precision", torch.get_float32_matmul_precision,
         torch.set_float32_matmul_precision),
        ("cpu_rng", torch.get_rng_state, torch.set_rng_state),
        ("python_rng", random.getstate, random.setstate),
        ("numpy_rng", np.random.get_state, np.random.set_state),
    ]
    cudnn = torch.backends.cudnn
    for flag in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        found.append((f"cudnn.{flag}", *_attr(cudnn, flag)))
    if hasattr(torch, "get_default_device"):  # torch >= 2.3
        found.append(("default_device", torch.get_default_device, torch.set_default_device))
    return found


def capture() -> Dict[str, Any]:
    """The current value of every tracked global."""
    return {name: read() for name, read, _ in _settings()}


def restore(snapshot: Dict[str, Any]) -> List[str]:
    """Put back every global that differs from `snapshot`; return the names restored."""
    changed = []
    for name, read, write in _settings():
        before = snapshot[name]
        now = read()
        same = torch.equal(now, before) if isinstance(now, torch.Tensor) else _same(now, before)
        if not same:
            write(before)
            changed.append(name)
    return changed


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (ValueError, RuntimeError):  # numpy RNG state tuples hold arrays
        return pickle.dumps(a) == pickle.dumps(b)


def start_state(seed: int, device_types: Optional[Iterable[str]] = None) -> None:
    """Seed every RNG and select full-precision float32 math for one test.

    `device_types`: the types under test. When that is only the CPU, only the CPU generator is
    seeded: torch.manual_seed also queues a lazy seed for every accelerator module torch has
    (CUDA, XPU, MTIA), each capturing the Python stack, which cost about 1 ms per test in a
    CPU run. None seeds everything, as torch.manual_seed does.
    """
    random.seed(seed)
    np.random.seed(seed)
    if device_types is not None and set(device_types) <= {"cpu"}:
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)  # also seeds every CUDA device
    torch.set_float32_matmul_precision("highest")  # no TF32 in matmuls
    torch.backends.cudnn.allow_tf32 = False  # nor in convolutions
    torch.backends.cudnn.benchmark = False  # autotuning would make results run-dependent
