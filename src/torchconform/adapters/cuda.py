"""CUDA and ROCm: both use the 'cuda' device type. The one place that reads torch.version.cuda
and torch.version.hip (the build), pins xdist workers to GPUs and lists the GPUs."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, ContextManager, Dict, List, Optional

import torch

from ..versions import TORCH_VERSION, torch_at_least
from .base import FUSED_OPTIMIZERS, DeviceAdapter, torch_backend


def build() -> Dict[str, Any]:
    """What GPU toolkit this torch was built with: build 'cpu' | 'cuda' | 'rocm', versions."""
    cuda = getattr(torch.version, "cuda", None)
    hip = getattr(torch.version, "hip", None)
    cudnn = None
    if cuda or hip:
        try:
            cudnn = torch.backends.cudnn.version()
        except (RuntimeError, AttributeError):
            cudnn = None
    return {"build": "rocm" if hip else "cuda" if cuda else "cpu", "cuda": cuda, "hip": hip,
            "cudnn": cudnn}


def build_name() -> str:
    """'a ROCm 6.2 build', 'a CUDA 12.4 build' or 'a CPU-only build'."""
    facts = build()
    if facts["hip"]:
        return f"a ROCm {facts['hip']} build"
    if facts["cuda"]:
        return f"a CUDA {facts['cuda']} build"
    return "a CPU-only build"


def _nvidia_smi_drivers() -> List[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return []
    return out.stdout.strip().splitlines() if out.returncode == 0 else []


class CudaAdapter(DeviceAdapter):
    type = "cuda"

    def is_gpu_build(self) -> bool:
        return build()["build"] != "cpu"

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        if not self.is_gpu_build():
            return f"torch {torch.__version__} is a CPU-only build (no CUDA or ROCm support)"
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            extra = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
            return (f"torch {torch.__version__} is {build_name()} but torch.cuda.is_available() "
                    f"is False: no usable GPU or driver{extra}")
        return self.missing_index(index)

    def device_count(self) -> int:
        return torch.cuda.device_count()

    def synchronizer(self):
        return torch.cuda.synchronize

    def backend(self):
        facts = build()
        toolkit = f"ROCm {facts['hip']}" if facts["hip"] else f"CUDA {facts['cuda']}"
        return torch_backend(toolkit + (f", cuDNN {facts['cudnn']}" if facts["cudnn"] else ""))

    def missing_capabilities(self) -> Dict[str, str]:
        if not torch_at_least("2.3"):  # SGD(fused=...) arrived in torch 2.3
            return {FUSED_OPTIMIZERS: f"fused SGD needs torch>=2.3 (installed {TORCH_VERSION})"}
        return {}

    def device_context(self, device: torch.device) -> ContextManager[Any]:
        if device.index is None:
            return super().device_context(device)
        return torch.cuda.device(device.index)

    def collective_backend(self, world_size: int):
        import torch.distributed as dist

        if not dist.is_nccl_available():
            return None, "this torch has no nccl backend for CUDA collectives"
        if self.device_count() < world_size:
            return None, (f"nccl needs one GPU per rank: {world_size} ranks, "
                          f"{self.device_count()} GPU(s) visible")
        return "nccl", ""

    def free_memory(self, device: torch.device) -> Optional[int]:
        return torch.cuda.mem_get_info(device)[0]

    def pin_worker(self, worker: str, environ: Dict[str, str]) -> Optional[str]:
        """Round-robin one visible GPU per worker through CUDA_VISIBLE_DEVICES (ROCm:
        HIP_VISIBLE_DEVICES), before CUDA initializes."""
        if not self.is_gpu_build():
            return None
        variable = "HIP_VISIBLE_DEVICES" if build()["hip"] else "CUDA_VISIBLE_DEVICES"
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

    def gpus(self) -> List[Dict[str, Any]]:
        """Visible CUDA/ROCm GPUs with name, memory and driver (driver from nvidia-smi)."""
        if not torch.cuda.is_available():
            return []
        drivers = _nvidia_smi_drivers()
        found = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            found.append({
                "index": index,
                "name": props.name,
                "memory_gb": round(props.total_memory / 2**30, 1),
                "capability": f"{props.major}.{props.minor}",
                "driver": drivers[index] if index < len(drivers) else None,
            })
        return found


def gpu_for_worker(worker_id: str, visible: List[str]) -> Optional[str]:
    """The GPU an xdist worker ('gw3') runs on: workers take the visible GPUs round-robin."""
    if not visible:
        return None
    digits = "".join(ch for ch in worker_id if ch.isdigit())
    return visible[int(digits or 0) % len(visible)]
