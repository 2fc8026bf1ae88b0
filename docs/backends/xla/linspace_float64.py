"""torch_xla 2.9.0: torch.linspace(..., dtype=torch.float64, device='xla') returns values
rounded to float32 (e.g. -1.2000000476837158 for -1.2), and an in-place update of such a
tensor is computed at float32 precision too, so torch.autograd.gradcheck's finite
differences on it are wrong by ~5% (numerical 0.9537 = 1e6 / 2**20 where the derivative is 1).

Run: PJRT_DEVICE=CPU python linspace_float64.py   (exit 1: the departure shows)
"""
import sys

import numpy as np
import torch
import torch_xla  # noqa: F401
from torch.autograd.gradcheck import GradcheckError

expected = np.linspace(-2, 2, 6)  # float64
cpu = torch.linspace(-2, 2, 6, dtype=torch.float64)
xla = torch.linspace(-2, 2, 6, dtype=torch.float64, device="xla")
print("expected (numpy float64):", expected.tolist())
print("cpu:                     ", cpu.tolist())
print("xla:                     ", xla.cpu().tolist(), xla.dtype)
x = xla.view(2, 3).requires_grad_()
try:
    torch.autograd.gradcheck(lambda t: (3 * (t + 3) ** 2).mean(), (x,))
    print("gradcheck on the xla linspace: passes")
except GradcheckError as exc:
    numerical = str(exc).split("numerical:")[1].split("analytical")[0]
    print("gradcheck on the xla linspace: fails; numerical Jacobian",
          " ".join(numerical.split())[:120])
departs = not np.allclose(xla.cpu().numpy(), expected, rtol=1e-12, atol=1e-12)
print("DEPARTURE: xla float64 linspace is not float64" if departs else "xla agrees")
sys.exit(1 if departs else 0)
