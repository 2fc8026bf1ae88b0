"""train() and eval(): a recursive training flag that layers such as Dropout obey."""

import pytest
import torch
from hypothesis import example, given
from torch import nn

from torchconform import behavior
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
def test_dropout_is_identity_in_eval_and_scales_kept_values_in_train(device):
    net = nn.Sequential(nn.Dropout(p=0.5)).to(device)
    x = torch.ones(10_000, device=device)
    net.eval()
    assert torch.equal(net(x), x)
    net.train()
    y = net(x).cpu()
    assert set(y.unique().tolist()) == {0.0, 2.0}  # kept values scaled by 1 / (1 - p)
    assert 0.45 < (y == 0).float().mean().item() < 0.55
