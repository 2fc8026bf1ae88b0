"""Mutants of torch.nn.utils' gradient clipping and parameter vectors (catalogued under
optim.clip_grad.* and optim.param_vector.*). Each wraps the public function on torch.nn.utils,
which is where users (and the suite) look it up."""

from __future__ import annotations

import math

import torch

from . import mutant, wrap

U = torch.nn.utils


def _grads(parameters):
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    return params, [p.grad for p in params if p.grad is not None]


# -- clip_grad_norm_ --------------------------------------------------------------------------

@mutant(breaks="optim.clip_grad.total_norm")
def clip_grad_norm_type_ignored(mp):
    def make(orig):
        def clip(parameters, max_norm, norm_type=2.0, *args, **kwargs):
            return orig(parameters, max_norm, 2.0, *args, **kwargs)
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.total_norm")
def clip_grad_norm_returns_the_clipped_norm(mp):
    # Returns the norm after clipping, min(total, max_norm), instead of the original norm.
    def make(orig):
        def clip(parameters, max_norm, *args, **kwargs):
            return torch.clamp(orig(parameters, max_norm, *args, **kwargs), max=max_norm)
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.total_norm")
def clip_grad_norm_sums_per_parameter_norms(mp):
    # Total = sum of the per-parameter p-norms instead of the norm of the concatenation.
    def make(orig):
        def clip(parameters, max_norm, norm_type=2.0, *args, **kwargs):
            params, grads = _grads(parameters)
            p = float(norm_type)
            total = sum(torch.linalg.vector_norm(g, p) for g in grads) if grads else None
            orig(params, max_norm, norm_type, *args, **kwargs)
            return total if total is not None else torch.tensor(0.0)
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.scales_when_above")
def clip_grad_norm_never_scales(mp):
    def make(orig):
        def clip(parameters, max_norm, *args, **kwargs):
            return orig(parameters, math.inf, *args, **kwargs)
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.scales_when_above")
def clip_grad_norm_coefficient_not_clamped(mp):
    # Gradients below max_norm are scaled up to it (the coefficient is not clamped at 1).
    def make(orig):
        def clip(parameters, max_norm, *args, **kwargs):
            params, _ = _grads(parameters)
            total = orig(params, max_norm, *args, **kwargs)
            if total < max_norm:
                with torch.no_grad():
                    for p in params:
                        if p.grad is not None:
                            p.grad.mul_(max_norm / (total + 1e-6))
            return total
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.scales_when_above")
def clip_grad_norm_replaces_grads(mp):
    # Clipped gradients are new tensors assigned to .grad, not the old ones changed in place.
    def make(orig):
        def clip(parameters, max_norm, *args, **kwargs):
            params, _ = _grads(parameters)
            for p in params:
                if p.grad is not None:
                    p.grad = p.grad.clone()
            return orig(params, max_norm, *args, **kwargs)
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.error_if_nonfinite")
def clip_grad_norm_error_if_nonfinite_ignored(mp):
    def make(orig):
        def clip(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, **kwargs):
            return orig(parameters, max_norm, norm_type, False, **kwargs)
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.error_if_nonfinite")
def clip_grad_norm_scales_before_raising(mp):
    # The error is raised only after the gradients were scaled by the non-finite norm.
    def make(orig):
        def clip(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, **kwargs):
            params, _ = _grads(parameters)
            total = orig(params, max_norm, norm_type, False, **kwargs)
            if error_if_nonfinite and not torch.isfinite(total):
                raise RuntimeError("The total norm is non-finite, so it cannot be clipped")
            return total
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.foreach")
def clip_grad_norm_foreach_uses_the_2_norm(mp):
    def make(orig):
        def clip(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                 foreach=None):
            if foreach:
                norm_type = 2.0
            return orig(parameters, max_norm, norm_type, error_if_nonfinite, foreach)
        return clip
    wrap(mp, U, "clip_grad_norm_", make)


