"""The CPU: always available, synchronous, every capability (fused kernels from torch 2.4)."""

from __future__ import annotations

from typing import Callable, Dict, Optional

import torch

from ..versions import TORCH_VERSION, torch_at_least
from .base import FUSED_OPTIMIZERS, DeviceAdapter, torch_backend


def _nothing_queued() -> None:
    """CPU operators return when their work is done: nothing to wait for."""


class CpuAdapter(DeviceAdapter):
    type = "cpu"
    asynchronous = False

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        return None if index in (None, 0) else f"cpu:{index} does not exist: use 'cpu'"

    def device_count(self) -> int:
        return 1

    def synchronizer(self) -> Callable[[], None]:
        return _nothing_queued

    def backend(self):
        return torch_backend(f"{torch.get_num_threads()} threads")

    def missing_capabilities(self) -> Dict[str, str]:
        # torch 2.4's release notes add CPU kernels for fused SGD/Adam/AdamW; 2.3 refuses.
        if not torch_at_least("2.4"):
            return {FUSED_OPTIMIZERS: f"fused optimizers on the CPU need torch>=2.4 "
                                      f"(installed {TORCH_VERSION})"}
        return {}

    def collective_backend(self, world_size: int):
        import torch.distributed as dist

        if not dist.is_gloo_available():
            return None, "this torch has no gloo backend for CPU collectives"
        return "gloo", ""

    def free_memory(self, device: torch.device) -> Optional[int]:
        """MemAvailable from /proc/meminfo (Linux), else None."""
        try:
            with open("/proc/meminfo") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
