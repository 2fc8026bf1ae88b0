"""DistributedDataParallel's constructor makes every replica start from rank 0's state.

Each rank builds its module from a different seed (and different buffer values), so before
wrapping no two ranks agree; after `DistributedDataParallel(module)` every rank holds exactly
rank 0's parameters and buffers.
"""

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from torchconform import behavior, to_numpy


def rank_state_before_and_after_wrapping(me):
    torch.manual_seed(100 + me.rank)  # a different start on every rank
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).to(me.device)
    with torch.no_grad():
        model[1].running_mean.fill_(me.rank + 1.0)
    before = {k: to_numpy(v) for k, v in model.state_dict().items()}
    DistributedDataParallel(model)
    after = {k: to_numpy(v) for k, v in model.state_dict().items()}
    return before, after


@behavior("distributed.construction.state_from_rank0")
def test_every_rank_holds_rank0s_parameters_and_buffers_after_construction(ranks):
    results = ranks.run(rank_state_before_and_after_wrapping)
    rank0_before = results[0][0]
    for r, (before, _) in enumerate(results[1:], start=1):
        differ = [k for k in before if not np.array_equal(before[k], rank0_before[k])]
        assert "0.weight" in differ and "1.running_mean" in differ, (
            f"premise: rank {r} must start from other values than rank 0")
    for r, (_, after) in enumerate(results):
        for key, value in rank0_before.items():
            # A broadcast copies: bit for bit.
            assert np.array_equal(after[key], value), (
                f"rank {r}: {key} after construction is not rank 0's value\n"
                f" got: {after[key]}\n rank 0: {value}")
