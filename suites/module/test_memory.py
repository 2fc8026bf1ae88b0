"""Where and how a module's tensors live: to(memory_format=), to_empty() and share_memory()."""

import torch
from torch import nn

from torchconform import behavior, not_applicable


@behavior("module.memory.channels_last")
def test_to_channels_last_restrides_4d_parameters_only(device):
    m = nn.Sequential(nn.Conv2d(2, 3, 2), nn.BatchNorm2d(3), nn.Linear(3, 2)).to(device)
    m[0].register_buffer("kernel_mask", torch.ones(3, 2, 2, 2, device=device))
    before = {k: v.detach().clone() for k, v in m.state_dict().items()}
    weight = m[0].weight
    assert m.to(memory_format=torch.channels_last) is m
    four_d = {k: v for k, v in m.state_dict().items() if v.dim() == 4}
    assert sorted(four_d) == ["0.kernel_mask", "0.weight"]
    for key, value in four_d.items():
        assert value.is_contiguous(memory_format=torch.channels_last), key
        assert not value.is_contiguous(), key  # NCHW strides are gone (C > 1, H*W > 1)
    assert all(v.is_contiguous() for v in m.state_dict().values() if v.dim() != 4)
    assert m[0].weight is weight and m[0].weight.shape == (3, 2, 2, 2)
    for key, value in m.state_dict().items():
        assert torch.equal(value, before[key]), key  # same values, other layout
    x = torch.randn(1, 2, 3, 3, device=device)
    m.eval()
    assert m[0](x).shape == (1, 3, 2, 2)


def _pointers(module):
    return {k: v.data_ptr() for k, v in module.state_dict().items()}


@behavior("module.memory.to_empty")
def test_to_empty_gives_every_tensor_new_storage_on_the_device(device):
    # Built on the CPU rather than the meta device: the documented effect (fresh, uninitialized
    # storage of the same shape and dtype) shows as new data pointers, and torch's first
    # meta-tensor empty_like costs over a second of imports.
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    m[0].bias.requires_grad_(False)
    before = _pointers(m)
    weight = m[0].weight
    assert m.to_empty(device=device) is m
    state = m.state_dict()
    assert all(t.device.type == device.type for t in state.values())
    if device.type == "cpu":  # other devices necessarily got new storage
        assert all(p != before[k] for k, p in _pointers(m).items())
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "0.weight": (3, 2), "0.bias": (3,), "1.weight": (3,), "1.bias": (3,),
        "1.running_mean": (3,), "1.running_var": (3,), "1.num_batches_tracked": ()}
    assert state["1.num_batches_tracked"].dtype == torch.int64
    assert m[0].weight is weight and all(type(p) is nn.Parameter for p in m.parameters())
    assert [p.requires_grad for p in m.parameters()] == [True, False, True, True]
    with torch.no_grad():  # the storage is uninitialized but usable
        m[0].weight.fill_(1.0)
        m[0].bias.zero_()
    assert torch.equal(m[0](torch.ones(1, 2, device=device)).cpu(), torch.full((1, 3), 2.0))


@behavior("module.memory.to_empty_recurse")
def test_to_empty_recurse_false_replaces_only_the_module_own_state(device):
    m = nn.Sequential(nn.Linear(2, 3))
    m.register_buffer("own", torch.zeros(2))
    before = _pointers(m)
    m.to_empty(device=device, recurse=False)
    assert m.own.device.type == device.type
    if device.type == "cpu":
        assert m.own.data_ptr() != before["own"]
    # The child's tensors were not touched: same storage, still on the CPU.
    assert m[0].weight.device.type == "cpu" and m[0].weight.data_ptr() == before["0.weight"]
    m.to_empty(device=device)  # recurse=True is the default
    assert m[0].weight.device.type == device.type
    if device.type == "cpu":
        assert m[0].weight.data_ptr() != before["0.weight"]


@behavior("module.memory.share_memory")
def test_share_memory_moves_cpu_parameters_buffers_and_grads_to_shared_memory(device):
    m = nn.Linear(2, 2).to(device)
    m.register_buffer("count", torch.tensor([1, 2], device=device))
    m(torch.ones(1, 2, device=device)).sum().backward()
    values = {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
    weight = m.weight
    if device.type == "cpu":
        assert not m.weight.is_shared()
    elif device.type != "cuda":
        not_applicable(f"share_memory is documented for CPU and CUDA tensors, not {device.type}")
    pointers = [t.data_ptr() for t in (m.weight, m.bias, m.count)]
    assert m.share_memory() is m
    assert m.weight is weight
    tensors = [m.weight, m.bias, m.count, m.weight.grad, m.bias.grad]
    if device.type == "cpu":
        assert all(t.is_shared() for t in tensors)
    else:  # documented as a no-op for CUDA tensors: nothing moves
        assert [t.data_ptr() for t in (m.weight, m.bias, m.count)] == pointers
    for key, value in m.state_dict().items():
        assert torch.equal(value.cpu(), values[key]), key
