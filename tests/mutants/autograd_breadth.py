"""Mutants of the autograd breadth behaviors: grad modes (enable_grad, set_grad_enabled,
inference_mode, threads), tensor hooks, custom Functions, torch.utils.checkpoint and anomaly
detection. Each wraps the public entry point a user calls, so the suite sees a torch whose one
documented behavior is broken while everything else still works."""

from __future__ import annotations

import importlib
import threading
import warnings

import torch

from . import around, mutant, option, replace, via, wrap

T = torch.Tensor
OFF = 1.01  # a gradient wrong by 1%: beyond gradcheck's default rtol of 1e-3


class _Handle:
    """A removable-handle stand-in whose remove() does what the mutant says."""

    def __init__(self, remove=lambda: None):
        self._remove = remove

    def remove(self):
        self._remove()


def _ignored(name, breaks, owner, attr):
    """A mutant that makes owner.attr (each of several attrs) do nothing and return None."""
    replace(owner, attr, breaks, name)(lambda orig: lambda *args, **kwargs: None)


def _if_present(owner, attr, breaks):
    """around(owner, attr, breaks) for an attribute older torch lacks (a no-op mutant there)."""
    def register(fn):
        mutant(breaks, name=fn.__name__)(
            lambda mp: hasattr(owner, attr) and wrap(mp, owner, attr, via(fn)))
        return fn
    return register


# -- grad modes -------------------------------------------------------------------------------

_ignored("enable_grad_does_nothing", "autograd.grad_mode.enable_grad_inside_no_grad",
         torch.enable_grad, ("__enter__", "__exit__"))
_ignored("enable_grad_not_undone_on_exit", "autograd.grad_mode.enable_grad_inside_no_grad",
         torch.enable_grad, "__exit__")
_ignored("set_grad_enabled_block_keeps_its_mode", "autograd.grad_mode.set_grad_enabled_context",
         torch.set_grad_enabled, "__exit__")
# Leaving the block turns grad mode on, instead of back to what it was.
replace(torch.set_grad_enabled, "__exit__", "autograd.grad_mode.set_grad_enabled_context",
        "set_grad_enabled_block_restores_default_not_previous")(
    lambda orig: lambda self, *exc: torch._C._set_grad_enabled(True))


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


@around(threading.Thread, "start", breaks="autograd.grad_mode.thread_local")
def grad_mode_inherited_by_new_threads(orig, self):
    # A started thread takes over its creator's grad mode, as a process-global mode would.
    enabled, run = torch.is_grad_enabled(), self.run

    def run_with_mode():
        torch._C._set_grad_enabled(enabled)
        return run()
    self.run = run_with_mode
    return orig(self)


replace(torch, "inference_mode", "autograd.grad_mode.inference_mode_results",
        "inference_mode_is_no_grad")(
    lambda orig: lambda mode=True: torch.no_grad() if mode else torch.enable_grad())


@around(T, ("add_", "mul_", "copy_", "__iadd__"),
        breaks="autograd.grad_mode.inference_tensor_in_place")
def in_place_on_inference_tensor_allowed_everywhere(orig, self, *args, **kwargs):
    if self.is_inference() and not torch.is_inference_mode_enabled():
        with torch.inference_mode():
            return orig(self, *args, **kwargs)
    return orig(self, *args, **kwargs)


@around(T, "__mul__", breaks="autograd.grad_mode.inference_tensor_saved_for_backward")
def inference_tensor_silently_cloned_for_backward(orig, self, other):
    if isinstance(other, torch.Tensor) and other.is_inference() and (
            torch.is_grad_enabled() and not torch.is_inference_mode_enabled()):
        other = other.clone()
    return orig(self, other)


option("inference_mode_false_ignored", "autograd.grad_mode.inference_mode_false_nested", torch,
       "inference_mode", mode=lambda mode: True if mode is False else mode)


# -- tensor hooks -----------------------------------------------------------------------------

def _hooks(name, breaks, adapt):
    """Tensor.register_hook registering adapt(hook) in place of each hook."""
    option(name, breaks, T, "register_hook", hook=adapt)


