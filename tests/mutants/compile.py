"""Mutants of torch.compile: a compiled optimizer step that drifts from the eager one, and
mutants of torch.compile's documented differences (suites/compile). All need --mode compile."""

from __future__ import annotations

import torch
from torch import nn

from . import mutant, wrap

COMPILE = ("--mode", "compile")


@mutant(breaks=("optim.sgd.momentum", "optim.adam.algorithm", "optim.nadam.algorithm",
                 "optim.rprop.algorithm", "optim.adamw.decoupled_weight_decay",
                 "optim.adamax.algorithm", "optim.radam.algorithm", "optim.rmsprop.algorithm",
                 "optim.adagrad.algorithm", "optim.adadelta.algorithm",
                 "optim.asgd.algorithm"), extra_args=("--mode", "eager,compile"))
def compiled_optimizer_step_adds_1e_3(mp):
    """torch.compile(optimizer.step) returns a step that also adds 1e-3 to every parameter;
    eager steps and compiled modules are untouched. NAdam's compiled step is held to a wider
    tolerance (float32 bias corrections): the drift still shows there."""
    def make(compile_):
        def compile_with_drift(fn=None, *args, **kwargs):
            compiled = compile_(fn, *args, **kwargs)
            owner = getattr(fn, "__self__", None)
            if not isinstance(owner, torch.optim.Optimizer):
                return compiled

            def drifting_step(*a, **k):
                result = compiled(*a, **k)
                with torch.no_grad():
                    for group in owner.param_groups:
                        for p in group["params"]:
                            p.add_(1e-3)
                return result
            return drifting_step
        return compile_with_drift
    wrap(mp, torch, "compile", make)


@mutant(breaks="compile.state_dict.orig_mod_prefix", extra_args=COMPILE)
def compiled_state_dict_without_prefix(mp):
    from torch._dynamo.eval_frame import OptimizedModule

    mp.setattr(OptimizedModule, "state_dict",
               lambda self, *a, **k: self._orig_mod.state_dict(*a, **k), raising=False)


@mutant(breaks="compile.state_dict.module_compile_in_place", extra_args=COMPILE)
def module_compile_does_nothing(mp):
    mp.setattr(nn.Module, "compile", lambda self, *args, **kwargs: None)


@mutant(breaks="compile.hooks.added_after_first_call_ignored", extra_args=COMPILE)
def dynamo_guards_on_hooks(mp):
    import torch._dynamo.config

    mp.setattr(torch._dynamo.config, "skip_nnmodule_hook_guards", False)


@mutant(breaks="compile.hooks.removal_takes_effect", extra_args=COMPILE)
def hook_removal_does_nothing(mp):
    from torch.utils.hooks import RemovableHandle

    mp.setattr(RemovableHandle, "remove", lambda self: None)
