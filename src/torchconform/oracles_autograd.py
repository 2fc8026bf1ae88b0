"""Independent oracles for the autograd breadth suites (hooks, custom Functions, checkpoint)
and for torch.nn.utils' gradient clipping and parameter vectors, in numpy float64.

Nothing here calls torch. Gradients are closed forms derived by hand; the clipping functions
implement the formulas on the torch.nn.utils documentation pages:

    total_norm = || (||g_1||_p, ..., ||g_n||_p) ||_p      (= ||concat(g_1, ..., g_n)||_p)
    g_i <- g_i * min(max_norm / (total_norm + 1e-6), 1)   (clip_grads_with_norm_'s formula)
    g_i <- clamp(g_i, -clip_value, clip_value)           (clip_grad_value_)
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

Array = np.ndarray

#: The constant the documented scaling formula adds to the total norm.
CLIP_EPS = 1e-6


def _f64(value) -> Array:
    return np.asarray(value, dtype=np.float64)


# -- closed-form gradients -------------------------------------------------------------------

def cube(x, v) -> Tuple[Array, Array]:
    """y = x**3 elementwise, backpropagated with v = dL/dy: returns (y, 3 x**2 v)."""
    x, v = _f64(x), _f64(v)
    return x**3, 3 * x**2 * v


def scaled_product(x, w, v) -> Tuple[Array, Array, Array]:
    """y = x * w elementwise (same shapes), backpropagated with v: (y, dL/dx, dL/dw) =
    (x w, w v, x v)."""
    x, w, v = _f64(x), _f64(w), _f64(v)
    return x * w, w * v, x * v


def tanh_square_loss(x, W) -> Tuple[float, Array, Array]:
    """L = sum(tanh(x @ W)**2) for x (n, k) and W (k, m). With y = tanh(x @ W) and
    dL/d(x @ W) = 2 y (1 - y**2) =: d, returns (L, dL/dx = d @ W.T, dL/dW = x.T @ d)."""
    x, W = _f64(x), _f64(W)
    y = np.tanh(x @ W)
    d = 2 * y * (1 - y**2)
    return float(np.sum(y**2)), d @ W.T, x.T @ d


# -- torch.nn.utils.clip_grad_norm_ / clip_grad_value_ ----------------------------------------

def total_norm(grads: Sequence, norm_type: float = 2.0) -> float:
    """The p-norm of all gradients viewed as one concatenated vector (inf: the largest |g|)."""
    flat = np.concatenate([_f64(g).ravel() for g in grads]) if len(grads) else np.zeros(0)
    if flat.size == 0:
        return 0.0
    p = float(norm_type)
    if np.isinf(p):
        return float(np.max(np.abs(flat)))
    return float(np.sum(np.abs(flat) ** p) ** (1.0 / p))


def clip_grad_norm(grads: Sequence, max_norm: float,
                   norm_type: float = 2.0) -> Tuple[float, List[Array]]:
    """(total norm, the gradients after clip_grad_norm_): every gradient multiplied by
    min(max_norm / (total + 1e-6), 1), so they change only when the total exceeds max_norm."""
    total = total_norm(grads, norm_type)
    coef = min(max_norm / (total + CLIP_EPS), 1.0)
    return total, [_f64(g) * coef for g in grads]


def clip_grad_value(grads: Sequence, clip_value: float) -> List[Array]:
    """Every gradient element clamped to [-clip_value, clip_value]."""
    return [np.clip(_f64(g), -clip_value, clip_value) for g in grads]


# -- torch.nn.utils.parameters_to_vector / vector_to_parameters --------------------------------

def flatten(arrays: Sequence) -> Array:
    """The arrays flattened (row-major) and concatenated in the given order."""
    return np.concatenate([_f64(a).ravel() for a in arrays])


def unflatten(vector, shapes: Sequence[Tuple[int, ...]]) -> List[Array]:
    """Consecutive slices of `vector`, reshaped to `shapes` in order (flatten's inverse)."""
    vector, out, start = _f64(vector), [], 0
    for shape in shapes:
        n = int(np.prod(shape, dtype=np.int64))
        out.append(vector[start:start + n].reshape(shape))
        start += n
    return out