@mutant(breaks="optim.clip_grad.foreach")
def clip_grad_value_foreach_clamps_the_top_only(mp):
    def make(orig):
        def clip(parameters, clip_value, foreach=None):
            if not foreach:
                return orig(parameters, clip_value, foreach)
            params, grads = _grads(parameters)
            with torch.no_grad():
                for g in grads:
                    g.clamp_(max=clip_value)
        return clip
    wrap(mp, U, "clip_grad_value_", make)


# -- clip_grad_value_ -------------------------------------------------------------------------

@mutant(breaks="optim.clip_grad.value")
def clip_grad_value_clamps_the_top_only(mp):
    def make(orig):
        def clip(parameters, clip_value, *args, **kwargs):
            _, grads = _grads(parameters)
            with torch.no_grad():
                for g in grads:
                    g.clamp_(max=clip_value)
        return clip
    wrap(mp, U, "clip_grad_value_", make)


@mutant(breaks="optim.clip_grad.value")
def clip_grad_value_skips_the_last_parameter(mp):
    def make(orig):
        def clip(parameters, clip_value, *args, **kwargs):
            params, _ = _grads(parameters)
            with_grad = [p for p in params if p.grad is not None]
            return orig(with_grad[:-1] if len(with_grad) > 1 else with_grad, clip_value,
                        *args, **kwargs)
        return clip
    wrap(mp, U, "clip_grad_value_", make)


# -- get_total_norm / clip_grads_with_norm_ (2.6) ---------------------------------------------

@mutant(breaks="optim.clip_grad.split_functions")
def get_total_norm_type_ignored(mp):
    def make(orig):
        def get_total_norm(tensors, norm_type=2.0, *args, **kwargs):
            return orig(tensors, 2.0, *args, **kwargs)
        return get_total_norm
    if hasattr(U, "get_total_norm"):
        wrap(mp, U, "get_total_norm", make)


@mutant(breaks="optim.clip_grad.split_functions")
def clip_grads_with_norm_not_clamped(mp):
    def make(orig):
        def clip(parameters, max_norm, total_norm, foreach=None):
            _, grads = _grads(parameters)
            with torch.no_grad():
                for g in grads:
                    g.mul_(max_norm / (total_norm + 1e-6))
        return clip
    if hasattr(U, "clip_grads_with_norm_"):
        wrap(mp, U, "clip_grads_with_norm_", make)


# -- parameters_to_vector / vector_to_parameters ----------------------------------------------

@mutant(breaks="optim.param_vector.parameters_to_vector")
def parameters_to_vector_reversed(mp):
    wrap(mp, U, "parameters_to_vector", lambda orig: lambda parameters: orig(
        list(parameters)[::-1]))


@mutant(breaks="optim.param_vector.parameters_to_vector")
def parameters_to_vector_column_major(mp):
    # Each parameter flattened column-major (its transpose's order) instead of row-major.
    wrap(mp, U, "parameters_to_vector", lambda orig: lambda parameters: torch.cat(
        [p.detach().permute(*reversed(range(p.dim()))).reshape(-1) for p in parameters]))


@mutant(breaks="optim.param_vector.vector_to_parameters")
def vector_to_parameters_fills_in_reverse(mp):
    # The first slice goes to the last parameter, and so on backwards.
    def vector_to_parameters(vec, parameters):
        pointer = 0
        for p in reversed(list(parameters)):
            n = p.numel()
            p.data = vec[pointer:pointer + n].view_as(p).data
            pointer += n
    mp.setattr(U, "vector_to_parameters", vector_to_parameters)


@mutant(breaks="optim.param_vector.vector_to_parameters")
def vector_to_parameters_freezes_them(mp):
    def make(orig):
        def vector_to_parameters(vec, parameters):
            params = list(parameters)
            orig(vec, params)
            for p in params:
                p.requires_grad_(False)
        return vector_to_parameters
    wrap(mp, U, "vector_to_parameters", make)
