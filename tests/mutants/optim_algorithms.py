"""Mutants of the built-in optimizers' documented algorithms (suites/optim/test_<optimizer>.py).

Each optimizer's step() calls its module's functional entry point (`torch.optim.adam.adam`,
`torch.optim.rmsprop.rmsprop`, ...) with the group's options as keywords, for every
implementation; that function picks `_single_tensor_*`, `_multi_tensor_*` or `_fused_*` at call
time. A mutant either changes an option on the way in (`_option`), corrects the state after the
call so that the update used a wrong value (amsgrad on the current moment), or wraps one
implementation only (foreach, fused faults).
"""

from __future__ import annotations

import importlib

import torch

from . import around, mutant, option, wrap

OFF = 1.001
_F = importlib.import_module("torch.optim._functional")


def _module(name):
    return importlib.import_module(f"torch.optim.{name}")


ADAM = _module("adam")
LBFGS = torch.optim.LBFGS


def _option(name, breaks, module, function=None, **changes):
    """A mutant calling torch.optim.<module>.<function> (default: the module's own name) with
    some options changed (see option: a value, or a function of the value passed)."""
    option(name, breaks, _module(module), function or module, **changes)


def _times(factor):
    return lambda value: value * factor


def _first_step(state_steps):
    """The step number the functional call is about to take (state_steps before increment)."""
    return float(state_steps[0]) + 1


# -- Adam ------------------------------------------------------------------------------------

_option("adam_lr_slightly_high", "optim.adam.algorithm", "adam", lr=_times(OFF))
_option("adam_eps_ignored", "optim.adam.algorithm", "adam", eps=0.0)


@around(ADAM, "adam", breaks="optim.adam.algorithm")
def adam_first_moment_not_bias_corrected(orig, params, grads, m, v, vmax, steps, *a, **k):
    """theta -= lr m / (...) instead of lr m / (1 - b1^t) / (...): lr scaled by 1 - b1^t."""
    if params:
        k["lr"] = k["lr"] * (1 - k["beta1"] ** _first_step(steps))
    return orig(params, grads, m, v, vmax, steps, *a, **k)


@around(ADAM, "adam", breaks="optim.adam.weight_decay")
def adam_weight_decay_decoupled(orig, *a, **k):
    """Decoupled decay wherever weight_decay is set."""
    decoupled = k["decoupled_weight_decay"] or k["weight_decay"] != 0
    return orig(*a, **dict(k, decoupled_weight_decay=decoupled))


@around(ADAM, "_single_tensor_adam", breaks="optim.adam.weight_decay")
def adam_weight_decay_skipped_on_large_parameters(orig, *args, **kwargs):
    """The for-loop Adam leaves out weight decay on parameters of more than 64 elements (a
    size-dependent path), exact on small ones."""
    lists, rest = args[:6], args[6:]
    for i in range(len(lists[0])):
        decay = 0.0 if lists[0][i].numel() > 64 else kwargs["weight_decay"]
        orig(*[[lst[i]] if lst else lst for lst in lists], *rest,
             **dict(kwargs, weight_decay=decay))


def _amsgrad_on_current_moment(orig, params, grads, m, v, vmax, steps, *a, **k):
    """amsgrad's update divides by the current v, while max_exp_avg_sq is still kept."""
    if not k["amsgrad"]:
        return orig(params, grads, m, v, vmax, steps, *a, **k)
    orig(params, grads, m, v, [], steps, *a, **dict(k, amsgrad=False))
    for current, kept in zip(v, vmax):
        torch.maximum(kept, current, out=kept)


around(ADAM, "adam", "optim.adam.amsgrad", "adam_amsgrad_divides_by_the_current_moment")(
    _amsgrad_on_current_moment)
_option("adam_maximize_ignored", "optim.adam.maximize", "adam", maximize=False)
option("adam_decoupled_flag_ignored", "optim.adam.decoupled_weight_decay", torch.optim.Adam,
       "__init__", decoupled_weight_decay=False)
_option("adam_foreach_lr_slightly_high", "optim.adam.foreach", "adam", "_multi_tensor_adam",
        lr=_times(OFF))
_option("adam_fused_eps_ignored", "optim.adam.fused", "adam", "_fused_adam", eps=0.0)

# -- AdamW -----------------------------------------------------------------------------------

_option("adamw_weight_decay_coupled", "optim.adamw.decoupled_weight_decay", "adam",
        decoupled_weight_decay=False)
option("adamw_weight_decay_default_zero", "optim.adamw.default_weight_decay", torch.optim.AdamW,
       "__init__", defaults={"weight_decay": 0.0})
