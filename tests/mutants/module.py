"""Mutants of nn.Module, nn.Parameter and buffers: one broken behavior each."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import torch
from torch import nn

from torchconform.versions import torch_at_least

from . import mutant, wrap

M = nn.Module


def _initialized(module) -> bool:
    return "_parameters" in module.__dict__


# -- init ----------------------------------------------------------------------------------

@mutant(breaks="module.init.parameter_before_init_raises")
def parameter_assignable_before_init(mp):
    wrap(mp, M, "__setattr__", lambda orig: lambda self, name, value: (
        object.__setattr__(self, name, value)
        if isinstance(value, nn.Parameter) and not _initialized(self)
        else orig(self, name, value)))


@mutant(breaks="module.init.submodule_before_init_raises")
def submodule_assignable_before_init(mp):
    wrap(mp, M, "__setattr__", lambda orig: lambda self, name, value: (
        object.__setattr__(self, name, value)
        if isinstance(value, nn.Module) and not _initialized(self)
        else orig(self, name, value)))


@mutant(breaks="module.init.register_buffer_before_init_raises")
def register_buffer_before_init_is_silent(mp):
    wrap(mp, M, "register_buffer", lambda orig: lambda self, name, tensor, persistent=True: (
        object.__setattr__(self, name, tensor) if not _initialized(self)
        else orig(self, name, tensor, persistent)))


@mutant(breaks="module.init.register_parameter_before_init_raises")
def register_parameter_before_init_is_silent(mp):
    wrap(mp, M, "register_parameter", lambda orig: lambda self, name, param: (
        object.__setattr__(self, name, param) if not _initialized(self)
        else orig(self, name, param)))


@mutant(breaks="module.init.plain_attributes_before_init_allowed")
def plain_attribute_before_init_raises(mp):
    def make(orig):
        def setattr_(self, name, value):
            if not _initialized(self) and not name.startswith("_") and name != "training":
                raise AttributeError(f"cannot assign {name!r} before Module.__init__() call")
            orig(self, name, value)
        return setattr_
    wrap(mp, M, "__setattr__", make)


@mutant(breaks="module.init.plain_attributes_before_init_allowed")
def init_discards_earlier_attributes(mp):
    def make(orig):
        def init(self, *args, **kwargs):
            for key in [k for k in self.__dict__ if not k.startswith("_")]:
                del self.__dict__[key]
            orig(self, *args, **kwargs)
        return init
    wrap(mp, M, "__init__", make)


@mutant(breaks="module.init.skipped_super_not_callable")
def uninitialized_module_callable(mp):
    wrap(mp, M, "__call__", lambda orig: lambda self, *a, **k: (
        self.forward(*a, **k) if not _initialized(self) else orig(self, *a, **k)))


@mutant(breaks="module.init.fresh_state")
def fresh_module_in_eval_mode(mp):
    def make(orig):
        def init(self, *args, **kwargs):
            orig(self, *args, **kwargs)
            object.__setattr__(self, "training", False)
        return init
    wrap(mp, M, "__init__", make)


# -- parameters ----------------------------------------------------------------------------

def _patch_parameter_new(mp, decide):
    """Replace Parameter.__new__ with one that passes requires_grad=decide(data, asked)."""
    original = nn.Parameter.__new__

    def new(cls, data=None, requires_grad=True):
        return original(cls, data, decide(data, requires_grad))

    mp.setattr(nn.Parameter, "__new__", staticmethod(new))


@mutant(breaks="module.parameter.requires_grad_default")
def parameter_defaults_to_no_grad(mp):
    original = nn.Parameter.__new__

    def new(cls, data=None, requires_grad=False):
        return original(cls, data, requires_grad)

    mp.setattr(nn.Parameter, "__new__", staticmethod(new))


@mutant(breaks="module.parameter.requires_grad_false_honored")
def parameter_ignores_requires_grad_false(mp):
    _patch_parameter_new(mp, lambda data, asked: True)


@mutant(breaks="module.parameter.requires_grad_under_no_grad")
def parameter_follows_grad_mode(mp):
    _patch_parameter_new(mp, lambda data, asked: asked and torch.is_grad_enabled())


@mutant(breaks="module.parameter.integer_dtype_rejected")
def parameter_accepts_integers(mp):
    _patch_parameter_new(mp, lambda data, asked: asked and (
        data is None or data.is_floating_point() or data.is_complex()))


@mutant(breaks="module.parameter.is_tensor_subclass")
def parameter_copies_data_to_float64(mp):
    original = nn.Parameter.__new__

    def new(cls, data=None, requires_grad=True):
        if data is not None and data.is_floating_point():
            data = data.double()
        return original(cls, data, requires_grad)

    mp.setattr(nn.Parameter, "__new__", staticmethod(new))


@mutant(breaks="module.parameter.assignment_registers_in_order")
def parameters_listed_in_reverse(mp):
    def make(orig):
        def named_parameters(self, *args, **kwargs):
            return iter(list(orig(self, *args, **kwargs))[::-1])
        return named_parameters
    wrap(mp, M, "named_parameters", make)


@mutant(breaks="module.parameter.plain_tensor_not_registered")
def plain_float_tensors_become_parameters(mp):
    def make(orig):
        def setattr_(self, name, value):
            if (type(value) is torch.Tensor and _initialized(self) and value.is_floating_point()
                    and name not in self._buffers):
                value = nn.Parameter(value)
            orig(self, name, value)
        return setattr_
    wrap(mp, M, "__setattr__", make)


@mutant(breaks="module.parameter.plain_tensor_not_saved")
def state_dict_saves_plain_tensors(mp):
    def make(orig):
        def save(self, destination, prefix, keep_vars):
            orig(self, destination, prefix, keep_vars)
            for name, value in self.__dict__.items():
                if type(value) is torch.Tensor:
                    destination[prefix + name] = value
        return save
    wrap(mp, M, "_save_to_state_dict", make)


@mutant(breaks="module.parameter.plain_tensor_not_optimized")
def optimizer_steps_plain_tensors_too(mp):
    def make(orig):
        def parameters(self, recurse=True):
            yield from orig(self, recurse)
            for value in list(self.__dict__.values()):
                if type(value) is torch.Tensor and value.requires_grad:
                    yield value
        return parameters
    wrap(mp, M, "parameters", make)


@mutant(breaks="module.parameter.parameters_iterates_all")
def parameters_ignore_children(mp):
    wrap(mp, M, "parameters", lambda orig: lambda self, recurse=True: orig(self, False))


@mutant(breaks="module.parameter.named_parameters_dotted")
def named_parameters_drop_prefix(mp):
    wrap(mp, M, "named_parameters", lambda orig: lambda self, *a, **k: (
        (name.rsplit(".", 1)[-1], p) for name, p in orig(self, *a, **k)))


@mutant(breaks="module.parameter.named_parameters_recurse_false")
def named_parameters_always_recurse(mp):
    def make(orig):
        def named_parameters(self, prefix="", recurse=True, **kwargs):
            return orig(self, prefix, True, **kwargs)
        return named_parameters
    wrap(mp, M, "named_parameters", make)


@mutant(breaks="module.parameter.named_parameters_prefix")
def named_parameters_prefix_ignored(mp):
    wrap(mp, M, "named_parameters", lambda orig: lambda self, prefix="", *a, **k: orig(
        self, "", *a, **k))


@mutant(breaks="module.parameter.requires_grad_recursive")
def requires_grad_own_parameters_only(mp):
    def make(orig):
        def requires_grad_(self, requires_grad=True):
            for p in self.parameters(recurse=False):
                p.requires_grad_(requires_grad)
            return self
        return requires_grad_
    wrap(mp, M, "requires_grad_", make)



@mutant(breaks="module.parameter.shared_yielded_once")
def shared_parameters_yielded_twice(mp):
    def make(orig):
        def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
            return orig(self, prefix, recurse, remove_duplicate=False)
        return named_parameters
    wrap(mp, M, "named_parameters", make)


@mutant(breaks="module.parameter.remove_duplicate_false")
def remove_duplicate_false_ignored(mp):
    def make(orig):
        def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
            return orig(self, prefix, recurse, remove_duplicate=True)
        return named_parameters
    wrap(mp, M, "named_parameters", make)


@mutant(breaks="module.parameter.get_parameter")
def get_parameter_returns_a_copy(mp):
    wrap(mp, M, "get_parameter", lambda orig: lambda self, target: nn.Parameter(
        orig(self, target).detach().clone()))


@mutant(breaks="module.parameter.get_parameter_errors")
def get_parameter_returns_none_when_missing(mp):
    def make(orig):
        def get_parameter(self, target):
            try:
                return orig(self, target)
            except AttributeError:
                return None
        return get_parameter
    wrap(mp, M, "get_parameter", make)


@mutant(breaks="module.parameter.register_rejects_bad_name")
def register_parameter_accepts_dotted_names(mp):
    def make(orig):
        def register(self, name, param):
            if isinstance(name, str) and ("." in name or name == ""):
                self._parameters[name] = param
                return
            orig(self, name, param)
        return register
    wrap(mp, M, "register_parameter", make)


@mutant(breaks="module.parameter.register_rejects_non_str_name")
def register_parameter_stringifies_names(mp):
    wrap(mp, M, "register_parameter", lambda orig: lambda self, name, param: orig(
        self, str(name), param))


@mutant(breaks="module.parameter.register_rejects_non_parameter")
def register_parameter_wraps_tensors(mp):
    wrap(mp, M, "register_parameter", lambda orig: lambda self, name, param: orig(
        self, name, nn.Parameter(param) if type(param) is torch.Tensor else param))


@mutant(breaks="module.parameter.register_none")
def register_parameter_none_makes_empty_parameter(mp):
    wrap(mp, M, "register_parameter", lambda orig: lambda self, name, param: orig(
        self, name, nn.Parameter(torch.empty(0)) if param is None else param))


# -- buffers -------------------------------------------------------------------------------

@mutant(breaks="module.buffer.register_makes_attribute")
def register_buffer_stores_a_copy(mp):
    wrap(mp, M, "register_buffer", lambda orig: lambda self, name, tensor, persistent=True: orig(
        self, name, tensor.clone() if isinstance(tensor, torch.Tensor) else tensor, persistent))


@mutant(breaks="module.buffer.not_a_parameter")
def buffers_require_grad(mp):
    wrap(mp, M, "register_buffer", lambda orig: lambda self, name, tensor, persistent=True: orig(
        self, name, tensor.requires_grad_() if isinstance(tensor, torch.Tensor)
        and tensor.is_floating_point() else tensor, persistent))


@mutant(breaks="module.buffer.named_buffers_dotted")
def named_buffers_drop_prefix(mp):
    wrap(mp, M, "named_buffers", lambda orig: lambda self, *a, **k: (
        (name.rsplit(".", 1)[-1], b) for name, b in orig(self, *a, **k)))


@mutant(breaks="module.buffer.named_buffers_dotted")
def buffers_ignore_children(mp):
    wrap(mp, M, "buffers", lambda orig: lambda self, recurse=True: orig(self, False))


@mutant(breaks="module.buffer.recurse_false")
def named_buffers_always_recurse(mp):
    def make(orig):
        def named_buffers(self, prefix="", recurse=True, **kwargs):
            return orig(self, prefix, True, **kwargs)
        return named_buffers
    wrap(mp, M, "named_buffers", make)


@mutant(breaks="module.buffer.named_buffers_prefix")
def named_buffers_prefix_ignored(mp):
    wrap(mp, M, "named_buffers", lambda orig: lambda self, prefix="", *a, **k: orig(
        self, "", *a, **k))



@mutant(breaks="module.buffer.get_buffer_errors")
def get_buffer_accepts_parameters(mp):
    def make(orig):
        def get_buffer(self, target):
            try:
                return orig(self, target)
            except AttributeError:
                owner_path, _, name = target.rpartition(".")
                owner = self.get_submodule(owner_path)
                return getattr(owner, name)
        return get_buffer
    wrap(mp, M, "get_buffer", make)


@mutant(breaks="module.buffer.reassignment_updates_buffer")
def buffer_reassignment_unregisters(mp):
    def make(orig):
        def setattr_(self, name, value):
            buffers = self.__dict__.get("_buffers")
            if buffers is not None and name in buffers and isinstance(value, torch.Tensor):
                del buffers[name]
                object.__setattr__(self, name, value)
                return
            orig(self, name, value)
        return setattr_
    wrap(mp, M, "__setattr__", make)


@mutant(breaks="module.buffer.reassignment_updates_buffer")
def buffer_reassignment_makes_it_persistent(mp):
    def make(orig):
        def setattr_(self, name, value):
            orig(self, name, value)
            if isinstance(value, torch.Tensor) and name in self.__dict__.get("_buffers", {}):
                self._non_persistent_buffers_set.discard(name)
        return setattr_
    wrap(mp, M, "__setattr__", make)


@mutant(breaks="module.buffer.register_rejects_bad_name")
def register_buffer_accepts_dotted_names(mp):
    def make(orig):
        def register(self, name, tensor, persistent=True):
            if isinstance(name, str) and ("." in name or name == ""):
                self._buffers[name] = tensor
                return
            orig(self, name, tensor, persistent)
        return register
    wrap(mp, M, "register_buffer", make)


@mutant(breaks="module.buffer.register_rejects_non_str_name")
def register_buffer_stringifies_names(mp):
    wrap(mp, M, "register_buffer", lambda orig: lambda self, name, tensor, persistent=True: orig(
        self, str(name), tensor, persistent))


@mutant(breaks="module.buffer.register_rejects_non_tensor")
def register_buffer_converts_values(mp):
    wrap(mp, M, "register_buffer", lambda orig: lambda self, name, tensor, persistent=True: orig(
        self, name, tensor if tensor is None or isinstance(tensor, torch.Tensor)
        else torch.zeros(1), persistent))


@mutant(breaks="module.buffer.remove_duplicate_false")
def named_buffers_remove_duplicate_ignored(mp):
    def make(orig):
        def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
            return orig(self, prefix, recurse, remove_duplicate=True)
        return named_buffers
    wrap(mp, M, "named_buffers", make)


@mutant(breaks="module.buffer.remove_duplicate_false")
def named_buffers_never_removes_duplicates(mp):
    def make(orig):
        def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
            return orig(self, prefix, recurse, remove_duplicate=False)
        return named_buffers
    wrap(mp, M, "named_buffers", make)


@mutant(breaks="module.buffer.buffer_assignment_registers")
def nn_buffer_assignment_is_a_plain_attribute(mp):
    wrap(mp, M, "__setattr__", lambda orig: lambda self, name, value: (
        object.__setattr__(self, name, value)
        if isinstance(value, nn.Buffer) and name not in self._buffers
        else orig(self, name, value)))


@mutant(breaks="module.buffer.buffer_assignment_registers")
def nn_buffer_persistent_flag_ignored(mp):
    wrap(mp, M, "__setattr__", lambda orig: lambda self, name, value: (
        self.register_buffer(name, value) if isinstance(value, nn.Buffer)
        else orig(self, name, value)))


# -- state_dict ----------------------------------------------------------------------------

def _wrap_save(mp, after):
    def make(orig):
        def save(self, destination, prefix, keep_vars):
            orig(self, destination, prefix, keep_vars)
            after(self, destination, prefix, keep_vars)
        return save
    wrap(mp, M, "_save_to_state_dict", make)


@mutant(breaks="module.state_dict.keys")
def state_dict_drops_buffers(mp):
    def drop(self, destination, prefix, keep_vars):
        for name in self._buffers:
            destination.pop(prefix + name, None)
    _wrap_save(mp, drop)


@mutant(breaks="module.state_dict.keys")
def state_dict_keys_sorted(mp):
    def make(orig):
        def state_dict(self, *args, **kwargs):
            result = orig(self, *args, **kwargs)
            if kwargs.get("prefix", "") == "" and len(args) == 0:
                return OrderedDict(sorted(result.items()))
            return result
        return state_dict
    wrap(mp, M, "state_dict", make)


@mutant(breaks="module.state_dict.prefix")
def state_dict_prefix_ignored_by_the_caller(mp):
    """The prefix a user passes is dropped; the recursion into children (which passes a
    destination) still prefixes."""
    def make(orig):
        def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
            if destination is None:
                prefix = ""
            return orig(self, *args, destination=destination, prefix=prefix,
                        keep_vars=keep_vars)
        return state_dict
    wrap(mp, M, "state_dict", make)



@mutant(breaks="module.state_dict.detached_by_default")
def state_dict_keeps_vars(mp):
    def make(orig):
        def save(self, destination, prefix, keep_vars):
            orig(self, destination, prefix, True)
        return save
    wrap(mp, M, "_save_to_state_dict", make)


@mutant(breaks="module.state_dict.detached_by_default")
def state_dict_copies_values(mp):
    def copy(self, destination, prefix, keep_vars):
        for name, p in self._parameters.items():
            if p is not None and not keep_vars:
                destination[prefix + name] = p.detach().clone()
    _wrap_save(mp, copy)


@mutant(breaks="module.state_dict.detached_by_default")
def state_dict_copies_buffers(mp):
    """Parameters stay references; buffers (at every depth) are saved as copies."""
    def copy(self, destination, prefix, keep_vars):
        for name, b in self._buffers.items():
            if prefix + name in destination and not keep_vars:
                destination[prefix + name] = b.detach().clone()
    _wrap_save(mp, copy)


@mutant(breaks="module.state_dict.keep_vars")
def state_dict_ignores_keep_vars(mp):
    def make(orig):
        def save(self, destination, prefix, keep_vars):
            orig(self, destination, prefix, False)
        return save
    wrap(mp, M, "_save_to_state_dict", make)


@mutant(breaks="module.state_dict.excludes_non_persistent_buffers")
def state_dict_saves_non_persistent_buffers(mp):
    def add(self, destination, prefix, keep_vars):
        for name in self._non_persistent_buffers_set:
            if self._buffers.get(name) is not None:
                destination[prefix + name] = self._buffers[name]
    _wrap_save(mp, add)


@mutant(breaks="module.state_dict.excludes_none_and_plain_tensors")
def state_dict_saves_none_entries(mp):
    def add(self, destination, prefix, keep_vars):
        for name, value in list(self._parameters.items()) + list(self._buffers.items()):
            if value is None:
                destination[prefix + name] = torch.empty(0)
    _wrap_save(mp, add)


@mutant(breaks="module.state_dict.load_restores")
def load_state_dict_loads_nothing(mp):
    wrap(mp, M, "_load_from_state_dict", lambda orig: lambda self, *args, **kwargs: None)


@mutant(breaks="module.state_dict.load_restores")
def load_state_dict_replaces_parameter_objects(mp):
    def make(orig):
        def load(self, state_dict, strict=True, **kwargs):
            for name, value in state_dict.items():
                owner_path, _, leaf = name.rpartition(".")
                try:
                    owner = self.get_submodule(owner_path)
                except AttributeError:
                    continue
                if leaf in owner._parameters:
                    owner._parameters[leaf] = nn.Parameter(value.clone())
            return orig(self, state_dict, strict=strict, **kwargs)
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.load_restores")
def copy_load_skips_integer_buffers(mp):
    """A copying load puts the old values of integer buffers back; floating state loads."""
    def make(orig):
        def load(self, state_dict, *args, **kwargs):
            ints = [(b, b.clone()) for b in self.buffers() if not b.is_floating_point()]
            result = orig(self, state_dict, *args, **kwargs)
            if not kwargs.get("assign", False):
                with torch.no_grad():
                    for b, old in ints:
                        b.copy_(old)
            return result
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.load_restores")
def copy_load_unfreezes_parameters(mp):
    def make(orig):
        def load(self, state_dict, *args, **kwargs):
            result = orig(self, state_dict, *args, **kwargs)
            if not kwargs.get("assign", False):
                for p in self.parameters():
                    p.requires_grad_(True)
            return result
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.strict_raises")
def load_ignores_unknown_keys_under_submodules(mp):
    """Unknown keys under a submodule ("sub1.extra") are dropped silently; top-level ones count."""
    def make(orig):
        def load(self, state_dict, *args, **kwargs):
            own = self.state_dict()
            paths = {name for name, _ in self.named_modules() if name}
            kept = OrderedDict((k, v) for k, v in state_dict.items()
                               if k in own or k.rpartition(".")[0] not in paths)
            return orig(self, kept, *args, **kwargs)
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.strict_raises")
def strict_load_never_raises(mp):
    wrap(mp, M, "load_state_dict", lambda orig: lambda self, state_dict, strict=True, **k: orig(
        self, state_dict, strict=False, **k))


@mutant(breaks="module.state_dict.non_strict_returns_keys")
def non_strict_load_reports_nothing(mp):
    def make(orig):
        def load(self, state_dict, strict=True, **kwargs):
            result = orig(self, state_dict, strict=strict, **kwargs)
            return type(result)([], [])
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.non_strict_returns_keys")
def non_strict_load_skips_buffers(mp):
    """strict=False loads the parameters only and does not report the buffers it skipped."""
    def make(orig):
        def load(self, state_dict, strict=True, **kwargs):
            if strict:
                return orig(self, state_dict, strict=strict, **kwargs)
            buffers = {name for name, _ in self.named_buffers()}
            kept = OrderedDict((k, v) for k, v in state_dict.items() if k not in buffers)
            result = orig(self, kept, strict=strict, **kwargs)
            return type(result)([k for k in result.missing_keys if k not in buffers],
                                result.unexpected_keys)
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.shape_mismatch_raises")
def load_ignores_shape_mismatch(mp):
    def make(orig):
        def load(self, state_dict, strict=True, **kwargs):
            own = self.state_dict()
            kept = OrderedDict((k, v) for k, v in state_dict.items()
                               if k not in own or own[k].shape == v.shape)
            return orig(self, kept, strict=False, **kwargs)
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.save_load_round_trip")
def torch_load_loses_precision(mp):
    def make(orig):
        def load(*args, **kwargs):
            result = orig(*args, **kwargs)
            if isinstance(result, dict):
                return OrderedDict((k, v.half().to(v.dtype) if v.is_floating_point() else v)
                                   for k, v in result.items())
            return result
        return load
    wrap(mp, torch, "load", make)


@mutant(breaks="module.state_dict.load_assign")
def load_assign_copies_instead(mp):
    def make(orig):
        def load(self, state_dict, strict=True, assign=False):
            return orig(self, state_dict, strict=strict)
        return load
    wrap(mp, M, "load_state_dict", make)


@mutant(breaks="module.state_dict.load_assign")
def load_assign_takes_requires_grad_from_the_state_dict(mp):
    def make(orig):
        def load(self, state_dict, strict=True, assign=False):
            result = orig(self, state_dict, strict=strict, assign=assign)
            if assign:
                for name, p in self.named_parameters():
                    if name in state_dict:
                        p.requires_grad_(state_dict[name].requires_grad)
            return result
        return load
    wrap(mp, M, "load_state_dict", make)


_UNSET = object()


@mutant(breaks="module.state_dict.torch_load_weights_only_default")
def torch_load_default_on_the_other_side(mp):
    """The installed version's weights_only default flipped: True before 2.6, False after."""
    def make(orig):
        def load(f, *args, weights_only=_UNSET, **kwargs):
            if weights_only is _UNSET:
                weights_only = not torch_at_least("2.6")
            return orig(f, *args, weights_only=weights_only, **kwargs)
        return load
    wrap(mp, torch, "load", make)


