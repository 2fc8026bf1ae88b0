"""torch_xla 2.9.0 compares a float32 tensor with a Python float at float64 precision:
torch.tensor([0.2], device='xla') == 0.2 is False, where PyTorch's type promotion (a Python
scalar takes the tensor's dtype) makes it True on the CPU. torch.optim.Rprop relies on such a
comparison (`grad[sign.eq(etaminus)] = 0`) to skip the update after a sign change, so with an
etaminus float32 cannot represent exactly (0.3, 0.2; not the default 0.5) an XLA Rprop step
moves the parameter where the documented algorithm leaves it alone: a silent wrong result.

Run: PJRT_DEVICE=CPU python scalar_comparison_in_float64.py   (exit 1: it shows)
"""
import sys

import torch
import torch_xla  # noqa: F401


def rprop(device):
    p = torch.full((3,), -1.0, device=device, requires_grad=True)
    opt = torch.optim.Rprop([p], lr=0.5, etas=(0.2, 2.0))
    values = []
    for g in (-0.25, 1.5):  # the sign flips at the second step
        p.grad = torch.full((3,), g, device=device)
        opt.step()
        values.append(p.detach()[0].item())
    return values


print("tensor([0.2, 0.5]) == 0.2   cpu:", (torch.tensor([0.2, 0.5]) == 0.2).tolist(),
      " xla:", (torch.tensor([0.2, 0.5], device="xla") == 0.2).cpu().tolist())
# Documented Rprop: step 1 moves by -lr * sign(g) = +0.5; after the sign change at step 2 the
# gradient is set to 0, so the parameter stays at -0.5.
print("Rprop(lr=0.5, etas=(0.2, 2.0)) expected: [-0.5, -0.5]")
print("  cpu:", rprop("cpu"))
xla = rprop("xla")
print("  xla:", xla)
sys.exit(1 if abs(xla[1] - (-0.5)) > 1e-6 else 0)
