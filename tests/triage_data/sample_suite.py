"""A small conformance suite for the triage self-tests (copied into a pytester folder as
suites/test_sample.py). With brokendev loaded and BROKEN_DEVICE=1, on --device cpu:0:

  test_square_*          x ** 2 departs from CPU and oracle (one cause, three tests)
  test_square_property   the same, from a Hypothesis example
  test_wrong_oracle      the oracle is wrong: fails on the CPU too
  test_cumsum_*          an exception on the device only (one cause: shapes normalized)
  test_poison, test_exp  exp fails only after test_poison ran in the same process
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, oracles, to_numpy

SCALE = 10.0


def _leaf(values, device):
    return torch.tensor(values, device=device, dtype=torch.float32, requires_grad=True)


@behavior("autograd.chain_rule.square_scaled")
def test_square_values(device):
    w = _leaf([2.0, -0.5, 1.25], device)
    z = SCALE * w**2 + 25
    value, _ = oracles.square_scaled(to_numpy(w))
    assert_close(z, value, what="z")


@behavior("autograd.chain_rule.square_scaled")
@pytest.mark.parametrize("n", [3, 5])
def test_square_sizes(device, n):
    w = _leaf(np.linspace(0.5, 2.0, n), device)
    assert_close(w.detach() ** 2, to_numpy(w) ** 2, what="w**2")


@behavior("autograd.chain_rule.square_scaled")
@given(x=st.floats(1.0, 2.0))
def test_square_property(device, x):
    w = _leaf([x], device)
    assert_close(w.detach() ** 2, np.array([x]) ** 2, what="w**2")


@behavior("autograd.chain_rule.mean_scaled_square")
def test_wrong_oracle(device):
    x = _leaf([1.0, 2.0], device)
    o = (3 * (x + 3) * (x + 3)).mean()
    assert_close(o, np.mean(3 * (np.array([1.0, 2.0]) + 3)), what="o")  # forgot the square


@behavior("autograd.accumulation.repeated_backward")
@pytest.mark.parametrize("n", [2, 4])
def test_cumsum(device, n):
    x = torch.arange(n, device=device, dtype=torch.float32)
    assert_close(x.cumsum(0), np.cumsum(np.arange(n)), what="cumsum")


@behavior("autograd.no_grad.in_place_update")
@given(n=st.integers(1, 4))
def test_poison(device, n):
    """A Hypothesis test: its reproducer replay needs the examples it drew."""
    x = torch.ones(n, device=device)
    with torch.no_grad():
        x.zero_()
    assert_close(x, np.zeros(n), what="x")


@behavior("autograd.detach.shares_storage")
def test_bystander(device):
    assert_close(torch.ones(2, device=device) + 1, np.full(2, 2.0), what="ones + 1")


@behavior("autograd.chain_rule.external_gradient")
def test_exp(device):
    x = torch.tensor([0.5, 1.0], device=device)
    assert_close(x.exp(), np.exp([0.5, 1.0]), what="exp(x)")