@mutant(breaks="module.state_dict.torch_load_weights_only_default")
def torch_load_always_weights_only(mp):
    def make(orig):
        def load(f, *args, weights_only=None, **kwargs):
            return orig(f, *args, weights_only=True, **kwargs)
        return load
    wrap(mp, torch, "load", make)


@mutant(breaks="module.state_dict.torch_load_future_warning")
def torch_load_future_warning_outside_its_window(mp):
    """Warns where the installed version does not (outside 2.4-2.5) and is silent where it does."""
    in_window = torch_at_least("2.4") and not torch_at_least("2.6")

    def make(orig):
        def load(f, *args, **kwargs):
            if "weights_only" in kwargs:
                return orig(f, *args, **kwargs)
            if in_window:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    return orig(f, *args, **kwargs)
            warnings.warn("torch.load: the default of weights_only will change", FutureWarning,
                          stacklevel=2)
            return orig(f, *args, **kwargs)
        return load
    wrap(mp, torch, "load", make)


# -- conversion ----------------------------------------------------------------------------

@mutant(breaks="module.conversion.to_dtype")
def to_dtype_skips_buffers(mp):
    def make(orig):
        def to(self, *args, **kwargs):
            saved = {n: (m, b) for m in self.modules() for n, b in
                     [(f"{id(m)}.{k}", (k, v)) for k, v in m._buffers.items()]}
            result = orig(self, *args, **kwargs)
            for module, (key, value) in saved.values():
                if value is not None:
                    module._buffers[key] = value.to(device=module._buffers[key].device)
            return result
        return to
    wrap(mp, M, "to", make)


