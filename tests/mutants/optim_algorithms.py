"""Mutants of the built-in optimizers' documented algorithms (suites/optim/test_<optimizer>.py).

Each optimizer's step() calls its module's functional entry point (`torch.optim.adam.adam`,
`torch.optim.rmsprop.rmsprop`, ...) with the group's options as keywords, for every
implementation; that function picks `_single_tensor_*`, `_multi_tensor_*` or `_fused_*` at call
time. A mutant either changes an option on the way in (`_with`), corrects the state after the
call so that the update used a wrong value (amsgrad on the current moment), or wraps one
implementation only (foreach, fused faults).
"""

from __future__ import annotations

import importlib

import torch

from . import mutant, wrap

OFF = 1.001
_F = importlib.import_module("torch.optim._functional")


def _module(name):
    return importlib.import_module(f"torch.optim.{name}")


def _with(mp, module, function=None, when=lambda kwargs: True, **changes):
    """<module>.<function> (default: the module's own name) called with some keyword options
    replaced: changes maps a keyword to a function of the value the optimizer passed."""
    owner = _module(module)

    def make(orig):
        def call(*args, **kwargs):
            if when(kwargs):
                for key, change in changes.items():
                    kwargs[key] = change(kwargs[key])
            return orig(*args, **kwargs)
        return call
    wrap(mp, owner, function or module, make)


def _first_step(state_steps):
    """The step number the functional call is about to take (state_steps before increment)."""
    return float(state_steps[0]) + 1


# -- Adam ------------------------------------------------------------------------------------

@mutant(breaks="optim.adam.algorithm")
def adam_lr_slightly_high(mp):
    _with(mp, "adam", lr=lambda lr: lr * OFF)


@mutant(breaks="optim.adam.algorithm")
def adam_eps_ignored(mp):
    _with(mp, "adam", eps=lambda eps: 0.0)


@mutant(breaks="optim.adam.algorithm")
def adam_first_moment_not_bias_corrected(mp):
    """theta -= lr m / (...) instead of lr m / (1 - b1^t) / (...): lr scaled by 1 - b1^t."""
    def make(orig):
        def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *a, **k):
            if params:
                k["lr"] = k["lr"] * (1 - k["beta1"] ** _first_step(state_steps))
            return orig(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                        *a, **k)
        return adam
    wrap(mp, _module("adam"), "adam", make)


@mutant(breaks="optim.adam.weight_decay")
def adam_weight_decay_decoupled(mp):
    _with(mp, "adam", decoupled_weight_decay=lambda d: True,
          when=lambda k: k["weight_decay"] != 0)


@mutant(breaks="optim.adam.weight_decay")
def adam_weight_decay_skipped_on_large_parameters(mp):
    """The for-loop Adam leaves out weight decay on parameters of more than 64 elements (a
    size-dependent path), exact on small ones."""
    def make(orig):
        def call(*args, **kwargs):
            lists, rest = args[:6], args[6:]
            for i in range(len(lists[0])):
                large = lists[0][i].numel() > 64
                orig(*[[lst[i]] if lst else lst for lst in lists], *rest,
                     **dict(kwargs, weight_decay=0.0 if large else kwargs["weight_decay"]))
        return call
    wrap(mp, _module("adam"), "_single_tensor_adam", make)


def _amsgrad_on_current_moment(mp):
    """amsgrad's update divides by the current v, while max_exp_avg_sq is still kept."""
    def make(orig):
        def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *a, **k):
            if not k["amsgrad"]:
                return orig(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                            state_steps, *a, **k)
            orig(params, grads, exp_avgs, exp_avg_sqs, [], state_steps, *a,
                 **dict(k, amsgrad=False))
            for v, vmax in zip(exp_avg_sqs, max_exp_avg_sqs):
                torch.maximum(vmax, v, out=vmax)
        return adam
    wrap(mp, _module("adam"), "adam", make)


@mutant(breaks="optim.adam.amsgrad")
def adam_amsgrad_divides_by_the_current_moment(mp):
    _amsgrad_on_current_moment(mp)


@mutant(breaks="optim.adam.maximize")
def adam_maximize_ignored(mp):
    _with(mp, "adam", maximize=lambda m: False)


