"""Purpose-built classes for the contract kit's self-tests (tests/test_contracts.py).

`Momentum` and `Net` keep every contract; each other class breaks exactly one, named by its
`breaks` attribute (the contract's catalog id), the way real libraries do: a wrapper that
swallows attribute writes, a load that forgets options, a plain tensor attribute, ...
These are the contract area's mutants: tests/test_mutants.py counts them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

# -- optimizers ------------------------------------------------------------------------------


class Momentum(torch.optim.Optimizer):
    """Heavy-ball momentum, torch.optim.SGD's rule (no dampening, no Nesterov):
    buf = g on the first step, then buf = m * buf + g; p -= lr * buf."""

    breaks = None

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def _group_lr(self, index, group):
        return group["lr"]

    def _new_buffer(self, grad):
        return grad.detach().clone()

    def _idle(self, p, group):
        """A parameter without a gradient: nothing to do."""

    def _moves(self, p):
        return True

    def step(self, closure=None):
        # Subclasses change _check/_update, not step: a step override that calls
        # super().step() runs the step hooks twice (the base class's step is hooked too).
        self._check(closure)
        return self._update(closure)

    def _check(self, closure):
        """Refuse to step (a documented precondition)."""

    def _init_state(self, state):
        """Extra per-parameter state, created with the momentum buffer."""

    @torch.no_grad()
    def _update(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._step_count_ = getattr(self, "_step_count_", 0) + 1
        for index, group in enumerate(self.param_groups):
            for p in group["params"]:
                if p.grad is None:
                    self._idle(p, group)
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = self._new_buffer(p.grad)
                    self._init_state(state)
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(p.grad)
                if not self._moves(p):
                    continue
                p.add_(state["momentum_buffer"], alpha=-self._group_lr(index, group))
        return self._returned(loss)

    def _returned(self, loss):
        return loss


class MatricesOnly(Momentum):
    """Keeps momentum for every parameter but silently updates matrices only (vectors such as
    biases never move)."""

    breaks = "contract.optimizer.step_plain"

    def _moves(self, p):
        return p.dim() > 1


class FirstGroupOptions(Momentum):
    """Steps every group with the first group's options."""

    breaks = "contract.optimizer.param_groups"

    def _group_lr(self, index, group):
        return self.param_groups[0]["lr"]


class AcceptsAnyGroup(Momentum):
    """add_param_group that swallows the base class's checks."""

    breaks = "contract.optimizer.add_param_group"

    def add_param_group(self, param_group):
        try:
            super().add_param_group(param_group)
        except (ValueError, TypeError):
            self.param_groups.append(dict(param_group, params=list(param_group["params"])))


class LoadForgetsOptions(Momentum):
    """load_state_dict that resets the group options to the constructor's."""

    breaks = "contract.optimizer.state_dict_round_trip"

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group.update(self.defaults)


class Tag:
    """A Python object that torch.load(weights_only=True) refuses to build."""

    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        return isinstance(other, Tag) and other.name == self.name


class ObjectInState(Momentum):
    """Keeps a plain Python object in every parameter's state."""

    breaks = "contract.optimizer.state_dict_weights_only"

    def _init_state(self, state):
        state["tag"] = Tag("momentum")


class ZeroGradZeros(Momentum):
    """zero_grad that keeps the old (pre-2.0) default set_to_none=False."""

    breaks = "contract.optimizer.zero_grad_default"

    def zero_grad(self, set_to_none=False):
        super().zero_grad(set_to_none=set_to_none)


class ClosureLossLost(Momentum):
    """step(closure) that returns nothing."""

    breaks = "contract.optimizer.step_closure"

    def _returned(self, loss):
        return None


class DecaysIdle(Momentum):
    """Applies weight decay even to parameters without a gradient."""

    breaks = "contract.optimizer.params_without_grad"

    def _idle(self, p, group):
        p.mul_(1 - 0.01 * group["lr"])


class FrozenLr(Momentum):
    """Reads each group's lr once, at construction."""

    breaks = "contract.optimizer.lr_edit"

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, lr, momentum)
        self._lrs = [g["lr"] for g in self.param_groups]

    def _group_lr(self, index, group):
        return self._lrs[index] if index < len(self._lrs) else group["lr"]

    def __setstate__(self, state):  # unpickling; load_state_dict calls it too
        super().__setstate__(state)
        if not hasattr(self, "_lrs"):
            self._lrs = [g["lr"] for g in self.param_groups]


class SwallowsAttributes(Momentum):
    """A wrapper-like optimizer that ignores attribute writes after construction, so an
    lr scheduler's wrapper around optimizer.step never lands."""

    breaks = "contract.optimizer.lr_scheduler"

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, lr, momentum)
        self._sealed = True

    def __setattr__(self, name, value):
        if getattr(self, "_sealed", False) and name == "step":
            return
        super().__setattr__(name, value)


class InstanceStep(Momentum):
    """Assigns its step to the instance, bypassing the hooks the base class installs."""

    breaks = "contract.optimizer.step_hooks"

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, lr, momentum)
        self.step = self._update

    def __setstate__(self, state):
        super().__setstate__(state)
        self.step = self._update


class Float32State(Momentum):
    """Keeps its momentum in float32 whatever the parameter's dtype."""

    breaks = "contract.optimizer.state_device_dtype"

    def _new_buffer(self, grad):
        return grad.detach().to(torch.float32).clone()

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = self._new_buffer(p.grad)
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(
                            p.grad.to(torch.float32))
                    p.add_(state["momentum_buffer"].to(p.dtype), alpha=-group["lr"])
        return loss


