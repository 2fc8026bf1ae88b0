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

from . import adapters
from .adapters import DeviceAdapter, privateuse1_name
from .adapters.cuda import gpu_for_worker

__all__ = ["TESTED", "tested", "DeviceError", "adapter", "why_unavailable",
           "available_device_types", "parse_device", "resolve_devices", "supports_float64",
           "synchronizer", "synchronize", "gpu_for_worker", "pin_xdist_worker",
           "privateuse1_name", "PINNED_TYPE", "is_pinned_type"]

#: Where the plugin keeps the devices resolved at configure time (read them with tested()).
TESTED = pytest.StashKey[List[str]]()


def tested(config: pytest.Config) -> List[str]:
    """The run's devices, as resolved once from --device at configure time (empty before)."""
    return list(config.stash.get(TESTED, []))


class DeviceError(ValueError):
    """A --device value that cannot be tested; the message names the device and says why."""


def adapter(device) -> DeviceAdapter:
    """The adapter of a device (torch.device, 'cuda:1' or a type): see adapters/."""
    return adapters.adapter_for(device)


def why_unavailable(device: torch.device) -> Optional[str]:
    """None when `device` can run tests, otherwise a sentence saying why not."""
    return adapter(device).why_unavailable(device.index)


def available_device_types() -> List[str]:
    """cpu plus every accelerator type this torch and machine can run, in a stable order."""
    found = []
    for kind in adapters.candidate_types():
        try:
            chosen = adapter(kind)
            if chosen.discoverable and chosen.why_unavailable(None) is None:
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
    """Whether the device has float64 (its adapter's FLOAT64 capability)."""
    return adapter(device).lacks(adapters.FLOAT64) is None


def synchronizer(device: str) -> Optional[Callable[[], None]]:
    """The call that waits for `device`'s queued work (torch.cuda.synchronize, ...), a no-op
    for the synchronous CPU, or None when the backend has no synchronize()."""
    return adapter(device).synchronizer()


def synchronize(device: str) -> bool:
    """Wait for queued work on an asynchronous device; False when it has no way to."""
    sync = synchronizer(device)
    if sync is None:
        return False
    sync()
    return True


#: The device type whose xdist workers are pinned to one device each (see pin_xdist_worker).
PINNED_TYPE = "cuda"


def is_pinned_type(device: str) -> bool:
    """Does `device` ('cuda:1', 'cpu') belong to the type whose workers are pinned?"""
    return bool(device) and device.split(":")[0] == PINNED_TYPE


def pin_xdist_worker(device_option: Optional[str], environ=os.environ) -> Optional[str]:
    """Make this xdist worker see one GPU (CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES) and
    return its id, before anything initializes CUDA. Only when the run tests plain `cuda`
    (default or --device cuda): an explicit `cuda:N` keeps every GPU visible."""
    worker = environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return None
    tokens = [t.strip() for t in (device_option or "").split(",") if t.strip()]
    if tokens and PINNED_TYPE not in tokens:
        return None
    return adapter(PINNED_TYPE).pin_worker(worker, environ)