around(ADAM, "adam", "optim.adamw.amsgrad", "adamw_amsgrad_divides_by_the_current_moment")(
    _amsgrad_on_current_moment)
_option("adamw_foreach_decay_coupled", "optim.adamw.foreach", "adam", "_multi_tensor_adam",
        decoupled_weight_decay=False)


@around(ADAM, "_fused_adam", breaks="optim.adamw.fused")
def adamw_fused_lr_slightly_high(orig, *a, **k):
    lr = k["lr"] * OFF if k["decoupled_weight_decay"] else k["lr"]
    return orig(*a, **dict(k, lr=lr))


# -- Adamax ----------------------------------------------------------------------------------

_option("adamax_eps_ignored", "optim.adamax.algorithm", "adamax", eps=0.0)  # max(b2 u, |g|)
_option("adamax_beta2_slightly_off", "optim.adamax.algorithm", "adamax", beta2=_times(0.99))
_option("adamax_maximize_ignored", "optim.adamax.maximize", "adamax", maximize=False)
_option("adamax_foreach_beta1_off", "optim.adamax.foreach", "adamax", "_multi_tensor_adamax",
        beta1=_times(0.99))

# -- NAdam -----------------------------------------------------------------------------------

# mu_t = b1 (1 - 0.5 * 0.96^(t psi)) with psi = 0: a constant schedule.
_option("nadam_momentum_decay_ignored", "optim.nadam.algorithm", "nadam", momentum_decay=0.0)
_option("nadam_lr_slightly_high", "optim.nadam.algorithm", "nadam", lr=_times(1.01))
_option("nadam_decoupled_flag_ignored", "optim.nadam.decoupled_weight_decay", "nadam",
        decoupled_weight_decay=False)
_option("nadam_maximize_ignored", "optim.nadam.maximize", "nadam", maximize=False)
_option("nadam_foreach_momentum_decay_doubled", "optim.nadam.foreach", "nadam",
        "_multi_tensor_nadam", momentum_decay=_times(2))

# -- RAdam -----------------------------------------------------------------------------------

# Only the rectified branch uses eps: caught once rho_t > 5.
_option("radam_eps_ignored", "optim.radam.algorithm", "radam", eps=0.0)
# beta2 = 0.6 keeps rho_t below 5 for ever: momentum SGD steps only.
_option("radam_never_rectifies", "optim.radam.algorithm", "radam", beta2=0.6)
_option("radam_decoupled_flag_ignored", "optim.radam.decoupled_weight_decay", "radam",
        decoupled_weight_decay=False)
_option("radam_maximize_ignored", "optim.radam.maximize", "radam", maximize=False)
_option("radam_foreach_eps_ignored", "optim.radam.foreach", "radam", "_multi_tensor_radam",
        eps=0.0)

# -- RMSprop ---------------------------------------------------------------------------------

_option("rmsprop_alpha_slightly_off", "optim.rmsprop.algorithm", "rmsprop", alpha=_times(0.99))
_option("rmsprop_eps_ignored", "optim.rmsprop.algorithm", "rmsprop", eps=0.0)
_option("rmsprop_centered_ignored", "optim.rmsprop.centered", "rmsprop", centered=False)
_option("rmsprop_momentum_slightly_off", "optim.rmsprop.momentum", "rmsprop",
        momentum=_times(OFF))
_option("rmsprop_maximize_ignored", "optim.rmsprop.maximize", "rmsprop", maximize=False)
_option("rmsprop_foreach_centered_ignored", "optim.rmsprop.foreach", "rmsprop",
        "_multi_tensor_rmsprop", centered=False)

# -- Adagrad ---------------------------------------------------------------------------------

_option("adagrad_eps_ignored", "optim.adagrad.algorithm", "adagrad", eps=0.0)
_option("adagrad_lr_slightly_high", "optim.adagrad.algorithm", "adagrad", lr=_times(OFF))
_option("adagrad_lr_decay_ignored", "optim.adagrad.lr_decay", "adagrad", lr_decay=0.0)


@mutant(breaks="optim.adagrad.initial_accumulator_value")
def adagrad_accumulator_starts_at_zero(mp):
    """Adagrad creates the sums in __init__ (and, on newer torch, lazily in _init_group for
    parameters added later): both are zeroed instead of filled with the initial value."""
    Adagrad = torch.optim.Adagrad

    def zero_sums(states):
        for state in states:
            if "sum" in state:
                state["sum"].zero_()

    wrap(mp, Adagrad, "__init__", lambda orig: lambda self, *a, **k: (
        orig(self, *a, **k), zero_sums(self.state.values()))[0])
    if hasattr(Adagrad, "_init_group"):
        def make(orig):
            def init_group(self, group, *a, **k):
                fresh = [p for p in group["params"] if not self.state.get(p)]
                result = orig(self, group, *a, **k)
                zero_sums(self.state[p] for p in fresh)
                return result
            return init_group
        wrap(mp, Adagrad, "_init_group", make)


