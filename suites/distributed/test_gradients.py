"""After backward through DistributedDataParallel every rank holds the average of the ranks'
local gradients: the gradient of the mean loss over the concatenated batch.

Both ranks start from the same parameters and each runs forward and backward on its own half
of a batch. With equal local batch sizes and a mean loss, the average of the local gradients
is the gradient of the same loss on the whole batch in one process, which
oracles.mlp_mse computes in numpy float64.
"""

import numpy as np
import torch

from torchconform import assert_close, behavior, distributed, oracles


def _problem(seed=0, ranks=distributed.WORLD_SIZE, n=3):
    """Initial values [w1, b1, w2, b2] and one (x, y) batch of n rows per rank."""
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-1, 1, s) for s in [(4, 3), (4,), (2, 4), (2,)]]
    batches = [(rng.uniform(-2, 2, (n, 3)), rng.uniform(-2, 2, (n, 2))) for _ in range(ranks)]
    return init, batches


def rank_gradients(me, init, batches):
    model = torch.nn.parallel.DistributedDataParallel(distributed.mlp(init, me.device))
    x, y = distributed.local_batch(batches, me)
    torch.nn.functional.mse_loss(model(x), y).backward()
    return distributed.grads_of(model)


@behavior("distributed.gradients.averaged")
def test_gradients_after_backward_are_the_average_of_the_ranks_gradients(ranks):
    init, batches = _problem()
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    _, _, expected = oracles.mlp_mse(x, *init, y)
    local = [oracles.mlp_mse(bx, *init, by)[2][0] for bx, by in batches]
    assert not np.allclose(local[0], local[1]), "premise: the ranks' local gradients differ"
    for r, grads in enumerate(ranks.run(rank_gradients, init, batches)):
        for name, got, want in zip(["w1", "b1", "w2", "b2"], grads, expected):
            assert_close(got, want, dtype=torch.float32, what=f"rank {r}: d loss / d {name}")
