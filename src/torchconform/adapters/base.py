"""The device adapter interface: everything torchconform needs to know about one device type.

An adapter answers, for its device type (`cuda`, `xla`, `npu`, ...):

    why_unavailable(index)  None if the device can run tests, else one sentence saying why not
    device_count()          how many devices of the type this process sees (None: unknown)
    synchronizer()          the call that waits for queued work, or None if the backend has none
    asynchronous            whether operators may return before their work is done
    backend()               the package that implements the device and its version, plus one
                            line of runtime facts (Backend("torch_xla", "2.9.0", "PJRT device CPU"))
    missing_capabilities()  {capability: reason} for the capabilities below that it lacks

and a few optional hooks with safe defaults (device_context, free_memory, pin_worker,
gpus). Capabilities are the features some conformance tests need beyond plain tensors; a
test that needs one the device lacks is "not applicable" with the adapter's reason
(`torchconform.requires`), never a pass. Only capabilities a test asks about are listed.

Third parties add an adapter for their device through the entry point group
`torchconform.devices` (see adapters/__init__.py).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Tuple

import torch

#: tensors of dtype torch.float64 (gradcheck; tests parametrized over float64)
FLOAT64 = "float64"
#: torch.optim's fused implementations (`SGD(fused=True)`)
FUSED_OPTIMIZERS = "fused_optimizers"
#: torch.save / torch.load(map_location=device) of the device's tensors
SERIALIZATION = "serialization"
#: sparse COO tensors (SparseAdam's gradients, nn.Embedding(sparse=True))
SPARSE = "sparse"

#: Every capability a conformance test may ask about, with what it means.
CAPABILITIES: Dict[str, str] = {
    FLOAT64: "tensors of dtype torch.float64",
    FUSED_OPTIMIZERS: "torch.optim fused implementations (fused=True)",
    SERIALIZATION: "torch.save / torch.load of the device's tensors",
    SPARSE: "sparse COO tensors (SparseAdam)",
}


@dataclass(frozen=True)
class Backend:
    """Who implements a device type: package, version and one line of runtime facts."""

    package: str
    version: Optional[str]
    details: str = ""

    def __str__(self) -> str:
        text = f"{self.package} {self.version or '(version unknown)'}"
        return f"{text}, {self.details}" if self.details else text

    def as_dict(self) -> Dict[str, Any]:
        return {"package": self.package, "version": self.version, "details": self.details}


def torch_backend(details: str = "") -> Backend:
    return Backend("torch", str(torch.__version__), details)


class DeviceAdapter:
    """Base adapter. Subclasses set `type` and override what differs; the defaults describe
    an accelerator exposed as a `torch.<type>` module with is_available(), device_count() and
    synchronize() (torch.xpu, torch.mtia, a registered PrivateUse1 module, ...)."""

    #: the device type, as in torch.device(type)
    type: str = ""
    #: operators may return before their work is done (timing must synchronize first)
    asynchronous: bool = True
    #: included in the default device set (no --device) when available
    discoverable: bool = True
    #: the per-test timeout (--timeout) is multiplied by this for tests on the device: a
    #: backend that compiles a graph for every new shape needs longer for the same test
    timeout_factor: float = 1.0

    # -- the interface --------------------------------------------------------------------

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        """None when `type[:index]` can run tests, otherwise one sentence saying why not."""
        module = self.module()
        if module is None:
            return (f"torch {torch.__version__} has no torch.{self.type}.is_available(), so "
                    f"torchconform cannot tell whether {self.type!r} works")
        if not module.is_available():
            return f"torch.{self.type}.is_available() is False on this machine"
        return self.missing_index(index)

    def device_count(self) -> Optional[int]:
        counter = getattr(self.module(), "device_count", None)
        return counter() if callable(counter) else None

    def synchronizer(self) -> Optional[Callable[[], None]]:
        """The call that waits for the device's queued work, or None if it has none."""
        sync = getattr(self.module(), "synchronize", None)
        return sync if callable(sync) else None

    def backend(self) -> Backend:
        return torch_backend()

    def missing_capabilities(self) -> Dict[str, str]:
        """{capability: why this device lacks it}; capabilities not listed are present.
        The default: fused optimizers where torch's own list of fused-kernel devices says,
        sparse tensors where a probe fails."""
        missing: Dict[str, str] = {}
        fused = fused_from_torch_list(self.type)
        if fused:
            missing[FUSED_OPTIMIZERS] = fused
        sparse = self.sparse_problem()
        if sparse:
            missing[SPARSE] = sparse
        return missing

    def sparse_problem(self) -> Optional[str]:
        """Why sparse COO tensors do not work on this device, or None: probed once by
        building and coalescing a two-element sparse tensor on it."""
        if not hasattr(self, "_sparse_problem"):
            self._sparse_problem = probe_sparse(self.type)
        return self._sparse_problem

    # -- optional hooks -------------------------------------------------------------------

    def device_context(self, device: torch.device) -> ContextManager[Any]:
        """Entered around each test on `device` (CUDA: makes cuda:N the current device)."""
        return contextlib.nullcontext()

    def free_memory(self, device: torch.device) -> Optional[int]:
        """Bytes free on `device`, None if unknown."""
        return None

    def pin_worker(self, worker: str, environ: Dict[str, str]) -> Optional[str]:
        """Make an xdist worker see one device (before the backend initializes) and return its
        id; None where the backend has no such thing."""
        return None

    def gpus(self) -> List[Dict[str, Any]]:
        """Name, memory and driver of each GPU of this type (for the environment facts)."""
        return []

    def script_preamble(self) -> List[str]:
        """Python lines a standalone reproducer runs after `import torch` to use this device
        (the backend package's import, its environment): none for devices torch has built in."""
        return []

    def collective_backend(self, world_size: int) -> Tuple[Optional[str], str]:
        """(torch.distributed backend, "") for `world_size` ranks on this device type (one
        device per rank), or (None, why not). Default: none known."""
        return None, f"no collective backend is known for device type {self.type!r}"

    # -- helpers ---------------------------------------------------------------------------

    def module(self) -> Any:
        """torch.<type> if it exposes is_available(), else None."""
        module = getattr(torch, self.type, None)
        return module if callable(getattr(module, "is_available", None)) else None

    def missing_index(self, index: Optional[int]) -> Optional[str]:
        if index is None:
            return None
        count = self.device_count()
        if count is not None and index >= count:
            return (f"{self.type}:{index} does not exist: torch sees {count} {self.type} "
                    f"device(s)")
        return None

    def lacks(self, capability: str) -> Optional[str]:
        """Why the device lacks `capability`, or None when it has it."""
        if capability not in CAPABILITIES:
            raise KeyError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
        return self.missing_capabilities().get(capability)

    def describe(self) -> Dict[str, Any]:
        """The adapter's facts for reports: backend and missing capabilities."""
        return {"backend": self.backend().as_dict(),
                "missing_capabilities": dict(self.missing_capabilities())}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type!r}>"