def _hook_twice(hook):
    def run(grad):
        hook(grad)
        return hook(grad)
    return run


_hooks("tensor_hook_return_value_ignored", "autograd.tensor_hooks.replace_gradient",
       lambda hook: lambda grad: (hook(grad), None)[1])
# The returned tensor is added to the incoming gradient instead of replacing it.
_hooks("tensor_hook_result_added_to_the_gradient", "autograd.tensor_hooks.replace_gradient",
       lambda hook: lambda grad: (lambda out: None if out is None else grad + out)(hook(grad)))
_hooks("tensor_hook_called_twice", "autograd.tensor_hooks.observe", _hook_twice)
_hooks("tensor_hook_sees_a_scaled_gradient", "autograd.tensor_hooks.observe",
       lambda hook: lambda grad: hook(grad * OFF))


@around(T, "register_hook", breaks="autograd.tensor_hooks.registration_order")
def tensor_hooks_run_in_reverse_order(orig, self, hook):
    # One dispatcher per tensor runs the tensor's hooks newest first.
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


replace(T, "register_hook", "autograd.tensor_hooks.remove",
        "tensor_hook_handle_remove_does_nothing")(
    lambda orig: lambda self, hook: (orig(self, hook), _Handle())[1])


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


@_if_present(T, "register_post_accumulate_grad_hook",
             "autograd.tensor_hooks.post_accumulate_grad")
def post_accumulate_hook_runs_before_accumulation(orig, self, hook):
    return self.register_hook(lambda grad, tensor=self: hook(tensor))


@_if_present(T, "register_post_accumulate_grad_hook",
             "autograd.tensor_hooks.post_accumulate_grad_leaf_only")
def post_accumulate_hook_on_non_leaf_ignored(orig, self, hook):
    return _Handle() if not self.is_leaf else orig(self, hook)


# -- custom autograd.Function -----------------------------------------------------------------

function_module = importlib.import_module("torch.autograd.function")
Ctx = function_module.FunctionCtx
BackwardCFunction = function_module.BackwardCFunction
gradcheck_module = importlib.import_module("torch.autograd.gradcheck")
SAVE = "autograd.function.save_for_backward"


def _tensors(change):
    """tensors -> each tensor among them changed by change(tensor)."""
    return lambda tensors: tuple(change(t) if isinstance(t, torch.Tensor) else t
                                 for t in tensors)


option("saved_tensors_come_back_reversed", SAVE, Ctx, "save_for_backward",
       tensors=lambda tensors: tuple(reversed(tensors)))
# save_for_backward keeps slightly different values (a lossy copy).
option("saved_tensors_scaled", SAVE, Ctx, "save_for_backward",
       tensors=_tensors(lambda t: t.detach() * OFF))
# Saving clones: an in-place change afterwards goes unnoticed (and backward uses old data).
option("saved_tensors_are_private_copies", "autograd.function.saved_tensor_version_check", Ctx,
       "save_for_backward", tensors=_tensors(lambda t: t.detach().clone()))


def _needs_input_grad(name, flag):
    """ctx.needs_input_grad[i] = flag(i, the true flag)."""
    def apply(mp):
        base = torch._C._FunctionBase.__dict__["needs_input_grad"]
        mp.setattr(BackwardCFunction, "needs_input_grad", property(
            lambda self: tuple(flag(i, f) for i, f in enumerate(base.__get__(self)))),
            raising=False)
    mutant("autograd.function.needs_input_grad", name=name)(apply)


_needs_input_grad("needs_input_grad_all_true", lambda i, f: True)
# Non-tensor arguments get True (as if "needs grad" meant "is not a tensor that opts out").
_needs_input_grad("needs_input_grad_ignores_non_tensors", lambda i, f: f or i == 2)
_ignored("mark_dirty_ignored", "autograd.function.mark_dirty", Ctx, "mark_dirty")
_ignored("mark_non_differentiable_ignored", "autograd.function.mark_non_differentiable", Ctx,
         "mark_non_differentiable")
