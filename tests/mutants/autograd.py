"""Mutants of autograd: wrong gradients, broken accumulation, broken backward rules and grad
modes. Gradient faults are injected by wrapping the operator's Python entry point so that its
output passes through `_ScaleGrad`, an identity in forward whose backward scales the incoming
gradient: forward values stay right, only the derivative is off (by 0.1% where the held-out
faults say "a gradient wrong by 0.1%")."""

from __future__ import annotations

import functools

import torch
from torch import nn

from . import mutant, wrap

T = torch.Tensor
F = nn.functional
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


def _scale_output_grad(mp, owner, attr, factor=OFF, when=lambda *a, **k: True):
    wrap(mp, owner, attr, lambda orig: lambda *a, **k: (
        _scaled(orig(*a, **k), factor) if when(*a, **k) else orig(*a, **k)))


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


# -- chain rule ----------------------------------------------------------------------------

@mutant(breaks="autograd.chain_rule.square_scaled")
def pow_gradient_off(mp):
    _scale_output_grad(mp, T, "__pow__")


@mutant(breaks="autograd.chain_rule.square_scaled")
def scalar_times_tensor_gradient_off(mp):
    _scale_output_grad(mp, T, "__rmul__")  # 10 * y


@mutant(breaks="autograd.chain_rule.square_scaled")
def large_product_gradient_off(mp):
    # Only results of 128 elements or more: a fault in a kernel path small tensors never take.
    for attr in ("__mul__", "__rmul__"):
        _scale_output_grad(mp, T, attr, when=lambda self, other: self.numel() >= 128)


@mutant(breaks="autograd.chain_rule.square_scaled")
def self_product_half_gradient(mp):
    # w * w with the same tensor twice: the gradient counts one operand only (w instead of 2w).
    wrap(mp, T, "__mul__", lambda orig: lambda self, other: (
        _scaled(orig(self, other), 0.5) if other is self else orig(self, other)))


@mutant(breaks="autograd.chain_rule.external_gradient")
def cube_gradient_off(mp):
    _scale_output_grad(mp, T, "__pow__", when=lambda self, exponent: exponent == 3)


@mutant(breaks="autograd.chain_rule.external_gradient")
def external_gradient_ignored(mp):
    wrap(mp, T, "backward", lambda orig: lambda self, gradient=None, *a, **k: orig(
        self, None if gradient is None else torch.ones_like(gradient), *a, **k))


@mutant(breaks="autograd.chain_rule.external_gradient")
def autograd_backward_list_ignores_grad_tensors(mp):
    # Only the list form of torch.autograd.backward: Tensor.backward passes a single tensor.
    def make(orig):
        def backward(tensors, grad_tensors=None, *args, **kwargs):
            if isinstance(tensors, (list, tuple)) and grad_tensors is not None:
                grad_tensors = [torch.ones_like(t) for t in tensors]
            return orig(tensors, grad_tensors, *args, **kwargs)
        return backward
    wrap(mp, torch.autograd, "backward", make)


@mutant(breaks="autograd.chain_rule.external_gradient")
def autograd_grad_outputs_ignored(mp):
    def make(orig):
        def grad(outputs, inputs, grad_outputs=None, *args, **kwargs):
            if grad_outputs is not None:
                grad_outputs = [torch.ones_like(o) for o in _as_list(outputs)]
            return orig(outputs, inputs, grad_outputs, *args, **kwargs)
        return grad
    wrap(mp, torch.autograd, "grad", make)


@mutant(breaks="autograd.chain_rule.mean_scaled_square")
def mean_gradient_off(mp):
    _scale_output_grad(mp, T, "mean")
    _scale_output_grad(mp, torch, "mean")


@mutant(breaks="autograd.chain_rule.mean_scaled_square")
def tensor_plus_scalar_gradient_off(mp):
    _scale_output_grad(mp, T, "__add__", when=lambda self, other: not isinstance(
        other, torch.Tensor))


@mutant(breaks="autograd.chain_rule.linear_mse")
def mse_loss_gradient_off(mp):
    _scale_output_grad(mp, F, "mse_loss")


@mutant(breaks="autograd.chain_rule.linear_mse")
def linear_weight_gradient_off(mp):
    wrap(mp, F, "linear", lambda orig: lambda x, weight, bias=None: orig(
        x, _scaled(weight), bias))


