"""Mutants of nn.Module, nn.Parameter and buffers: one broken behavior each."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import torch
from torch import nn

from torchconform.versions import torch_at_least

from . import around, mutant, option, replace, via, wrap

M = nn.Module


def _initialized(module) -> bool:
    return "_parameters" in module.__dict__


def _bad_name(name) -> bool:
    return isinstance(name, str) and ("." in name or name == "")


# -- init ----------------------------------------------------------------------------------

replace(M, "__setattr__", "module.init.parameter_before_init_raises",
        "parameter_assignable_before_init")(lambda orig: lambda self, name, value: (
            object.__setattr__(self, name, value)
            if isinstance(value, nn.Parameter) and not _initialized(self)
            else orig(self, name, value)))
replace(M, "__setattr__", "module.init.submodule_before_init_raises",
        "submodule_assignable_before_init")(lambda orig: lambda self, name, value: (
            object.__setattr__(self, name, value)
            if isinstance(value, nn.Module) and not _initialized(self)
            else orig(self, name, value)))
replace(M, "register_buffer", "module.init.register_buffer_before_init_raises",
        "register_buffer_before_init_is_silent")(
            lambda orig: lambda self, name, tensor, persistent=True: (
                object.__setattr__(self, name, tensor) if not _initialized(self)
                else orig(self, name, tensor, persistent)))
replace(M, "register_parameter", "module.init.register_parameter_before_init_raises",
        "register_parameter_before_init_is_silent")(lambda orig: lambda self, name, param: (
            object.__setattr__(self, name, param) if not _initialized(self)
            else orig(self, name, param)))
replace(M, "__call__", "module.init.skipped_super_not_callable",
        "uninitialized_module_callable")(lambda orig: lambda self, *a, **k: (
            self.forward(*a, **k) if not _initialized(self) else orig(self, *a, **k)))

PLAIN_BEFORE_INIT = "module.init.plain_attributes_before_init_allowed"


@around(M, "__setattr__", breaks=PLAIN_BEFORE_INIT)
def plain_attribute_before_init_raises(orig, self, name, value):
    if not _initialized(self) and not name.startswith("_") and name != "training":
        raise AttributeError(f"cannot assign {name!r} before Module.__init__() call")
    orig(self, name, value)


@around(M, "__init__", breaks=PLAIN_BEFORE_INIT)
def init_discards_earlier_attributes(orig, self, *args, **kwargs):
    for key in [k for k in self.__dict__ if not k.startswith("_")]:
        del self.__dict__[key]
    orig(self, *args, **kwargs)


@around(M, "__init__", breaks="module.init.fresh_state")
def fresh_module_in_eval_mode(orig, self, *args, **kwargs):
    orig(self, *args, **kwargs)
    object.__setattr__(self, "training", False)


# -- parameters ----------------------------------------------------------------------------

def parameter_new(name, breaks, default=True, convert=lambda data: data,
                  decide=lambda data, asked: asked):
    """A mutant replacing Parameter.__new__: the default of requires_grad, the data passed on
    (convert(data)) and the requires_grad passed on (decide(data, asked)) may change."""
    @mutant(breaks, name=name)
    def apply(mp):
        original = nn.Parameter.__new__

        def new(cls, data=None, requires_grad=default):
            return original(cls, convert(data), decide(data, requires_grad))
        mp.setattr(nn.Parameter, "__new__", staticmethod(new))


P = "module.parameter."
parameter_new("parameter_defaults_to_no_grad", P + "requires_grad_default", default=False)
parameter_new("parameter_ignores_requires_grad_false", P + "requires_grad_false_honored",
              decide=lambda data, asked: True)
parameter_new("parameter_follows_grad_mode", P + "requires_grad_under_no_grad",
              decide=lambda data, asked: asked and torch.is_grad_enabled())
parameter_new("parameter_accepts_integers", P + "integer_dtype_rejected",
              decide=lambda data, asked: asked and (
                  data is None or data.is_floating_point() or data.is_complex()))
parameter_new("parameter_copies_data_to_float64", P + "is_tensor_subclass",
              convert=lambda d: d.double() if d is not None and d.is_floating_point() else d)
option("parameters_ignore_children", P + "parameters_iterates_all", M, "parameters",
       recurse=False)
option("named_parameters_always_recurse", P + "named_parameters_recurse_false", M,
       "named_parameters", recurse=True)
option("named_parameters_prefix_ignored", P + "named_parameters_prefix", M, "named_parameters",
       prefix="")
option("shared_parameters_yielded_twice", P + "shared_yielded_once", M, "named_parameters",
       remove_duplicate=False)
option("remove_duplicate_false_ignored", P + "remove_duplicate_false", M, "named_parameters",
       remove_duplicate=True)
option("register_parameter_stringifies_names", P + "register_rejects_non_str_name", M,
       "register_parameter", name=str)
option("register_parameter_wraps_tensors", P + "register_rejects_non_parameter", M,
       "register_parameter", param=lambda p: nn.Parameter(p) if type(p) is torch.Tensor else p)
option("register_parameter_none_makes_empty_parameter", P + "register_none", M,
       "register_parameter", param=lambda p: nn.Parameter(torch.empty(0)) if p is None else p)
replace(M, "named_parameters", P + "assignment_registers_in_order",
        "parameters_listed_in_reverse")(
            lambda orig: lambda self, *a, **k: iter(list(orig(self, *a, **k))[::-1]))
replace(M, "named_parameters", P + "named_parameters_dotted", "named_parameters_drop_prefix")(
    lambda orig: lambda self, *a, **k: (
        (name.rsplit(".", 1)[-1], p) for name, p in orig(self, *a, **k)))
replace(M, "get_parameter", P + "get_parameter", "get_parameter_returns_a_copy")(
    lambda orig: lambda self, target: nn.Parameter(orig(self, target).detach().clone()))


@around(M, "__setattr__", breaks=P + "plain_tensor_not_registered")
def plain_float_tensors_become_parameters(orig, self, name, value):
    if (type(value) is torch.Tensor and _initialized(self) and value.is_floating_point()
            and name not in self._buffers):
        value = nn.Parameter(value)
    orig(self, name, value)


@around(M, "_save_to_state_dict", breaks=P + "plain_tensor_not_saved")
def state_dict_saves_plain_tensors(orig, self, destination, prefix, keep_vars):
    orig(self, destination, prefix, keep_vars)
    for name, value in self.__dict__.items():
        if type(value) is torch.Tensor:
            destination[prefix + name] = value


@around(M, "parameters", breaks=P + "plain_tensor_not_optimized")
def optimizer_steps_plain_tensors_too(orig, self, recurse=True):
    yield from orig(self, recurse)
    for value in list(self.__dict__.values()):
        if type(value) is torch.Tensor and value.requires_grad:
            yield value


@around(M, "requires_grad_", breaks=P + "requires_grad_recursive")
def requires_grad_own_parameters_only(orig, self, requires_grad=True):
    for p in self.parameters(recurse=False):
        p.requires_grad_(requires_grad)
    return self


@around(M, "get_parameter", breaks=P + "get_parameter_errors")
def get_parameter_returns_none_when_missing(orig, self, target):
    try:
        return orig(self, target)
    except AttributeError:
        return None


@around(M, "register_parameter", breaks=P + "register_rejects_bad_name")
def register_parameter_accepts_dotted_names(orig, self, name, param):
    if _bad_name(name):
        self._parameters[name] = param
        return
    orig(self, name, param)


# -- buffers -------------------------------------------------------------------------------

B = "module.buffer."
REASSIGN, NN_BUFFER = B + "reassignment_updates_buffer", B + "buffer_assignment_registers"
option("register_buffer_stores_a_copy", B + "register_makes_attribute", M, "register_buffer",
       tensor=lambda t: t.clone() if isinstance(t, torch.Tensor) else t)
option("buffers_require_grad", B + "not_a_parameter", M, "register_buffer",
       tensor=lambda t: t.requires_grad_() if isinstance(t, torch.Tensor)
       and t.is_floating_point() else t)
option("buffers_ignore_children", B + "named_buffers_dotted", M, "buffers", recurse=False)
option("named_buffers_always_recurse", B + "recurse_false", M, "named_buffers", recurse=True)
option("named_buffers_prefix_ignored", B + "named_buffers_prefix", M, "named_buffers", prefix="")
option("register_buffer_stringifies_names", B + "register_rejects_non_str_name", M,
       "register_buffer", name=str)
option("register_buffer_converts_values", B + "register_rejects_non_tensor", M,
       "register_buffer", tensor=lambda t: t if t is None or isinstance(t, torch.Tensor)
       else torch.zeros(1))
option("named_buffers_remove_duplicate_ignored", B + "remove_duplicate_false", M,
       "named_buffers", remove_duplicate=True)
option("named_buffers_never_removes_duplicates", B + "remove_duplicate_false", M,
       "named_buffers", remove_duplicate=False)
replace(M, "named_buffers", B + "named_buffers_dotted", "named_buffers_drop_prefix")(
    lambda orig: lambda self, *a, **k: (
        (name.rsplit(".", 1)[-1], b) for name, b in orig(self, *a, **k)))
replace(M, "__setattr__", NN_BUFFER, "nn_buffer_assignment_is_a_plain_attribute")(
    lambda orig: lambda self, name, value: (
        object.__setattr__(self, name, value)
        if isinstance(value, nn.Buffer) and name not in self._buffers
        else orig(self, name, value)))
replace(M, "__setattr__", NN_BUFFER, "nn_buffer_persistent_flag_ignored")(
    lambda orig: lambda self, name, value: (
        self.register_buffer(name, value) if isinstance(value, nn.Buffer)
        else orig(self, name, value)))


@around(M, "get_buffer", breaks=B + "get_buffer_errors")
def get_buffer_accepts_parameters(orig, self, target):
    try:
        return orig(self, target)
    except AttributeError:
        owner_path, _, name = target.rpartition(".")
        return getattr(self.get_submodule(owner_path), name)


@around(M, "__setattr__", breaks=REASSIGN)
def buffer_reassignment_unregisters(orig, self, name, value):
    buffers = self.__dict__.get("_buffers")
    if buffers is not None and name in buffers and isinstance(value, torch.Tensor):
        del buffers[name]
        object.__setattr__(self, name, value)
        return
    orig(self, name, value)


@around(M, "__setattr__", breaks=REASSIGN)
def buffer_reassignment_makes_it_persistent(orig, self, name, value):
    orig(self, name, value)
    if isinstance(value, torch.Tensor) and name in self.__dict__.get("_buffers", {}):
        self._non_persistent_buffers_set.discard(name)


@around(M, "register_buffer", breaks=B + "register_rejects_bad_name")
def register_buffer_accepts_dotted_names(orig, self, name, tensor, persistent=True):
    if _bad_name(name):
        self._buffers[name] = tensor
        return
    orig(self, name, tensor, persistent)


# -- state_dict ----------------------------------------------------------------------------

S = "module.state_dict."
DETACHED, LOAD, STRICT = S + "detached_by_default", S + "load_restores", S + "strict_raises"
NON_STRICT, ASSIGN = S + "non_strict_returns_keys", S + "load_assign"
WEIGHTS_ONLY = S + "torch_load_weights_only_default"
option("state_dict_keeps_vars", DETACHED, M, "_save_to_state_dict", keep_vars=True)
option("state_dict_ignores_keep_vars", S + "keep_vars", M, "_save_to_state_dict",
       keep_vars=False)
option("strict_load_never_raises", STRICT, M, "load_state_dict", strict=False)
option("load_assign_copies_instead", ASSIGN, M, "load_state_dict", assign=False)
option("torch_load_always_weights_only", WEIGHTS_ONLY, torch, "load", weights_only=True)
# The installed version's weights_only default flipped: True before 2.6, False after.
option("torch_load_default_on_the_other_side", WEIGHTS_ONLY, torch, "load",
       defaults={"weights_only": not torch_at_least("2.6")})
replace(M, "_load_from_state_dict", LOAD, "load_state_dict_loads_nothing")(
    lambda orig: lambda self, *args, **kwargs: None)


def after_save(breaks, name=None):
    """A mutant that runs the decorated fn(module, destination, prefix, keep_vars) after each
    module's _save_to_state_dict (which saves that module's own entries)."""
    def register(fn):
        @around(M, "_save_to_state_dict", breaks=breaks, name=name or fn.__name__)
        def save(orig, self, destination, prefix, keep_vars):
            orig(self, destination, prefix, keep_vars)
            fn(self, destination, prefix, keep_vars)
        return fn
    return register


@after_save(S + "keys")
def state_dict_drops_buffers(self, destination, prefix, keep_vars):
    for name in self._buffers:
        destination.pop(prefix + name, None)


@after_save(DETACHED)
def state_dict_copies_values(self, destination, prefix, keep_vars):
    for name, p in self._parameters.items():
        if p is not None and not keep_vars:
            destination[prefix + name] = p.detach().clone()


@after_save(DETACHED)
def state_dict_copies_buffers(self, destination, prefix, keep_vars):
    """Parameters stay references; buffers (at every depth) are saved as copies."""
    for name, b in self._buffers.items():
        if prefix + name in destination and not keep_vars:
            destination[prefix + name] = b.detach().clone()


@after_save(S + "excludes_non_persistent_buffers")
def state_dict_saves_non_persistent_buffers(self, destination, prefix, keep_vars):
    for name in self._non_persistent_buffers_set:
        if self._buffers.get(name) is not None:
            destination[prefix + name] = self._buffers[name]


@after_save(S + "excludes_none_and_plain_tensors")
def state_dict_saves_none_entries(self, destination, prefix, keep_vars):
    for name, value in list(self._parameters.items()) + list(self._buffers.items()):
        if value is None:
            destination[prefix + name] = torch.empty(0)


@around(M, "state_dict", breaks=S + "keys")
def state_dict_keys_sorted(orig, self, *args, **kwargs):
    result = orig(self, *args, **kwargs)
    if kwargs.get("prefix", "") == "" and len(args) == 0:
        return OrderedDict(sorted(result.items()))
    return result


@around(M, "state_dict", breaks=S + "prefix")
def state_dict_prefix_ignored_by_the_caller(orig, self, *args, destination=None, prefix="",
                                            keep_vars=False):
    """The prefix a user passes is dropped; the recursion into children (which passes a
    destination) still prefixes."""
    return orig(self, *args, destination=destination,
                prefix="" if destination is None else prefix, keep_vars=keep_vars)


@around(M, "load_state_dict", breaks=LOAD)
def load_state_dict_replaces_parameter_objects(orig, self, state_dict, strict=True, **kwargs):
    for name, value in state_dict.items():
        owner_path, _, leaf = name.rpartition(".")
        try:
            owner = self.get_submodule(owner_path)
        except AttributeError:
            continue
        if leaf in owner._parameters:
            owner._parameters[leaf] = nn.Parameter(value.clone())
    return orig(self, state_dict, strict=strict, **kwargs)


@around(M, "load_state_dict", breaks=LOAD)
def copy_load_skips_integer_buffers(orig, self, state_dict, *args, **kwargs):
    """A copying load puts the old values of integer buffers back; floating state loads."""
    ints = [(b, b.clone()) for b in self.buffers() if not b.is_floating_point()]
    result = orig(self, state_dict, *args, **kwargs)
    if not kwargs.get("assign", False):
        with torch.no_grad():
            for b, old in ints:
                b.copy_(old)
    return result


@around(M, "load_state_dict", breaks=LOAD)
def copy_load_unfreezes_parameters(orig, self, state_dict, *args, **kwargs):
    result = orig(self, state_dict, *args, **kwargs)
    if not kwargs.get("assign", False):
        for p in self.parameters():
            p.requires_grad_(True)
    return result


@around(M, "load_state_dict", breaks=STRICT)
def load_ignores_unknown_keys_under_submodules(orig, self, state_dict, *args, **kwargs):
    """Unknown keys under a submodule ("sub1.extra") are dropped silently; top-level ones count."""
    own = self.state_dict()
    paths = {name for name, _ in self.named_modules() if name}
    kept = OrderedDict((k, v) for k, v in state_dict.items()
                       if k in own or k.rpartition(".")[0] not in paths)
    return orig(self, kept, *args, **kwargs)


@around(M, "load_state_dict", breaks=NON_STRICT)
def non_strict_load_reports_nothing(orig, self, state_dict, strict=True, **kwargs):
    result = orig(self, state_dict, strict=strict, **kwargs)
    return type(result)([], [])


@around(M, "load_state_dict", breaks=NON_STRICT)
def non_strict_load_skips_buffers(orig, self, state_dict, strict=True, **kwargs):
    """strict=False loads the parameters only and does not report the buffers it skipped."""
    if strict:
        return orig(self, state_dict, strict=strict, **kwargs)
    buffers = {name for name, _ in self.named_buffers()}
    kept = OrderedDict((k, v) for k, v in state_dict.items() if k not in buffers)
    result = orig(self, kept, strict=strict, **kwargs)
    return type(result)([k for k in result.missing_keys if k not in buffers],
                        result.unexpected_keys)


@around(M, "load_state_dict", breaks=S + "shape_mismatch_raises")
def load_ignores_shape_mismatch(orig, self, state_dict, strict=True, **kwargs):
    own = self.state_dict()
    kept = OrderedDict((k, v) for k, v in state_dict.items()
                       if k not in own or own[k].shape == v.shape)
    return orig(self, kept, strict=False, **kwargs)


@around(M, "load_state_dict", breaks=ASSIGN)
def load_assign_takes_requires_grad_from_the_state_dict(orig, self, state_dict, strict=True,
                                                        assign=False):
    result = orig(self, state_dict, strict=strict, assign=assign)
    if assign:
        for name, p in self.named_parameters():
            if name in state_dict:
                p.requires_grad_(state_dict[name].requires_grad)
    return result


@around(torch, "load", breaks=S + "save_load_round_trip")
def torch_load_loses_precision(orig, *args, **kwargs):
    result = orig(*args, **kwargs)
    if isinstance(result, dict):
        return OrderedDict((k, v.half().to(v.dtype) if v.is_floating_point() else v)
                           for k, v in result.items())
    return result


@around(torch, "load", breaks=S + "torch_load_future_warning")
def torch_load_future_warning_outside_its_window(orig, f, *args, **kwargs):
    """Warns where the installed version does not (outside 2.4-2.5) and is silent where it does."""
    if "weights_only" in kwargs:
        return orig(f, *args, **kwargs)
    if torch_at_least("2.4") and not torch_at_least("2.6"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return orig(f, *args, **kwargs)
    warnings.warn("torch.load: the default of weights_only will change", FutureWarning,
                  stacklevel=2)
    return orig(f, *args, **kwargs)


# -- conversion ----------------------------------------------------------------------------

TO_DTYPE, DOUBLE = "module.conversion.to_dtype", "module.conversion.double"


def _set_buffers(module, convert):
    """Replace every buffer b of the tree by convert(b) (None buffers stay None)."""
    for m in module.modules():
        for k, v in m._buffers.items():
            if v is not None:
                m._buffers[k] = convert(v)


@around(M, "to", breaks=TO_DTYPE)
def to_dtype_skips_buffers(orig, self, *args, **kwargs):
    saved = [(m, k, v) for m in self.modules() for k, v in m._buffers.items() if v is not None]
    result = orig(self, *args, **kwargs)
    for m, k, v in saved:
        m._buffers[k] = v.to(device=m._buffers[k].device)
    return result


@around(M, "to", breaks=TO_DTYPE)
def to_dtype_converts_integer_buffers(orig, self, *args, **kwargs):
    result = orig(self, *args, **kwargs)
    dtypes = [a for a in args if isinstance(a, torch.dtype)]
    if dtypes:
        _set_buffers(self, lambda b: b.to(dtypes[0]))
    return result


@around(M, "_apply", breaks=TO_DTYPE)
def conversion_unfreezes_parameters(orig, self, fn, *args, **kwargs):
    """to()/double()/float() leave every floating parameter requiring grad, frozen or not."""
    result = orig(self, fn, *args, **kwargs)
    for p in self._parameters.values():
        if p is not None and p.is_floating_point():
            p.requires_grad_(True)
    return result


@around(M, "double", breaks=DOUBLE)
def double_converts_parameters_only(orig, self):
    for p in self.parameters():
        p.data = p.data.double()
    return self


@around(M, "float", breaks=DOUBLE)
def float_casts_integer_buffers(orig, self):
    result = orig(self)
    _set_buffers(self, lambda b: b if b.is_floating_point() else b.float())
    return result


@mutant(breaks="module.conversion.to_device")
def to_returns_a_copy(mp):
    import copy

    wrap(mp, M, "to", lambda orig: lambda self, *a, **k: orig(copy.deepcopy(self), *a, **k))


# -- traversal -----------------------------------------------------------------------------

TR = "module.traversal."
CHILDREN, SET_SUB = TR + "children_direct_only", TR + "set_submodule"
replace(M, "modules", TR + "modules_preorder", "modules_skip_root")(
    lambda orig: lambda self: iter(list(orig(self))[1:]))
replace(M, "modules", TR + "seed_002_walk", "modules_root_last")(
    lambda orig: lambda self: iter(list(orig(self))[::-1]))
replace(M, "named_modules", TR + "named_modules_dotted", "named_modules_root_named_self")(
    lambda orig: lambda self, *a, **k: ((name or "self", m) for name, m in orig(self, *a, **k)))
option("named_modules_never_removes_duplicates", TR + "shared_module_once", M, "named_modules",
       remove_duplicate=False)
replace(M, "named_children", CHILDREN, "children_are_all_descendants")(
    lambda orig: lambda self: ((n, m) for n, m in self.named_modules() if n))
replace(M, "named_children", CHILDREN, "children_in_reverse_order")(
    lambda orig: lambda self: iter(list(orig(self))[::-1]))
replace(M, "get_submodule", TR + "get_submodule", "get_submodule_one_level_only")(
    lambda orig: lambda self, target: orig(self, target.split(".")[0] if target else target))
mutant(TR + "add_module_registers", name="register_module_does_nothing")(
    lambda mp: mp.setattr(M, "register_module", lambda self, name, module: None))
replace(M, "__repr__", TR + "repr_nested", "repr_without_indentation")(
    lambda orig: lambda self: "\n".join(line.lstrip() for line in orig(self).split("\n")))
replace(M, "set_submodule", SET_SUB, "set_submodule_sets_a_dotted_attribute")(
    lambda orig: lambda self, target, module, *a, **k: self._modules.__setitem__(target, module))
replace(M, "set_submodule", TR + "set_submodule_strict", "set_submodule_strict_ignored")(
    lambda orig: lambda self, target, module, strict=False: orig(self, target, module))


@around(M, "named_modules", breaks=TR + "modules_preorder")
def modules_postorder(orig, self, memo=None, prefix="", remove_duplicate=True):
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


@around(M, "named_modules", breaks=TR + "named_modules_prefix")
def named_modules_prefix_ignored(orig, self, memo=None, prefix="", remove_duplicate=True):
    return orig(self, memo, prefix if memo is not None else "", remove_duplicate)


@around(M, "get_submodule", breaks=TR + "get_submodule_empty_is_self")
def get_submodule_empty_raises(orig, self, target):
    if target == "":
        raise AttributeError("empty target")
    return orig(self, target)


@around(M, "get_submodule", breaks=TR + "get_submodule_errors")
def get_submodule_returns_attributes(orig, self, target):
    try:
        return orig(self, target)
    except AttributeError:
        owner_path, _, name = target.rpartition(".")
        return getattr(orig(self, owner_path), name, None)


@around(M, "add_module", breaks=TR + "add_module_rejects_bad_name")
def add_module_accepts_dotted_names(orig, self, name, module):
    if _bad_name(name):
        self._modules[name] = module
        return
    orig(self, name, module)


@around(M, "add_module", breaks=TR + "add_module_rejects_bad_type")
def add_module_accepts_any_value(orig, self, name, module):
    if not isinstance(module, nn.Module) and module is not None:
        module = nn.Identity()
    orig(self, str(name), module)


@around(M, "set_submodule", breaks=SET_SUB)
def set_submodule_ignores_missing_parent(orig, self, target, module, *args, **kwargs):
    try:
        orig(self, target, module, *args, **kwargs)
    except AttributeError:
        pass


@around(M, "set_submodule", breaks=SET_SUB)
def set_submodule_only_replaces(orig, self, target, module, strict=False):
    parent_path, _, leaf = target.rpartition(".")
    if not hasattr(self.get_submodule(parent_path), leaf):
        raise AttributeError(f"no submodule {target!r}")
    orig(self, target, module)


# -- apply ---------------------------------------------------------------------------------

CHILDREN_THEN_SELF = "module.apply.visits_children_then_self"
replace(M, "apply", "module.apply.returns_self", "apply_returns_none")(
    lambda orig: lambda self, fn: (orig(self, fn), None)[1])
mutant("module.apply.seed_002_new_weight", name="apply_root_only")(
    lambda mp: mp.setattr(M, "apply", lambda self, fn: (fn(self), self)[1]))


@around(M, "apply", breaks=CHILDREN_THEN_SELF)
def apply_skips_root(orig, self, fn):
    for child in self.children():
        orig(child, fn)
    return self


@around(M, "apply", breaks=CHILDREN_THEN_SELF)
def apply_parents_first(orig, self, fn):
    fn(self)
    for child in self.children():
        child.apply(fn)
    return self


@around(M, "apply", breaks=(CHILDREN_THEN_SELF, "module.apply.weight_init"))
def apply_not_recursive(orig, self, fn):
    """Children and self, but not grandchildren: a nested Sequential's layers are missed."""
    for child in self.children():
        fn(child)
    fn(self)
    return self


