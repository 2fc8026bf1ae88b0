"""torch 2.9.0 + torch_xla 2.9.0: when a backward pass on the CPU runs before the XLA runtime
has started, every later backward on an XLA tensor raises
`RuntimeError: 0 <= device.index() && device.index() < ...device_ready_queues_.size()
INTERNAL ASSERT FAILED at ".../autograd/engine.cpp"`: the autograd engine sized its per-device
queues without the XLA device. Touching the device first (torch_xla.device()) avoids it.
(The suite starts the XLA runtime before any test, so no suite test shows this.)

Run: PJRT_DEVICE=CPU python backward_after_a_cpu_backward.py   (exit 1: it shows)
"""
import sys

import torch
import torch_xla  # noqa: F401

y = torch.ones(2, requires_grad=True)
(y * y).sum().backward()
print("cpu backward:", y.grad.tolist())
x = torch.ones(2, device="xla", requires_grad=True)
try:
    (x * x).sum().backward()
except RuntimeError as exc:
    print("xla backward after it raises:", str(exc).splitlines()[0][:160])
    sys.exit(1)
print("xla backward after it:", x.grad.cpu().tolist())