@mutant(breaks="module.conversion.to_dtype")
def to_dtype_converts_integer_buffers(mp):
    def make(orig):
        def to(self, *args, **kwargs):
            result = orig(self, *args, **kwargs)
            dtypes = [a for a in args if isinstance(a, torch.dtype)]
            if dtypes:
                for m in self.modules():
                    for k, v in m._buffers.items():
                        if v is not None:
                            m._buffers[k] = v.to(dtypes[0])
            return result
        return to
    wrap(mp, M, "to", make)


@mutant(breaks="module.conversion.double")
def double_converts_parameters_only(mp):
    def make(orig):
        def double(self):
            for p in self.parameters():
                p.data = p.data.double()
            return self
        return double
    wrap(mp, M, "double", make)


@mutant(breaks="module.conversion.to_dtype")
def conversion_unfreezes_parameters(mp):
    """to()/double()/float() leave every floating parameter requiring grad, frozen or not."""
    def make(orig):
        def apply_(self, fn, *args, **kwargs):
            result = orig(self, fn, *args, **kwargs)
            for p in self._parameters.values():
                if p is not None and p.is_floating_point():
                    p.requires_grad_(True)
            return result
        return apply_
    wrap(mp, M, "_apply", make)


@mutant(breaks="module.conversion.double")
def float_casts_integer_buffers(mp):
    def make(orig):
        def float_(self):
            result = orig(self)
            for m in self.modules():
                for k, v in m._buffers.items():
                    if v is not None and not v.is_floating_point():
                        m._buffers[k] = v.float()
            return result
        return float_
    wrap(mp, M, "float", make)