_option("adagrad_maximize_ignored", "optim.adagrad.maximize", "adagrad", maximize=False)
_option("adagrad_foreach_lr_decay_ignored", "optim.adagrad.foreach", "adagrad",
        "_multi_tensor_adagrad", lr_decay=0.0)
_option("adagrad_fused_eps_ignored", "optim.adagrad.fused", "adagrad", "_fused_adagrad",
        eps=0.0)

# -- Adadelta --------------------------------------------------------------------------------

_option("adadelta_rho_slightly_off", "optim.adadelta.algorithm", "adadelta", rho=_times(0.99))
_option("adadelta_eps_slightly_off", "optim.adadelta.algorithm", "adadelta", eps=_times(1.01))
_option("adadelta_maximize_ignored", "optim.adadelta.maximize", "adadelta", maximize=False)
_option("adadelta_foreach_lr_slightly_high", "optim.adadelta.foreach", "adadelta",
        "_multi_tensor_adadelta", lr=_times(OFF))

# -- ASGD ------------------------------------------------------------------------------------

_option("asgd_decay_term_ignored", "optim.asgd.algorithm", "asgd", lambd=0.0)
_option("asgd_eta_power_off", "optim.asgd.algorithm", "asgd", alpha=_times(1.1))
_option("asgd_averaging_starts_late", "optim.asgd.averaging", "asgd", t0=lambda t0: t0 + 1)
_option("asgd_maximize_ignored", "optim.asgd.maximize", "asgd", maximize=False)
_option("asgd_foreach_decay_term_ignored", "optim.asgd.foreach", "asgd", "_multi_tensor_asgd",
        lambd=0.0)

# -- Rprop -----------------------------------------------------------------------------------

_option("rprop_etaplus_off", "optim.rprop.algorithm", "rprop", etaplus=_times(1.01))


@around(_module("rprop"), "rprop", breaks="optim.rprop.algorithm")
def rprop_etas_swapped(orig, *a, **k):
    return orig(*a, **dict(k, etaminus=k["etaplus"], etaplus=k["etaminus"]))


_option("rprop_maximum_step_size_ignored", "optim.rprop.step_sizes", "rprop",
        step_size_max=float("inf"))
_option("rprop_minimum_step_size_ignored", "optim.rprop.step_sizes", "rprop", step_size_min=0.0)
_option("rprop_maximize_ignored", "optim.rprop.maximize", "rprop", maximize=False)
_option("rprop_foreach_etaminus_off", "optim.rprop.foreach", "rprop", "_multi_tensor_rprop",
        etaminus=_times(1.01))

# -- SparseAdam ------------------------------------------------------------------------------


def _dense_support(g):
    """The sparse gradient with every entry stored (absent ones as explicit zeros)."""
    dense = g.to_dense()
    indices = torch.ones_like(dense, dtype=torch.bool).nonzero().t()
    return torch.sparse_coo_tensor(indices, dense[tuple(indices)], dense.shape)


# Moments decay (and parameters move) at entries the gradient does not hold.
option("sparse_adam_updates_every_entry", "optim.sparse_adam.masked_algorithm", _F,
       "sparse_adam", grads=lambda grads: [_dense_support(g) for g in grads])
option("sparse_adam_beta1_off", "optim.sparse_adam.masked_algorithm", _F, "sparse_adam",
       beta1=_times(0.99))


@around(torch.optim.SparseAdam, "step", breaks="optim.sparse_adam.dense_gradients_refused")
def sparse_adam_accepts_dense_gradients(orig, self, closure=None):
    for group in self.param_groups:
        for p in group["params"]:
            if p.grad is not None and not p.grad.is_sparse:
                p.grad = p.grad.to_sparse()
    return orig(self, closure)


# -- LBFGS -----------------------------------------------------------------------------------

option("lbfgs_history_size_ignored", "optim.lbfgs.two_loop_recursion", LBFGS, "__init__",
       history_size=100)
option("lbfgs_step_length_off", "optim.lbfgs.two_loop_recursion", LBFGS, "_add_grad",
       step_size=_times(OFF))
option("lbfgs_max_eval_ignored", "optim.lbfgs.max_eval", LBFGS, "__init__", max_eval=10**6)


@around(LBFGS, "__init__", breaks="optim.lbfgs.single_param_group")
def lbfgs_merges_parameter_groups(orig, self, params, *a, **k):
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [p for group in params for p in group["params"]]
    return orig(self, params, *a, **k)