# -- train / eval --------------------------------------------------------------------------

DROPOUT = "module.mode.dropout_follows_mode"
replace(M, "eval", "module.mode.returns_self", "eval_returns_none")(
    lambda orig: lambda self: (orig(self), None)[1])
option("train_accepts_anything", "module.mode.rejects_non_bool", M, "train", mode=bool)
mutant(DROPOUT, name="dropout_ignores_eval")(lambda mp: mp.setattr(nn.Dropout, "forward", (
    lambda self, x: nn.functional.dropout(x, self.p, True, self.inplace))))
# Training dropout keeps each element with probability p and scales it by 1/p.
replace(nn.functional, "dropout", DROPOUT, "dropout_keeps_with_probability_p")(
    lambda orig: lambda input, p=0.5, training=True, inplace=False: orig(
        input, 1 - p if training and 0 < p < 1 else p, training, inplace))


@around(M, "train", breaks="module.mode.recursive")
def train_not_recursive(orig, self, mode=True):
    if not isinstance(mode, bool):
        raise ValueError("training mode is expected to be boolean")
    self.training = mode
    return self


# -- calling -------------------------------------------------------------------------------

C = "module.call."
PRE_HOOK = C + "forward_pre_hook"


def _ignoring_result(hook):
    return lambda *a, **k: (hook(*a, **k), None)[1]


