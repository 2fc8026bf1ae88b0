"""Parameters a forward does not use: DistributedDataParallel waits for their gradients
unless constructed with find_unused_parameters=True.

Without the flag the reduction of the first iteration never finishes, and the next forward
raises the documented error ("Expected to have finished reduction in the prior iteration
before starting a new one ..."). With the flag both iterations run and the used parameters'
gradients are averaged as usual.
"""

import numpy as np
import pytest
import torch
from torch import nn

from torchconform import assert_close, behavior, distributed, oracles

ERROR = "Expected to have finished reduction in the prior iteration before starting a new one"


class WithUnusedBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(3, 2)
        self.unused = nn.Linear(3, 2)  # registered, never called

    def forward(self, x):
        return self.used(x)


def rank_two_iterations(me, find_unused, weight, bias, batches):
    module = WithUnusedBranch()
    with torch.no_grad():
        module.used.weight.copy_(torch.as_tensor(weight))
        module.used.bias.copy_(torch.as_tensor(bias))
    model = torch.nn.parallel.DistributedDataParallel(
        module.to(me.device), find_unused_parameters=find_unused)
    x, y = distributed.local_batch(batches, me)
    grads = []
    for _ in range(2):
        module.zero_grad()
        try:
            loss = torch.nn.functional.mse_loss(model(x), y)
        except RuntimeError as exc:
            return {"error": str(exc), "grads": grads}
        loss.backward()
        grads.append(distributed.grads_of(module.used))
    return {"error": None, "grads": grads}


def _problem(seed=3, n=3):
    rng = np.random.default_rng(seed)
    weight, bias = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, 2)
    batches = [(rng.uniform(-2, 2, (n, 3)), rng.uniform(-2, 2, (n, 2)))
               for _ in range(distributed.WORLD_SIZE)]
    return weight, bias, batches


@behavior("distributed.unused_parameters.error_without_flag")
def test_an_unused_parameter_without_the_flag_fails_the_next_iteration(ranks):
    weight, bias, batches = _problem()
    for r, result in enumerate(ranks.run(rank_two_iterations, False, weight, bias, batches)):
        assert result["error"] is not None, (
            f"rank {r}: the second forward ran although a parameter got no gradient")
        assert ERROR in result["error"], f"rank {r}: another error: {result['error']}"
        assert len(result["grads"]) == 1, f"rank {r}: the first iteration must run"


@behavior("distributed.unused_parameters.allowed_with_flag")
def test_find_unused_parameters_lets_iterations_run_and_averages_used_gradients(ranks):
    weight, bias, batches = _problem()
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    _, expected_w, expected_b = oracles.linear_mse(x, weight, bias, y)
    for r, result in enumerate(ranks.run(rank_two_iterations, True, weight, bias, batches)):
        if result["error"] is not None:
            pytest.fail(f"rank {r}: {result['error']}")
        assert len(result["grads"]) == 2
        for i, (grad_w, grad_b) in enumerate(result["grads"]):
            assert_close(grad_w, expected_w, dtype=torch.float32,
                         what=f"rank {r}, iteration {i}: d loss / d used.weight")
            assert_close(grad_b, expected_b, dtype=torch.float32,
                         what=f"rank {r}, iteration {i}: d loss / d used.bias")
