"""Mutants of autograd: wrong gradients, broken accumulation, broken backward rules and grad
modes. Gradient faults are injected by wrapping the operator's Python entry point so that its
output passes through `_ScaleGrad`, an identity in forward whose backward scales the incoming
gradient: forward values stay right, only the derivative is off (by 0.1% where the held-out
faults say "a gradient wrong by 0.1%")."""

from __future__ import annotations

import functools

import torch
from torch import nn

from . import around, mutant, option, replace, via, wrap

T = torch.Tensor
F = nn.functional
AG = torch.autograd
OFF = 1.001  # a gradient wrong by 0.1%


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def _scaled(out, factor=OFF):
    if isinstance(out, torch.Tensor) and out.requires_grad:
        return _ScaleGrad.apply(out, factor)
    return out


def grad_off(name, breaks, owners, attrs, factor=OFF, when=lambda *a, **k: True):
    """A mutant whose owner.attr results (for each of the owners, each of the attrs) carry a
    gradient scaled by factor, in the calls for which when(*args, **kwargs) holds."""
    def make(orig):
        return lambda *a, **k: _scaled(orig(*a, **k), factor) if when(*a, **k) else orig(*a, **k)

    @mutant(breaks, name=name)
    def apply(mp):
        for owner in owners if isinstance(owners, list) else [owners]:
            for attr in (attrs,) if isinstance(attrs, str) else attrs:
                wrap(mp, owner, attr, make)


def _graph_leaves(roots):
    """The leaf tensors (AccumulateGrad nodes) reachable from the roots' grad_fns."""
    seen, stack, leaves = set(), [t.grad_fn for t in roots if t.grad_fn is not None], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        stack.extend(fn for fn, _ in node.next_functions)
    return leaves


def _as_list(tensors):
    return [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)


def _ones_like_each(tensors):
    return [torch.ones_like(t) for t in _as_list(tensors)]


# -- chain rule ----------------------------------------------------------------------------

SQUARE, EXTERNAL = "autograd.chain_rule.square_scaled", "autograd.chain_rule.external_gradient"
MEAN, MSE = "autograd.chain_rule.mean_scaled_square", "autograd.chain_rule.linear_mse"
HAND = "autograd.chain_rule.hand_written_backward"
grad_off("pow_gradient_off", SQUARE, T, "__pow__")
grad_off("scalar_times_tensor_gradient_off", SQUARE, T, "__rmul__")  # 10 * y
# Only results of 128 elements or more: a fault in a kernel path small tensors never take.
grad_off("large_product_gradient_off", SQUARE, T, ("__mul__", "__rmul__"),
         when=lambda self, other: self.numel() >= 128)
# w * w with the same tensor twice: the gradient counts one operand only (w instead of 2w).
grad_off("self_product_half_gradient", SQUARE, T, "__mul__", 0.5,
         when=lambda self, other: other is self)
grad_off("cube_gradient_off", EXTERNAL, T, "__pow__", when=lambda self, exponent: exponent == 3)
grad_off("mean_gradient_off", MEAN, [T, torch], "mean")
grad_off("tensor_plus_scalar_gradient_off", MEAN, T, "__add__",
         when=lambda self, other: not isinstance(other, torch.Tensor))
grad_off("mse_loss_gradient_off", MSE, F, "mse_loss")
grad_off("exp_gradient_off", HAND, torch, "exp")
grad_off("matmul_gradient_off", HAND, T, "__matmul__")
option("external_gradient_ignored", EXTERNAL, T, "backward",
       gradient=lambda g: None if g is None else torch.ones_like(g))
option("autograd_grad_outputs_ignored", EXTERNAL, AG, "grad",
       grad_outputs=lambda g: g if g is None else _ones_like_each(g))


@around(AG, "backward", breaks=EXTERNAL)
def autograd_backward_list_ignores_grad_tensors(orig, tensors, grad_tensors=None, *a, **k):
    # Only the list form of torch.autograd.backward: Tensor.backward passes a single tensor.
    if isinstance(tensors, (list, tuple)) and grad_tensors is not None:
        grad_tensors = _ones_like_each(tensors)
    return orig(tensors, grad_tensors, *a, **k)


@around(F, "linear", breaks=MSE)
def linear_weight_gradient_off(orig, x, weight, bias=None):
    return orig(x, _scaled(weight), bias)



# -- torch.autograd.grad -------------------------------------------------------------------

RETURNS = "autograd.grad.returns_without_accumulating"
option("create_graph_ignored", "autograd.grad.create_graph", AG, "grad", create_graph=False)
option("materialize_grads_ignored", "autograd.grad.materialize_grads", AG, "grad",
       materialize_grads=False)


