"""The documented algorithms of torch.optim's built-in optimizers, in numpy float64.

Each class implements the pseudo-code box on its optimizer's documentation page
(https://docs.pytorch.org/docs/stable/generated/torch.optim.<Name>.html), line by line, for one
parameter list stepped with explicit gradients, like `oracles.SGD`. The per-parameter state is
a dict named like torch's own `optimizer.state[p]` entries (`step`, `exp_avg`, ...) so that tests
can compare it entry by entry; `step` counts the steps this parameter took. A gradient of None
skips its parameter (no update, no state), as Optimizer.zero_grad's documentation states.

Where a page's box leaves a detail implicit, the docstring of the class says what was taken and
from where. Nothing here calls torch.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

Array = np.ndarray


def _f64(value) -> Array:
    return np.array(value, dtype=np.float64)


class _Documented:
    """Shared driver: per-parameter float64 values and state; subclasses give the update."""

    DEFAULTS: Dict[str, object] = {}

    def __init__(self, params: Sequence, **options):
        unknown = set(options) - set(self.DEFAULTS)
        assert not unknown, f"{type(self).__name__} has no options {sorted(unknown)}"
        self.options = dict(self.DEFAULTS, **options)
        self.params: List[Array] = [_f64(p) for p in params]
        self.state: List[Dict[str, Array]] = [{} for _ in self.params]

    def step(self, grads: Sequence[Optional[Array]]) -> List[Array]:
        """Apply one step with `grads` (one per parameter, None to skip); return the params."""
        assert len(grads) == len(self.params)
        for i, grad in enumerate(grads):
            if grad is None:
                continue
            state = self.state[i]
            if not state:
                self._init_state(state, self.params[i])
            state["step"] = state.get("step", 0.0) + 1.0
            self.params[i] = self._update(self.params[i].copy(), _f64(grad), state,
                                          int(state["step"]), **self.options)
        return self.params

    def _init_state(self, state: Dict[str, Array], theta: Array) -> None:
        raise NotImplementedError

    def _update(self, theta: Array, g: Array, state: Dict[str, Array], t: int,
                **o) -> Array:
        raise NotImplementedError


class Adam(_Documented):
    """torch.optim.Adam's box: g = -grad if maximize; g += lambda theta (weight_decay);
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; m_hat = m / (1 - b1^t);
    with amsgrad v_max = max(v_max, v) (the running maximum of the *uncorrected* v, as the box
    writes it since 2.x) and v_hat = v_max / (1 - b2^t), else v_hat = v / (1 - b2^t);
    theta = theta - lr m_hat / (sqrt(v_hat) + eps): eps outside the square root, after the
    bias correction. With decoupled_weight_decay (Adam's own flag, 2.7+) the decay is
    theta = theta - lr lambda theta before the moments, as in AdamW's box."""

    DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                    maximize=False, decoupled_weight_decay=False)

    def _init_state(self, state, theta):
        state["exp_avg"] = np.zeros_like(theta)
        state["exp_avg_sq"] = np.zeros_like(theta)
        if self.options["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(theta)

    def _update(self, theta, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize,
                decoupled_weight_decay):
        b1, b2 = betas
        if maximize:
            g = -g
        if weight_decay != 0:
            if decoupled_weight_decay:
                theta = theta - lr * weight_decay * theta
            else:
                g = g + weight_decay * theta
        state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
        state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
        m_hat = state["exp_avg"] / (1 - b1**t)
        if amsgrad:
            state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], state["exp_avg_sq"])
            v_hat = state["max_exp_avg_sq"] / (1 - b2**t)
        else:
            v_hat = state["exp_avg_sq"] / (1 - b2**t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


class AdamW(Adam):
    """torch.optim.AdamW's box: Adam's, except that weight decay is decoupled:
    theta_t = theta_{t-1} - lr lambda theta_{t-1} first, and the gradient is left alone.
    weight_decay defaults to 1e-2."""

    DEFAULTS = dict(Adam.DEFAULTS, weight_decay=1e-2)
    DEFAULTS.pop("decoupled_weight_decay")

    def _update(self, theta, g, state, t, **o):
        return Adam._update(self, theta, g, state, t, decoupled_weight_decay=True, **o)


class Adamax(_Documented):
    """torch.optim.Adamax's box: g += lambda theta; m = b1 m + (1 - b1) g;
    u = max(b2 u, |g| + eps) (eps inside the max); theta -= lr m / ((1 - b1^t) u).
    maximize (not in the box; in the argument list) negates the gradient first."""

    DEFAULTS = dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False)

    def _init_state(self, state, theta):
        state["exp_avg"] = np.zeros_like(theta)
        state["exp_inf"] = np.zeros_like(theta)

    def _update(self, theta, g, state, t, lr, betas, eps, weight_decay, maximize):
        b1, b2 = betas
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * theta
        state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
        state["exp_inf"] = np.maximum(b2 * state["exp_inf"], np.abs(g) + eps)
        return theta - lr * state["exp_avg"] / ((1 - b1**t) * state["exp_inf"])