@mutant(breaks="module.conversion.to_device")
def to_returns_a_copy(mp):
    import copy

    wrap(mp, M, "to", lambda orig: lambda self, *a, **k: orig(copy.deepcopy(self), *a, **k))


# -- traversal -----------------------------------------------------------------------------

@mutant(breaks="module.traversal.modules_preorder")
def modules_skip_root(mp):
    wrap(mp, M, "modules", lambda orig: lambda self: iter(list(orig(self))[1:]))


@mutant(breaks="module.traversal.modules_preorder")
def modules_postorder(mp):
    def make(orig):
        def named_modules(self, memo=None, prefix="", remove_duplicate=True):
            if memo is None:
                memo = set()
            if self in memo and remove_duplicate:
                return
            memo.add(self)
            for name, child in self._modules.items():
                if child is not None:
                    yield from child.named_modules(
                        memo, prefix + ("." if prefix else "") + name, remove_duplicate)
            yield prefix, self
        return named_modules
    wrap(mp, M, "named_modules", make)


@mutant(breaks="module.traversal.named_modules_dotted")
def named_modules_root_named_self(mp):
    wrap(mp, M, "named_modules", lambda orig: lambda self, *a, **k: (
        (name or "self", m) for name, m in orig(self, *a, **k)))


@mutant(breaks="module.traversal.named_modules_prefix")
def named_modules_prefix_ignored(mp):
    def make(orig):
        def named_modules(self, memo=None, prefix="", remove_duplicate=True):
            return orig(self, memo, prefix if memo is not None else "", remove_duplicate)
        return named_modules
    wrap(mp, M, "named_modules", make)