_ignored("set_materialize_grads_ignored", "autograd.function.set_materialize_grads", Ctx,
         "set_materialize_grads")
replace(function_module, "once_differentiable", "autograd.function.once_differentiable",
        "once_differentiable_is_a_no_op")(lambda orig: lambda fn: fn)
option("gradcheck_ignores_its_tolerances", "autograd.function.gradcheck_accepts", torch.autograd,
       "gradcheck", atol=0.0, rtol=0.0)
# Finite differences with eps = 0.1: the numerical Jacobian itself is off.
option("gradcheck_with_a_coarse_step", "autograd.function.gradcheck_accepts", torch.autograd,
       "gradcheck", eps=0.1)
option("gradcheck_with_a_loose_tolerance", "autograd.function.gradcheck_rejects", torch.autograd,
       "gradcheck", rtol=0.05)


@around(torch.autograd, "gradcheck", breaks="autograd.function.gradcheck_rejects")
def gradcheck_swallows_mismatches(orig, func, inputs, **kwargs):
    try:
        return orig(func, inputs, **kwargs)
    except gradcheck_module.GradcheckError:
        return True


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


@around(checkpoint_module, "checkpoint", breaks="autograd.checkpoint.gradients_match")
def checkpoint_gradient_off(orig, function, *args, **kwargs):
    out = orig(function, *args, **kwargs)
    return _ScaleGrad.apply(out, OFF) if out.requires_grad else out


# A plain call: right gradients, but nothing is recomputed (and no memory saved).
replace(checkpoint_module, "checkpoint", "autograd.checkpoint.recomputes_forward",
        "checkpoint_saves_instead_of_recomputing")(
    lambda orig: lambda function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs:
    function(*args, **kwargs))


@around(checkpoint_module, "checkpoint", breaks="autograd.checkpoint.inputs_without_grad")
def checkpoint_always_reentrant(orig, function, *args, use_reentrant=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "None of the inputs have requires_grad"
        return orig(function, *args, use_reentrant=True, **kwargs)


@around(checkpoint_module, "checkpoint", breaks="autograd.checkpoint.preserves_rng")
def checkpoint_rng_state_not_preserved(orig, function, *args, preserve_rng_state=True, **kw):
    return orig(function, *args, preserve_rng_state=False, **kw)


# -- anomaly detection ------------------------------------------------------------------------

option("detect_anomaly_never_checks_nan", "autograd.anomaly.nan_raises", torch.autograd,
       "detect_anomaly", check_nan=False)


@around(T, "backward", breaks="autograd.anomaly.nan_raises")
def anomaly_error_does_not_name_the_function(orig, self, *args, **kwargs):
    # The NaN is reported, but not which backward function produced it.
    try:
        return orig(self, *args, **kwargs)
    except RuntimeError as exc:
        if "returned nan values" in str(exc):
            raise RuntimeError("a backward function returned nan values") from None
        raise


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


option("check_nan_false_ignored", "autograd.anomaly.check_nan_false", torch.autograd,
       "detect_anomaly", check_nan=True)


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


_ignored("set_detect_anomaly_block_leaves_the_mode_on", "autograd.anomaly.set_detect_anomaly",
         torch.autograd.set_detect_anomaly, "__exit__")
# The metadata comparison is skipped unless asked for: a changed recomputation goes
# unnoticed (or fails later with an unrelated error).
option("checkpoint_determinism_check_off", "autograd.checkpoint.determinism_check",
       checkpoint_module, "checkpoint", determinism_check="none")


@around(torch.autograd, "grad", breaks="autograd.grad.materialize_grads_allow_unused")
def materialize_grads_accepts_allow_unused_false(orig, outputs, inputs, *args,
                                                 allow_unused=None, materialize_grads=False,
                                                 **kw):
    return orig(outputs, inputs, *args, allow_unused=True if materialize_grads else allow_unused,
                materialize_grads=materialize_grads, **kw)


option("materialize_grads_needs_an_explicit_allow_unused",
       "autograd.grad.materialize_grads_allow_unused", torch.autograd, "grad", allow_unused=bool)
