"""Mutants of the autograd breadth behaviors: grad modes (enable_grad, set_grad_enabled,
inference_mode, threads), tensor hooks, custom Functions, torch.utils.checkpoint and anomaly
detection. Each wraps the public entry point a user calls, so the suite sees a torch whose one
documented behavior is broken while everything else still works."""

from __future__ import annotations

import importlib
import threading
import warnings

import torch

from . import mutant, wrap

T = torch.Tensor
OFF = 1.01  # a gradient wrong by 1%: beyond gradcheck's default rtol of 1e-3


class _Handle:
    """A removable-handle stand-in whose remove() does what the mutant says."""

    def __init__(self, remove=lambda: None):
        self._remove = remove

    def remove(self):
        self._remove()


# -- grad modes -------------------------------------------------------------------------------

@mutant(breaks="autograd.grad_mode.enable_grad_inside_no_grad")
def enable_grad_does_nothing(mp):
    mp.setattr(torch.enable_grad, "__enter__", lambda self: None)
    mp.setattr(torch.enable_grad, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.grad_mode.enable_grad_inside_no_grad")
def enable_grad_not_undone_on_exit(mp):
    mp.setattr(torch.enable_grad, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.grad_mode.set_grad_enabled_context")
def set_grad_enabled_block_keeps_its_mode(mp):
    mp.setattr(torch.set_grad_enabled, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.grad_mode.set_grad_enabled_context")
def set_grad_enabled_block_restores_default_not_previous(mp):
    # Leaving the block turns grad mode on, instead of back to what it was.
    mp.setattr(torch.set_grad_enabled, "__exit__",
               lambda self, *exc: torch._C._set_grad_enabled(True))


@mutant(breaks="autograd.grad_mode.set_grad_enabled_function")
def set_grad_enabled_only_works_as_a_context_manager(mp):
    # The mode is applied on __enter__ only: a plain call changes nothing.
    original = torch.set_grad_enabled

    class Lazy(original):
        def __init__(self, mode):
            self.prev = torch.is_grad_enabled()
            self.mode = mode

        def __enter__(self):
            torch._C._set_grad_enabled(self.mode)

    mp.setattr(torch, "set_grad_enabled", Lazy)


@mutant(breaks="autograd.grad_mode.thread_local")
def grad_mode_inherited_by_new_threads(mp):
    # A started thread takes over its creator's grad mode, as a process-global mode would.
    def make(orig):
        def start(self):
            enabled, run = torch.is_grad_enabled(), self.run

            def run_with_mode():
                torch._C._set_grad_enabled(enabled)
                return run()
            self.run = run_with_mode
            return orig(self)
        return start
    wrap(mp, threading.Thread, "start", make)


@mutant(breaks="autograd.grad_mode.inference_mode_results")
def inference_mode_is_no_grad(mp):
    mp.setattr(torch, "inference_mode",
               lambda mode=True: torch.no_grad() if mode else torch.enable_grad())


@mutant(breaks="autograd.grad_mode.inference_tensor_in_place")
def in_place_on_inference_tensor_allowed_everywhere(mp):
    def make(orig):
        def op(self, *args, **kwargs):
            if self.is_inference() and not torch.is_inference_mode_enabled():
                with torch.inference_mode():
                    return orig(self, *args, **kwargs)
            return orig(self, *args, **kwargs)
        return op
    for attr in ("add_", "mul_", "copy_", "__iadd__"):
        wrap(mp, T, attr, make)


@mutant(breaks="autograd.grad_mode.inference_tensor_saved_for_backward")
def inference_tensor_silently_cloned_for_backward(mp):
    def make(orig):
        def mul(self, other):
            if isinstance(other, torch.Tensor) and other.is_inference() and (
                    torch.is_grad_enabled() and not torch.is_inference_mode_enabled()):
                other = other.clone()
            return orig(self, other)
        return mul
    wrap(mp, T, "__mul__", make)


@mutant(breaks="autograd.grad_mode.inference_mode_false_nested")
def inference_mode_false_ignored(mp):
    original = torch.inference_mode
    mp.setattr(torch, "inference_mode",
               lambda mode=True: original(True if mode is False else mode))


# -- tensor hooks -----------------------------------------------------------------------------

def _wrap_hooks(mp, adapt):
    """Tensor.register_hook registering adapt(hook) in place of each hook."""
    wrap(mp, T, "register_hook", lambda orig: lambda self, hook: orig(self, adapt(hook)))


@mutant(breaks="autograd.tensor_hooks.replace_gradient")
def tensor_hook_return_value_ignored(mp):
    _wrap_hooks(mp, lambda hook: lambda grad: (hook(grad), None)[1])


@mutant(breaks="autograd.tensor_hooks.replace_gradient")
def tensor_hook_result_added_to_the_gradient(mp):
    # The returned tensor is added to the incoming gradient instead of replacing it.
    def adapt(hook):
        def run(grad):
            out = hook(grad)
            return None if out is None else grad + out
        return run
    _wrap_hooks(mp, adapt)


@mutant(breaks="autograd.tensor_hooks.observe")
def tensor_hook_called_twice(mp):
    def adapt(hook):
        def run(grad):
            hook(grad)
            return hook(grad)
        return run
    _wrap_hooks(mp, adapt)


@mutant(breaks="autograd.tensor_hooks.observe")
def tensor_hook_sees_a_scaled_gradient(mp):
    _wrap_hooks(mp, lambda hook: lambda grad: hook(grad * OFF))


@mutant(breaks="autograd.tensor_hooks.registration_order")
def tensor_hooks_run_in_reverse_order(mp):
    # One dispatcher per tensor runs the tensor's hooks newest first.
    def make(orig):
        def register_hook(self, hook):
            hooks = getattr(self, "_mutant_hooks", None)
            if hooks is None:
                hooks = self._mutant_hooks = []

                def dispatch(grad):
                    for h in reversed(list(hooks)):
                        out = h(grad)
                        grad = grad if out is None else out
                    return grad
                orig(self, dispatch)
            hooks.append(hook)
            return _Handle(lambda: hooks.remove(hook))
        return register_hook
    wrap(mp, T, "register_hook", make)


@mutant(breaks="autograd.tensor_hooks.remove")
def tensor_hook_handle_remove_does_nothing(mp):
    def make(orig):
        def register_hook(self, hook):
            orig(self, hook)
            return _Handle()
        return register_hook
    wrap(mp, T, "register_hook", make)


@mutant(breaks="autograd.tensor_hooks.retain_grad_sees_hooked")
def retain_grad_ignores_hooks(mp):
    # The retained .grad is the gradient before any tensor hook, whatever the order: wrong on
    # both sides of the 2.0 change (1.13 applied the hooks registered before retain_grad).
    # A capturing hook is made the first hook of every non-leaf that gets hooks or retains.
    register = T.register_hook

    def capture(tensor):
        if getattr(tensor, "_mutant_capture", False):
            return
        tensor._mutant_capture = True

        def store(grad, tensor=tensor):
            if getattr(tensor, "_mutant_retains", False):
                grad = grad.detach().clone()
                tensor.grad = grad if tensor.grad is None else tensor.grad + grad
        register(tensor, store)

    def register_hook(self, hook):
        if not self.is_leaf:
            capture(self)
        return register(self, hook)

    def make(orig):
        def retain_grad(self):
            if self.is_leaf:
                return orig(self)
            capture(self)
            self._mutant_retains = True
        return retain_grad
    mp.setattr(T, "register_hook", register_hook)
    wrap(mp, T, "retain_grad", make)


@mutant(breaks="autograd.tensor_hooks.post_accumulate_grad")
def post_accumulate_hook_runs_before_accumulation(mp):
    def make(orig):
        def register(self, hook):
            return self.register_hook(lambda grad, tensor=self: hook(tensor))
        return register
    if hasattr(T, "register_post_accumulate_grad_hook"):
        wrap(mp, T, "register_post_accumulate_grad_hook", make)


@mutant(breaks="autograd.tensor_hooks.post_accumulate_grad_leaf_only")
def post_accumulate_hook_on_non_leaf_ignored(mp):
    def make(orig):
        def register(self, hook):
            return _Handle() if not self.is_leaf else orig(self, hook)
        return register
    if hasattr(T, "register_post_accumulate_grad_hook"):
        wrap(mp, T, "register_post_accumulate_grad_hook", make)


# -- custom autograd.Function -----------------------------------------------------------------

Ctx = importlib.import_module("torch.autograd.function").FunctionCtx
BackwardCFunction = importlib.import_module("torch.autograd.function").BackwardCFunction
gradcheck_module = importlib.import_module("torch.autograd.gradcheck")


@mutant(breaks="autograd.function.save_for_backward")
def saved_tensors_come_back_reversed(mp):
    wrap(mp, Ctx, "save_for_backward", lambda orig: lambda self, *tensors: orig(
        self, *reversed(tensors)))


@mutant(breaks="autograd.function.save_for_backward")
def saved_tensors_scaled(mp):
    # save_for_backward keeps slightly different values (a lossy copy).
    wrap(mp, Ctx, "save_for_backward", lambda orig: lambda self, *tensors: orig(
        self, *(t.detach() * OFF if isinstance(t, torch.Tensor) else t for t in tensors)))


@mutant(breaks="autograd.function.saved_tensor_version_check")
def saved_tensors_are_private_copies(mp):
    # Saving clones: an in-place change afterwards goes unnoticed (and backward uses old data).
    wrap(mp, Ctx, "save_for_backward", lambda orig: lambda self, *tensors: orig(
        self, *(t.detach().clone() if isinstance(t, torch.Tensor) else t for t in tensors)))


@mutant(breaks="autograd.function.needs_input_grad")
def needs_input_grad_all_true(mp):
    base = torch._C._FunctionBase.__dict__["needs_input_grad"]
    mp.setattr(BackwardCFunction, "needs_input_grad", property(
        lambda self: tuple(True for _ in base.__get__(self))), raising=False)


@mutant(breaks="autograd.function.needs_input_grad")
def needs_input_grad_ignores_non_tensors(mp):
    # Non-tensor arguments get True (as if "needs grad" meant "is not a tensor that opts out").
    base = torch._C._FunctionBase.__dict__["needs_input_grad"]
    mp.setattr(BackwardCFunction, "needs_input_grad", property(
        lambda self: tuple(flag or i == 2 for i, flag in enumerate(base.__get__(self)))),
        raising=False)


@mutant(breaks="autograd.function.mark_dirty")
def mark_dirty_ignored(mp):
    mp.setattr(Ctx, "mark_dirty", lambda self, *args: None)


@mutant(breaks="autograd.function.mark_non_differentiable")
def mark_non_differentiable_ignored(mp):
    mp.setattr(Ctx, "mark_non_differentiable", lambda self, *args: None)


@mutant(breaks="autograd.function.set_materialize_grads")
def set_materialize_grads_ignored(mp):
    mp.setattr(Ctx, "set_materialize_grads", lambda self, value: None)


@mutant(breaks="autograd.function.once_differentiable")
def once_differentiable_is_a_no_op(mp):
    mp.setattr(importlib.import_module("torch.autograd.function"), "once_differentiable",
               lambda fn: fn)


@mutant(breaks="autograd.function.gradcheck_accepts")
def gradcheck_ignores_its_tolerances(mp):
    wrap(mp, torch.autograd, "gradcheck", lambda orig: lambda func, inputs, **kwargs: orig(
        func, inputs, **dict(kwargs, atol=0.0, rtol=0.0)))


@mutant(breaks="autograd.function.gradcheck_accepts")
def gradcheck_with_a_coarse_step(mp):
    # Finite differences with eps = 0.1: the numerical Jacobian itself is off.
    wrap(mp, torch.autograd, "gradcheck", lambda orig: lambda func, inputs, **kwargs: orig(
        func, inputs, **dict(kwargs, eps=0.1)))


@mutant(breaks="autograd.function.gradcheck_rejects")
def gradcheck_with_a_loose_tolerance(mp):
    wrap(mp, torch.autograd, "gradcheck", lambda orig: lambda func, inputs, **kwargs: orig(
        func, inputs, **dict(kwargs, rtol=0.05)))


@mutant(breaks="autograd.function.gradcheck_rejects")
def gradcheck_swallows_mismatches(mp):
    def make(orig):
        def gradcheck(func, inputs, **kwargs):
            try:
                return orig(func, inputs, **kwargs)
            except gradcheck_module.GradcheckError:
                return True
        return gradcheck
    wrap(mp, torch.autograd, "gradcheck", make)


# -- torch.utils.checkpoint -------------------------------------------------------------------

checkpoint_module = importlib.import_module("torch.utils.checkpoint")


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward scales the gradient (a derivative wrong by a factor)."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


@mutant(breaks="autograd.checkpoint.gradients_match")
def checkpoint_gradient_off(mp):
    def make(orig):
        def checkpoint(function, *args, **kwargs):
            out = orig(function, *args, **kwargs)
            return _ScaleGrad.apply(out, OFF) if out.requires_grad else out
        return checkpoint
    wrap(mp, checkpoint_module, "checkpoint", make)


@mutant(breaks="autograd.checkpoint.recomputes_forward")
def checkpoint_saves_instead_of_recomputing(mp):
    # A plain call: right gradients, but nothing is recomputed (and no memory saved).
    def make(orig):
        def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True,
                       **kwargs):
            return function(*args, **kwargs)
        return checkpoint
    wrap(mp, checkpoint_module, "checkpoint", make)


@mutant(breaks="autograd.checkpoint.inputs_without_grad")
def checkpoint_always_reentrant(mp):
    def make(orig):
        def checkpoint(function, *args, use_reentrant=None, **kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "None of the inputs have requires_grad"
                return orig(function, *args, use_reentrant=True, **kwargs)
        return checkpoint
    wrap(mp, checkpoint_module, "checkpoint", make)


@mutant(breaks="autograd.checkpoint.preserves_rng")
def checkpoint_rng_state_not_preserved(mp):
    def make(orig):
        def checkpoint(function, *args, preserve_rng_state=True, **kwargs):
            return orig(function, *args, preserve_rng_state=False, **kwargs)
        return checkpoint
    wrap(mp, checkpoint_module, "checkpoint", make)


# -- anomaly detection ------------------------------------------------------------------------

@mutant(breaks="autograd.anomaly.nan_raises")
def detect_anomaly_never_checks_nan(mp):
    original = torch.autograd.detect_anomaly
    mp.setattr(torch.autograd, "detect_anomaly", lambda check_nan=True: original(
        check_nan=False))


@mutant(breaks="autograd.anomaly.nan_raises")
def anomaly_error_does_not_name_the_function(mp):
    # The NaN is reported, but not which backward function produced it.
    def make(orig):
        def backward(self, *args, **kwargs):
            try:
                return orig(self, *args, **kwargs)
            except RuntimeError as exc:
                if "returned nan values" in str(exc):
                    raise RuntimeError("a backward function returned nan values") from None
                raise
        return backward
    wrap(mp, T, "backward", make)


@mutant(breaks="autograd.anomaly.forward_traceback")
def detect_anomaly_without_forward_traceback(mp):
    # Anomaly mode is switched on only for backward: forward records no traceback.
    original = torch.autograd.detect_anomaly

    class Late(original):
        def __enter__(self):
            return None

        def __exit__(self, *exc):
            return None

    def make(orig):
        def backward(self, *args, **kwargs):
            with original():
                return orig(self, *args, **kwargs)
        return backward
    mp.setattr(torch.autograd, "detect_anomaly", Late)
    wrap(mp, T, "backward", make)


@mutant(breaks="autograd.anomaly.check_nan_false")
def check_nan_false_ignored(mp):
    original = torch.autograd.detect_anomaly
    mp.setattr(torch.autograd, "detect_anomaly", lambda check_nan=True: original(True))


@mutant(breaks="autograd.anomaly.set_detect_anomaly")
def set_detect_anomaly_only_works_as_a_context_manager(mp):
    # Construction records the mode but switches nothing: a plain call has no effect.
    original = torch.autograd.set_detect_anomaly

    class Lazy(original):
        def __init__(self, mode, check_nan=True):
            self.prev = torch.is_anomaly_enabled()
            self.prev_check_nan = torch.is_anomaly_check_nan_enabled()
            self.mode, self.check_nan = mode, check_nan

        def __enter__(self):
            torch.set_anomaly_enabled(self.mode, self.check_nan)

    mp.setattr(torch.autograd, "set_detect_anomaly", Lazy)


@mutant(breaks="autograd.anomaly.set_detect_anomaly")
def set_detect_anomaly_block_leaves_the_mode_on(mp):
    mp.setattr(torch.autograd.set_detect_anomaly, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.checkpoint.determinism_check")
def checkpoint_determinism_check_off(mp):
    # The metadata comparison is skipped unless asked for: a changed recomputation goes
    # unnoticed (or fails later with an unrelated error).
    def make(orig):
        def checkpoint(function, *args, determinism_check="default", **kwargs):
            return orig(function, *args, determinism_check="none", **kwargs)
        return checkpoint
    wrap(mp, checkpoint_module, "checkpoint", make)


@mutant(breaks="autograd.grad.materialize_grads_allow_unused")
def materialize_grads_accepts_allow_unused_false(mp):
    def make(orig):
        def grad(outputs, inputs, *args, allow_unused=None, materialize_grads=False, **kw):
            if materialize_grads:
                allow_unused = True
            return orig(outputs, inputs, *args, allow_unused=allow_unused,
                        materialize_grads=materialize_grads, **kw)
        return grad
    wrap(mp, torch.autograd, "grad", make)


@mutant(breaks="autograd.grad.materialize_grads_allow_unused")
def materialize_grads_needs_an_explicit_allow_unused(mp):
    def make(orig):
        def grad(outputs, inputs, *args, allow_unused=None, materialize_grads=False, **kw):
            return orig(outputs, inputs, *args, allow_unused=bool(allow_unused),
                        materialize_grads=materialize_grads, **kw)
        return grad
    wrap(mp, torch.autograd, "grad", make)
