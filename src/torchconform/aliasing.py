"""Whether two tensors share memory, observed through a write rather than through data_ptr().

Documentation says "a reference, not a copy" (state_dict values, detach, assign=True loads,
tied weights after torch.load): what a user relies on is that writing through one tensor shows
in the other. Comparing data_ptr() says the same on the CPU and CUDA, but a backend without
storage pointers (torch_xla: data_ptr() is 0 for every tensor) would make an equality pass
vacuously and an inequality fail. A write probe tests the behavior itself on every device.
"""

from __future__ import annotations

import torch

__all__ = ["shares_memory"]


def shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when writing to `a` changes `b`. Both are left with their values on return."""
    if a.device != b.device:
        return False
    with torch.no_grad():
        saved, seen = a.clone(), b.clone()
        a.copy_(_different(a))
        changed = not _same(b, seen)
        a.copy_(saved)
    return changed


def _different(t: torch.Tensor) -> torch.Tensor:
    """A tensor like `t` that differs from it in every element (NaN and inf included)."""
    if t.dtype == torch.bool:
        return ~t
    return torch.where(t == 1, torch.full_like(t, 2), torch.ones_like(t))


def _same(x: torch.Tensor, y: torch.Tensor) -> bool:
    if x.is_floating_point() or x.is_complex():
        return bool(torch.equal(torch.isnan(x), torch.isnan(y))
                    and torch.equal(torch.nan_to_num(x), torch.nan_to_num(y)))
    return bool(torch.equal(x, y))