class Unpicklable(Momentum):
    """Pickles a local function along with its state, which pickle cannot store."""

    breaks = "contract.optimizer.copy"

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, lr, momentum)
        self.clip = lambda g: g

    def __getstate__(self):
        return dict(super().__getstate__(), clip=self.clip)


class DampenedFirstStep(Momentum):
    """Starts the momentum at (1 - momentum) * g: not torch.optim.SGD's rule."""

    breaks = "contract.optimizer.matches_reference"

    def _new_buffer(self, grad):
        return grad.detach().clone() * 0.1


class NeedsClosure(Momentum):
    """Documents that step() needs a closure (like line-search methods)."""

    breaks = None

    def _check(self, closure):
        if closure is None:
            raise RuntimeError("NeedsClosure requires a closure")


class TrainEvalSwitch(Momentum):
    """Must be switched to training with optimizer.train() before stepping (schedule-free
    optimizers document this)."""

    breaks = None

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, lr, momentum)
        for group in self.param_groups:
            group["train_mode"] = False

    def train(self):
        for group in self.param_groups:
            group["train_mode"] = True

    def eval(self):
        for group in self.param_groups:
            group["train_mode"] = False

    def _check(self, closure):
        if not all(g.get("train_mode", True) for g in self.param_groups):
            raise RuntimeError("call optimizer.train() before step()")


BROKEN_OPTIMIZERS = [MatricesOnly, FirstGroupOptions, AcceptsAnyGroup, LoadForgetsOptions,
                     ObjectInState, ZeroGradZeros, ClosureLossLost, DecaysIdle, FrozenLr,
                     SwallowsAttributes, InstanceStep, Float32State, Unpicklable,
                     DampenedFirstStep]

# -- modules ---------------------------------------------------------------------------------

IN, HIDDEN, OUT = 4, 6, 3


class Net(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear: parameters, buffers (running stats and an
    integer counter) and a train/eval difference."""

    breaks = None

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(IN, HIDDEN)
        self.bn = nn.BatchNorm1d(HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, OUT)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


class RandomAttribute(Net):
    """Draws a scale at construction and keeps it as a plain attribute (not a buffer)."""

    breaks = "contract.module.state_dict_load"

    def __init__(self):
        super().__init__()
        self.scale = torch.rand(OUT) + 0.5

    def forward(self, x):
        return super().forward(x) * self.scale


class VersionKey(Net):
    """Adds a 'version' entry to its state_dict (and drops it again on load)."""

    breaks = "contract.module.state_dict_keys"

    def __init__(self):
        super().__init__()
        self._register_state_dict_hook(VersionKey._add_version)
        self._register_load_state_dict_pre_hook(VersionKey._drop_version)

    @staticmethod
    def _add_version(module, state_dict, prefix, local_metadata):
        state_dict[prefix + "version"] = torch.tensor(2)

    @staticmethod
    def _drop_version(state_dict, prefix, *args):
        state_dict.pop(prefix + "version", None)


class ShallowCopy(Net):
    """__deepcopy__ that returns a shallow copy, sharing every tensor."""

    breaks = "contract.module.deepcopy"

    def __deepcopy__(self, memo):
        return copy.copy(self)


class PlainTensorWeight(Net):
    """Keeps a projection as a plain tensor attribute, which .to(dtype) does not convert."""

    breaks = "contract.module.to_dtype"

    def __init__(self):
        super().__init__()
        self.proj = torch.eye(OUT) * 0.5

    def forward(self, x):
        return super().forward(x) @ self.proj


class ToReturnsCopy(Net):
    """.to(device) returns a moved copy instead of the module itself (like Tensor.to)."""

    breaks = "contract.module.to_device"

    def to(self, *args, **kwargs):
        dtype_only = all(isinstance(a, torch.dtype) for a in args) and "device" not in kwargs
        return super().to(*args, **kwargs) if dtype_only else copy.deepcopy(self)._to(
            *args, **kwargs)

    def _to(self, *args, **kwargs):
        return nn.Module.to(self, *args, **kwargs)


class AlwaysEvalNorm(nn.BatchNorm1d):
    def train(self, mode=True):
        return super().train(False)


class FrozenNorm(Net):
    """A normalization layer that stays in eval mode whatever train() says."""

    breaks = "contract.module.train_eval"

    def __init__(self):
        super().__init__()
        self.bn = AlwaysEvalNorm(HIDDEN)


class CallsForward(Net):
    """__call__ that goes straight to forward, skipping the hooks."""

    breaks = "contract.module.forward_hooks"

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


class UnusedLayer(Net):
    """A layer that forward never uses."""

    breaks = "contract.module.gradients"

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(OUT, OUT)


class ObjectExtraState(Net):
    """Extra state that is a plain Python object."""

    breaks = "contract.module.state_dict_weights_only"

    def __init__(self):
        super().__init__()
        self.tag = Tag("net")

    def get_extra_state(self):
        return self.tag

    def set_extra_state(self, state):
        self.tag = state


BROKEN_MODULES = [RandomAttribute, VersionKey, ShallowCopy, PlainTensorWeight, ToReturnsCopy,
                  FrozenNorm, CallsForward, UnusedLayer, ObjectExtraState]
