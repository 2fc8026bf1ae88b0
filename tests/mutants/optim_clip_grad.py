"""Mutants of torch.nn.utils' gradient clipping and parameter vectors (catalogued under
optim.clip_grad.* and optim.param_vector.*). Each wraps the public function on torch.nn.utils,
which is where users (and the suite) look it up."""

from __future__ import annotations

import math

import torch

from . import around, mutant, option, replace, via, wrap

U = torch.nn.utils
CLIP_NORM, CLIP_VALUE = "clip_grad_norm_", "clip_grad_value_"


def _grads(parameters):
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    return params, [p.grad for p in params if p.grad is not None]


def _reversed(parameters):
    return list(parameters)[::-1]


def _clamp_the_top_only(parameters, clip_value):
    with torch.no_grad():
        for g in _grads(parameters)[1]:
            g.clamp_(max=clip_value)


def _since_2_6(attr, breaks):
    """around(U, attr, breaks) for a function added in torch 2.6 (a no-op mutant before)."""
    def register(fn):
        mutant(breaks, name=fn.__name__)(
            lambda mp: hasattr(U, attr) and wrap(mp, U, attr, via(fn)))
        return fn
    return register


# -- clip_grad_norm_ --------------------------------------------------------------------------

option("clip_grad_norm_type_ignored", "optim.clip_grad.total_norm", U, CLIP_NORM, norm_type=2.0)


@around(U, CLIP_NORM, breaks="optim.clip_grad.total_norm")
def clip_grad_norm_returns_the_clipped_norm(orig, parameters, max_norm, *args, **kwargs):
    # Returns the norm after clipping, min(total, max_norm), instead of the original norm.
    return torch.clamp(orig(parameters, max_norm, *args, **kwargs), max=max_norm)


@around(U, CLIP_NORM, breaks="optim.clip_grad.total_norm")
def clip_grad_norm_sums_per_parameter_norms(orig, parameters, max_norm, norm_type=2.0, *a, **k):
    # Total = sum of the per-parameter p-norms instead of the norm of the concatenation.
    params, grads = _grads(parameters)
    total = sum(torch.linalg.vector_norm(g, float(norm_type)) for g in grads) if grads else None
    orig(params, max_norm, norm_type, *a, **k)
    return total if total is not None else torch.tensor(0.0)


option("clip_grad_norm_never_scales", "optim.clip_grad.scales_when_above", U, CLIP_NORM,
       max_norm=math.inf)


@around(U, CLIP_NORM, breaks="optim.clip_grad.scales_when_above")
def clip_grad_norm_coefficient_not_clamped(orig, parameters, max_norm, *args, **kwargs):
    # Gradients below max_norm are scaled up to it (the coefficient is not clamped at 1).
    params, grads = _grads(parameters)
    total = orig(params, max_norm, *args, **kwargs)
    if total < max_norm:
        with torch.no_grad():
            for g in grads:
                g.mul_(max_norm / (total + 1e-6))
    return total


@around(U, CLIP_NORM, breaks="optim.clip_grad.scales_when_above")
def clip_grad_norm_replaces_grads(orig, parameters, max_norm, *args, **kwargs):
    # Clipped gradients are new tensors assigned to .grad, not the old ones changed in place.
    params, _ = _grads(parameters)
    for p in params:
        if p.grad is not None:
            p.grad = p.grad.clone()
    return orig(params, max_norm, *args, **kwargs)


option("clip_grad_norm_error_if_nonfinite_ignored", "optim.clip_grad.error_if_nonfinite", U,
       CLIP_NORM, error_if_nonfinite=False)


@around(U, CLIP_NORM, breaks="optim.clip_grad.error_if_nonfinite")
def clip_grad_norm_scales_before_raising(orig, parameters, max_norm, norm_type=2.0,
                                         error_if_nonfinite=False, **kwargs):
    # The error is raised only after the gradients were scaled by the non-finite norm.
    total = orig(_grads(parameters)[0], max_norm, norm_type, False, **kwargs)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError("The total norm is non-finite, so it cannot be clipped")
    return total


@around(U, CLIP_NORM, breaks="optim.clip_grad.foreach")
def clip_grad_norm_foreach_uses_the_2_norm(orig, parameters, max_norm, norm_type=2.0,
                                           error_if_nonfinite=False, foreach=None):
    return orig(parameters, max_norm, 2.0 if foreach else norm_type, error_if_nonfinite, foreach)


@around(U, CLIP_VALUE, breaks="optim.clip_grad.foreach")
def clip_grad_value_foreach_clamps_the_top_only(orig, parameters, clip_value, foreach=None):
    if not foreach:
        return orig(parameters, clip_value, foreach)
    _clamp_the_top_only(parameters, clip_value)


# -- clip_grad_value_ -------------------------------------------------------------------------

replace(U, CLIP_VALUE, "optim.clip_grad.value", "clip_grad_value_clamps_the_top_only")(
    lambda orig: lambda parameters, clip_value, *args, **kwargs: _clamp_the_top_only(
        parameters, clip_value))


def _all_but_the_last_with_grad(parameters):
    with_grad = [p for p in _grads(parameters)[0] if p.grad is not None]
    return with_grad[:-1] if len(with_grad) > 1 else with_grad


option("clip_grad_value_skips_the_last_parameter", "optim.clip_grad.value", U, CLIP_VALUE,
       parameters=_all_but_the_last_with_grad)


# -- get_total_norm / clip_grads_with_norm_ (2.6) ---------------------------------------------

@_since_2_6("get_total_norm", "optim.clip_grad.split_functions")
def get_total_norm_type_ignored(orig, tensors, norm_type=2.0, *args, **kwargs):
    return orig(tensors, 2.0, *args, **kwargs)


@_since_2_6("clip_grads_with_norm_", "optim.clip_grad.split_functions")
def clip_grads_with_norm_not_clamped(orig, parameters, max_norm, total_norm, foreach=None):
    with torch.no_grad():
        for g in _grads(parameters)[1]:
            g.mul_(max_norm / (total_norm + 1e-6))


# -- parameters_to_vector / vector_to_parameters ----------------------------------------------

option("parameters_to_vector_reversed", "optim.param_vector.parameters_to_vector", U,
       "parameters_to_vector", parameters=_reversed)
# Each parameter flattened column-major (its transpose's order) instead of row-major.
replace(U, "parameters_to_vector", "optim.param_vector.parameters_to_vector",
        "parameters_to_vector_column_major")(lambda orig: lambda parameters: torch.cat(
            [p.detach().permute(*reversed(range(p.dim()))).reshape(-1) for p in parameters]))
# The first slice goes to the last parameter, and so on backwards.
option("vector_to_parameters_fills_in_reverse", "optim.param_vector.vector_to_parameters", U,
       "vector_to_parameters", parameters=_reversed)


@around(U, "vector_to_parameters", breaks="optim.param_vector.vector_to_parameters")
def vector_to_parameters_freezes_them(orig, vec, parameters):
    params = list(parameters)
    orig(vec, params)
    for p in params:
        p.requires_grad_(False)
