"""Mutants of module copies: deepcopy, pickling, torch.save/torch.load."""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from . import mutant, wrap


@mutant(breaks="module.copy.deepcopy_independent")
def deepcopy_parameters_share_storage(mp):
    def deepcopy(self, memo):
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.data, self.requires_grad)
        return memo[id(self)]
    mp.setattr(nn.Parameter, "__deepcopy__", deepcopy)


@mutant(breaks="module.copy.deepcopy_keeps_sharing")
def deepcopy_copies_each_child_on_its_own(mp):
    """Each submodule is deep-copied with a fresh memo: what children shared is duplicated."""
    def deepcopy(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key == "_modules":
                value = OrderedDict((n, copy.deepcopy(c, {})) for n, c in value.items())
            else:
                value = copy.deepcopy(value, memo)
            new.__dict__[key] = value
        return new
    mp.setattr(nn.Module, "__deepcopy__", deepcopy, raising=False)


@mutant(breaks="module.copy.deepcopy_copies_hooks")
def copies_lose_hooks(mp):
    def make(orig):
        def setstate(self, state):
            orig(self, state)
            self._forward_hooks = OrderedDict()
            self._forward_pre_hooks = OrderedDict()
        return setstate
    wrap(mp, nn.Module, "__setstate__", make)


@mutant(breaks="module.copy.pickle_round_trip")
def unpickled_modules_in_training_mode(mp):
    def make(orig):
        def setstate(self, state):
            orig(self, state)
            self.training = True
        return setstate
    wrap(mp, nn.Module, "__setstate__", make)


@mutant(breaks="module.copy.weights_only_state_dict")
def weights_only_load_copies_each_tensor(mp):
    """Storage sharing of the saved tensors is lost on a weights_only load."""
    def make(orig):
        def load(*args, **kwargs):
            result = orig(*args, **kwargs)
            if kwargs.get("weights_only") and isinstance(result, OrderedDict):
                for key, value in list(result.items()):
                    result[key] = value.clone()
            return result
        return load
    wrap(mp, torch, "load", make)


@mutant(breaks="module.copy.save_whole_module")
def loaded_module_unties_weights(mp):
    def make(orig):
        def load(*args, **kwargs):
            result = orig(*args, **kwargs)
            if isinstance(result, nn.Module):
                for module in result.modules():
                    for name, p in list(module._parameters.items()):
                        if p is not None:
                            module._parameters[name] = nn.Parameter(
                                p.detach().clone(), p.requires_grad)
            return result
        return load
    wrap(mp, torch, "load", make)


@mutant(breaks="module.copy.pickle_round_trip")
def pickle_drops_non_persistent_buffers(mp):
    # Pickles only what a state_dict would hold: the non-persistent buffers are lost.
    def make(orig):
        def getstate(self):
            state = orig(self)
            state["_buffers"] = {k: v for k, v in state["_buffers"].items()
                                 if k not in self._non_persistent_buffers_set}
            state["_non_persistent_buffers_set"] = set()
            return state
        return getstate
    wrap(mp, nn.Module, "__getstate__", make)
