"""torch_xla 2.9.0's clip_grad_norm_ (it replaces torch's when imported) computes the
infinity norm with XLA's max, which skips NaN: a gradient holding NaN gives a finite norm, so
error_if_nonfinite=True does not raise the documented RuntimeError and the NaN goes on
into the step. torch's max propagates NaN (documented for torch.max / torch.amax).

Run: PJRT_DEVICE=CPU python clip_grad_inf_norm_drops_nan.py   (exit 1: it shows)
"""
import math
import sys

import torch
import torch_xla  # noqa: F401


def outcome(device):
    params = [torch.zeros(2, device=device, requires_grad=True),
              torch.zeros(1, device=device, requires_grad=True)]
    params[0].grad = torch.tensor([1.0, math.nan], device=device)
    params[1].grad = torch.tensor([2.0], device=device)
    try:
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type=math.inf,
                                              error_if_nonfinite=True)
    except RuntimeError as exc:
        return f"raises RuntimeError: {str(exc)[:60]}..."
    return f"returns {norm.item()} (no error)"


print("expected: raises RuntimeError (the inf-norm of a gradient holding NaN is NaN)")
print("cpu:", outcome("cpu"))
xla = outcome("xla")
print("xla:", xla)
print("torch.max of [1, nan] on xla:", torch.tensor([1.0, math.nan], device="xla").max().item())
departs = not xla.startswith("raises")
print("DEPARTURE: no error for a non-finite norm on xla" if departs else "xla agrees")
sys.exit(1 if departs else 0)
