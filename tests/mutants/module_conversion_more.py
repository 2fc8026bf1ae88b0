"""Mutants of the dtype conversions (module.dtype_conversion) and of memory placement
(module.memory: channels_last, to_empty, share_memory)."""

from __future__ import annotations

import torch
from torch import nn

from . import mutant, wrap

M = nn.Module


def _dtypes(args, kwargs):
    return [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.dtype)]


# -- dtype_conversion ------------------------------------------------------------------------

@mutant(breaks="module.dtype_conversion.bfloat16")
def bfloat16_casts_integer_buffers(mp):
    mp.setattr(M, "bfloat16", lambda self: self._apply(lambda t: t.bfloat16()))


@mutant(breaks="module.dtype_conversion.type_casts_everything")
def type_skips_integer_buffers(mp):
    mp.setattr(M, "type", lambda self, dst_type: self._apply(
        lambda t: t.type(dst_type) if t.is_floating_point() else t))


@mutant(breaks="module.dtype_conversion.to_complex")
def to_complex_dtype_ignored(mp):
    wrap(mp, M, "to", lambda orig: lambda self, *args, **kwargs: (
        self if any(d.is_complex for d in _dtypes(args, kwargs)) else orig(self, *args, **kwargs)))


@mutant(breaks="module.dtype_conversion.to_rejects_integer_dtype")
def to_integer_dtype_ignored(mp):
    wrap(mp, M, "to", lambda orig: lambda self, *args, **kwargs: (
        self if any(not (d.is_floating_point or d.is_complex) for d in _dtypes(args, kwargs))
        else orig(self, *args, **kwargs)))


@mutant(breaks="module.dtype_conversion.parameter_identity_kept")
def conversions_make_new_parameters(mp):
    def make(orig):
        def apply(self, fn, *args, **kwargs):
            result = orig(self, fn, *args, **kwargs)
            for name, p in list(self._parameters.items()):
                if p is not None:
                    new = nn.Parameter(p.detach(), p.requires_grad)
                    new.grad = p.grad
                    self._parameters[name] = new
            return result
        return apply
    wrap(mp, M, "_apply", make)


@mutant(breaks="module.dtype_conversion.overwrite_flag_new_parameters")
def overwrite_flag_ignored(mp):
    mp.setattr(torch.__future__, "get_overwrite_module_params_on_conversion", lambda: False)


# -- memory ----------------------------------------------------------------------------------

@mutant(breaks="module.memory.channels_last")
def memory_format_ignored(mp):
    def make(orig):
        def to(self, *args, **kwargs):
            kwargs.pop("memory_format", None)
            return orig(self, *args, **kwargs) if args or kwargs else self
        return to
    wrap(mp, M, "to", make)


@mutant(breaks="module.memory.to_empty")
def to_empty_moves_parameters_only(mp):
    def to_empty(self, *, device, recurse=True):
        for module in self.modules() if recurse else [self]:
            for p in module._parameters.values():
                if p is not None:
                    p.data = torch.empty_like(p, device=device)
        return self
    mp.setattr(M, "to_empty", to_empty)


@mutant(breaks="module.memory.to_empty_recurse")
def to_empty_always_recurses(mp):
    wrap(mp, M, "to_empty", lambda orig: lambda self, *, device, recurse=True: orig(
        self, device=device))


@mutant(breaks="module.memory.share_memory")
def share_memory_parameters_only(mp):
    def share_memory(self):
        for p in self.parameters():
            p.share_memory_()
        return self
    mp.setattr(M, "share_memory", share_memory)