class NAdam(_Documented):
    """torch.optim.NAdam's box: (decoupled decay theta -= lr lambda theta, or g += lambda
    theta); mu_t = b1 (1 - 0.5 * 0.96^(t psi)), mu_{t+1} likewise with t + 1;
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    m_hat = mu_{t+1} m / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g / (1 - prod_{i<=t} mu_i);
    v_hat = v / (1 - b2^t); theta -= lr m_hat / (sqrt(v_hat) + eps).
    The running product prod_{i<=t} mu_i is the state entry `mu_product`."""

    DEFAULTS = dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                    momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)

    def _init_state(self, state, theta):
        state["mu_product"] = _f64(1.0)
        state["exp_avg"] = np.zeros_like(theta)
        state["exp_avg_sq"] = np.zeros_like(theta)

    def _update(self, theta, g, state, t, lr, betas, eps, weight_decay, momentum_decay,
                decoupled_weight_decay, maximize):
        b1, b2 = betas
        if maximize:
            g = -g
        if weight_decay != 0:
            if decoupled_weight_decay:
                theta = theta - lr * weight_decay * theta
            else:
                g = g + weight_decay * theta
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        state["mu_product"] = state["mu_product"] * mu
        product, product_next = state["mu_product"], state["mu_product"] * mu_next
        state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
        state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
        m_hat = mu_next * state["exp_avg"] / (1 - product_next) + (1 - mu) * g / (1 - product)
        v_hat = state["exp_avg_sq"] / (1 - b2**t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


class RAdam(_Documented):
    """torch.optim.RAdam's box: (decoupled decay or g += lambda theta); Adam's moments;
    m_hat = m / (1 - b1^t); rho_inf = 2 / (1 - b2) - 1; rho_t = rho_inf - 2 t b2^t / (1 - b2^t);
    if rho_t > 5: l_t = sqrt(1 - b2^t) / (sqrt(v) + eps), r_t = sqrt((rho_t - 4)(rho_t - 2)
    rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)), theta -= lr m_hat r_t l_t;
    else theta -= lr m_hat (plain momentum SGD with bias correction)."""

    DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                    decoupled_weight_decay=False, maximize=False)

    def _init_state(self, state, theta):
        state["exp_avg"] = np.zeros_like(theta)
        state["exp_avg_sq"] = np.zeros_like(theta)

    def _update(self, theta, g, state, t, lr, betas, eps, weight_decay,
                decoupled_weight_decay, maximize):
        b1, b2 = betas
        if maximize:
            g = -g
        if weight_decay != 0:
            if decoupled_weight_decay:
                theta = theta - lr * weight_decay * theta
            else:
                g = g + weight_decay * theta
        state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
        state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
        m_hat = state["exp_avg"] / (1 - b1**t)
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            l_t = np.sqrt(1 - b2**t) / (np.sqrt(state["exp_avg_sq"]) + eps)
            r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                          / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return theta - lr * m_hat * r_t * l_t
        return theta - lr * m_hat

    @staticmethod
    def rho(t: int, beta2: float) -> float:
        """rho_t of the box: the length of the approximated SMA after t steps."""
        rho_inf = 2 / (1 - beta2) - 1
        return rho_inf - 2 * t * beta2**t / (1 - beta2**t)


