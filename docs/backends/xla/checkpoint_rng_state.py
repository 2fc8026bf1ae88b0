"""torch.utils.checkpoint.checkpoint (use_reentrant=False, the documented default
preserve_rng_state=True) on XLA tensors fails in torch 2.9.0 + torch_xla 2.9.0: checkpoint
saves the RNG state of the inputs' device through `torch.<device type>`, and there is no
torch.xla module. torch_xla documents its own torch_xla.utils.checkpoint instead.

Run: PJRT_DEVICE=CPU python checkpoint_rng_state.py   (exit 1: it fails on xla)
"""
import sys

import torch
import torch.utils.checkpoint as ckpt
import torch_xla  # noqa: F401


def gradient(device):
    x = torch.tensor([0.5, -0.25], device=device, requires_grad=True)
    try:
        y = ckpt.checkpoint(torch.tanh, x, use_reentrant=False)
        y.sum().backward()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return x.grad.cpu().tolist()


expected = (1 - torch.tanh(torch.tensor([0.5, -0.25], dtype=torch.float64)) ** 2).tolist()
print("expected (1 - tanh^2):", expected)
print("cpu:", gradient("cpu"))
xla = gradient("xla")
print("xla:", xla)
sys.exit(0 if isinstance(xla, list) else 1)
