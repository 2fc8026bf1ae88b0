"""Copies of a module: copy.deepcopy, pickling, and torch.save/torch.load of a state_dict
(weights_only=True) or of a whole module (weights_only=False)."""

import copy
import io
import pickle
from collections import OrderedDict

import pytest
import torch
from torch import nn

from torchconform import SERIALIZATION, behavior, requires, shares_memory


def _net(device):
    """Built-in modules only (so pickle finds the classes anywhere): the last Linear shares the
    first one's weight, the first bias is frozen, BatchNorm adds float and int64 buffers, and a
    non-persistent buffer (not in the state_dict, still part of the module) sits on the root."""
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Linear(2, 2)).to(device)
    net[2].weight = net[0].weight
    net[0].bias.requires_grad_(False)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        net[1].running_mean.fill_(0.25)
    net[1].num_batches_tracked.fill_(7)
    net.register_buffer("scale", torch.tensor([2.0, 4.0], device=device), persistent=False)
    return net.eval()


def _state(net):
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _check_equal_copy(copied, original):
    """Same structure, values, dtypes, devices, kinds and flags; storage of its own."""
    assert type(copied) is type(original) and copied is not original
    assert list(copied.state_dict()) == list(original.state_dict())
    for (key, a), (_, b) in zip(copied.state_dict().items(), original.state_dict().items()):
        assert a.dtype == b.dtype and a.device == b.device, key
        assert torch.equal(a, b) and not shares_memory(a, b), key
    # A copy is of the whole module, not of its state_dict: non-persistent buffers come along.
    buffers = dict(original.named_buffers())
    assert [name for name, _ in copied.named_buffers()] == list(buffers)
    assert torch.equal(copied.scale, buffers["scale"])
    assert not shares_memory(copied.scale, buffers["scale"])
    assert "scale" in copied._non_persistent_buffers_set and "scale" not in copied.state_dict()
    assert all(type(p) is nn.Parameter for p in copied.parameters())
    assert ([p.requires_grad for p in copied.parameters()]
            == [p.requires_grad for p in original.parameters()] == [True, False, True, True, True])
    assert [m.training for m in copied.modules()] == [m.training for m in original.modules()]


@behavior("module.copy.deepcopy_independent")
def test_deepcopy_gives_an_equal_module_with_its_own_storage(device):
    net = _net(device)
    before = _state(net)
    copied = copy.deepcopy(net)
    _check_equal_copy(copied, net)
    with torch.no_grad():  # changing the copy leaves the original alone
        for p in copied.parameters():
            p.add_(1)
        copied[1].running_var.mul_(3)
    copied[1].num_batches_tracked.add_(1)
    for key, value in _state(net).items():
        assert torch.equal(value, before[key]), key


@behavior("module.copy.deepcopy_keeps_sharing")
def test_deepcopy_keeps_parameters_shared_within_the_copy(device):
    net = _net(device)
    copied = copy.deepcopy(net)
    assert copied[2].weight is copied[0].weight  # tied in the copy as in the original
    assert copied[0].weight is not net[0].weight
    assert len(list(copied.parameters())) == len(list(net.parameters())) == 5
    with torch.no_grad():
        copied[0].weight.zero_()
    assert torch.equal(copied[2].weight.detach().cpu(), torch.zeros(2, 2))
    # A container holding both a module and its copy sees distinct parameters.
    both = nn.ModuleList([net, copied])
    assert len(list(both.parameters())) == 10


@behavior("module.copy.deepcopy_copies_hooks")
def test_deepcopy_carries_forward_hooks_over_to_the_copy(device):
    seen = []
    net = _net(device)
    handle = net.register_forward_hook(lambda module, args, out: seen.append(module))
    pre = net[0].register_forward_pre_hook(lambda module, args: (args[0] * 2,))
    copied = copy.deepcopy(net)
    x = torch.ones(3, 2, device=device)
    out = copied(x)
    assert seen == [copied]  # the copy's hook runs, with the copy as its module
    assert torch.equal(out, net(x))  # the pre-hook doubled the copy's input too
    assert seen == [copied, net]
    handle.remove()
    pre.remove()
    seen.clear()
    copied(x)  # removing the original's handles leaves the copy's hooks in place
    assert seen == [copied]
    assert not torch.equal(net(x), copied(x))


@behavior("module.copy.pickle_round_trip")
def test_pickling_a_whole_module_restores_an_equal_module(device):
    net = _net(device)
    restored = pickle.loads(pickle.dumps(net))
    _check_equal_copy(restored, net)
    assert restored[2].weight is restored[0].weight
    assert restored.training is False and restored[1].training is False
    x = torch.ones(3, 2, device=device)
    assert torch.equal(restored(x), net(x))


def _saved(obj) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


@behavior("module.copy.weights_only_state_dict")
def test_weights_only_load_reads_a_state_dict_and_refuses_a_module(device):
    requires(device, SERIALIZATION)
    net = _net(device)
    loaded = torch.load(_saved(net.state_dict()), map_location=device, weights_only=True)
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(net.state_dict())
    assert all(type(v) is torch.Tensor for v in loaded.values())
    assert loaded["1.num_batches_tracked"].dtype == torch.int64
    assert loaded["1.num_batches_tracked"].item() == 7
    # Tied weights were saved once and come back as one storage.
    assert shares_memory(loaded["0.weight"], loaded["2.weight"])
    target = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Linear(2, 2)).to(device)
    target.load_state_dict(loaded)
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(),
                                                 net.state_dict().values()))
    with pytest.raises(pickle.UnpicklingError):  # weights only: no arbitrary classes
        torch.load(_saved(net), map_location=device, weights_only=True)


@behavior("module.copy.save_whole_module")
def test_saving_a_whole_module_loads_it_back_with_weights_only_false(device):
    requires(device, SERIALIZATION)
    net = _net(device)
    loaded = torch.load(_saved(net), map_location=device, weights_only=False)
    _check_equal_copy(loaded, net)
    assert loaded[2].weight is loaded[0].weight
    x = torch.ones(3, 2, device=device)
    assert torch.equal(loaded(x), net(x))