class RMSprop(_Documented):
    """torch.optim.RMSprop's box: g += lambda theta; v = alpha v + (1 - alpha) g^2;
    centered: g_ave = alpha g_ave + (1 - alpha) g, v~ = v - g_ave^2; with momentum mu > 0:
    b = mu b + g / (sqrt(v~) + eps), theta -= lr b; else theta -= lr g / (sqrt(v~) + eps).
    maximize (argument list only) negates the gradient first."""

    DEFAULTS = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                    centered=False, maximize=False)

    def _init_state(self, state, theta):
        state["square_avg"] = np.zeros_like(theta)
        if self.options["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(theta)
        if self.options["centered"]:
            state["grad_avg"] = np.zeros_like(theta)

    def _update(self, theta, g, state, t, lr, alpha, eps, weight_decay, momentum, centered,
                maximize):
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * theta
        state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * g * g
        v = state["square_avg"]
        if centered:
            state["grad_avg"] = alpha * state["grad_avg"] + (1 - alpha) * g
            v = v - state["grad_avg"] ** 2
        if momentum > 0:
            state["momentum_buffer"] = momentum * state["momentum_buffer"] + g / (np.sqrt(v) + eps)
            return theta - lr * state["momentum_buffer"]
        return theta - lr * g / (np.sqrt(v) + eps)


class Adagrad(_Documented):
    """torch.optim.Adagrad's box: state_sum_0 = tau (initial_accumulator_value);
    lr~ = lr / (1 + (t - 1) eta) (lr_decay); g += lambda theta; state_sum += g^2;
    theta -= lr~ g / (sqrt(state_sum) + eps). The state entry is `sum`."""

    DEFAULTS = dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                    eps=1e-10, maximize=False)

    def _init_state(self, state, theta):
        state["sum"] = np.full_like(theta, self.options["initial_accumulator_value"])

    def _update(self, theta, g, state, t, lr, lr_decay, weight_decay,
                initial_accumulator_value, eps, maximize):
        if maximize:
            g = -g
        clr = lr / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state["sum"] = state["sum"] + g * g
        return theta - clr * g / (np.sqrt(state["sum"]) + eps)


class Adadelta(_Documented):
    """torch.optim.Adadelta's box: g += lambda theta; v = rho v + (1 - rho) g^2;
    dx = sqrt(u + eps) / sqrt(v + eps) g (eps inside both roots); u = rho u + (1 - rho) dx^2;
    theta -= lr dx. State entries: `square_avg` (v), `acc_delta` (u)."""

    DEFAULTS = dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False)

    def _init_state(self, state, theta):
        state["square_avg"] = np.zeros_like(theta)
        state["acc_delta"] = np.zeros_like(theta)

    def _update(self, theta, g, state, t, lr, rho, eps, weight_decay, maximize):
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * theta
        state["square_avg"] = rho * state["square_avg"] + (1 - rho) * g * g
        delta = np.sqrt(state["acc_delta"] + eps) / np.sqrt(state["square_avg"] + eps) * g
        state["acc_delta"] = rho * state["acc_delta"] + (1 - rho) * delta * delta
        return theta - lr * delta


