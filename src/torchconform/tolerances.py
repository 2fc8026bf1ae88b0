"""Tolerances by dtype and a comparison against float64 oracles.

The suite compares torch results with closed forms computed in numpy float64. The tolerances
below are a few ulps of the dtype times a small factor for reductions: tight enough that a
0.1% error in a float32 gradient fails. TF32 is switched off for every conformance test (see
isolation.start_state), so CUDA float32 matmuls are held to the same bound as the CPU.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch

from . import differential

# (rtol, atol); float32 eps is 1.19e-7, float64 eps 2.2e-16.
_TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.bfloat16: (1.6e-2, 1e-3),
    torch.float16: (2e-3, 1e-4),
}


def tolerance(dtype: torch.dtype) -> Tuple[float, float]:
    """(rtol, atol) for results computed in `dtype`."""
    try:
        return _TOLERANCES[dtype]
    except KeyError:
        raise ValueError(f"no tolerance defined for {dtype}") from None


def to_numpy(value: Any) -> np.ndarray:
    """A float64 numpy copy of a tensor (any device), a number or an array."""
    if isinstance(value, torch.Tensor):
        # .to() returns the tensor itself when it already is a CPU float64 tensor: copy, so the
        # result does not change when the tensor is later modified in place.
        return value.detach().to("cpu", torch.float64).numpy().copy()
    return np.array(value, dtype=np.float64)


def sum_atol(dtype: torch.dtype, magnitude: Any) -> np.ndarray:
    """An elementwise atol for results that are sums of products (matmuls, reductions).

    Rounding error of a floating-point sum is bounded relative to the sum of the terms'
    absolute values, not to the result: where terms cancel, the result can be far smaller
    than its error bound. `magnitude` is that sum of |terms| for each element, computed by
    the oracle (e.g. abs(a) @ abs(b) for a @ b); the atol is the dtype's rtol times it plus
    the dtype's atol. A fault that scales the result (a 0.1% wrong gradient) still fails
    wherever the result is not much smaller than its terms."""
    rtol, atol = tolerance(dtype)
    return atol + rtol * to_numpy(magnitude)


def assert_close(actual: Any, expected: Any, *, dtype: Optional[torch.dtype] = None,
                 rtol: Optional[float] = None, atol: Any = None,
                 what: str = "value") -> None:
    """Assert `actual` (a tensor) equals the float64 oracle `expected` within the tolerance
    of `dtype` (default: actual's dtype), with a message that shows the worst element.
    `atol` may be an array broadcastable to the values (see sum_atol)."""
    if dtype is None:
        dtype = actual.dtype if isinstance(actual, torch.Tensor) else torch.float64
    default_rtol, default_atol = tolerance(dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    got, want = to_numpy(actual), to_numpy(expected)
    if got.shape != want.shape:
        differential.observe(what, dtype, got, want, atol, False)
        raise AssertionError(f"{what}: shape {got.shape} != expected {want.shape}")
    error = np.abs(got - want)
    bound = np.broadcast_to(atol + rtol * np.abs(want), error.shape)
    ok = bool(np.all(error <= bound) and np.all(np.isfinite(got) == np.isfinite(want)))
    differential.observe(what, dtype, got, want, bound, ok)  # the differential run's record
    if not ok:
        worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.ndim else ()
        raise AssertionError(
            f"{what} differs from the float64 oracle ({dtype}, rtol={rtol:g}, "
            f"atol={np.max(atol):g}): "
            f"at index {tuple(int(i) for i in worst)} got {got[worst]!r}, expected "
            f"{want[worst]!r}\n got: {np.array2string(got, precision=8)}\n"
            f" expected: {np.array2string(want, precision=8)}")
