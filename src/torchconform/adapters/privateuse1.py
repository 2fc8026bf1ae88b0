"""A PrivateUse1 backend (torch_npu, an in-house accelerator, ...): the device type torch
reserves for out-of-tree backends, usually renamed (torch.utils.rename_privateuse1_backend)
and given a torch.<name> module (torch._register_device_module) when its package is imported.
Import the package with --backend-module, or give it its own adapter (entry point)."""

from __future__ import annotations

import importlib.metadata
from typing import Optional

import torch

from .base import Backend, DeviceAdapter


def privateuse1_name() -> str:
    """The name the PrivateUse1 backend registered (e.g. 'npu'), or 'privateuseone'."""
    getter = getattr(torch._C, "_get_privateuse1_backend_name", None)
    return getter() if getter is not None else "privateuseone"


class PrivateUse1Adapter(DeviceAdapter):
    def __init__(self, kind: Optional[str] = None) -> None:
        self.type = kind or privateuse1_name()

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        if self.module() is None:
            return (f"no PrivateUse1 backend named {self.type!r} is loaded: import its package "
                    f"first (see --backend-module)")
        return super().why_unavailable(index)

    def backend(self) -> Backend:
        """The package that provides torch.<name>, when it says (its module's package)."""
        module = self.module()
        package = (getattr(module, "__name__", "") or "").split(".")[0]
        if package and package != "torch":
            try:
                return Backend(package, importlib.metadata.version(package))
            except importlib.metadata.PackageNotFoundError:
                return Backend(package, getattr(module, "__version__", None))
        return Backend(f"PrivateUse1 backend {self.type!r}", None,
                       f"on torch {torch.__version__}")
