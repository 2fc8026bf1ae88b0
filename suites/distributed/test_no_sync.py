"""DistributedDataParallel.no_sync(): gradient accumulation across processes.

Inside the context, backward passes do not communicate: each rank's .grad accumulates its own
micro-batches' gradients. The first synchronized backward after the context averages what
each rank accumulated (its sum over all its micro-batches) across the ranks. This is the
seeds' gradient accumulation, done by two processes. Oracle: oracles.mlp_mse per micro-batch.
"""

import numpy as np
import torch

from torchconform import assert_close, behavior, distributed, oracles

MICRO_BATCHES = 3  # two inside no_sync(), the third synchronized


def _problem(seed=1, n=2):
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-1, 1, s) for s in [(4, 3), (4,), (2, 4), (2,)]]
    # batches[k][rank] = (x, y) of micro-batch k on that rank
    batches = [[(rng.uniform(-2, 2, (n, 3)), rng.uniform(-2, 2, (n, 2)))
                for _ in range(distributed.WORLD_SIZE)] for _ in range(MICRO_BATCHES)]
    return init, batches


def rank_accumulate(me, init, batches):
    """Grads after the micro-batches inside no_sync(), and after the synchronized one."""
    model = torch.nn.parallel.DistributedDataParallel(distributed.mlp(init, me.device))
    with model.no_sync():
        for micro in batches[:-1]:
            x, y = distributed.local_batch(micro, me)
            torch.nn.functional.mse_loss(model(x), y).backward()
        inside = distributed.grads_of(model)
    x, y = distributed.local_batch(batches[-1], me)
    torch.nn.functional.mse_loss(model(x), y).backward()
    return inside, distributed.grads_of(model)


def _grad_sum(init, micro_batches):
    """Sum of the float64 gradients of the mean loss of each micro-batch."""
    per_batch = [oracles.mlp_mse(x, *init, y)[2] for x, y in micro_batches]
    return [sum(parts) for parts in zip(*per_batch)]


NAMES = ["w1", "b1", "w2", "b2"]


@behavior("distributed.no_sync.grads_stay_local")
def test_inside_no_sync_each_rank_accumulates_only_its_own_gradients(ranks):
    init, batches = _problem()
    results = ranks.run(rank_accumulate, init, batches)
    for r, (inside, _) in enumerate(results):
        expected = _grad_sum(init, [micro[r] for micro in batches[:-1]])
        for name, got, want in zip(NAMES, inside, expected):
            assert_close(got, want, dtype=torch.float32,
                         what=f"rank {r}: accumulated d loss / d {name} inside no_sync()")


@behavior("distributed.no_sync.next_sync_averages_accumulated")
def test_the_first_synchronized_backward_averages_the_accumulated_sums(ranks):
    init, batches = _problem()
    results = ranks.run(rank_accumulate, init, batches)
    sums = [_grad_sum(init, [micro[r] for micro in batches]) for r in range(len(results))]
    expected = [np.mean(parts, axis=0) for parts in zip(*sums)]
    for r, (_, synced) in enumerate(results):
        for name, got, want in zip(NAMES, synced, expected):
            assert_close(got, want, dtype=torch.float32,
                         what=f"rank {r}: d loss / d {name} after the synchronized backward")
