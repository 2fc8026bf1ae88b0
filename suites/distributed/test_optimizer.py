"""An optimizer step after backward through DistributedDataParallel leaves every rank with the
same parameters: DDP never broadcasts parameters, it relies on identical (averaged) gradients
stepped identically on every rank.

Each rank trains on its own data for a few SGD steps with momentum; after every step the ranks'
parameters are bit-for-bit equal, and equal to the documented SGD rule (oracles.SGD) applied
to the gradients of the whole batch (oracles.mlp_mse), in float64.
"""

import numpy as np
import torch

from torchconform import assert_close, behavior, distributed, oracles, to_numpy

STEPS = 3
LR, MOMENTUM = 0.1, 0.9


def _problem(seed=4, n=2):
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-1, 1, s) for s in [(4, 3), (4,), (2, 4), (2,)]]
    steps = [[(rng.uniform(-2, 2, (n, 3)), rng.uniform(-2, 2, (n, 2)))
              for _ in range(distributed.WORLD_SIZE)] for _ in range(STEPS)]
    return init, steps


def rank_train(me, init, steps):
    module = distributed.mlp(init, me.device)
    model = torch.nn.parallel.DistributedDataParallel(module)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    after = []
    for batches in steps:
        optimizer.zero_grad()
        x, y = distributed.local_batch(batches, me)
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        after.append([to_numpy(p) for p in module.parameters()])
    return after


@behavior("distributed.optimizer.step_keeps_ranks_identical")
def test_parameters_stay_identical_on_every_rank_after_each_step(ranks):
    init, steps = _problem()
    results = ranks.run(rank_train, init, steps)
    oracle = oracles.SGD(init, lr=LR, momentum=MOMENTUM)
    for t, batches in enumerate(steps):
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        expected = oracle.step(oracles.mlp_mse(x, *oracle.params, y)[2])
        for r in range(1, len(results)):
            for i, (mine, rank0) in enumerate(zip(results[r][t], results[0][t])):
                assert np.array_equal(mine, rank0), (
                    f"step {t + 1}: parameter {i} on rank {r} differs from rank 0's")
        for i, (got, want) in enumerate(zip(results[0][t], expected)):
            assert_close(got, want, dtype=torch.float32, what=f"step {t + 1}: parameter {i}")