class ASGD(_Documented):
    """torch.optim.ASGD. Its page has no pseudo-code box, only the arguments: lambd the
    decay term, alpha the power of the eta update, t0 the step at which averaging starts.
    The rule of Polyak and Juditsky as torch's source applies those (torch/optim/asgd.py):
    eta_0 = lr, mu_0 = 1, ax_0 = 0; at step t: g += weight_decay theta;
    theta = theta (1 - lambd eta_{t-1}) - eta_{t-1} g;
    ax = ax + mu_{t-1} (theta - ax) (ax = theta while mu is 1);
    eta_t = lr / (1 + lambd lr t)^alpha; mu_t = 1 / max(1, t - t0)."""

    DEFAULTS = dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False)

    def _init_state(self, state, theta):
        state["eta"] = _f64(self.options["lr"])
        state["mu"] = _f64(1.0)
        state["ax"] = np.zeros_like(theta)

    def _update(self, theta, g, state, t, lr, lambd, alpha, t0, weight_decay, maximize):
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * theta
        eta = state["eta"]
        theta = theta * (1 - lambd * eta) - eta * g
        state["ax"] = state["ax"] + state["mu"] * (theta - state["ax"])
        state["eta"] = _f64(lr / (1 + lambd * lr * t) ** alpha)
        state["mu"] = _f64(1 / max(1.0, t - t0))
        return theta


class Rprop(_Documented):
    """torch.optim.Rprop's box, elementwise: eta_0 = lr, g_prev = 0; if g_prev g > 0:
    eta = min(eta eta_plus, Gamma_max); if g_prev g < 0: eta = max(eta eta_minus, Gamma_min)
    and g = 0; else eta unchanged; theta -= eta sign(g); g_prev = g. State entries: `prev`
    (g_prev, with the zeroed entries) and `step_size` (eta). maximize (argument list only)
    negates the gradient first."""

    DEFAULTS = dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), maximize=False)

    def _init_state(self, state, theta):
        state["prev"] = np.zeros_like(theta)
        state["step_size"] = np.full_like(theta, self.options["lr"])

    def _update(self, theta, g, state, t, lr, etas, step_sizes, maximize):
        eta_minus, eta_plus = etas
        lowest, highest = step_sizes
        g = _f64(-g if maximize else g)  # a fresh array, 0-dim ones included
        product = state["prev"] * g
        eta = state["step_size"].copy()
        up, down = product > 0, product < 0
        eta[up] = np.minimum(eta[up] * eta_plus, highest)
        eta[down] = np.maximum(eta[down] * eta_minus, lowest)
        g[down] = 0
        state["step_size"] = eta
        state["prev"] = g
        return theta - eta * np.sign(g)


class SparseAdam(_Documented):
    """torch.optim.SparseAdam: "a masked version of the Adam algorithm": where the gradient
    has an entry, the moments and the parameter follow Adam's box (without weight decay);
    everywhere else they are left alone. Gradients are given as (values, mask) pairs: mask
    marks the entries the sparse gradient holds. The bias corrections use the step count."""

    DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False)

    def _init_state(self, state, theta):
        state["exp_avg"] = np.zeros_like(theta)
        state["exp_avg_sq"] = np.zeros_like(theta)

    def _update(self, theta, grad, state, t, lr, betas, eps, maximize):
        raise AssertionError("SparseAdam is stepped with step_masked")

    def step_masked(self, grads: Sequence[Tuple[Array, Array]]) -> List[Array]:
        lr, eps, maximize = self.options["lr"], self.options["eps"], self.options["maximize"]
        b1, b2 = self.options["betas"]
        for i, (values, mask) in enumerate(grads):
            state, theta = self.state[i], self.params[i].copy()
            if not state:
                self._init_state(state, theta)
            state["step"] = state.get("step", 0.0) + 1.0
            t = state["step"]
            g = -_f64(values) if maximize else _f64(values)
            m, v = state["exp_avg"].copy(), state["exp_avg_sq"].copy()
            m[mask] = b1 * m[mask] + (1 - b1) * g[mask]
            v[mask] = b2 * v[mask] + (1 - b2) * g[mask] ** 2
            m_hat, v_hat = m[mask] / (1 - b1**t), v[mask] / (1 - b2**t)
            theta[mask] = theta[mask] - lr * m_hat / (np.sqrt(v_hat) + eps)
            state["exp_avg"], state["exp_avg_sq"], self.params[i] = m, v, theta
        return self.params