replace(M, "register_forward_hook", C + "forward_hook", "forward_hook_result_ignored")(
    lambda orig: lambda self, hook, *a, **k: orig(self, _ignoring_result(hook), *a, **k))
replace(M, "register_forward_pre_hook", PRE_HOOK, "pre_hook_result_ignored")(
    lambda orig: lambda self, hook, *a, **k: orig(self, _ignoring_result(hook), *a, **k))
replace(M, "register_forward_hook", C + "forward_hook_with_kwargs",
        "forward_hook_with_kwargs_result_ignored")(lambda orig: lambda self, hook, *a, **k: orig(
            self, _ignoring_result(hook) if k.get("with_kwargs") else hook, *a, **k))
option("prepend_ignored", C + "hook_prepend", M,
       ("register_forward_pre_hook", "register_forward_hook"), prepend=False)
replace(M, "__call__", C + "forward_kwargs", "call_drops_kwargs_when_hooked")(
    lambda orig: lambda self, *a, **k: orig(
        self, *a, **({} if self._forward_hooks or self._forward_pre_hooks else k)))
# One fault, three documented consequences: module(x) is not forward(x).
replace(M, "__call__", (C + "runs_forward", C + "same_result_as_forward",
                        "optim.training_loop.call_equals_forward"), "call_scales_output")(
    lambda orig: lambda self, *a, **k: (
        lambda out: out * 1.001 if isinstance(out, torch.Tensor) else out)(orig(self, *a, **k)))


