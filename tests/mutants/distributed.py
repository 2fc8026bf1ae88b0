"""Mutants of DistributedDataParallel. They run inside the rank processes: each mutant adds a
patch to torchconform.distributed.RANK_PATCHES, which every rank applies at start-up (the
in-process run of the suite starts its own ranks, so they see the patch)."""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from torchconform import distributed

from . import mutant, via, wrap


def in_ranks(breaks, name):
    """Register mutant `name`, breaking `breaks`, that has every rank apply the decorated
    patch fn(mp) at start-up. A rank imports the patch by name again: keep it module-level."""
    def register(patch):
        mutant(breaks, name=name)(lambda mp: mp.setattr(
            distributed, "RANK_PATCHES", distributed.RANK_PATCHES + (patch,)))
        return patch
    return register


def _sum_hook(state, bucket):
    """All-reduce that sums the ranks' gradients instead of averaging them."""
    work = dist.all_reduce(bucket.buffer(), async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def _local_hook(state, bucket):
    """No communication: every rank keeps its own gradients."""
    fut = torch.futures.Future()
    fut.set_result(bucket.buffer())
    return fut


def _after_init(mp, then):
    """Every DDP runs then(ddp) once its __init__ is done."""
    def init(original, self, *args, **kwargs):
        original(self, *args, **kwargs)
        then(self)
    wrap(mp, DDP, "__init__", via(init))


def _force_find_unused(mp, value):
    wrap(mp, DDP, "__init__", via(lambda init, self, *a, **k: init(
        self, *a, **dict(k, find_unused_parameters=value))))


# -- the mutants: each a patch applied in the ranks -------------------------------------------

@in_ranks("distributed.construction.state_from_rank0", "ddp_does_not_broadcast_at_construction")
def rank_patch_no_broadcast_at_construction(mp):
    mp.setattr(torch.nn.parallel.distributed, "_sync_module_states", lambda *a, **k: None)


@in_ranks("distributed.gradients.averaged", "ddp_sums_gradients")
def rank_patch_sum_gradients(mp):
    _after_init(mp, lambda ddp: ddp.register_comm_hook(None, _sum_hook))


@in_ranks("distributed.no_sync.grads_stay_local", "ddp_no_sync_syncs")
def rank_patch_no_sync_syncs(mp):
    mp.setattr(DDP, "no_sync", lambda self: contextlib.nullcontext())


@in_ranks("distributed.no_sync.next_sync_averages_accumulated", "ddp_no_sync_drops_accumulated")
def rank_patch_no_sync_drops_accumulated(mp):
    def make(no_sync):
        @contextlib.contextmanager
        def dropping(self):
            with no_sync(self):
                yield
            for p in self.parameters():
                p.grad = None
        return dropping
    wrap(mp, DDP, "no_sync", make)


@in_ranks("distributed.buffers.broadcast_on_forward", "ddp_does_not_broadcast_buffers")
def rank_patch_no_buffer_broadcast(mp):
    mp.setattr(DDP, "_sync_buffers", lambda self: None)


@in_ranks("distributed.unused_parameters.error_without_flag", "ddp_always_finds_unused")
def rank_patch_always_find_unused(mp):
    _force_find_unused(mp, True)


@in_ranks("distributed.unused_parameters.allowed_with_flag", "ddp_ignores_find_unused")
def rank_patch_never_find_unused(mp):
    _force_find_unused(mp, False)


@in_ranks("distributed.optimizer.step_keeps_ranks_identical", "ddp_keeps_local_gradients")
def rank_patch_keep_local_gradients(mp):
    _after_init(mp, lambda ddp: ddp.register_comm_hook(None, _local_hook))