@mutant(breaks="module.traversal.shared_module_once")
def named_modules_never_removes_duplicates(mp):
    def make(orig):
        def named_modules(self, memo=None, prefix="", remove_duplicate=True):
            return orig(self, memo, prefix, False)
        return named_modules
    wrap(mp, M, "named_modules", make)


@mutant(breaks="module.traversal.children_direct_only")
def children_are_all_descendants(mp):
    wrap(mp, M, "named_children", lambda orig: lambda self: (
        (n, m) for n, m in self.named_modules() if n))


@mutant(breaks="module.traversal.children_direct_only")
def children_in_reverse_order(mp):
    wrap(mp, M, "named_children", lambda orig: lambda self: iter(list(orig(self))[::-1]))


@mutant(breaks="module.traversal.get_submodule_empty_is_self")
def get_submodule_empty_raises(mp):
    def make(orig):
        def get_submodule(self, target):
            if target == "":
                raise AttributeError("empty target")
            return orig(self, target)
        return get_submodule
    wrap(mp, M, "get_submodule", make)


@mutant(breaks="module.traversal.get_submodule")
def get_submodule_one_level_only(mp):
    wrap(mp, M, "get_submodule", lambda orig: lambda self, target: orig(
        self, target.split(".")[0] if target else target))


@mutant(breaks="module.traversal.get_submodule_errors")
def get_submodule_returns_attributes(mp):
    def make(orig):
        def get_submodule(self, target):
            try:
                return orig(self, target)
            except AttributeError:
                owner_path, _, name = target.rpartition(".")
                return getattr(orig(self, owner_path), name, None)
        return get_submodule
    wrap(mp, M, "get_submodule", make)