class LBFGS:
    """L-BFGS without line search (line_search_fn=None) on one flat parameter vector, for the
    check against torch.optim.LBFGS on a quadratic. The page documents the options
    (max_iter iterations per step(), max_eval = 1.25 max_iter evaluations, tolerance_grad on
    max |g|, tolerance_change on the step and the loss change, history_size pairs kept) and
    credits minFunc; the direction is the two-loop recursion of Nocedal & Wright (Algorithm
    7.4) over the kept (s, y) pairs with H0 = (s.y / y.y) I from the newest pair, a pair kept
    only when s.y > 1e-10 (curvature condition). The step length is lr, except minFunc's first
    iteration of a run, which takes min(1, 1/||g||_1) lr along -g (torch/optim/lbfgs.py).

    `fun(x)` returns (loss, gradient). The oracle keeps the history across step() calls, as
    the optimizer's state does."""

    def __init__(self, x, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100):
        self.x = _f64(x).ravel()
        self.lr, self.max_iter = lr, max_iter
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        self.history_size = history_size
        self.s: List[Array] = []
        self.y: List[Array] = []
        self.n_iter = 0
        self.func_evals = 0
        self.d: Optional[Array] = None
        self.t = lr
        self.prev_g: Optional[Array] = None
        self.H_diag = 1.0

    def direction(self, g: Array) -> Array:
        """The two-loop recursion: -H g for the inverse-Hessian estimate of the kept pairs."""
        q = -g
        alphas = []
        for s, y in zip(reversed(self.s), reversed(self.y)):
            a = s @ q / (y @ s)
            alphas.append(a)
            q = q - a * y
        r = q * self.H_diag
        for (s, y), a in zip(zip(self.s, self.y), reversed(alphas)):
            b = y @ r / (y @ s)
            r = r + s * (a - b)
        return r

    def step(self, fun: Callable[[Array], Tuple[float, Array]]) -> float:
        """One optimizer.step(closure): up to max_iter iterations. Returns the first loss."""
        loss, g = fun(self.x)
        first_loss = loss
        evals = 1
        self.func_evals += 1
        if np.max(np.abs(g)) <= self.tolerance_grad:
            return first_loss
        n = 0
        while n < self.max_iter:
            n += 1
            self.n_iter += 1
            if self.n_iter == 1:
                self.d = -g
                self.s, self.y, self.H_diag = [], [], 1.0
            else:
                y, s = g - self.prev_g, self.d * self.t
                ys = y @ s
                if ys > 1e-10:
                    if len(self.s) == self.history_size:
                        self.s.pop(0)
                        self.y.pop(0)
                    self.s.append(s)
                    self.y.append(y)
                    self.H_diag = ys / (y @ y)
                self.d = self.direction(g)
            self.prev_g, prev_loss = g, loss
            self.t = min(1.0, 1.0 / np.sum(np.abs(g))) * self.lr if self.n_iter == 1 else self.lr
            if g @ self.d > -self.tolerance_change:
                break
            self.x = self.x + self.t * self.d
            if n != self.max_iter:
                loss, g = fun(self.x)
                evals += 1
                self.func_evals += 1
            if n == self.max_iter or evals >= self.max_eval:
                break
            if np.max(np.abs(g)) <= self.tolerance_grad:
                break
            if np.max(np.abs(self.d * self.t)) <= self.tolerance_change:
                break
            if abs(loss - prev_loss) < self.tolerance_change:
                break
        return first_loss
