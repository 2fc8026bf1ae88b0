"""torch_xla 2.9.0 replaces torch.nn.utils.clip_grad_norm_ with its own function when it is
imported (torch_xla/_patched_functions.py). With two gradients, after clipping the second one
holds the FIRST gradient's values: a silent wrong result, even when the norm is below max_norm
and the documented scaling factor is 1.

Run: PJRT_DEVICE=CPU python clip_grad_norm_scales_with_the_wrong_tensor.py   (exit 1: it shows)
"""
import sys

import numpy as np
import torch
import torch_xla  # noqa: F401

grads = [np.array([-1.5, 0.5]), np.array([-0.25, 2.0])]
total = np.sqrt(sum((g**2).sum() for g in grads))  # the documented total 2-norm
max_norm = 10.0  # above the norm: the documented factor min(1, max_norm / (total + 1e-6)) is 1
expected = [g * min(1.0, max_norm / (total + 1e-6)) for g in grads]


def clipped(device):
    params = [torch.zeros(2, device=device, requires_grad=True) for _ in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float32, device=device)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm)
    return norm.item(), [p.grad.cpu().tolist() for p in params]


print("clip_grad_norm_ is torch's own:", torch.nn.utils.clip_grad_norm_.__module__)
print("expected (numpy):", total, [e.tolist() for e in expected])
print("cpu:             ", *clipped("cpu"))
norm, got = clipped("xla")
print("xla:             ", norm, got)
departs = not all(np.allclose(g, e, rtol=1e-6) for g, e in zip(got, expected))
print("DEPARTURE: xla's clipped gradients are not the documented ones" if departs
      else "xla agrees")
sys.exit(1 if departs else 0)
