"""Which devices a run tests: parse `--device`, discover what is available, explain refusals.

`resolve_devices(text)` is called once at configure time. Its result becomes the
parametrization of the `device` fixture, the `[cpu]` / `[cuda]` suffix of every test id and the
`device` field of every result record. Nothing else decides which devices are tested.
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional

import pytest
import torch

#: Where the plugin keeps the devices resolved at configure time (read them with tested()).
TESTED = pytest.StashKey[List[str]]()


def tested(config: pytest.Config) -> List[str]:
    """The run's devices, as resolved once from --device at configure time (empty before)."""
    return list(config.stash.get(TESTED, []))


# Device types torch can name but that hold no data or are not execution targets.
_NOT_TARGETS = {
    "meta": "meta tensors have shapes but no data, so value checks cannot run on them",
    "hip": "ROCm builds of torch use the 'cuda' device type: pass --device cuda",
}


class DeviceError(ValueError):
    """A --device value that cannot be tested; the message names the device and says why."""


def privateuse1_name() -> str:
    """The name the PrivateUse1 backend registered (e.g. 'npu'), or 'privateuseone'."""
    getter = getattr(torch._C, "_get_privateuse1_backend_name", None)
    return getter() if getter is not None else "privateuseone"


def _backend_module(device_type: str):
    """torch.<type> for accelerators that expose is_available() (cuda, xpu, mps via
    torch.backends, mtia, a renamed PrivateUse1 backend, ...), or None."""
    if device_type == "mps":
        return getattr(torch.backends, "mps", None)
    module = getattr(torch, device_type, None)
    return module if callable(getattr(module, "is_available", None)) else None


def _build_name() -> str:
    if getattr(torch.version, "hip", None):
        return f"a ROCm {torch.version.hip} build"
    if getattr(torch.version, "cuda", None):
        return f"a CUDA {torch.version.cuda} build"
    return "a CPU-only build"


def why_unavailable(device: torch.device) -> Optional[str]:
    """None when `device` can run tests, otherwise a sentence saying why not."""
    kind = device.type
    if kind == "cpu":
        return None if device.index in (None, 0) else f"{device} does not exist: use 'cpu'"
    if kind in _NOT_TARGETS:
        return _NOT_TARGETS[kind]
    if kind == "cuda":
        if not (getattr(torch.version, "cuda", None) or getattr(torch.version, "hip", None)):
            return f"torch {torch.__version__} is a CPU-only build (no CUDA or ROCm support)"
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            extra = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
            return (f"torch {torch.__version__} is {_build_name()} but torch.cuda.is_available() "
                    f"is False: no usable GPU or driver{extra}")
    elif kind == "mps":
        mps = torch.backends.mps
        if not mps.is_built():
            return f"torch {torch.__version__} was built without MPS support"
        if not mps.is_available():
            return "MPS is built but not available (it needs macOS 12.3+ on Apple silicon)"
    else:
        module = _backend_module(kind)
        if module is None:
            if kind == privateuse1_name() or kind == "privateuseone":
                return (f"no PrivateUse1 backend named {kind!r} is loaded: import its package "
                        f"first (see --backend-module)")
            return (f"torch {torch.__version__} has no torch.{kind}.is_available(), so "
                    f"torchconform cannot tell whether {kind!r} works")
        if not module.is_available():
            return f"torch.{kind}.is_available() is False on this machine"
    if device.index is not None and kind != "cpu":
        count = _device_count(kind)
        if count is not None and device.index >= count:
            return f"{device} does not exist: torch sees {count} {kind} device(s)"
    return None


def _device_count(kind: str) -> Optional[int]:
    if kind == "cuda":
        return torch.cuda.device_count()
    module = _backend_module(kind)
    counter = getattr(module, "device_count", None)
    return counter() if callable(counter) else None


