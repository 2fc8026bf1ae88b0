"""Intel GPUs (torch.xpu): the generic torch.<type> accelerator behavior."""

from __future__ import annotations

from .base import DeviceAdapter


class XpuAdapter(DeviceAdapter):
    type = "xpu"
