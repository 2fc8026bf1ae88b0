"""Apple's Metal (MPS): availability from torch.backends.mps; no float64."""

from __future__ import annotations

from typing import Dict, Optional

import torch

from .base import FLOAT64, DeviceAdapter


class MpsAdapter(DeviceAdapter):
    type = "mps"

    def why_unavailable(self, index: Optional[int] = None) -> Optional[str]:
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_built():
            return f"torch {torch.__version__} was built without MPS support"
        if not mps.is_available():
            return "MPS is built but not available (it needs macOS 12.3+ on Apple silicon)"
        if index not in (None, 0):
            return f"mps:{index} does not exist: torch sees one mps device"
        return None

    def device_count(self) -> int:
        return 1

    def module(self):
        return getattr(torch, "mps", None)  # synchronize(); availability is in torch.backends

    def missing_capabilities(self) -> Dict[str, str]:
        missing = super().missing_capabilities()
        missing[FLOAT64] = "the MPS backend has no float64 (Metal lacks 64-bit floating point)"
        return missing