@mutant(breaks="autograd.chain_rule.hand_written_backward")
def exp_gradient_off(mp):
    _scale_output_grad(mp, torch, "exp")


@mutant(breaks="autograd.chain_rule.hand_written_backward")
def matmul_gradient_off(mp):
    _scale_output_grad(mp, T, "__matmul__")


# -- torch.autograd.grad -------------------------------------------------------------------

@mutant(breaks="autograd.grad.returns_without_accumulating")
def autograd_grad_also_accumulates(mp):
    def make(orig):
        def grad(outputs, inputs, *args, **kwargs):
            results = orig(outputs, inputs, *args, **kwargs)
            with torch.no_grad():
                for tensor, g in zip(_as_list(inputs), results):
                    if g is not None:
                        tensor.grad = g.detach().clone() if tensor.grad is None else (
                            tensor.grad + g.detach())
            return results
        return grad
    wrap(mp, torch.autograd, "grad", make)


@mutant(breaks="autograd.grad.returns_without_accumulating")
def autograd_grad_result_off(mp):
    wrap(mp, torch.autograd, "grad", lambda orig: lambda *a, **k: tuple(
        None if g is None else g * OFF for g in orig(*a, **k)))


@mutant(breaks="autograd.grad.create_graph")
def create_graph_ignored(mp):
    def make(orig):
        def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
                 **kwargs):
            return orig(outputs, inputs, grad_outputs, retain_graph, False, **kwargs)
        return grad
    wrap(mp, torch.autograd, "grad", make)


@mutant(breaks="autograd.grad.create_graph")
def backward_create_graph_ignored(mp):
    # Tensor.backward drops create_graph (keeping the graph alive as create_graph would).
    def make(orig):
        def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
            return orig(self, gradient, create_graph if retain_graph is None else retain_graph,
                        False, inputs)
        return backward
    wrap(mp, T, "backward", make)


@mutant(breaks="autograd.grad.allow_unused")
def unused_input_gets_zero_gradient(mp):
    # An unused input neither raises nor gives None: it silently gets zeros.
    def make(orig):
        def grad(outputs, inputs, *args, allow_unused=None, **kwargs):
            results = orig(outputs, inputs, *args, allow_unused=True, **kwargs)
            return tuple(torch.zeros_like(t) if g is None else g
                         for t, g in zip(_as_list(inputs), results))
        return grad
    wrap(mp, torch.autograd, "grad", make)


@mutant(breaks="autograd.grad.materialize_grads")
def materialize_grads_ignored(mp):
    def make(orig):
        def grad(outputs, inputs, *args, materialize_grads=False, **kwargs):
            return orig(outputs, inputs, *args, **kwargs)
        return grad
    wrap(mp, torch.autograd, "grad", make)


# -- accumulation --------------------------------------------------------------------------

def _overwrite_instead_of_accumulate(mp):
    """backward() that first clears the grads of the graph's leaves: each pass replaces."""
    def tensor_backward(orig):
        def backward(self, *args, **kwargs):
            for leaf in _graph_leaves([self]):
                leaf.grad = None
            return orig(self, *args, **kwargs)
        return backward

    def autograd_backward(orig):
        def backward(tensors, *args, **kwargs):
            for leaf in _graph_leaves(_as_list(tensors)):
                leaf.grad = None
            return orig(tensors, *args, **kwargs)
        return backward

    wrap(mp, T, "backward", tensor_backward)
    wrap(mp, torch.autograd, "backward", autograd_backward)


@mutant(breaks="autograd.accumulation.repeated_backward")
def backward_overwrites_grad(mp):
    _overwrite_instead_of_accumulate(mp)


@mutant(breaks="autograd.accumulation.repeated_backward")
def backward_accumulates_twice(mp):
    def make(orig):
        def backward(self, *args, **kwargs):
            leaves = _graph_leaves([self])
            before = [None if t.grad is None else t.grad.clone() for t in leaves]
            orig(self, *args, **kwargs)
            with torch.no_grad():  # add the previous grad once more
                for t, old in zip(leaves, before):
                    if old is not None and t.grad is not None:
                        t.grad += old
        return backward
    wrap(mp, T, "backward", make)


@mutant(breaks="autograd.accumulation.different_losses_add")
def second_loss_replaces_first(mp):
    _overwrite_instead_of_accumulate(mp)


@mutant(breaks="autograd.accumulation.micro_batches")
def micro_batch_overwrites(mp):
    _overwrite_instead_of_accumulate(mp)


