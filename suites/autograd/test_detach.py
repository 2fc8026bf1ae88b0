"""detach() returns an untracked tensor sharing the original's storage."""

import pytest
import torch

from torchconform import behavior, shares_memory


@behavior("autograd.detach.shares_storage")
@pytest.mark.parametrize("shape", [(2,), (65, 67)])
def test_detach_returns_an_untracked_view_of_the_same_storage(device, shape):
    x = torch.full(shape, 2.0, device=device, requires_grad=True)
    for source in (x, 3 * x):  # a leaf and a non-leaf
        d = source.detach()
        assert d.requires_grad is False and d.grad_fn is None and d.is_leaf
        assert shares_memory(d, source) and d.shape == source.shape
        assert d.device == source.device
        d.add_(1.0)  # seen through the original: no copy was made
        assert torch.equal(source.detach(), d)
    assert float(x.detach().flatten()[0]) == 3.0
