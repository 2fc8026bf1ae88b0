"""Mutants of the autograd breadth behaviors: grad modes (enable_grad, set_grad_enabled,
inference_mode, threads), tensor hooks, custom Functions, torch.utils.checkpoint and anomaly
detection. Each wraps the public entry point a user calls, so the suite sees a torch whose one
documented behavior is broken while everything else still works."""

from __future__ import annotations

import threading

import torch

from . import mutant, wrap

T = torch.Tensor
OFF = 1.01  # a gradient wrong by 1%: beyond gradcheck's default rtol of 1e-3


class _Handle:
    """A removable-handle stand-in whose remove() does what the mutant says."""

    def __init__(self, remove=lambda: None):
        self._remove = remove

    def remove(self):
        self._remove()


# -- grad modes -------------------------------------------------------------------------------

@mutant(breaks="autograd.grad_mode.enable_grad_inside_no_grad")
def enable_grad_does_nothing(mp):
    mp.setattr(torch.enable_grad, "__enter__", lambda self: None)
    mp.setattr(torch.enable_grad, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.grad_mode.enable_grad_inside_no_grad")
def enable_grad_not_undone_on_exit(mp):
    mp.setattr(torch.enable_grad, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.grad_mode.set_grad_enabled_context")
def set_grad_enabled_block_keeps_its_mode(mp):
    mp.setattr(torch.set_grad_enabled, "__exit__", lambda self, *exc: None)


@mutant(breaks="autograd.grad_mode.set_grad_enabled_context")
def set_grad_enabled_block_restores_default_not_previous(mp):
    # Leaving the block turns grad mode on, instead of back to what it was.
    mp.setattr(torch.set_grad_enabled, "__exit__",
               lambda self, *exc: torch._C._set_grad_enabled(True))


@mutant(breaks="autograd.grad_mode.set_grad_enabled_function")
def set_grad_enabled_only_works_as_a_context_manager(mp):
    # The mode is applied on __enter__ only: a plain call changes nothing.
    original = torch.set_grad_enabled

    class Lazy(original):
        def __init__(self, mode):
            self.prev = torch.is_grad_enabled()
            self.mode = mode

        def __enter__(self):
            torch._C._set_grad_enabled(self.mode)

    mp.setattr(torch, "set_grad_enabled", Lazy)


@mutant(breaks="autograd.grad_mode.thread_local")
def grad_mode_inherited_by_new_threads(mp):
    # A started thread takes over its creator's grad mode, as a process-global mode would.
    def make(orig):
        def start(self):
            enabled, run = torch.is_grad_enabled(), self.run

            def run_with_mode():
                torch._C._set_grad_enabled(enabled)
                return run()
            self.run = run_with_mode
            return orig(self)
        return start
    wrap(mp, threading.Thread, "start", make)


@mutant(breaks="autograd.grad_mode.inference_mode_results")
def inference_mode_is_no_grad(mp):
    mp.setattr(torch, "inference_mode",
               lambda mode=True: torch.no_grad() if mode else torch.enable_grad())


@mutant(breaks="autograd.grad_mode.inference_tensor_in_place")
def in_place_on_inference_tensor_allowed_everywhere(mp):
    def make(orig):
        def op(self, *args, **kwargs):
            if self.is_inference() and not torch.is_inference_mode_enabled():
                with torch.inference_mode():
                    return orig(self, *args, **kwargs)
            return orig(self, *args, **kwargs)
        return op
    for attr in ("add_", "mul_", "copy_", "__iadd__"):
        wrap(mp, T, attr, make)


@mutant(breaks="autograd.grad_mode.inference_tensor_saved_for_backward")
def inference_tensor_silently_cloned_for_backward(mp):
    def make(orig):
        def mul(self, other):
            if isinstance(other, torch.Tensor) and other.is_inference() and (
                    torch.is_grad_enabled() and not torch.is_inference_mode_enabled()):
                other = other.clone()
            return orig(self, other)
        return mul
    wrap(mp, T, "__mul__", make)


@mutant(breaks="autograd.grad_mode.inference_mode_false_nested")
def inference_mode_false_ignored(mp):
    original = torch.inference_mode
    mp.setattr(torch, "inference_mode",
               lambda mode=True: original(True if mode is False else mode))