def _grad_property(mp, getter):
    base = torch._C.TensorBase.grad
    mp.setattr(T, "grad", property(lambda self: getter(self, base.__get__(self)),
                                   lambda self, value: base.__set__(self, value),
                                   lambda self: base.__delete__(self)), raising=False)


@mutant(breaks="autograd.accumulation.unused_leaf_stays_none")
def unused_leaf_gets_zero_grad(mp):
    _grad_property(mp, lambda self, g: torch.zeros_like(self) if (
        g is None and self.is_leaf and self.requires_grad) else g)


# -- backward rules ------------------------------------------------------------------------

@mutant(breaks="autograd.backward.non_scalar_needs_gradient")
def implicit_gradient_for_non_scalars(mp):
    wrap(mp, T, "backward", lambda orig: lambda self, gradient=None, *a, **k: orig(
        self, torch.ones_like(self) if gradient is None and self.numel() > 1 else gradient,
        *a, **k))


@mutant(breaks="autograd.backward.inputs")
def backward_inputs_ignored(mp):
    # Tensor.backward goes through torch.autograd.backward, so this covers both spellings.
    def make(orig):
        def backward(*args, inputs=None, **kwargs):
            return orig(*args, **kwargs)
        return backward
    wrap(mp, torch.autograd, "backward", make)


@mutant(breaks="autograd.backward.gradient_shape")
def gradient_broadcast_to_output(mp):
    # A gradient of another shape is broadcast (or summed and spread) to the output's shape.
    def fit(vector, out):
        if not isinstance(vector, torch.Tensor) or vector.shape == out.shape:
            return vector
        try:
            return vector.expand_as(out).clone()
        except RuntimeError:
            return vector.sum().expand_as(out).clone()

    def make(orig):
        def backward(self, gradient=None, *args, **kwargs):
            return orig(self, fit(gradient, self), *args, **kwargs)
        return backward
    wrap(mp, T, "backward", make)


@mutant(breaks="autograd.backward.freed_graph")
def graph_always_retained(mp):
    def make(orig):
        def backward(self, gradient=None, retain_graph=None, *args, **kwargs):
            return orig(self, gradient, True, *args, **kwargs)
        return backward
    wrap(mp, T, "backward", make)


@mutant(breaks="autograd.backward.freed_graph")
def retain_graph_ignored(mp):
    def make(orig):
        def backward(self, gradient=None, retain_graph=None, *args, **kwargs):
            return orig(self, gradient, False, *args, **kwargs)
        return backward
    wrap(mp, T, "backward", make)


@mutant(breaks="autograd.backward.freed_graph")
def autograd_grad_retains_graph(mp):
    def make(orig):
        def grad(outputs, inputs, grad_outputs=None, retain_graph=None, *args, **kwargs):
            return orig(outputs, inputs, grad_outputs, True, *args, **kwargs)
        return grad
    wrap(mp, torch.autograd, "grad", make)


@mutant(breaks="autograd.backward.non_leaf_grad")
def non_leaf_grad_populated(mp):
    _grad_property(mp, lambda self, g: torch.zeros_like(self) if (
        g is None and not self.is_leaf) else g)


@mutant(breaks="autograd.backward.non_leaf_grad")
def retain_grad_ignored(mp):
    mp.setattr(T, "retain_grad", lambda self: None)


@mutant(breaks="autograd.backward.non_leaf_grad")
def retained_grad_overwritten(mp):
    # Each backward pass clears a retained non-leaf grad first (a tensor hook runs before the
    # gradient is stored), so it holds the last pass instead of the sum.
    def make(orig):
        def retain_grad(self):
            orig(self)
            if not self.is_leaf:
                def clear(grad, tensor=self):
                    tensor.grad = None
                self.register_hook(clear)
        return retain_grad
    wrap(mp, T, "retain_grad", make)


@mutant(breaks="autograd.backward.no_grad_fn_raises")
def backward_without_grad_fn_is_silent(mp):
    wrap(mp, T, "backward", lambda orig: lambda self, *a, **k: (
        orig(self, *a, **k) if self.requires_grad else None))


@mutant(breaks="autograd.requires_grad.propagates")
def product_detached_from_graph(mp):
    wrap(mp, T, "__mul__", lambda orig: lambda self, other: orig(self, other).detach())


