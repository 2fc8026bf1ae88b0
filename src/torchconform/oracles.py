"""Independent oracles for the autograd and optim suites, in numpy float64.

Nothing here calls torch: the gradients are closed forms derived by hand from the functions the
seeds differentiate, and `SGD` is the algorithm printed on the torch.optim.SGD documentation
page, line by line. Tests feed these the same input values they give torch (read back from the
torch tensors as float64) and compare the results with `torchconform.assert_close`.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

Array = np.ndarray


def _f64(value) -> Array:
    return np.asarray(value, dtype=np.float64)


# -- closed-form gradients of the seeds' functions ----------------------------------------------

def square_scaled(w) -> Tuple[Array, Array]:
    """Seed 001: z = 10 * w**2 + 25 elementwise. Returns (z, dz/dw) with dz/dw = 20 w.

    Chain rule as the seed writes it: y = w**2, z = 10 y + 25, dz/dw = 10 * 2w."""
    w = _f64(w)
    return 10 * w**2 + 25, 20 * w


def square_scaled_second(w) -> Array:
    """d2z/dw2 of z = 10 w**2 + 25: the constant 20 (elementwise)."""
    return np.full_like(_f64(w), 20.0)


def cubic_minus_square(a, b, v) -> Tuple[Array, Array, Array]:
    """Seed 004 / the autograd tutorial: Q = 3 a**3 - b**2, backpropagated with the external
    gradient v = dL/dQ. Returns (Q, dL/da, dL/db) = (Q, 9 a**2 v, -2 b v)."""
    a, b, v = _f64(a), _f64(b), _f64(v)
    return 3 * a**3 - b**2, 9 * a**2 * v, -2 * b * v


def cubic_second(a, v) -> Array:
    """d/da of sum(9 a**2 v) (the gradient of Q backpropagated again): 18 a v."""
    return 18 * _f64(a) * _f64(v)


def mean_scaled_square(x) -> Tuple[Array, Array]:
    """Seed 000: o = mean(3 (x + 3)**2) over all n elements. Returns (o, do/dx) with
    do/dx = 6 (x + 3) / n (8/3 = 2.6667 for x = ones(3, 3))."""
    x = _f64(x)
    return np.mean(3 * (x + 3) ** 2), 6 * (x + 3) / x.size


def linear_mse(x, weight, bias, y) -> Tuple[float, Array, Array]:
    """MSE of a linear model as nn.Linear + nn.MSELoss compute it: pred = x @ weight.T + bias,
    L = mean((pred - y)**2) over all elements. Returns (L, dL/dweight, dL/dbias):
    dL/dpred = 2 (pred - y) / N, dL/dweight = dL/dpred.T @ x, dL/dbias = column sums."""
    x, weight, bias, y = _f64(x), _f64(weight), _f64(bias), _f64(y)
    residual = x @ weight.T + bias - y
    dpred = 2 * residual / residual.size
    return float(np.mean(residual**2)), dpred.T @ x, dpred.sum(axis=0)


def mlp_mse(x, w1, b1, w2, b2, y) -> Tuple[float, Array, List[Array]]:
    """A two-layer tanh network as nn.Sequential(nn.Linear, nn.Tanh, nn.Linear) + nn.MSELoss
    compute it: h = tanh(x @ w1.T + b1), pred = h @ w2.T + b2, L = mean((pred - y)**2).
    Returns (L, pred, [dL/dw1, dL/db1, dL/dw2, dL/db2]) by the chain rule:
    dL/dpred = 2 (pred - y) / N, dL/dw2 = dL/dpred.T @ h, dL/dh = dL/dpred @ w2,
    dL/dz = dL/dh * (1 - h**2), dL/dw1 = dL/dz.T @ x; biases take the column sums."""
    x, w1, b1, w2, b2, y = (_f64(v) for v in (x, w1, b1, w2, b2, y))
    h = np.tanh(x @ w1.T + b1)
    pred = h @ w2.T + b2
    residual = pred - y
    dpred = 2 * residual / residual.size
    dz = (dpred @ w2) * (1 - h**2)
    grads = [dz.T @ x, dz.sum(axis=0), dpred.T @ h, dpred.sum(axis=0)]
    return float(np.mean(residual**2)), pred, grads


def logistic_regression(x, W, b, y) -> Tuple[float, Array, Array, Array]:
    """Seed 000's logistic regression with samples in columns: x is (dim, n), W is (1, dim),
    y_hat = sigmoid(W @ x + b), L = mean binary cross-entropy. Returns (L, y_hat, dL/dW,
    dL/db) with dL/dz = (y_hat - y) / n, so dL/dW = (y_hat - y) @ x.T / n and
    dL/db = sum(y_hat - y) / n."""
    x, W, b, y = _f64(x), _f64(W), _f64(b), _f64(y)
    n = x.shape[1]
    y_hat = 1 / (1 + np.exp(-(W @ x + b)))
    loss = -np.mean(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
    return float(loss), y_hat, (y_hat - y) @ x.T / n, np.sum(y_hat - y) / n


# -- the documented SGD algorithm ----------------------------------------------------------------

class SGD:
    """torch.optim.SGD's documented algorithm in float64, one parameter list, stepped with
    explicit gradients. From the documentation's pseudo-code, for each parameter at step t:

        g_t = -grad if maximize else grad
        if weight_decay != 0:  g_t = g_t + weight_decay * theta_{t-1}
        if momentum != 0:
            b_t = g_t                                     if t == 1 (first step of this parameter)
            b_t = momentum * b_{t-1} + (1 - dampening) g_t  otherwise
            g_t = g_t + momentum * b_t  if nesterov  else  b_t
        theta_t = theta_{t-1} - lr * g_t

    The note on the same page says the buffer starts as the first gradient, so dampening acts
    from the second step on. A parameter whose gradient is None is skipped (no update, and its
    step counter t does not advance), as Optimizer.zero_grad's documentation states.
    """

    def __init__(self, params: Sequence, lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False):
        self.params: List[Array] = [_f64(p).copy() for p in params]
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self.buffers: List[Optional[Array]] = [None] * len(self.params)

    def step(self, grads: Sequence[Optional[Array]]) -> List[Array]:
        """Apply one step with `grads` (one per parameter, None to skip); return the params."""
        assert len(grads) == len(self.params)
        for i, grad in enumerate(grads):
            if grad is None:
                continue
            theta = self.params[i]
            g = -_f64(grad) if self.maximize else _f64(grad).copy()
            if self.weight_decay != 0:
                g = g + self.weight_decay * theta
            if self.momentum != 0:
                if self.buffers[i] is None:
                    self.buffers[i] = g.copy()
                else:
                    self.buffers[i] = self.momentum * self.buffers[i] + (1 - self.dampening) * g
                g = g + self.momentum * self.buffers[i] if self.nesterov else self.buffers[i]
            self.params[i] = theta - self.lr * g
        return self.params


# -- the seeds' training loop ---------------------------------------------------------------------

def linear_regression_sgd(x, y, weight: float, bias: float, lr: float,
                          epochs: int) -> Tuple[Array, Array]:
    """Seeds 000-002's loop for a 1-in 1-out linear model: each epoch computes
    L = mean((w x + b - y)**2), its gradient (2 mean(r x), 2 mean(r)) with r = w x + b - y, and
    takes one plain SGD step. Returns (losses before each step, (w, b) after each step)."""
    x, y = _f64(x).ravel(), _f64(y).ravel()
    w, b = float(weight), float(bias)
    losses, params = [], []
    for _ in range(epochs):
        r = w * x + b - y
        losses.append(np.mean(r**2))
        w, b = w - lr * 2 * np.mean(r * x), b - lr * 2 * np.mean(r)
        params.append((w, b))
    return np.array(losses), np.array(params)
