"""Mutants of the container modules (Sequential, ModuleList, ModuleDict, ParameterList,
ParameterDict) and of the rule that plain lists of modules are not registered."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import mutant, wrap


@mutant(breaks="module.container.sequential_chains_in_order")
def sequential_runs_backwards(mp):
    def forward(self, input):
        for module in reversed(list(self)):
            input = module(input)
        return input
    mp.setattr(nn.Sequential, "forward", forward)


@mutant(breaks="module.container.sequential_indexing")
def sequential_negative_index_off_by_one(mp):
    wrap(mp, nn.Sequential, "__getitem__", lambda orig: lambda self, idx: orig(
        self, idx - 1 if isinstance(idx, int) and idx < 0 and idx - 1 >= -len(self) else idx))


@mutant(breaks="module.container.sequential_slice")
def sequential_slice_renumbers(mp):
    wrap(mp, nn.Sequential, "__getitem__", lambda orig: lambda self, idx: (
        nn.Sequential(*list(orig(self, idx))) if isinstance(idx, slice) else orig(self, idx)))


@mutant(breaks="module.container.sequential_append_insert_extend")
def sequential_del_keeps_old_names(mp):
    def delitem(self, idx):
        if isinstance(idx, slice):
            for key in list(self._modules.keys())[idx]:
                delattr(self, key)
        else:
            delattr(self, list(self._modules.keys())[idx])
    mp.setattr(nn.Sequential, "__delitem__", delitem)


@mutant(breaks="module.container.sequential_names")
def sequential_names_from_one(mp):
    def make(orig):
        def init(self, *args):
            orig(self, *args)
            if not (len(args) == 1 and isinstance(args[0], OrderedDict)):
                self._modules = OrderedDict(
                    (str(int(k) + 1), m) for k, m in self._modules.items())
        return init
    wrap(mp, nn.Sequential, "__init__", make)


@mutant(breaks="module.container.modulelist_registration")
def modulelist_children_skipped_by_apply(mp):
    mp.setattr(nn.ModuleList, "_apply", lambda self, fn, *args, **kwargs: self)


@mutant(breaks="module.container.modulelist_mutation")
def modulelist_del_keeps_old_names(mp):
    def delitem(self, idx):
        if isinstance(idx, slice):
            for k in range(len(self._modules))[idx]:
                delattr(self, str(k))
        else:
            delattr(self, list(self._modules.keys())[idx])
    mp.setattr(nn.ModuleList, "__delitem__", delitem)


@mutant(breaks="module.container.moduledict_registration")
def moduledict_keys_sorted(mp):
    mp.setattr(nn.ModuleDict, "keys", lambda self: sorted(self._modules.keys()))


@mutant(breaks="module.container.moduledict_mutation")
def moduledict_update_moves_existing_keys_to_the_end(mp):
    def make(orig):
        def update(self, modules):
            pairs = list(modules.items()) if hasattr(modules, "items") else list(modules)
            for key, module in pairs:
                if key in self._modules:
                    del self[key]
                self[key] = module
        return update
    wrap(mp, nn.ModuleDict, "update", make)


@mutant(breaks="module.container.parameterlist_registration")
def parameterlist_rewraps_parameters(mp):
    """Every value becomes a fresh Parameter: given Parameters lose identity and frozenness."""
    wrap(mp, nn.ParameterList, "__setitem__", lambda orig: lambda self, idx, param: orig(
        self, idx, nn.Parameter(param.detach()) if isinstance(param, torch.Tensor) else param))


@mutant(breaks="module.container.parameterdict_registration")
def parameterdict_del_leaves_parameter_registered(mp):
    mp.setattr(nn.ParameterDict, "__delitem__", lambda self, key: self._keys.pop(key))


@mutant(breaks="module.container.plain_list_not_registered")
def plain_lists_of_modules_registered(mp):
    def make(orig):
        def setattr_(self, name, value):
            if (isinstance(value, list) and value
                    and all(isinstance(v, nn.Module) for v in value)):
                value = nn.ModuleList(value)
            orig(self, name, value)
        return setattr_
    wrap(mp, nn.Module, "__setattr__", make)


@mutant(breaks="module.container.parameterdict_methods")
def parameterdict_setdefault_overwrites(mp):
    def setdefault(self, key, default=None):
        self[key] = default  # forgets to check whether the key is already there
        return self[key]
    mp.setattr(nn.ParameterDict, "setdefault", setdefault)


@mutant(breaks="module.container.moduledict_registration")
def moduledict_constructor_sorts_keys(mp):
    def make(orig):
        def init(self, modules=None):
            if isinstance(modules, dict):  # "normalizes" the keys into sorted order
                modules = OrderedDict(sorted(modules.items()))
            orig(self, modules)
        return init
    wrap(mp, nn.ModuleDict, "__init__", make)
