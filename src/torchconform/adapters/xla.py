"""PyTorch/XLA (the torch_xla package): TPUs, and the same lazy-tensor code path on the CPU
through PJRT (`PJRT_DEVICE=CPU`).

torch knows the 'xla' device type without torch_xla, but only importing torch_xla makes it
usable. torch_xla records operations lazily into a graph and runs it when a value is read or
the graph is cut (`torch_xla.sync()`, formerly `xm.mark_step()`); execution is asynchronous,
and `xm.wait_device_ops()` waits for it.

The runtime's device type comes from PJRT_DEVICE (CPU, TPU, CUDA, NEURON, ...). When it is not
set torch_xla picks one itself (TPU if libtpu and a chip are present, else CPU) and warns; so
a run without --device includes xla only when torch_xla is already imported (--backend-module
torch_xla) or PJRT_DEVICE is set, never because the package happens to be installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys
from typing import Any, Callable, Dict, List, Optional

import torch

from .base import SERIALIZATION, Backend, DeviceAdapter

PACKAGE = "torch_xla"


class XlaAdapter(DeviceAdapter):
    type = "xla"
    # Every new shape compiles a new graph: a Hypothesis test drawing 20 module trees
    # compiles dozens (measured on 2 loaded cores: over 150 s for one such test).
    timeout_factor = 5.0

    def __init__(self) -> None:
        self._import_error: Optional[str] = None
        self._serialization: Optional[str] = None  # "" once probed and working

    @property
    def discoverable(self) -> bool:  # type: ignore[override]
        return PACKAGE in sys.modules or (
            "PJRT_DEVICE" in os.environ and importlib.util.find_spec(PACKAGE) is not None)

    def _torch_xla(self) -> Optional[Any]:
        """The imported torch_xla package, or None (the reason in self._import_error)."""
        if PACKAGE in sys.modules:
            return sys.modules[PACKAGE]
        if self._import_error is not None:
            return None
        if importlib.util.find_spec(PACKAGE) is None:
            self._import_error = (f"torch_xla is not installed (pip install "
                                  f"torch_xla=={_release(torch.__version__)} to match torch "
                                  f"{torch.__version__})")
            return None
        try:
            return importlib.import_module(PACKAGE)
        except Exception as exc:  # an ABI mismatch raises ImportError or OSError
            self._import_error = f"importing torch_xla failed: {type(exc).__name__}: {exc}"
            return None

    def pjrt_device(self) -> Optional[str]:
        """The PJRT device type the runtime uses ('CPU', 'TPU', ...)."""
        if self._torch_xla() is None:
            return None
        runtime = importlib.import_module("torch_xla.runtime")
        return runtime.device_type()

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        xla = self._torch_xla()
        if xla is None:
            return self._import_error
        try:
            count = self.device_count()
        except Exception as exc:  # e.g. PJRT_DEVICE=TPU on a machine without TPUs
            return (f"torch_xla {_version(xla)} found no device for PJRT_DEVICE="
                    f"{os.environ.get('PJRT_DEVICE', '(unset)')}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        if count == 0:
            return (f"torch_xla {_version(xla)} sees no device for PJRT_DEVICE="
                    f"{os.environ.get('PJRT_DEVICE', '(unset)')}")
        return self.missing_index(index)

    def device_count(self) -> Optional[int]:
        """Devices this process can address (torch_xla.device_count(); older releases:
        xm.get_xla_supported_devices())."""
        xla = self._torch_xla()
        if xla is None:
            return None
        counter = getattr(xla, "device_count", None)
        if callable(counter):
            return counter()
        xm = importlib.import_module("torch_xla.core.xla_model")
        return len(xm.get_xla_supported_devices())

    def synchronizer(self) -> Optional[Callable[[], None]]:
        """Cut and launch the pending graph (torch_xla.sync(), or xm.mark_step() before it
        existed), then wait for the device to finish it (xm.wait_device_ops())."""
        xla = self._torch_xla()
        if xla is None:
            return None
        xm = importlib.import_module("torch_xla.core.xla_model")
        cut = getattr(xla, "sync", None) or xm.mark_step

        def synchronize() -> None:
            cut()
            xm.wait_device_ops()

        synchronize.__name__ = "sync_and_wait_device_ops"
        return synchronize

    def backend(self) -> Backend:
        xla = self._torch_xla()
        if xla is None:
            return Backend(PACKAGE, None, self._import_error or "")
        return Backend(PACKAGE, _version(xla), f"PJRT device {self.pjrt_device() or '?'}")

    def script_preamble(self) -> List[str]:
        # The PJRT device this run used, unless the reader's environment chooses another.
        device = self.pjrt_device() or "CPU"
        return ["import os", f"os.environ.setdefault('PJRT_DEVICE', {device!r})",
                f"import {PACKAGE}  # makes the 'xla' device usable"]

    def missing_capabilities(self) -> Dict[str, str]:
        missing = super().missing_capabilities()  # fused optimizers, sparse tensors
        serialization = self.serialization_problem()
        if serialization:
            missing[SERIALIZATION] = serialization
        return missing

    def serialization_problem(self) -> Optional[str]:
        """Why torch.save / torch.load(map_location='xla') of an XLA tensor fails, or None:
        probed once with a one-element tensor, so a torch_xla that fixes it is seen as such.
        (torch_xla 2.9 registers no restore function for storages tagged 'xla'; its
        documentation saves through xm.save(), which moves the data to the CPU first.)"""
        if self._serialization is None:
            self._serialization = ""
            if self._torch_xla() is not None:
                try:
                    buffer = io.BytesIO()
                    torch.save(torch.ones(1, device=self.type), buffer)
                    buffer.seek(0)
                    torch.load(buffer, map_location=self.type, weights_only=True)
                except Exception as exc:
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    self._serialization = (
                        f"torch.load(map_location='xla') of a tensor torch.save()d from xla "
                        f"raises {type(exc).__name__}: {first} (torch_xla documents "
                        f"xm.save(), which moves tensors to the CPU before saving)")
        return self._serialization or None


def _version(xla: Any) -> str:
    return str(getattr(xla, "__version__", "?"))


def _release(version: str) -> str:
    """'2.9.0' from '2.9.0+cu128'."""
    return version.split("+")[0]