@mutant(breaks=C + "hook_removal")
def hook_handles_do_not_remove(mp):
    from torch.utils.hooks import RemovableHandle

    mp.setattr(RemovableHandle, "remove", lambda self: None)


@around(M, "__call__", breaks=PRE_HOOK)
def call_skips_pre_hooks(orig, self, *args, **kwargs):
    saved = self._forward_pre_hooks
    self._forward_pre_hooks = OrderedDict()
    try:
        return orig(self, *args, **kwargs)
    finally:
        self._forward_pre_hooks = saved


@around(M, "register_forward_pre_hook", breaks=PRE_HOOK)
def pre_hook_single_value_ignored(orig, self, hook, *args, **kwargs):
    """Only a returned tuple replaces the input; a single returned value is dropped."""
    if kwargs.get("with_kwargs"):
        return orig(self, hook, *args, **kwargs)
    return orig(self, lambda m, a: (lambda r: r if isinstance(r, tuple) else None)(hook(m, a)),
                *args, **kwargs)


@around(M, "register_forward_hook", breaks=C + "hook_order")
def hooks_run_in_reverse_order(orig, self, hook, *args, **kwargs):
    handle = orig(self, hook, *args, **kwargs)
    self._forward_hooks.move_to_end(handle.id, last=False)
    return handle


