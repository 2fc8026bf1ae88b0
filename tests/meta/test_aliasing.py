"""shares_memory: a write through one tensor shows in the other, whatever data_ptr() says."""

import math

import pytest
import torch

from torchconform import shares_memory


@pytest.mark.parametrize("make_view", [
    lambda t: t, lambda t: t.detach(), lambda t: t.view(-1), lambda t: t[1:], lambda t: t.t(),
])
def test_views_share_memory_and_keep_their_values(make_view):
    t = torch.tensor([[1.0, 2.0], [math.nan, -math.inf]])
    view = make_view(t)
    assert shares_memory(view, t) and shares_memory(t, view)
    assert torch.equal(t.nan_to_num(), torch.tensor([[1.0, 2.0], [0.0, -math.inf]]).nan_to_num())
    assert math.isnan(t[1, 0].item()) and t[1, 1].item() == -math.inf


@pytest.mark.parametrize("t", [
    torch.tensor([1.0, 1.0]), torch.tensor([math.nan]), torch.tensor([1, 2, 3]),
    torch.tensor([True, False]), torch.tensor(5.0),
])
def test_copies_do_not_share_memory(t):
    assert not shares_memory(t.clone(), t)
    assert not shares_memory(t, t.clone())
    assert shares_memory(t, t)


def test_a_leaf_that_requires_grad_is_probed_without_recording_a_graph():
    w = torch.tensor([0.5, 1.0], requires_grad=True)
    assert shares_memory(w.detach(), w)
    assert w.grad_fn is None and torch.equal(w.detach(), torch.tensor([0.5, 1.0]))