@mutant(breaks="optim.adam.decoupled_weight_decay")
def adam_decoupled_flag_ignored(mp):
    wrap(mp, torch.optim.Adam, "__init__", lambda orig: lambda self, *a, **k: orig(
        self, *a, **dict(k, decoupled_weight_decay=False)))


@mutant(breaks="optim.adam.foreach")
def adam_foreach_lr_slightly_high(mp):
    _with(mp, "adam", "_multi_tensor_adam", lr=lambda lr: lr * OFF)


@mutant(breaks="optim.adam.fused")
def adam_fused_eps_ignored(mp):
    _with(mp, "adam", "_fused_adam", eps=lambda eps: 0.0)


# -- AdamW -----------------------------------------------------------------------------------

@mutant(breaks="optim.adamw.decoupled_weight_decay")
def adamw_weight_decay_coupled(mp):
    _with(mp, "adam", decoupled_weight_decay=lambda d: False)


@mutant(breaks="optim.adamw.default_weight_decay")
def adamw_weight_decay_default_zero(mp):
    def make(orig):
        def init(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 *a, **k):
            return orig(self, params, lr, betas, eps, weight_decay, *a, **k)
        return init
    wrap(mp, torch.optim.AdamW, "__init__", make)


@mutant(breaks="optim.adamw.amsgrad")
def adamw_amsgrad_divides_by_the_current_moment(mp):
    _amsgrad_on_current_moment(mp)


@mutant(breaks="optim.adamw.foreach")
def adamw_foreach_decay_coupled(mp):
    _with(mp, "adam", "_multi_tensor_adam", decoupled_weight_decay=lambda d: False)


@mutant(breaks="optim.adamw.fused")
def adamw_fused_lr_slightly_high(mp):
    _with(mp, "adam", "_fused_adam", lr=lambda lr: lr * OFF,
          when=lambda k: k["decoupled_weight_decay"])


# -- Adamax ----------------------------------------------------------------------------------

@mutant(breaks="optim.adamax.algorithm")
def adamax_eps_ignored(mp):
    """u = max(b2 u, |g|) without eps."""
    _with(mp, "adamax", eps=lambda eps: 0.0)


@mutant(breaks="optim.adamax.algorithm")
def adamax_beta2_slightly_off(mp):
    _with(mp, "adamax", beta2=lambda b: b * 0.99)


@mutant(breaks="optim.adamax.maximize")
def adamax_maximize_ignored(mp):
    _with(mp, "adamax", maximize=lambda m: False)


@mutant(breaks="optim.adamax.foreach")
def adamax_foreach_beta1_off(mp):
    _with(mp, "adamax", "_multi_tensor_adamax", beta1=lambda b: b * 0.99)


# -- NAdam -----------------------------------------------------------------------------------

@mutant(breaks="optim.nadam.algorithm")
def nadam_momentum_decay_ignored(mp):
    """mu_t = b1 (1 - 0.5 * 0.96^(t psi)) with psi = 0: a constant schedule."""
    _with(mp, "nadam", momentum_decay=lambda psi: 0.0)


@mutant(breaks="optim.nadam.algorithm")
def nadam_lr_slightly_high(mp):
    _with(mp, "nadam", lr=lambda lr: lr * 1.01)


@mutant(breaks="optim.nadam.decoupled_weight_decay")
def nadam_decoupled_flag_ignored(mp):
    _with(mp, "nadam", decoupled_weight_decay=lambda d: False)


@mutant(breaks="optim.nadam.maximize")
def nadam_maximize_ignored(mp):
    _with(mp, "nadam", maximize=lambda m: False)


@mutant(breaks="optim.nadam.foreach")
def nadam_foreach_momentum_decay_doubled(mp):
    _with(mp, "nadam", "_multi_tensor_nadam", momentum_decay=lambda psi: 2 * psi)


# -- RAdam -----------------------------------------------------------------------------------

@mutant(breaks="optim.radam.algorithm")
def radam_eps_ignored(mp):
    """Only the rectified branch uses eps: caught once rho_t > 5."""
    _with(mp, "radam", eps=lambda eps: 0.0)


@mutant(breaks="optim.radam.algorithm")
def radam_never_rectifies(mp):
    """beta2 = 0.6 keeps rho_t below 5 for ever: momentum SGD steps only."""
    _with(mp, "radam", beta2=lambda b: 0.6)


@mutant(breaks="optim.radam.decoupled_weight_decay")
def radam_decoupled_flag_ignored(mp):
    _with(mp, "radam", decoupled_weight_decay=lambda d: False)


