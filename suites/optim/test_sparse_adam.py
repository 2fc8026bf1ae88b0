"""torch.optim.SparseAdam: "a masked version of the Adam algorithm" for dense parameters with
sparse gradients. Where the sparse gradient has an entry, the moments and the parameter follow
Adam's documented update; everywhere else all three are left alone. Dense gradients are
refused.

Stepped side by side with oracles_optim.SparseAdam on gradients that hold a random subset of
the entries (values never zero). SparseAdam adds eps to sqrt(v) before the bias correction
(Adam adds it after), a departure from "masked Adam" of relative size eps / sqrt(v_hat); the
checks use the default eps = 1e-8 and float32's tolerance, below which that departure stays,
so that they test the masking, which is what the page documents.
"""

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import SPARSE, behavior, oracles_optim, requires, to_numpy
from torchconform.optim_alongside import compare, few_examples, make_params
from torchconform.strategies import generators, signed_values


def _sparse(values, mask, device, dtype):
    indices = np.stack(np.nonzero(mask)) if values.ndim else np.zeros((0, 1), dtype=np.int64)
    return torch.sparse_coo_tensor(torch.tensor(indices, dtype=torch.int64),
                                   torch.tensor(values[mask], dtype=dtype), values.shape,
                                   device=device)


@st.composite
def masked_trajectories(draw, steps=4):
    """Parameters of 1 or 2 dimensions; each step's gradient holds a random subset of the
    entries (at least one), so that some entries skip some steps."""
    sizes = draw(st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple),
                          min_size=1, max_size=3))
    rng = draw(generators())
    params = [signed_values(rng, s) for s in sizes]
    grads = []
    for _ in range(steps):
        step = []
        for s in sizes:
            mask = rng.random(s) < 0.6
            mask.flat[rng.integers(mask.size)] = True
            step.append((signed_values(rng, s, 0.125, 2.0), mask))
        grads.append(step)
    return params, grads


SEED = ([np.array([[1.5, -0.75, 0.5], [0.25, -1.0, 2.0]])],
        [[(np.array([[0.5, -1.0, 0.25], [1.5, 0.75, -0.5]]),
           np.array([[True, False, True], [False, False, True]]))],
         [(np.array([[-0.5, 0.25, 1.0], [-0.125, 1.5, 0.5]]),
           np.array([[True, True, False], [False, True, True]]))],
         [(np.array([[1.25, 0.5, -0.75], [0.5, 1.0, 1.0]]),
           np.array([[False, False, True], [True, False, False]]))],
         [(np.array([[0.125, -1.5, 0.5], [1.0, -0.25, 0.75]]),
           np.array([[True, True, True], [True, True, True]]))]])


@behavior("optim.sparse_adam.masked_algorithm")
@few_examples()
@given(trajectory=masked_trajectories(), lr=st.floats(0.01, 0.5),
       betas=st.tuples(st.floats(0.5, 0.95), st.floats(0.6, 0.999)), maximize=st.booleans())
@example(trajectory=SEED, lr=0.1, betas=(0.9, 0.999), maximize=False)
@example(trajectory=SEED, lr=0.1, betas=(0.5, 0.6), maximize=True)
def test_sparse_adam_updates_only_the_entries_the_gradient_holds(device, dtype, trajectory,
                                                                 lr, betas, maximize):
    requires(device, SPARSE)
    values, grads = trajectory
    params = make_params(values, device, dtype)
    optimizer = torch.optim.SparseAdam(params, lr=lr, betas=betas, maximize=maximize)
    oracle = oracles_optim.SparseAdam([to_numpy(p) for p in params], lr=lr, betas=betas,
                                      maximize=maximize)
    for t, step in enumerate(grads, start=1):
        for p, (g, mask) in zip(params, step):
            p.grad = _sparse(g, mask, device, dtype)
        optimizer.step()
        expected = oracle.step_masked(step)
        compare(params, optimizer, expected, oracle.state, torch.float32,
                f"SparseAdam: after step {t}")


@behavior("optim.sparse_adam.masked_algorithm")
def test_sparse_adam_steps_only_the_looked_up_embedding_rows(device, dtype):
    """The documented use: nn.Embedding(sparse=True). Row 3 is looked up twice, so its
    gradient is the sum of both upstream gradients; rows 0, 2 and 4 never move."""
    requires(device, SPARSE)
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(5, 3, sparse=True, device=device, dtype=dtype)
    optimizer = torch.optim.SparseAdam(embedding.parameters(), lr=0.1)
    oracle = oracles_optim.SparseAdam([to_numpy(embedding.weight)], lr=0.1)
    upstream = torch.tensor([[0.5, -1.0, 0.25], [1.5, 0.75, -0.5], [-0.25, 1.0, 2.0]],
                            device=device, dtype=dtype)
    rows = torch.tensor([1, 3, 3], device=device)
    for t in range(1, 4):
        optimizer.zero_grad()
        (embedding(rows) * upstream * t).sum().backward()
        assert embedding.weight.grad.is_sparse
        g = np.zeros((5, 3))
        np.add.at(g, [1, 3, 3], to_numpy(upstream) * t)
        mask = np.zeros((5, 3), dtype=bool)
        mask[[1, 3]] = True
        optimizer.step()
        expected = oracle.step_masked([(g, mask)])
        compare([embedding.weight], optimizer, expected, oracle.state, torch.float32,
                f"SparseAdam on an embedding: after step {t}")


@behavior("optim.sparse_adam.dense_gradients_refused")
def test_sparse_adam_refuses_dense_gradients(device):
    p = torch.tensor([1.0, -2.0], device=device, requires_grad=True)
    optimizer = torch.optim.SparseAdam([p], lr=0.1)
    p.grad = torch.tensor([0.5, 1.0], device=device)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        optimizer.step()
    assert p.detach().cpu().tolist() == [1.0, -2.0]
