"""Module.to(memory_format=torch.channels_last) restrides 4-d parameters on the CPU (documented
for nn.Module.to); on XLA the weight reports itself contiguous in both the channels_last and
the default format: XLA tensors have no strides, so the memory format request has no effect.

Run: PJRT_DEVICE=CPU python channels_last_has_no_effect.py   (exit 1: it shows)
"""
import sys

import torch
import torch_xla  # noqa: F401
from torch import nn


def layout(device):
    conv = nn.Conv2d(2, 3, 2).to(device).to(memory_format=torch.channels_last)
    w = conv.weight
    return (w.is_contiguous(memory_format=torch.channels_last), w.is_contiguous())


print("expected: channels_last contiguous True, default contiguous False")
print("cpu (channels_last, default):", layout("cpu"))
xla = layout("xla")
print("xla (channels_last, default):", xla)
sys.exit(0 if xla == (True, False) else 1)