@mutant(breaks="module.traversal.add_module_registers")
def register_module_does_nothing(mp):
    mp.setattr(M, "register_module", lambda self, name, module: None)


@mutant(breaks="module.traversal.add_module_rejects_bad_name")
def add_module_accepts_dotted_names(mp):
    def make(orig):
        def add_module(self, name, module):
            if isinstance(name, str) and ("." in name or name == ""):
                self._modules[name] = module
                return
            orig(self, name, module)
        return add_module
    wrap(mp, M, "add_module", make)


@mutant(breaks="module.traversal.add_module_rejects_bad_type")
def add_module_accepts_any_value(mp):
    def make(orig):
        def add_module(self, name, module):
            if not isinstance(module, nn.Module) and module is not None:
                module = nn.Identity()
            orig(self, str(name), module)
        return add_module
    wrap(mp, M, "add_module", make)


@mutant(breaks="module.traversal.repr_nested")
def repr_without_indentation(mp):
    def make(orig):
        def repr_(self):
            return "\n".join(line.lstrip() for line in orig(self).split("\n"))
        return repr_
    wrap(mp, M, "__repr__", make)


@mutant(breaks="module.traversal.set_submodule")
def set_submodule_sets_a_dotted_attribute(mp):
    def make(orig):
        def set_submodule(self, target, module, *args, **kwargs):
            self._modules[target] = module
        return set_submodule
    wrap(mp, M, "set_submodule", make)


