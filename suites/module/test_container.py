"""Containers: Sequential, ModuleList, ModuleDict, ParameterList and ParameterDict register what
they hold under their index or key; a plain Python list or dict of modules registers nothing."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from torchconform import assert_close, behavior, shares_memory


class Affine(nn.Module):
    """x * scale + shift, with both numbers as parameters: composing two of them in the wrong
    order gives a different result, so the output shows the order the container ran them in."""

    def __init__(self, scale, shift):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.shift = nn.Parameter(torch.tensor(float(shift)))

    def forward(self, x):
        return x * self.scale + self.shift


def _kinds(container):
    return [type(m).__name__ for m in container]


_coefficient = st.integers(-4, 4).filter(bool).map(float)  # small exact values, never 0


@behavior("module.container.sequential_chains_in_order")
@given(coefficients=st.lists(st.tuples(_coefficient, _coefficient), min_size=1, max_size=5),
       named=st.booleans())
def test_sequential_feeds_each_output_to_the_next_module_in_order(device, coefficients, named):
    layers = [Affine(a, b) for a, b in coefficients]
    if named:  # an OrderedDict keeps its keys as the names
        names = [f"step{len(layers) - i}" for i in range(len(layers))]  # not sorted order
        seq = nn.Sequential(OrderedDict(zip(names, layers))).to(device)
    else:
        names = [str(i) for i in range(len(layers))]
        seq = nn.Sequential(*layers).to(device)
    x = torch.linspace(-1, 1, 5, device=device)
    expected = np.linspace(-1, 1, 5)
    for a, b in coefficients:  # the documented chain: first module first
        expected = expected * a + b
    assert_close(seq(x), expected)
    assert [n for n, _ in seq.named_children()] == names
    assert list(seq) == layers


@behavior("module.container.sequential_indexing")
def test_sequential_indexes_like_a_list(device):
    layers = [nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 3)]
    seq = nn.Sequential(*layers).to(device)
    assert len(seq) == 3 and len(nn.Sequential()) == 0
    assert [seq[i] for i in range(3)] == layers
    assert [seq[i] for i in (-1, -2, -3)] == layers[::-1]
    for bad in (3, -4):
        with pytest.raises(IndexError):
            seq[bad]
    seq[1] = nn.Tanh()  # assignment by index replaces in place, under the same name
    assert _kinds(seq) == ["Linear", "Tanh", "Linear"]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]


@behavior("module.container.sequential_slice")
def test_sequential_slice_is_a_sequential_of_the_same_modules(device):
    layers = [nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 3), nn.Tanh()]
    seq = nn.Sequential(*layers).to(device)
    tail = seq[1:]
    assert type(tail) is nn.Sequential
    assert list(tail) == layers[1:] and all(a is b for a, b in zip(tail, layers[1:]))
    # The slice keeps the names the modules had (it is built from the same name/module pairs).
    assert [n for n, _ in tail.named_children()] == ["1", "2", "3"]
    assert list(seq[::2]) == layers[::2] and list(seq[-2:]) == layers[-2:]
    assert len(seq) == 4  # the original is untouched
    x = torch.ones(3, 1, device=device)
    assert torch.equal(seq[:2](x), layers[1](layers[0](x)))


@behavior("module.container.sequential_append_insert_extend")
def test_sequential_append_insert_extend_and_del_keep_names_numbered(device):
    relu, tanh, sig, elu, ident = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.ELU(), nn.Identity()
    seq = nn.Sequential(relu).to(device)
    assert seq.append(tanh) is seq
    assert seq.insert(0, sig) is seq  # before index 0
    assert seq.extend([elu, ident]) is seq
    assert list(seq) == [sig, relu, tanh, elu, ident]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3", "4"]
    seq.insert(-1, nn.Softplus())  # before the last, like list.insert
    assert _kinds(seq) == ["Sigmoid", "ReLU", "Tanh", "ELU", "Softplus", "Identity"]
    del seq[0]  # the rest move up and are renumbered
    assert _kinds(seq) == ["ReLU", "Tanh", "ELU", "Softplus", "Identity"]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3", "4"]
    x = torch.linspace(-2, 2, 5, device=device)
    # ReLU, Tanh, ELU (the identity on the non-negative values it gets), Softplus, Identity.
    expected = np.log1p(np.exp(np.tanh(np.maximum(np.linspace(-2, 2, 5), 0))))
    assert_close(seq(x), expected)


@behavior("module.container.sequential_names")
def test_sequential_children_are_named_by_position_in_every_traversal(device):
    inner = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    seq = nn.Sequential(nn.Linear(1, 2), inner).to(device)
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1", "1.0", "1.1", "1.2"]
    keys = ["0.weight", "0.bias", "1.0.weight", "1.0.bias", "1.2.weight", "1.2.bias"]
    assert [n for n, _ in seq.named_parameters()] == keys
    assert list(seq.state_dict()) == keys
    assert seq.get_submodule("1.2") is inner[2]
    assert shares_memory(seq.state_dict()["1.2.weight"], inner[2].weight)


@behavior("module.container.modulelist_registration")
def test_module_list_registers_its_modules_by_index(device):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(1, 2), nn.Linear(2, 3)])

    net = Net().to(device, torch.float16)
    assert [n for n, _ in net.named_modules()] == ["", "blocks", "blocks.0", "blocks.1"]
    assert list(net.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias"]
    assert len(list(net.parameters())) == 4
    # Module methods reach the listed modules: .to() converted them.
    assert all(p.dtype == torch.float16 and p.device.type == device.type
               for p in net.parameters())
    assert net.blocks[-1] is net.blocks[1] and len(net.blocks) == 2


@behavior("module.container.modulelist_mutation")
def test_module_list_mutations_keep_indices_as_names(device):
    relu, tanh, sig, elu, ident = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.ELU(), nn.Identity()
    ml = nn.ModuleList([relu]).to(device)
    assert ml.append(tanh) is ml and ml.extend([sig, elu]) is ml
    ml.insert(1, ident)
    assert list(ml) == [relu, ident, tanh, sig, elu]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2", "3", "4"]
    del ml[0]
    assert list(ml) == [ident, tanh, sig, elu]
    assert ml.pop(1) is tanh
    assert list(ml) == [ident, sig, elu]
    ml[-1] = relu
    assert list(ml) == [ident, sig, relu]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2"]
    part = ml[1:]
    assert type(part) is nn.ModuleList and list(part) == [sig, relu]
    assert [n for n, _ in part.named_children()] == ["0", "1"]
    with pytest.raises(IndexError):
        ml[3]
    with pytest.raises(TypeError):
        ml.append(torch.ones(1))  # only modules


@behavior("module.container.moduledict_registration")
def test_module_dict_registers_modules_under_their_keys_in_insertion_order(device):
    conv, pool = nn.Linear(1, 1), nn.Linear(1, 2)
    md = nn.ModuleDict({"pool": pool, "conv": conv})  # a plain dict's order, not sorted order
    md["act"] = nn.ReLU()
    md = md.to(device)
    assert list(md.keys()) == ["pool", "conv", "act"]
    assert [n for n, _ in md.named_children()] == ["pool", "conv", "act"]
    assert list(md.state_dict()) == ["pool.weight", "pool.bias", "conv.weight", "conv.bias"]
    assert md["pool"] is pool and "conv" in md and "x" not in md and len(md) == 3
    assert list(md.values())[:2] == [pool, conv]
    assert [k for k, _ in md.items()] == ["pool", "conv", "act"]
    with pytest.raises(KeyError):
        md["x"]


@behavior("module.container.moduledict_mutation")
def test_module_dict_update_pop_del_clear(device):
    b, a, c, new_b = nn.ReLU(), nn.Tanh(), nn.ELU(), nn.Identity()
    md = nn.ModuleDict([("b", b), ("a", a)]).to(device)
    md.update([("c", c), ("b", new_b)])  # an existing key is overwritten where it was
    assert list(md.keys()) == ["b", "a", "c"] and md["b"] is new_b
    md.update(OrderedDict([("z", nn.Sigmoid()), ("y", nn.Softplus())]))
    assert list(md.keys()) == ["b", "a", "c", "z", "y"]
    assert md.pop("a") is a
    del md["z"]
    assert list(md.keys()) == ["b", "c", "y"]
    assert [n for n, _ in md.named_children()] == ["b", "c", "y"]
    with pytest.raises(KeyError):
        md.pop("a")
    md.clear()
    assert len(md) == 0 and list(md.named_modules()) == [("", md)]


@behavior("module.container.parameterlist_registration")
def test_parameter_list_converts_tensors_and_registers_them_by_index(device):
    frozen = nn.Parameter(torch.ones(4, device=device), requires_grad=False)
    given_param = nn.Parameter(torch.ones(1, device=device))
    pl = nn.ParameterList([given_param, torch.zeros(2, device=device)])
    assert pl.append(torch.ones(3, device=device)) is pl
    assert pl.extend([frozen]) is pl
    pl[1] = torch.full((2,), 5.0, device=device)  # assignment converts too
    assert all(isinstance(p, nn.Parameter) for p in pl)
    assert pl[0] is given_param and pl[3] is frozen and pl[-1] is frozen
    assert [p.requires_grad for p in pl] == [True, True, True, False]
    assert [n for n, _ in pl.named_parameters()] == ["0", "1", "2", "3"]
    assert list(pl.state_dict()) == ["0", "1", "2", "3"]
    assert torch.equal(pl.state_dict()["1"].cpu(), torch.full((2,), 5.0))
    assert [tuple(p.shape) for p in pl] == [(1,), (2,), (3,), (4,)] and len(pl) == 4


@behavior("module.container.parameterdict_registration")
def test_parameter_dict_converts_tensors_and_registers_them_by_key(device):
    given_param = nn.Parameter(torch.ones(1, device=device), requires_grad=False)
    pd = nn.ParameterDict(OrderedDict([("right", torch.zeros(2, device=device)),
                                       ("left", given_param)]))
    pd["mid"] = torch.ones(3, device=device)
    pd.update([("z", torch.ones(1, device=device)), ("left", torch.ones(4, device=device))])
    assert list(pd.keys()) == ["right", "left", "mid", "z"]
    assert all(isinstance(p, nn.Parameter) for p in pd.values())
    assert pd["left"].shape == (4,) and pd["right"].requires_grad
    assert [n for n, _ in pd.named_parameters()] == ["right", "left", "mid", "z"]
    assert list(pd.state_dict()) == ["right", "left", "mid", "z"]
    popped = pd.pop("right")
    del pd["z"]
    assert isinstance(popped, nn.Parameter) and popped.shape == (2,)
    assert [n for n, _ in pd.named_parameters()] == ["left", "mid"]
    assert list(pd.state_dict()) == ["left", "mid"]
    assert "right" not in pd and len(pd) == 2
    # A plain dict's order is not preserved (documented); its entries all arrive.
    pd.update({"q": torch.ones(1, device=device), "p": torch.ones(1, device=device)})
    assert set(pd.keys()) == {"left", "mid", "p", "q"}
    keep = nn.ParameterDict({"k": given_param})
    assert keep["k"] is given_param and keep["k"].requires_grad is False


@behavior("module.container.parameterdict_methods")
def test_parameter_dict_setdefault_get_popitem_and_fromkeys(device):
    kept = nn.Parameter(torch.ones(2, device=device))
    pd = nn.ParameterDict({"a": kept})
    assert pd.setdefault("a", torch.zeros(3, device=device)) is kept  # present: untouched
    assert pd["a"] is kept
    added = pd.setdefault("b", torch.full((3,), 4.0, device=device))  # absent: inserted
    assert isinstance(added, nn.Parameter) and pd["b"] is added
    assert torch.equal(added.detach().cpu(), torch.full((3,), 4.0))
    assert [n for n, _ in pd.named_parameters()] == ["a", "b"]
    assert pd.get("a") is kept and pd.get("missing") is None and pd.get("missing", 7) == 7
    assert "missing" not in pd  # get() does not insert
    key, value = pd.popitem()  # the last inserted pair
    assert key == "b" and value is added
    assert list(pd.keys()) == ["a"] and [n for n, _ in pd.named_parameters()] == ["a"]
    fresh = pd.fromkeys(["x", "y"], torch.ones(1, device=device))
    assert type(fresh) is nn.ParameterDict and fresh is not pd
    assert list(fresh.keys()) == ["x", "y"]
    assert all(isinstance(p, nn.Parameter) for p in fresh.values())
    assert list(pd.keys()) == ["a"]


@behavior("module.container.plain_list_not_registered")
def test_plain_list_or_dict_of_modules_is_not_registered(device):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(1, 1), nn.Linear(1, 1)]  # a list: invisible to Module
            self.by_name = {"head": nn.Linear(1, 1)}
            self.kept = nn.ModuleList([nn.Linear(1, 1)])  # for contrast

    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["kept.0.weight", "kept.0.bias"]
    assert list(net.state_dict()) == ["kept.0.weight", "kept.0.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "kept", "kept.0"]
    net.to(device, torch.float16)
    assert net.kept[0].weight.dtype == torch.float16
    assert net.kept[0].weight.device.type == device.type
    unmoved = [p for m in net.layers + [net.by_name["head"]] for p in m.parameters()]
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in unmoved)