@mutant(breaks="autograd.requires_grad.propagates")
def sum_always_requires_grad(mp):
    def make(orig):
        def add(self, other):
            out = orig(self, other)
            return out.requires_grad_() if not out.requires_grad else out
        return add
    wrap(mp, T, "__add__", make)


@mutant(breaks="autograd.requires_grad.propagates")
def in_place_ops_not_recorded(mp):
    # An in-place op on an untracked tensor runs unrecorded even when its operand requires grad.
    def make(orig):
        def op(self, other, *args, **kwargs):
            if (not self.requires_grad and isinstance(other, torch.Tensor)
                    and other.requires_grad):
                with torch.no_grad():
                    return orig(self, other, *args, **kwargs)
            return orig(self, other, *args, **kwargs)
        return op
    for attr in ("add_", "mul_", "sub_", "div_", "__iadd__", "__imul__", "__isub__"):
        wrap(mp, T, attr, make)


@mutant(breaks="autograd.detach.shares_storage")
def detach_copies(mp):
    wrap(mp, T, "detach", lambda orig: lambda self: orig(self).clone())


@mutant(breaks="autograd.variable.returns_tensor")
def variable_returns_a_parameter(mp):
    mp.setattr(torch.autograd, "Variable", lambda data, requires_grad=False: nn.Parameter(
        data, requires_grad=requires_grad))


@mutant(breaks="autograd.variable.returns_tensor")
def variable_copies_the_data(mp):
    original = torch.autograd.Variable
    mp.setattr(torch.autograd, "Variable", lambda data, requires_grad=False: original(
        data.clone(), requires_grad=requires_grad))


# -- grad modes ----------------------------------------------------------------------------

@mutant(breaks="autograd.no_grad.context_manager")
def no_grad_records_anyway(mp):
    mp.setattr(torch.no_grad, "__enter__", lambda self: None)


@mutant(breaks="autograd.no_grad.context_manager")
def no_grad_not_undone_on_exit(mp):
    mp.setattr(torch.no_grad, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.no_grad.context_manager")
def factories_obey_no_grad(mp):
    # requires_grad=True is dropped by the factories while grad mode is off.
    def make(orig):
        def factory(*args, **kwargs):
            if kwargs.get("requires_grad") and not torch.is_grad_enabled():
                kwargs["requires_grad"] = False
            return orig(*args, **kwargs)
        return factory
    for attr in ("zeros", "ones", "tensor", "zeros_like"):
        wrap(mp, torch, attr, make)


@mutant(breaks="autograd.no_grad.decorator")
def no_grad_decorator_returns_function_unchanged(mp):
    mp.setattr(torch.no_grad, "__call__", lambda self, fn: fn)


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


@mutant(breaks="autograd.no_grad.in_place_update")
def in_place_update_refused_under_no_grad(mp):
    def make(orig):
        def isub(self, other):
            if self.is_leaf and self.requires_grad:
                raise RuntimeError(
                    "a leaf Variable that requires grad is being used in an in-place operation.")
            return orig(self, other)
        return isub
    wrap(mp, T, "__isub__", make)


@mutant(breaks="autograd.no_grad.keeps_training_mode")
def no_grad_switches_modules_to_eval(mp):
    def make(orig):
        def call(self, *args, **kwargs):
            if not torch.is_grad_enabled():
                self.eval()
            return orig(self, *args, **kwargs)
        return call
    wrap(mp, nn.Module, "__call__", make)


@mutant(breaks="autograd.no_grad.keeps_training_mode")
def no_grad_dropout_keeps_with_probability_p(mp):
    # Dropout drops with probability 1 - p (so keeps with p, scaled by 1/p): invisible at 0.5.
    wrap(mp, F, "dropout", lambda orig: lambda input, p=0.5, training=True, inplace=False: orig(
        input, 1 - p, training, inplace))


@mutant(breaks="autograd.no_grad.eval_keeps_gradients")
def eval_disables_grad_mode(mp):
    wrap(mp, nn.Module, "eval", lambda orig: lambda self: (
        orig(self), torch.set_grad_enabled(False))[0])


@mutant(breaks="autograd.no_grad.eval_keeps_gradients")
def eval_freezes_parameters(mp):
    def make(orig):
        def train(self, mode=True):
            if mode is False:
                for p in self.parameters():
                    p.requires_grad_(False)
            return orig(self, mode)
        return train
    wrap(mp, nn.Module, "train", make)
