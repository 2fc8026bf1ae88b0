"""Module.apply(fn): fn on every submodule and the module itself, children first (seed 002)."""

import torch
from hypothesis import example, given
from torch import nn

from torchconform import behavior
from torchconform.seed_models import LinearModel
from torchconform.strategies import DEEP_TREE, build, module_trees, postorder


@behavior("module.apply.visits_children_then_self")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_apply_visits_every_module_once_children_before_parents(device, spec):
    index = {}
    m = build(spec, device, index=index)
    visited = []
    m.apply(visited.append)
    expected = [index[name] for name, _ in postorder(spec)]
    assert len(visited) == len(expected)
    assert all(a is b for a, b in zip(visited, expected))
    assert visited[-1] is m


@behavior("module.apply.visits_children_then_self")
def test_apply_on_seed_002_three_level_tree_visits_leaf_first(device):
    m1, m2, m3 = (LinearModel().to(device) for _ in range(3))
    m1.sub1 = m2
    m2.sub2_1 = m3
    visited = []
    m1.apply(visited.append)
    assert len(visited) == 3
    assert visited[0] is m3 and visited[1] is m2 and visited[2] is m1


@behavior("module.apply.returns_self")
def test_apply_returns_the_module(device):
    m = LinearModel().to(device)
    assert m.apply(lambda module: None) is m


@behavior("module.apply.seed_002_new_weight")
def test_seed_002_apply_adds_a_parameter_to_every_module(device):
    def make_new_weight(module):
        module.weight2 = nn.Parameter(torch.tensor([2.0], device=device))

    m1, m2 = LinearModel().to(device), LinearModel().to(device)
    m1.sub = m2
    m1.apply(make_new_weight)
    for m in (m1, m2):
        p = m.get_parameter("weight2")
        assert isinstance(p, nn.Parameter) and p.requires_grad
        assert torch.equal(p.detach().cpu(), torch.tensor([2.0]))
    assert "sub.weight2" in dict(m1.named_parameters())


@behavior("module.apply.weight_init")
def test_apply_initializes_every_linear_layer(device):
    @torch.no_grad()
    def init_weights(m):
        if isinstance(m, nn.Linear):
            m.weight.fill_(1.0)
            m.bias.zero_()

    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 2))).to(device)
    net.apply(init_weights)
    linears = [net[0], net[2][0]]
    for layer in linears:
        assert torch.equal(layer.weight.detach().cpu(), torch.ones_like(layer.weight).cpu())
        assert torch.equal(layer.bias.detach().cpu(), torch.zeros_like(layer.bias).cpu())
        assert layer.weight.requires_grad
    out = net(torch.ones(1, 2, device=device))
    assert torch.equal(out.detach().cpu(), torch.full((1, 2), 6.0))  # 2 -> 3*2 -> ReLU -> 2*6