@mutant(breaks="optim.radam.maximize")
def radam_maximize_ignored(mp):
    _with(mp, "radam", maximize=lambda m: False)


@mutant(breaks="optim.radam.foreach")
def radam_foreach_eps_ignored(mp):
    _with(mp, "radam", "_multi_tensor_radam", eps=lambda eps: 0.0)


# -- RMSprop ---------------------------------------------------------------------------------

@mutant(breaks="optim.rmsprop.algorithm")
def rmsprop_alpha_slightly_off(mp):
    _with(mp, "rmsprop", alpha=lambda a: a * 0.99)


@mutant(breaks="optim.rmsprop.algorithm")
def rmsprop_eps_ignored(mp):
    _with(mp, "rmsprop", eps=lambda eps: 0.0)


@mutant(breaks="optim.rmsprop.centered")
def rmsprop_centered_ignored(mp):
    _with(mp, "rmsprop", centered=lambda c: False)


@mutant(breaks="optim.rmsprop.momentum")
def rmsprop_momentum_slightly_off(mp):
    _with(mp, "rmsprop", momentum=lambda m: m * OFF)


@mutant(breaks="optim.rmsprop.maximize")
def rmsprop_maximize_ignored(mp):
    _with(mp, "rmsprop", maximize=lambda m: False)


@mutant(breaks="optim.rmsprop.foreach")
def rmsprop_foreach_centered_ignored(mp):
    _with(mp, "rmsprop", "_multi_tensor_rmsprop", centered=lambda c: False)


# -- Adagrad ---------------------------------------------------------------------------------

@mutant(breaks="optim.adagrad.algorithm")
def adagrad_eps_ignored(mp):
    _with(mp, "adagrad", eps=lambda eps: 0.0)


@mutant(breaks="optim.adagrad.algorithm")
def adagrad_lr_slightly_high(mp):
    _with(mp, "adagrad", lr=lambda lr: lr * OFF)


@mutant(breaks="optim.adagrad.lr_decay")
def adagrad_lr_decay_ignored(mp):
    _with(mp, "adagrad", lr_decay=lambda d: 0.0)


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


@mutant(breaks="optim.adagrad.maximize")
def adagrad_maximize_ignored(mp):
    _with(mp, "adagrad", maximize=lambda m: False)


@mutant(breaks="optim.adagrad.foreach")
def adagrad_foreach_lr_decay_ignored(mp):
    _with(mp, "adagrad", "_multi_tensor_adagrad", lr_decay=lambda d: 0.0)


@mutant(breaks="optim.adagrad.fused")
def adagrad_fused_eps_ignored(mp):
    _with(mp, "adagrad", "_fused_adagrad", eps=lambda eps: 0.0)


# -- Adadelta --------------------------------------------------------------------------------

@mutant(breaks="optim.adadelta.algorithm")
def adadelta_rho_slightly_off(mp):
    _with(mp, "adadelta", rho=lambda r: r * 0.99)


@mutant(breaks="optim.adadelta.algorithm")
def adadelta_eps_slightly_off(mp):
    _with(mp, "adadelta", eps=lambda eps: eps * 1.01)


@mutant(breaks="optim.adadelta.maximize")
def adadelta_maximize_ignored(mp):
    _with(mp, "adadelta", maximize=lambda m: False)


@mutant(breaks="optim.adadelta.foreach")
def adadelta_foreach_lr_slightly_high(mp):
    _with(mp, "adadelta", "_multi_tensor_adadelta", lr=lambda lr: lr * OFF)


# -- ASGD ------------------------------------------------------------------------------------

@mutant(breaks="optim.asgd.algorithm")
def asgd_decay_term_ignored(mp):
    _with(mp, "asgd", lambd=lambda lam: 0.0)


@mutant(breaks="optim.asgd.algorithm")
def asgd_eta_power_off(mp):
    _with(mp, "asgd", alpha=lambda a: a * 1.1)


@mutant(breaks="optim.asgd.averaging")
def asgd_averaging_starts_late(mp):
    _with(mp, "asgd", t0=lambda t0: t0 + 1)


@mutant(breaks="optim.asgd.maximize")
def asgd_maximize_ignored(mp):
    _with(mp, "asgd", maximize=lambda m: False)