@around(AG, "grad", breaks=RETURNS)
def autograd_grad_also_accumulates(orig, outputs, inputs, *args, **kwargs):
    results = orig(outputs, inputs, *args, **kwargs)
    with torch.no_grad():
        for tensor, g in zip(_as_list(inputs), results):
            if g is not None:
                tensor.grad = g.detach().clone() if tensor.grad is None else (
                    tensor.grad + g.detach())
    return results


@around(AG, "grad", breaks=RETURNS)
def autograd_grad_result_off(orig, *a, **k):
    return tuple(None if g is None else g * OFF for g in orig(*a, **k))


@around(T, "backward", breaks="autograd.grad.create_graph")
def backward_create_graph_ignored(orig, self, gradient=None, retain_graph=None,
                                  create_graph=False, inputs=None):
    # Tensor.backward drops create_graph (keeping the graph alive as create_graph would).
    retain = create_graph if retain_graph is None else retain_graph
    return orig(self, gradient, retain, False, inputs)


@around(AG, "grad", breaks="autograd.grad.allow_unused")
def unused_input_gets_zero_gradient(orig, outputs, inputs, *args, allow_unused=None, **kwargs):
    # An unused input neither raises nor gives None: it silently gets zeros.
    results = orig(outputs, inputs, *args, allow_unused=True, **kwargs)
    return tuple(torch.zeros_like(t) if g is None else g
                 for t, g in zip(_as_list(inputs), results))


# -- accumulation --------------------------------------------------------------------------

def _clearing_leaves(orig, tensors, *args, **kwargs):
    for leaf in _graph_leaves(_as_list(tensors)):
        leaf.grad = None
    return orig(tensors, *args, **kwargs)


@mutant(breaks=("autograd.accumulation.repeated_backward",
                "autograd.accumulation.different_losses_add",
                "autograd.accumulation.micro_batches"))
def backward_overwrites_grad(mp):
    """backward() that first clears the grads of the graph's leaves: each pass replaces."""
    for owner in (T, AG):
        wrap(mp, owner, "backward", via(_clearing_leaves))


@around(T, "backward", breaks="autograd.accumulation.repeated_backward")
def backward_accumulates_twice(orig, self, *args, **kwargs):
    leaves = _graph_leaves([self])
    before = [None if t.grad is None else t.grad.clone() for t in leaves]
    orig(self, *args, **kwargs)
    with torch.no_grad():  # add the previous grad once more
        for t, old in zip(leaves, before):
            if old is not None and t.grad is not None:
                t.grad += old


def _grad_property(getter):
    """A mutant body replacing Tensor.grad by a property that reads getter(tensor, grad)."""
    def apply(mp):
        base = torch._C.TensorBase.grad
        mp.setattr(T, "grad", property(lambda self: getter(self, base.__get__(self)),
                                       lambda self, value: base.__set__(self, value),
                                       lambda self: base.__delete__(self)), raising=False)
    return apply


mutant("autograd.accumulation.unused_leaf_stays_none", name="unused_leaf_gets_zero_grad")(
    _grad_property(lambda self, g: torch.zeros_like(self) if (
        g is None and self.is_leaf and self.requires_grad) else g))


# -- backward rules ------------------------------------------------------------------------

FREED, NON_LEAF = "autograd.backward.freed_graph", "autograd.backward.non_leaf_grad"
PROPAGATES = "autograd.requires_grad.propagates"
option("backward_inputs_ignored", "autograd.backward.inputs", AG, "backward", inputs=None)
option("graph_always_retained", FREED, T, "backward", retain_graph=True)
option("retain_graph_ignored", FREED, T, "backward", retain_graph=False)
option("autograd_grad_retains_graph", FREED, AG, "grad", retain_graph=True)
mutant(NON_LEAF, name="non_leaf_grad_populated")(_grad_property(
    lambda self, g: torch.zeros_like(self) if g is None and not self.is_leaf else g))
replace(T, "retain_grad", NON_LEAF, "retain_grad_ignored")(lambda orig: lambda self: None)
replace(T, "__mul__", PROPAGATES, "product_detached_from_graph")(
    lambda orig: lambda self, other: orig(self, other).detach())
replace(T, "detach", "autograd.detach.shares_storage", "detach_copies")(
    lambda orig: lambda self: orig(self).clone())
replace(T, "backward", "autograd.backward.no_grad_fn_raises",
        "backward_without_grad_fn_is_silent")(lambda orig: lambda self, *a, **k: (
            orig(self, *a, **k) if self.requires_grad else None))


@around(T, "backward", breaks="autograd.backward.non_scalar_needs_gradient")
def implicit_gradient_for_non_scalars(orig, self, gradient=None, *a, **k):
    implicit = gradient is None and self.numel() > 1
    return orig(self, torch.ones_like(self) if implicit else gradient, *a, **k)