def available_device_types() -> List[str]:
    """cpu plus every accelerator type this torch and machine can run, in a stable order."""
    found = ["cpu"]
    candidates = ["cuda", "xpu", "mps", "mtia", privateuse1_name()]
    accelerator = getattr(torch, "accelerator", None)
    try:
        current = accelerator.current_accelerator() if (
            accelerator is not None and accelerator.is_available()) else None
    except RuntimeError:  # torch 2.6 raises for a PrivateUse1 backend without C++ hooks
        current = None
    if current is not None:
        candidates.append(current.type)
    for kind in candidates:
        if kind in found or kind == "privateuseone":
            continue
        try:
            if why_unavailable(torch.device(kind)) is None:
                found.append(kind)
        except RuntimeError:  # a name this torch does not know
            continue
    return found


def parse_device(token: str) -> torch.device:
    """A torch.device for one --device item, or DeviceError naming it."""
    try:
        return torch.device(token)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {token!r}: {exc}") from None


def resolve_devices(text: Optional[str]) -> List[str]:
    """The devices to test, as strings ('cpu', 'cuda', 'cuda:1'), from a --device value.

    None or "" means every available device type. An unknown or unavailable device raises
    DeviceError: asking for a device and silently not testing it would look like a pass.
    """
    if not text:
        return available_device_types()
    devices: List[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            raise DeviceError(f"empty item in --device {text!r}")
        device = parse_device(token)
        reason = why_unavailable(device)
        if reason is not None:
            raise DeviceError(f"device {token!r} is not available: {reason}")
        name = str(device)
        if name not in devices:
            devices.append(name)
    return devices


def supports_float64(device: str) -> bool:
    """MPS has no float64; every other target does."""
    return torch.device(device).type != "mps"


def synchronizer(device: str) -> Optional[Callable[[], None]]:
    """The call that waits for `device`'s queued work (torch.cuda.synchronize, ...), a no-op
    for the synchronous CPU, or None when the backend has no synchronize()."""
    kind = torch.device(device).type
    if kind == "cpu":
        return _nothing_queued
    module = _backend_module(kind) if kind != "mps" else getattr(torch, "mps", None)
    sync = getattr(module, "synchronize", None)
    return sync if callable(sync) else None


def _nothing_queued() -> None:
    """CPU operators return when their work is done: nothing to wait for."""


def synchronize(device: str) -> bool:
    """Wait for queued work on an asynchronous device; False when it has no way to."""
    sync = synchronizer(device)
    if sync is None:
        return False
    sync()
    return True


def gpu_for_worker(worker_id: str, visible: List[str]) -> Optional[str]:
    """The GPU an xdist worker ('gw3') runs on: workers take the visible GPUs round-robin."""
    if not visible:
        return None
    digits = "".join(ch for ch in worker_id if ch.isdigit())
    return visible[int(digits or 0) % len(visible)]


def pin_xdist_worker(device_option: Optional[str], environ=os.environ) -> Optional[str]:
    """Make this xdist worker see one GPU (CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES) and
    return its id, before anything initializes CUDA. Only when the run tests plain `cuda`
    (default or --device cuda): an explicit `cuda:N` keeps every GPU visible."""
    worker = environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return None
    tokens = [t.strip() for t in (device_option or "").split(",") if t.strip()]
    if tokens and "cuda" not in tokens:
        return None
    if not (getattr(torch.version, "cuda", None) or getattr(torch.version, "hip", None)):
        return None
    variable = "HIP_VISIBLE_DEVICES" if getattr(torch.version, "hip", None) else (
        "CUDA_VISIBLE_DEVICES")
    listed = environ.get(variable, environ.get("CUDA_VISIBLE_DEVICES"))
    if listed is not None:
        visible = [v.strip() for v in listed.split(",") if v.strip()]
    else:
        visible = [str(i) for i in range(torch.cuda.device_count())]
    chosen = gpu_for_worker(worker, visible)
    if chosen is None:
        return None
    environ[variable] = chosen
    for cached in (torch.cuda.device_count, getattr(torch.cuda, "_device_count_nvml", None)):
        clear = getattr(cached, "cache_clear", None)  # older torch cached the count
        if clear is not None:
            clear()
    return chosen


def build_kind() -> str:
    """Which GPU runtime the installed torch was built for: "rocm", "cuda" or "cpu" (ROCm
    builds set torch.version.hip and use the "cuda" device type). The one place that reads it."""
    if getattr(torch.version, "hip", None):
        return "rocm"
    if getattr(torch.version, "cuda", None):
        return "cuda"
    return "cpu"