class NotATarget(DeviceAdapter):
    """A device type torch can name but that cannot run value checks (meta, hip)."""

    discoverable = False

    def __init__(self, kind: str, reason: str) -> None:
        self.type = kind
        self.reason = reason

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        return self.reason


class Unloadable(DeviceAdapter):
    """Stands in for a third-party adapter whose entry point failed to load."""

    discoverable = False

    def __init__(self, kind: str, reason: str) -> None:
        self.type = kind
        self.reason = reason

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        return self.reason


def probe_sparse(kind: str) -> Optional[str]:
    """None if a sparse COO tensor can be built and coalesced on device type `kind`, else
    the error's first line."""
    try:
        torch.sparse_coo_tensor(torch.zeros(1, 1, dtype=torch.int64), torch.ones(1), (2,),
                                device=kind).coalesce()
    except Exception as exc:  # NotImplementedError ('SparseXLA' backend), RuntimeError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        # The dispatcher's message runs on with advice and a list of 50 dispatch keys: its
        # first sentence names the operator and the backend, which is what a reader needs.
        first = re.split(r"(?<=[.!?]) ", first, maxsplit=1)[0]
        return f"torch.sparse_coo_tensor(device={kind!r}) raises {type(exc).__name__}: {first}"
    return None


def fused_kernel_devices() -> Optional[List[str]]:
    """The device types torch's fused optimizer kernels support, as torch itself lists them
    (torch >= 2.3), or None where this torch has no such list."""
    try:
        utils = importlib.import_module("torch.utils._foreach_utils")
    except ImportError:
        return None
    lister = getattr(utils, "_get_fused_kernels_supported_devices", None)
    return list(lister()) if callable(lister) else None


def fused_from_torch_list(kind: str) -> Optional[str]:
    """Why `kind` lacks fused optimizers according to torch's own list, or None."""
    supported = fused_kernel_devices()
    if supported is None:
        return (f"torch {torch.__version__} has no fused optimizer kernels for any device "
                f"(fused=True needs torch>=2.3)")
    if kind not in supported:
        return (f"torch {torch.__version__} has fused optimizer kernels only for "
                f"{', '.join(supported)}, not {kind}")
    return None


def capability_table(missing: Mapping[str, str]) -> str:
    """'float64 (reason); ...' or 'none missing'."""
    return "; ".join(f"{c} ({r})" for c, r in missing.items()) or "none missing"