@mutant(breaks="module.traversal.set_submodule")
def set_submodule_ignores_missing_parent(mp):
    def make(orig):
        def set_submodule(self, target, module, *args, **kwargs):
            try:
                orig(self, target, module, *args, **kwargs)
            except AttributeError:
                pass
        return set_submodule
    wrap(mp, M, "set_submodule", make)


@mutant(breaks="module.traversal.set_submodule")
def set_submodule_only_replaces(mp):
    def make(orig):
        def set_submodule(self, target, module, strict=False):
            parent_path, _, leaf = target.rpartition(".")
            if not hasattr(self.get_submodule(parent_path), leaf):
                raise AttributeError(f"no submodule {target!r}")
            orig(self, target, module)
        return set_submodule
    wrap(mp, M, "set_submodule", make)


@mutant(breaks="module.traversal.set_submodule_strict")
def set_submodule_strict_ignored(mp):
    def make(orig):
        def set_submodule(self, target, module, strict=False):
            orig(self, target, module)
        return set_submodule
    wrap(mp, M, "set_submodule", make)


# -- apply ---------------------------------------------------------------------------------

@mutant(breaks="module.apply.visits_children_then_self")
def apply_skips_root(mp):
    def make(orig):
        def apply(self, fn):
            for child in self.children():
                orig(child, fn)
            return self
        return apply
    wrap(mp, M, "apply", make)


@mutant(breaks="module.apply.visits_children_then_self")
def apply_parents_first(mp):
    def make(orig):
        def apply(self, fn):
            fn(self)
            for child in self.children():
                child.apply(fn)
            return self
        return apply
    wrap(mp, M, "apply", make)


@mutant(breaks="module.apply.visits_children_then_self")
def apply_not_recursive(mp):
    def make(orig):
        def apply(self, fn):
            for child in self.children():
                fn(child)
            fn(self)
            return self
        return apply
    wrap(mp, M, "apply", make)


@mutant(breaks="module.apply.returns_self")
def apply_returns_none(mp):
    wrap(mp, M, "apply", lambda orig: lambda self, fn: (orig(self, fn), None)[1])


@mutant(breaks="module.apply.seed_002_new_weight")
def apply_root_only(mp):
    mp.setattr(M, "apply", lambda self, fn: (fn(self), self)[1])


@mutant(breaks="module.apply.weight_init")
def apply_two_levels_only(mp):
    """Children and self, but not grandchildren: a nested Sequential's layers are missed."""
    def apply(self, fn):
        for child in self.children():
            fn(child)
        fn(self)
        return self
    mp.setattr(M, "apply", apply)


# -- train / eval --------------------------------------------------------------------------

@mutant(breaks="module.mode.recursive")
def train_not_recursive(mp):
    def make(orig):
        def train(self, mode=True):
            if not isinstance(mode, bool):
                raise ValueError("training mode is expected to be boolean")
            self.training = mode
            return self
        return train
    wrap(mp, M, "train", make)


@mutant(breaks="module.mode.returns_self")
def eval_returns_none(mp):
    wrap(mp, M, "eval", lambda orig: lambda self: (orig(self), None)[1])


@mutant(breaks="module.mode.rejects_non_bool")
def train_accepts_anything(mp):
    wrap(mp, M, "train", lambda orig: lambda self, mode=True: orig(self, bool(mode)))


@mutant(breaks="module.mode.dropout_follows_mode")
def dropout_ignores_eval(mp):
    def forward(self, x):
        return torch.nn.functional.dropout(x, self.p, True, self.inplace)
    mp.setattr(nn.Dropout, "forward", forward)


@mutant(breaks="module.mode.dropout_follows_mode")
def dropout_keeps_with_probability_p(mp):
    """Training dropout keeps each element with probability p and scales it by 1/p."""
    import torch.nn.functional as F

    wrap(mp, F, "dropout", lambda orig: lambda input, p=0.5, training=True, inplace=False: orig(
        input, 1 - p if training and 0 < p < 1 else p, training, inplace))


# -- calling -------------------------------------------------------------------------------

@mutant(breaks="module.call.forward_pre_hook")
def call_skips_pre_hooks(mp):
    def make(orig):
        def call(self, *args, **kwargs):
            saved = self._forward_pre_hooks
            self._forward_pre_hooks = OrderedDict()
            try:
                return orig(self, *args, **kwargs)
            finally:
                self._forward_pre_hooks = saved
        return call
    wrap(mp, M, "__call__", make)


@mutant(breaks="module.call.forward_hook")
def forward_hook_result_ignored(mp):
    def make(orig):
        def register(self, hook, *args, **kwargs):
            return orig(self, lambda *a, **k: (hook(*a, **k), None)[1], *args, **kwargs)
        return register
    wrap(mp, M, "register_forward_hook", make)


@mutant(breaks="module.call.forward_pre_hook")
def pre_hook_result_ignored(mp):
    def make(orig):
        def register(self, hook, *args, **kwargs):
            return orig(self, lambda *a, **k: (hook(*a, **k), None)[1], *args, **kwargs)
        return register
    wrap(mp, M, "register_forward_pre_hook", make)


