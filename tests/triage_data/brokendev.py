"""A deliberately broken device, simulated on the CPU (a self-test fixture, not a mutant).

The device under test is the CPU addressed as `cpu:0` (`--device cpu:0`): the harness treats
it as a device other than its CPU reference, and the ops below go wrong only for work done on
its behalf (the nearest calling frame with a `device` local says `cpu:0`), only while
BROKEN_DEVICE=1. Loaded as a pytest plugin (-p brokendev) or by sitecustomize.py (reproducers).

Faults:
  pow      x ** 2 is 0.1% too large                          (a silent wrong result)
  cumsum   raises RuntimeError naming the shape and an address (an unsupported op)
  exp      wrong by 1% after zero_() ran once in the process   (order dependence; the
           sample suite zeroes in a Hypothesis test, so its replay needs the drawn examples)
"""

import os
import sys

import torch

BROKEN = "cpu:0"
_state = {"poisoned": False}


def _on_broken_device() -> bool:
    if os.environ.get("BROKEN_DEVICE") != "1":
        return False
    frame = sys._getframe(2)
    while frame is not None:
        device = frame.f_locals.get("device")
        if device is not None and not callable(device):
            return str(device) == BROKEN
        frame = frame.f_back
    return False


_pow, _cumsum, _exp, _zero = (torch.Tensor.__pow__, torch.Tensor.cumsum, torch.Tensor.exp,
                              torch.Tensor.zero_)


def _bad_pow(self, exponent):
    out = _pow(self, exponent)
    return out * 1.001 if _on_broken_device() else out


def _bad_cumsum(self, *args, **kwargs):
    if _on_broken_device():
        raise RuntimeError(f"cumsum: no kernel for shape {tuple(self.shape)} "
                           f"at 0x{id(self):x}")
    return _cumsum(self, *args, **kwargs)


def _bad_exp(self):
    out = _exp(self)
    return out * 1.01 if _state["poisoned"] and _on_broken_device() else out


def _bad_zero(self):
    if _on_broken_device():
        _state["poisoned"] = True
    return _zero(self)


torch.Tensor.__pow__ = _bad_pow
torch.Tensor.cumsum = _bad_cumsum
torch.Tensor.exp = _bad_exp
torch.Tensor.zero_ = _bad_zero
