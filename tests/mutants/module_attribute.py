"""Mutants of nn.Module attribute semantics: del, reassignment, None slots and dir()."""

from __future__ import annotations

import torch
from torch import nn

from . import mutant, wrap

M = nn.Module


def _slot(module, kind):
    return module.__dict__.get(kind, {})


@mutant(breaks="module.attribute.del_parameter_unregisters")
def del_parameter_leaves_a_none_slot(mp):
    wrap(mp, M, "__delattr__", lambda orig: lambda self, name: (
        _slot(self, "_parameters").__setitem__(name, None)
        if name in _slot(self, "_parameters") else orig(self, name)))


@mutant(breaks="module.attribute.del_buffer_unregisters")
def del_buffer_ignored(mp):
    wrap(mp, M, "__delattr__", lambda orig: lambda self, name: (
        None if name in _slot(self, "_buffers") else orig(self, name)))


@mutant(breaks="module.attribute.del_child_unregisters")
def del_child_keeps_it_as_a_plain_attribute(mp):
    def make(orig):
        def delattr_(self, name):
            children = _slot(self, "_modules")
            if name in children:
                child = children.pop(name)
                object.__setattr__(self, name, child)
                return
            orig(self, name)
        return delattr_
    wrap(mp, M, "__delattr__", make)


@mutant(breaks="module.attribute.parameter_slot_rejects_non_parameter")
def tensor_over_parameter_is_wrapped(mp):
    wrap(mp, M, "__setattr__", lambda orig: lambda self, name, value: orig(
        self, name, nn.Parameter(value) if type(value) is torch.Tensor
        and name in _slot(self, "_parameters") else value))


@mutant(breaks="module.attribute.child_slot_rejects_non_module")
def non_module_over_child_replaces_it(mp):
    def make(orig):
        def setattr_(self, name, value):
            children = _slot(self, "_modules")
            if name in children and value is not None and not isinstance(value, M):
                del children[name]
                object.__setattr__(self, name, value)
                return
            orig(self, name, value)
        return setattr_
    wrap(mp, M, "__setattr__", make)


@mutant(breaks="module.attribute.buffer_slot_rejects_non_tensor")
def non_tensor_over_buffer_converted(mp):
    wrap(mp, M, "__setattr__", lambda orig: lambda self, name, value: orig(
        self, name, torch.tensor(value) if name in _slot(self, "_buffers")
        and value is not None and not isinstance(value, torch.Tensor) else value))


@mutant(breaks="module.attribute.none_keeps_slot")
def none_assignment_unregisters(mp):
    def make(orig):
        def setattr_(self, name, value):
            if value is None:
                for kind in ("_parameters", "_buffers", "_modules"):
                    if name in _slot(self, kind):
                        del _slot(self, kind)[name]
                        object.__setattr__(self, name, None)
                        return
            orig(self, name, value)
        return setattr_
    wrap(mp, M, "__setattr__", make)


@mutant(breaks="module.attribute.parameter_replaces_other_kinds")
def parameter_over_buffer_stays_a_buffer(mp):
    def make(orig):
        def setattr_(self, name, value):
            if isinstance(value, nn.Parameter) and name in _slot(self, "_buffers"):
                self._buffers[name] = value
                return
            orig(self, name, value)
        return setattr_
    wrap(mp, M, "__setattr__", make)


@mutant(breaks="module.attribute.dir_lists_members")
def dir_omits_buffers(mp):
    wrap(mp, M, "__dir__", lambda orig: lambda self: [
        k for k in orig(self) if k not in _slot(self, "_buffers")])