@around(T, "backward", breaks="autograd.backward.gradient_shape")
def gradient_broadcast_to_output(orig, self, gradient=None, *args, **kwargs):
    # A gradient of another shape is broadcast (or summed and spread) to the output's shape.
    if isinstance(gradient, torch.Tensor) and gradient.shape != self.shape:
        try:
            gradient = gradient.expand_as(self).clone()
        except RuntimeError:
            gradient = gradient.sum().expand_as(self).clone()
    return orig(self, gradient, *args, **kwargs)


@around(T, "retain_grad", breaks=NON_LEAF)
def retained_grad_overwritten(orig, self):
    # Each backward pass clears a retained non-leaf grad first (a tensor hook runs before the
    # gradient is stored), so it holds the last pass instead of the sum.
    orig(self)
    if not self.is_leaf:
        def clear(grad, tensor=self):
            tensor.grad = None
        self.register_hook(clear)


@around(T, "__add__", breaks=PROPAGATES)
def sum_always_requires_grad(orig, self, other):
    out = orig(self, other)
    return out.requires_grad_() if not out.requires_grad else out


@around(T, ("add_", "mul_", "sub_", "div_", "__iadd__", "__imul__", "__isub__"),
        breaks=PROPAGATES)
def in_place_ops_not_recorded(orig, self, other, *args, **kwargs):
    # An in-place op on an untracked tensor runs unrecorded even when its operand requires grad.
    if not self.requires_grad and isinstance(other, torch.Tensor) and other.requires_grad:
        with torch.no_grad():
            return orig(self, other, *args, **kwargs)
    return orig(self, other, *args, **kwargs)


VARIABLE = "autograd.variable.returns_tensor"
replace(AG, "Variable", VARIABLE, "variable_returns_a_parameter")(
    lambda orig: lambda data, requires_grad=False: nn.Parameter(data, requires_grad))
replace(AG, "Variable", VARIABLE, "variable_copies_the_data")(
    lambda orig: lambda data, requires_grad=False: orig(data.clone(), requires_grad=requires_grad))


# -- grad modes ----------------------------------------------------------------------------

CONTEXT, KEEPS_MODE = "autograd.no_grad.context_manager", "autograd.no_grad.keeps_training_mode"
EVAL_KEEPS = "autograd.no_grad.eval_keeps_gradients"
mutant(CONTEXT, name="no_grad_records_anyway")(
    lambda mp: mp.setattr(torch.no_grad, "__enter__", lambda self: None))
mutant(CONTEXT, name="no_grad_not_undone_on_exit")(
    lambda mp: mp.setattr(torch.no_grad, "__exit__", lambda self, *exc: None))
mutant("autograd.no_grad.decorator", name="no_grad_decorator_returns_function_unchanged")(
    lambda mp: mp.setattr(torch.no_grad, "__call__", lambda self, fn: fn))
# Dropout drops with probability 1 - p (so keeps with p, scaled by 1/p): invisible at 0.5.
option("no_grad_dropout_keeps_with_probability_p", KEEPS_MODE, F, "dropout", p=lambda p: 1 - p)
replace(nn.Module, "eval", EVAL_KEEPS, "eval_disables_grad_mode")(
    lambda orig: lambda self: (orig(self), torch.set_grad_enabled(False))[0])


@around(torch, ("zeros", "ones", "tensor", "zeros_like"), breaks=CONTEXT)
def factories_obey_no_grad(orig, *args, **kwargs):
    # requires_grad=True is dropped by the factories while grad mode is off.
    if kwargs.get("requires_grad") and not torch.is_grad_enabled():
        kwargs["requires_grad"] = False
    return orig(*args, **kwargs)


@mutant(breaks="autograd.no_grad.decorator_restores_after_exception")
def no_grad_decorator_leaks_on_exception(mp):
    # The decorated call turns grad mode off and back on, without a finally for exceptions.
    def call(self, fn):
        @functools.wraps(fn)
        def decorated(*args, **kwargs):
            previous = torch.is_grad_enabled()
            torch.set_grad_enabled(False)
            result = fn(*args, **kwargs)
            torch.set_grad_enabled(previous)
            return result
        return decorated
    mp.setattr(torch.no_grad, "__call__", call)


@around(T, "__isub__", breaks="autograd.no_grad.in_place_update")
def in_place_update_refused_under_no_grad(orig, self, other):
    if self.is_leaf and self.requires_grad:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation.")
    return orig(self, other)


@around(nn.Module, "__call__", breaks=KEEPS_MODE)
def no_grad_switches_modules_to_eval(orig, self, *args, **kwargs):
    if not torch.is_grad_enabled():
        self.eval()
    return orig(self, *args, **kwargs)


@around(nn.Module, "train", breaks=EVAL_KEEPS)
def eval_freezes_parameters(orig, self, mode=True):
    if mode is False:
        for p in self.parameters():
            p.requires_grad_(False)
    return orig(self, mode)
