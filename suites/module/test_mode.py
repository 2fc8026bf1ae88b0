"""train() and eval(): a recursive training flag that layers such as Dropout obey."""

import numpy as np
import pytest
import torch
from hypothesis import example, given
from torch import nn

from torchconform import assert_close, behavior, to_numpy
from torchconform.strategies import DEEP_TREE, build, module_trees


@behavior("module.mode.recursive")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_train_and_eval_set_the_flag_on_every_submodule(device, spec):
    m = build(spec, device)
    assert all(mod.training for mod in m.modules())
    m.eval()
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    m.train(False)
    assert not any(mod.training for mod in m.modules())


@behavior("module.mode.returns_self")
def test_train_and_eval_return_the_module(device):
    m = nn.Sequential(nn.Linear(1, 1)).to(device)
    assert m.eval() is m
    assert m.train() is m
    assert m.train(False) is m


@behavior("module.mode.rejects_non_bool")
@pytest.mark.parametrize("mode", ["x", 1, None], ids=["str", "int", "None"])
def test_train_rejects_a_non_boolean_mode(device, mode):
    m = nn.Sequential(nn.Linear(1, 1)).to(device)
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train(mode)
    assert m.training is True and m[0].training is True


@behavior("module.mode.dropout_follows_mode")
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_is_identity_in_eval_and_scales_kept_values_in_train(device, p):
    n = 10_000
    net = nn.Sequential(nn.Dropout(p=p)).to(device)
    x = torch.linspace(1.0, 2.0, n, device=device)
    net.eval()
    assert torch.equal(net(x), x)
    net.train()
    y = to_numpy(net(x))
    kept = y != 0
    # p != 0.5 tells "zero with probability p, scale by 1/(1-p)" from the swapped rule.
    assert_close(y[kept], to_numpy(x)[kept] / (1 - p), dtype=x.dtype)
    # Zeroed fraction: binomial(n, p) / n, within 6 standard deviations (never flakes).
    assert abs((~kept).mean() - p) < 6 * np.sqrt(p * (1 - p) / n)


@behavior("module.mode.dropout_follows_mode")
def test_dropout_follows_train_and_eval_switches_in_every_mode(device, mode):
    """Switching train()/eval() on the module between calls of mode.module(net) switches
    Dropout: identity in eval, zeroing with probability p and scaling by 1/(1-p) in train."""
    p, n = 0.25, 10_000
    net = nn.Sequential(nn.Linear(1, 1), nn.Dropout(p=p)).to(device)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(0.0)
    run = mode.module(net)
    x = torch.linspace(1.0, 2.0, n, device=device).view(-1, 1)
    for phase in ("eval", "train", "eval", "train"):
        getattr(net, phase)()
        y = to_numpy(run(x))
        if phase == "eval":
            assert_close(y, to_numpy(x), what="eval output")
            continue
        kept = y != 0
        assert_close(y[kept], to_numpy(x)[kept] / (1 - p), dtype=x.dtype, what="kept values")
        assert abs((~kept).mean() - p) < 6 * np.sqrt(p * (1 - p) / n), "zeroed fraction"
