"""DistributedDataParallel broadcasts the module's buffers from rank 0 at the start of every
forward (the default; `broadcast_buffers`, from torch 2.13 `forward_sync_buffers`).

After construction the ranks set a buffer to different values; a forward then runs on rank 0's
buffer everywhere: the buffer holds rank 0's value on every rank and the output is computed
with it.
"""

import numpy as np
import torch
from torch import nn

from torchconform import assert_close, behavior, to_numpy


class Shifted(nn.Module):
    """A linear layer plus a buffer `shift` added to its output."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("shift", torch.zeros(2))

    def forward(self, x):
        return self.linear(x) + self.shift


def rank_forward_after_buffers_diverged(me, weight, bias, x):
    module = Shifted()
    with torch.no_grad():
        module.linear.weight.copy_(torch.as_tensor(weight))
        module.linear.bias.copy_(torch.as_tensor(bias))
    model = torch.nn.parallel.DistributedDataParallel(module.to(me.device))
    results = []
    for _ in range(2):  # every iteration, not only the first
        with torch.no_grad():
            module.shift.fill_(10.0 * (me.rank + 1) + len(results))  # rank 0: 10, 11
        out = model(torch.as_tensor(x, dtype=torch.float32, device=me.device))
        out.sum().backward()
        results.append((to_numpy(module.shift), to_numpy(out)))
    return results


@behavior("distributed.buffers.broadcast_on_forward")
def test_forward_runs_on_rank0s_buffers_on_every_rank(ranks):
    rng = np.random.default_rng(2)
    weight, bias, x = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, 2), rng.uniform(-1, 1, (4, 3))
    for r, iterations in enumerate(ranks.run(rank_forward_after_buffers_diverged, weight, bias, x)):
        for i, (shift, out) in enumerate(iterations):
            rank0_shift = 10.0 + i
            assert np.array_equal(shift, [rank0_shift] * 2), (
                f"rank {r}, iteration {i}: buffer {shift} is not rank 0's {rank0_shift}")
            assert_close(out, x @ weight.T + bias + rank0_shift, dtype=torch.float32,
                         what=f"rank {r}, iteration {i}: output")