@mutant(breaks="optim.asgd.foreach")
def asgd_foreach_decay_term_ignored(mp):
    _with(mp, "asgd", "_multi_tensor_asgd", lambd=lambda lam: 0.0)


# -- Rprop -----------------------------------------------------------------------------------

@mutant(breaks="optim.rprop.algorithm")
def rprop_etaplus_off(mp):
    _with(mp, "rprop", etaplus=lambda e: e * 1.01)


@mutant(breaks="optim.rprop.algorithm")
def rprop_etas_swapped(mp):
    def make(orig):
        def rprop(*a, **k):
            k["etaminus"], k["etaplus"] = k["etaplus"], k["etaminus"]
            return orig(*a, **k)
        return rprop
    wrap(mp, _module("rprop"), "rprop", make)


@mutant(breaks="optim.rprop.step_sizes")
def rprop_maximum_step_size_ignored(mp):
    _with(mp, "rprop", step_size_max=lambda m: float("inf"))


@mutant(breaks="optim.rprop.step_sizes")
def rprop_minimum_step_size_ignored(mp):
    _with(mp, "rprop", step_size_min=lambda m: 0.0)


@mutant(breaks="optim.rprop.maximize")
def rprop_maximize_ignored(mp):
    _with(mp, "rprop", maximize=lambda m: False)


@mutant(breaks="optim.rprop.foreach")
def rprop_foreach_etaminus_off(mp):
    _with(mp, "rprop", "_multi_tensor_rprop", etaminus=lambda e: e * 1.01)


# -- SparseAdam ------------------------------------------------------------------------------

def _dense_support(g):
    """The sparse gradient with every entry stored (absent ones as explicit zeros)."""
    dense = g.to_dense()
    indices = torch.ones_like(dense, dtype=torch.bool).nonzero().t()
    return torch.sparse_coo_tensor(indices, dense[tuple(indices)], dense.shape)


@mutant(breaks="optim.sparse_adam.masked_algorithm")
def sparse_adam_updates_every_entry(mp):
    """Moments decay (and parameters move) at entries the gradient does not hold."""
    wrap(mp, _F, "sparse_adam", lambda orig: lambda params, grads, *a, **k: orig(
        params, [_dense_support(g) for g in grads], *a, **k))


@mutant(breaks="optim.sparse_adam.masked_algorithm")
def sparse_adam_beta1_off(mp):
    wrap(mp, _F, "sparse_adam", lambda orig: lambda *a, **k: orig(
        *a, **dict(k, beta1=k["beta1"] * 0.99)))


@mutant(breaks="optim.sparse_adam.dense_gradients_refused")
def sparse_adam_accepts_dense_gradients(mp):
    def make(orig):
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None and not p.grad.is_sparse:
                        p.grad = p.grad.to_sparse()
            return orig(self, closure)
        return step
    wrap(mp, torch.optim.SparseAdam, "step", make)


# -- LBFGS -----------------------------------------------------------------------------------

def _lbfgs_init(mp, **changes):
    LBFGS = torch.optim.LBFGS

    def make(orig):
        def init(self, params, *a, **k):
            orig(self, params, *a, **k)
            for key, change in changes.items():
                self.param_groups[0][key] = change(self.param_groups[0][key])
        return init
    wrap(mp, LBFGS, "__init__", make)


@mutant(breaks="optim.lbfgs.two_loop_recursion")
def lbfgs_history_size_ignored(mp):
    _lbfgs_init(mp, history_size=lambda h: 100)


@mutant(breaks="optim.lbfgs.two_loop_recursion")
def lbfgs_step_length_off(mp):
    wrap(mp, torch.optim.LBFGS, "_add_grad", lambda orig: lambda self, step_size, update: orig(
        self, step_size * OFF, update))


@mutant(breaks="optim.lbfgs.max_eval")
def lbfgs_max_eval_ignored(mp):
    _lbfgs_init(mp, max_eval=lambda m: 10**6)


@mutant(breaks="optim.lbfgs.single_param_group")
def lbfgs_merges_parameter_groups(mp):
    def make(orig):
        def init(self, params, *a, **k):
            params = list(params)
            if params and isinstance(params[0], dict):
                params = [p for group in params for p in group["params"]]
            return orig(self, params, *a, **k)
        return init
    wrap(mp, torch.optim.LBFGS, "__init__", make)
