"""The learning rates torch.optim.lr_scheduler documents, computed independently in float64.

Each function returns the learning rate of one parameter group after `t` calls of
`scheduler.step()` (t = 0: right after construction), from the formula on the scheduler's
documentation page (https://docs.pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate),
written as a closed form where the page gives one. Stateful schedules (ReduceLROnPlateau)
are small classes that replay the documented rule.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, List, Optional, Sequence


def step_lr(base: float, t: int, step_size: int, gamma: float) -> float:
    """StepLR: decays by gamma every step_size epochs."""
    return base * gamma ** (t // step_size)


def multi_step_lr(base: float, t: int, milestones: Sequence[int], gamma: float) -> float:
    """MultiStepLR: decays by gamma once the epoch reaches each milestone."""
    return base * gamma ** bisect.bisect_right(sorted(milestones), t)


def exponential_lr(base: float, t: int, gamma: float) -> float:
    """ExponentialLR: decays by gamma every epoch."""
    return base * gamma ** t


def constant_lr(base: float, t: int, factor: float, total_iters: int) -> float:
    """ConstantLR: base * factor until total_iters epochs, then base."""
    return base * factor if t < total_iters else base


def linear_lr(base: float, t: int, start_factor: float, end_factor: float,
              total_iters: int) -> float:
    """LinearLR: the factor goes linearly from start_factor to end_factor over total_iters."""
    progress = min(t, total_iters) / total_iters
    return base * (start_factor + (end_factor - start_factor) * progress)


def polynomial_lr(base: float, t: int, total_iters: int, power: float) -> float:
    """PolynomialLR: base * (1 - t / total_iters) ** power, constant (zero) afterwards."""
    return base * (1.0 - min(t, total_iters) / total_iters) ** power


def lambda_lr(base: float, t: int, fn: Callable[[int], float]) -> float:
    """LambdaLR: base * fn(epoch)."""
    return base * fn(t)


def multiplicative_lr(base: float, t: int, fn: Callable[[int], float]) -> float:
    """MultiplicativeLR: each epoch after the first multiplies the lr by fn(epoch)."""
    lr = base
    for epoch in range(1, t + 1):
        lr *= fn(epoch)
    return lr


def cosine_annealing_lr(base: float, t: int, t_max: int, eta_min: float) -> float:
    """CosineAnnealingLR's closed form: eta_min + (base - eta_min)(1 + cos(pi t / T_max)) / 2."""
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2


def cosine_annealing_warm_restarts(base: float, t: int, t_0: int, t_mult: int,
                                   eta_min: float) -> float:
    """SGDR: cosine annealing over T_i epochs, restarting at base; T_i = T_0 * T_mult ** i."""
    t_cur, t_i = t, t_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= t_mult
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cyclic_lr(base: float, max_lr: float, t: int, step_size_up: int,
              step_size_down: Optional[int] = None, mode: str = "triangular",
              gamma: float = 1.0) -> float:
    """CyclicLR: a cycle of step_size_up iterations from base_lr to max_lr and step_size_down
    back; the amplitude is scaled per cycle (triangular2: halved each cycle) or per
    iteration (exp_range: gamma ** iteration)."""
    down = step_size_up if step_size_down is None else step_size_down
    period = step_size_up + down
    cycle = t // period  # 0-based cycle number
    position = t - cycle * period
    if position <= step_size_up:
        height = position / step_size_up
    else:
        height = 1 - (position - step_size_up) / down
    scale = {"triangular": 1.0, "triangular2": 0.5 ** cycle, "exp_range": gamma ** t}[mode]
    return base + (max_lr - base) * height * scale


def one_cycle(max_lr: float, t: int, total_steps: int, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4,
              anneal: str = "cos", three_phase: bool = False) -> float:
    """OneCycleLR: from max_lr / div_factor up to max_lr over the first pct_start of the cycle,
    then down to initial_lr / final_div_factor at the last step (three_phase: back to initial
    first, symmetrically, then down to the minimum)."""
    initial = max_lr / div_factor
    minimum = initial / final_div_factor
    rise_end = pct_start * total_steps - 1
    if three_phase:
        phases = [(rise_end, initial, max_lr), (2 * pct_start * total_steps - 2, max_lr, initial),
                  (total_steps - 1, initial, minimum)]
    else:
        phases = [(rise_end, initial, max_lr), (total_steps - 1, max_lr, minimum)]
    start = 0.0
    for i, (end, lr_from, lr_to) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            pct = (t - start) / (end - start)
            if anneal == "cos":
                return lr_to + (lr_from - lr_to) * (1 + math.cos(math.pi * pct)) / 2
            return lr_from + (lr_to - lr_from) * pct
        start = end
    raise AssertionError("unreachable")


class Plateau:
    """ReduceLROnPlateau's documented rule, replayed on a sequence of metric values."""

    def __init__(self, lr: float, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8) -> None:
        self.lr, self.mode, self.factor, self.patience = lr, mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0
        self.cooldown_left = 0

    def _improves(self, value: float) -> bool:
        sign = 1 if self.mode == "min" else -1
        if self.threshold_mode == "rel":
            bound = self.best * (1 - sign * self.threshold)
        else:
            bound = self.best - sign * self.threshold
        return value < bound if self.mode == "min" else value > bound

    def step(self, value: float) -> float:
        if self._improves(value):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:  # epochs in cooldown are not counted as bad
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            new = max(self.lr * self.factor, self.min_lr)
            if self.lr - new > self.eps:
                self.lr = new
            self.cooldown_left = self.cooldown
            self.bad_epochs = 0
        return self.lr


def schedule(fn: Callable[[int], float], steps: int) -> List[float]:
    """[fn(0), ..., fn(steps)]: the lr after construction and after each step."""
    return [fn(t) for t in range(steps + 1)]
