"""Device adapters: one object per device type that knows how to use it (see base.py for the
interface). devices.py (--device), timing.py (synchronize), the plugin (capabilities) and
report/facts.py (backend package and version) ask the adapter; nothing else in torchconform
special-cases a device type.

Built in: cpu, cuda (CUDA and ROCm), mps, xpu, xla (torch_xla), the PrivateUse1 backend under
its registered name, and any other `torch.<type>` module with is_available() (mtia, hpu, ...).

A third-party backend registers its own adapter through the entry point group
`torchconform.devices`; the entry point's name is the device type and its object an adapter
instance, a DeviceAdapter subclass, or a callable returning an adapter:

    # pyproject.toml of the backend's package
    [project.entry-points."torchconform.devices"]
    npu = "torch_npu.testing.torchconform:NpuAdapter"

Third-party adapters win over built-in ones of the same type. `--backend-module` still works
for a PrivateUse1 backend without an adapter of its own: importing it registers torch.<name>.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import torch

from .base import (
    CAPABILITIES,
    FLOAT64,
    FUSED_OPTIMIZERS,
    SERIALIZATION,
    SPARSE,
    Backend,
    DeviceAdapter,
    NotATarget,
    Unloadable,
    capability_table,
)
from .cpu import CpuAdapter
from .cuda import CudaAdapter
from .mps import MpsAdapter
from .privateuse1 import PrivateUse1Adapter, privateuse1_name
from .xla import XlaAdapter
from .xpu import XpuAdapter

__all__ = ["DeviceAdapter", "Backend", "CAPABILITIES", "FLOAT64", "FUSED_OPTIMIZERS",
           "SERIALIZATION", "SPARSE", "ENTRY_POINT_GROUP", "adapter_for", "register",
           "candidate_types", "privateuse1_name", "capability_table", "reset"]

ENTRY_POINT_GROUP = "torchconform.devices"

_BUILTIN: Dict[str, Callable[[], DeviceAdapter]] = {
    "cpu": CpuAdapter,
    "cuda": CudaAdapter,
    "mps": MpsAdapter,
    "xpu": XpuAdapter,
    "xla": XlaAdapter,
}

# Device types torch can name but that hold no data or are not execution targets.
_NOT_TARGETS = {
    "meta": "meta tensors have shapes but no data, so value checks cannot run on them",
    "hip": "ROCm builds of torch use the 'cuda' device type: pass --device cuda",
}

#: Adapters registered at run time (register()) or loaded from entry points, by type.
_registered: Dict[str, DeviceAdapter] = {}
_entry_points_loaded = False


def register(adapter: DeviceAdapter) -> DeviceAdapter:
    """Use `adapter` for its device type (a backend module may call this on import)."""
    if not adapter.type:
        raise ValueError(f"{adapter!r} names no device type")
    _registered[adapter.type] = adapter
    return adapter


def reset() -> None:
    """Forget registered adapters (self-tests); entry points are read again on next use."""
    global _entry_points_loaded
    _registered.clear()
    _entry_points_loaded = False


def _entry_points() -> List[Any]:
    from importlib import metadata

    found = metadata.entry_points()
    if hasattr(found, "select"):  # Python >= 3.10
        return list(found.select(group=ENTRY_POINT_GROUP))
    return list(found.get(ENTRY_POINT_GROUP, []))  # Python 3.8-3.9


def _as_adapter(obj: Any) -> DeviceAdapter:
    if isinstance(obj, DeviceAdapter):
        return obj
    if callable(obj):
        made = obj()
        if isinstance(made, DeviceAdapter):
            return made
    raise TypeError(f"{obj!r} is not a torchconform DeviceAdapter (nor a class or factory "
                    f"returning one)")


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for point in _entry_points():
        if point.name in _registered:
            continue
        try:
            adapter = _as_adapter(point.load())
        except Exception as exc:  # a broken plugin must not hide which one it was
            _registered[point.name] = Unloadable(
                point.name, f"the {ENTRY_POINT_GROUP} entry point {point.name} = {point.value} "
                            f"failed to load: {type(exc).__name__}: {exc}")
            continue
        if adapter.type != point.name:
            _registered[point.name] = Unloadable(
                point.name, f"the {ENTRY_POINT_GROUP} entry point {point.name!r} gives an "
                            f"adapter for {adapter.type!r}")
            continue
        _registered[point.name] = adapter


_builtin_instances: Dict[str, DeviceAdapter] = {}


def adapter_for(device: Any) -> DeviceAdapter:
    """The adapter of a device type, a torch.device or a device string ('cuda:1')."""
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    _load_entry_points()
    if kind in _registered:
        return _registered[kind]
    if kind in _NOT_TARGETS:
        return NotATarget(kind, _NOT_TARGETS[kind])
    if kind in _BUILTIN:
        if kind not in _builtin_instances:
            _builtin_instances[kind] = _BUILTIN[kind]()
        return _builtin_instances[kind]
    if kind in (privateuse1_name(), "privateuseone"):
        return PrivateUse1Adapter(kind)
    generic = DeviceAdapter()
    generic.type = kind
    return generic


def candidate_types() -> List[str]:
    """Device types the default device set considers, in a stable order."""
    _load_entry_points()
    found = ["cpu", "cuda", "xpu", "mps", "mtia", privateuse1_name()]
    accelerator = getattr(torch, "accelerator", None)
    try:
        current = accelerator.current_accelerator() if (
            accelerator is not None and accelerator.is_available()) else None
    except RuntimeError:  # torch 2.6 raises for a PrivateUse1 backend without C++ hooks
        current = None
    if current is not None:
        found.append(current.type)
    found += ["xla"] + sorted(_registered)
    unique: List[str] = []
    for kind in found:
        if kind not in unique and kind != "privateuseone":
            unique.append(kind)
    return unique