@around(M, "register_forward_pre_hook", breaks=C + "forward_pre_hook_with_kwargs")
def pre_hook_with_kwargs_keeps_the_kwargs(orig, self, hook, *args, **kwargs):
    """A with_kwargs pre-hook's new args are used, its new kwargs dropped."""
    if kwargs.get("with_kwargs"):
        def keep_kwargs(module, a, k):
            result = hook(module, a, k)
            return None if result is None else (result[0], k)
        return orig(self, keep_kwargs, *args, **kwargs)
    return orig(self, hook, *args, **kwargs)


@mutant(breaks=C + "forward_skips_hooks")
def forward_runs_hooks(mp):
    """LinearModel.forward itself runs the forward pre-hooks, so calling it directly does."""
    from torchconform.seed_models import LinearModel

    def forward(orig, self, x):
        for hook in list(self._forward_pre_hooks.values()):
            hook(self, (x,))
        return orig(self, x)
    wrap(mp, LinearModel, "forward", via(forward))


# -- zero_grad -----------------------------------------------------------------------------

Z = "module.zero_grad."
# The installed version's default flipped: zeros from 2.0, None before.
option("module_zero_grad_default_flipped", Z + "default", M, "zero_grad",
       defaults={"set_to_none": not torch_at_least("2.0")})
option("module_zero_grad_ignores_set_to_none", Z + "set_to_none_true", M, "zero_grad",
       set_to_none=False)
option("module_zero_grad_always_none", Z + "set_to_none_false", M, "zero_grad",
       set_to_none=True)
mutant(Z + "set_to_none_true", name="module_zero_grad_does_nothing")(
    lambda mp: mp.setattr(M, "zero_grad", lambda self, set_to_none=True: None))


@mutant(breaks=Z + "set_to_none_true")
def module_zero_grad_own_parameters_only(mp):
    def zero_grad(self, set_to_none=True):
        for p in self.parameters(recurse=False):
            p.grad = None
    mp.setattr(M, "zero_grad", zero_grad)
