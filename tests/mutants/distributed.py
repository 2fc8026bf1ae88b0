"""Mutants of DistributedDataParallel. They run inside the rank processes: each mutant adds a
patch to torchconform.distributed.RANK_PATCHES, which every rank applies at start-up (the
in-process run of the suite starts its own ranks, so they see the patch)."""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from torchconform import distributed

from . import mutant, wrap


def in_ranks(mp, patch) -> None:
    mp.setattr(distributed, "RANK_PATCHES", distributed.RANK_PATCHES + (patch,))


# -- patches applied in the ranks (module-level so that a rank can import them) ---------------

def _sum_hook(state, bucket):
    """All-reduce that sums the ranks' gradients instead of averaging them."""
    work = dist.all_reduce(bucket.buffer(), async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def _local_hook(state, bucket):
    """No communication: every rank keeps its own gradients."""
    fut = torch.futures.Future()
    fut.set_result(bucket.buffer())
    return fut


def _add_comm_hook(mp, hook):
    """Every DDP gets `hook` in place of its default averaging all-reduce."""
    def make(init):
        def hooked(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.register_comm_hook(None, hook)
        return hooked
    wrap(mp, DistributedDataParallel, "__init__", make)


def rank_patch_no_broadcast_at_construction(mp):
    mp.setattr(torch.nn.parallel.distributed, "_sync_module_states", lambda *a, **k: None)


def rank_patch_sum_gradients(mp):
    _add_comm_hook(mp, _sum_hook)


def rank_patch_keep_local_gradients(mp):
    _add_comm_hook(mp, _local_hook)


def rank_patch_no_sync_syncs(mp):
    mp.setattr(DistributedDataParallel, "no_sync", lambda self: contextlib.nullcontext())


def rank_patch_no_sync_drops_accumulated(mp):
    def make(no_sync):
        @contextlib.contextmanager
        def dropping(self):
            with no_sync(self):
                yield
            for p in self.parameters():
                p.grad = None
        return dropping
    wrap(mp, DistributedDataParallel, "no_sync", make)


def rank_patch_no_buffer_broadcast(mp):
    mp.setattr(DistributedDataParallel, "_sync_buffers", lambda self: None)


def _force_find_unused(mp, value):
    def make(init):
        def forced(self, *args, **kwargs):
            kwargs["find_unused_parameters"] = value
            init(self, *args, **kwargs)
        return forced
    wrap(mp, DistributedDataParallel, "__init__", make)


def rank_patch_always_find_unused(mp):
    _force_find_unused(mp, True)


def rank_patch_never_find_unused(mp):
    _force_find_unused(mp, False)


# -- the mutants ------------------------------------------------------------------------------

@mutant(breaks="distributed.construction.state_from_rank0")
def ddp_does_not_broadcast_at_construction(mp):
    in_ranks(mp, rank_patch_no_broadcast_at_construction)


@mutant(breaks="distributed.gradients.averaged")
def ddp_sums_gradients(mp):
    in_ranks(mp, rank_patch_sum_gradients)


@mutant(breaks="distributed.no_sync.grads_stay_local")
def ddp_no_sync_syncs(mp):
    in_ranks(mp, rank_patch_no_sync_syncs)


@mutant(breaks="distributed.no_sync.next_sync_averages_accumulated")
def ddp_no_sync_drops_accumulated(mp):
    in_ranks(mp, rank_patch_no_sync_drops_accumulated)


@mutant(breaks="distributed.buffers.broadcast_on_forward")
def ddp_does_not_broadcast_buffers(mp):
    in_ranks(mp, rank_patch_no_buffer_broadcast)


@mutant(breaks="distributed.unused_parameters.error_without_flag")
def ddp_always_finds_unused(mp):
    in_ranks(mp, rank_patch_always_find_unused)


@mutant(breaks="distributed.unused_parameters.allowed_with_flag")
def ddp_ignores_find_unused(mp):
    in_ranks(mp, rank_patch_never_find_unused)


@mutant(breaks="distributed.optimizer.step_keeps_ranks_identical")
def ddp_keeps_local_gradients(mp):
    in_ranks(mp, rank_patch_keep_local_gradients)