@mutant(breaks="module.call.forward_pre_hook")
def pre_hook_single_value_ignored(mp):
    """Only a returned tuple replaces the input; a single returned value is dropped."""
    def make(orig):
        def register(self, hook, *args, **kwargs):
            if kwargs.get("with_kwargs"):
                return orig(self, hook, *args, **kwargs)
            return orig(self, lambda m, a: (lambda r: r if isinstance(r, tuple) else None)(
                hook(m, a)), *args, **kwargs)
        return register
    wrap(mp, M, "register_forward_pre_hook", make)


@mutant(breaks="module.call.hook_order")
def hooks_run_in_reverse_order(mp):
    def make(orig):
        def register(self, hook, *args, **kwargs):
            handle = orig(self, hook, *args, **kwargs)
            self._forward_hooks.move_to_end(handle.id, last=False)
            return handle
        return register
    wrap(mp, M, "register_forward_hook", make)


@mutant(breaks="module.call.hook_prepend")
def prepend_ignored(mp):
    for name in ("register_forward_pre_hook", "register_forward_hook"):
        wrap(mp, M, name, lambda orig: lambda self, hook, *, prepend=False, **k: orig(
            self, hook, **k))


@mutant(breaks="module.call.forward_kwargs")
def call_drops_kwargs_when_hooked(mp):
    wrap(mp, M, "__call__", lambda orig: lambda self, *a, **k: orig(
        self, *a, **({} if self._forward_hooks or self._forward_pre_hooks else k)))


@mutant(breaks="module.call.forward_hook_with_kwargs")
def forward_hook_with_kwargs_result_ignored(mp):
    def make(orig):
        def register(self, hook, *args, **kwargs):
            if kwargs.get("with_kwargs"):
                return orig(self, lambda *a: (hook(*a), None)[1], *args, **kwargs)
            return orig(self, hook, *args, **kwargs)
        return register
    wrap(mp, M, "register_forward_hook", make)


@mutant(breaks="module.call.forward_pre_hook_with_kwargs")
def pre_hook_with_kwargs_keeps_the_kwargs(mp):
    """A with_kwargs pre-hook's new args are used, its new kwargs dropped."""
    def make(orig):
        def register(self, hook, *args, **kwargs):
            if kwargs.get("with_kwargs"):
                def keep_kwargs(module, a, k):
                    result = hook(module, a, k)
                    return None if result is None else (result[0], k)
                return orig(self, keep_kwargs, *args, **kwargs)
            return orig(self, hook, *args, **kwargs)
        return register
    wrap(mp, M, "register_forward_pre_hook", make)



@mutant(breaks="module.call.hook_removal")
def hook_handles_do_not_remove(mp):
    from torch.utils.hooks import RemovableHandle

    mp.setattr(RemovableHandle, "remove", lambda self: None)


@mutant(breaks="module.call.runs_forward")
def call_scales_output(mp):
    wrap(mp, M, "__call__", lambda orig: lambda self, *a, **k: (
        lambda out: out * 1.001 if isinstance(out, torch.Tensor) else out)(orig(self, *a, **k)))


# -- zero_grad -----------------------------------------------------------------------------

@mutant(breaks="module.zero_grad.default")
def module_zero_grad_default_flipped(mp):
    """The installed version's default flipped: zeros from 2.0, None before."""
    wrap(mp, M, "zero_grad", lambda orig: lambda self, set_to_none=None: orig(
        self, set_to_none=not torch_at_least("2.0") if set_to_none is None else set_to_none))


@mutant(breaks="module.zero_grad.set_to_none_true")
def module_zero_grad_ignores_set_to_none(mp):
    wrap(mp, M, "zero_grad", lambda orig: lambda self, set_to_none=True: orig(
        self, set_to_none=False))


@mutant(breaks="module.zero_grad.set_to_none_false")
def module_zero_grad_always_none(mp):
    wrap(mp, M, "zero_grad", lambda orig: lambda self, set_to_none=True: orig(
        self, set_to_none=True))


@mutant(breaks="module.zero_grad.set_to_none_true")
def module_zero_grad_does_nothing(mp):
    mp.setattr(M, "zero_grad", lambda self, set_to_none=True: None)


@mutant(breaks="module.zero_grad.set_to_none_true")
def module_zero_grad_own_parameters_only(mp):
    def zero_grad(self, set_to_none=True):
        for p in self.parameters(recurse=False):
            p.grad = None
    mp.setattr(M, "zero_grad", zero_grad)


# -- behaviors shown by the seeds' LinearModel ---------------------------------------------

@mutant(breaks="module.call.forward_skips_hooks")
def forward_runs_hooks(mp):
    """LinearModel.forward itself runs the forward pre-hooks, so calling it directly does."""
    from torchconform.seed_models import LinearModel

    def make(orig):
        def forward(self, x):
            for hook in list(self._forward_pre_hooks.values()):
                hook(self, (x,))
            return orig(self, x)
        return forward
    wrap(mp, LinearModel, "forward", make)


@mutant(breaks="module.call.same_result_as_forward")
def call_scales_tensor_outputs(mp):
    wrap(mp, M, "__call__", lambda orig: lambda self, *a, **k: (
        lambda out: out * 1.001 if isinstance(out, torch.Tensor) else out)(orig(self, *a, **k)))


@mutant(breaks="module.traversal.seed_002_walk")
def modules_root_last(mp):
    wrap(mp, M, "modules", lambda orig: lambda self: iter(list(orig(self))[::-1]))
