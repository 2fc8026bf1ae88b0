"""state_dict() and load_state_dict(): what is saved, under which keys, and how it comes back."""

import io
import pickle
import warnings
from collections import OrderedDict

import pytest
import torch
from hypothesis import example, given
from torch import nn

from torchconform import SERIALIZATION, behavior, requires, shares_memory, since
from torchconform.seed_models import LinearModel
from torchconform.strategies import DEEP_TREE, build, module_trees, state_dict_keys


def _tree(device):
    m = LinearModel().to(device)
    m.register_buffer("steps", torch.tensor(7, device=device))
    m.register_buffer("scratch", torch.zeros(2, device=device), persistent=False)
    m.sub1 = LinearModel().to(device)
    m.sub1.register_buffer("mean", torch.full((2,), 0.5, device=device))
    m.sub1.register_buffer("count", torch.tensor([2, 5], device=device))  # int64, nested
    return m


#: Every key _tree() saves, in order.
TREE_KEYS = ["weight", "bias", "steps", "sub1.weight", "sub1.bias", "sub1.mean", "sub1.count"]


@behavior("module.state_dict.keys")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_state_dict_holds_parameters_and_persistent_buffers_under_dotted_keys(device, spec):
    index = {}
    m = build(spec, device, index=index)
    sd = m.state_dict()
    assert list(sd) == state_dict_keys(spec)
    for key, value in sd.items():
        assert torch.equal(value, index[key].detach())


@behavior("module.state_dict.prefix")
def test_state_dict_prefix_goes_before_every_key(device):
    index = {}
    m = build(DEEP_TREE, device, index=index)
    sd = m.state_dict(prefix="model.")
    assert list(sd) == ["model." + k for k in state_dict_keys(DEEP_TREE)]
    for key, value in sd.items():
        assert shares_memory(value, index[key[len("model."):]])
    assert list(m.head.state_dict(prefix="x_")) == ["x_w", "x_out.mean"]


@behavior("module.state_dict.detached_by_default")
def test_state_dict_values_are_detached_views_of_the_parameters(device):
    m = _tree(device)
    sd = m.state_dict()
    assert list(sd) == TREE_KEYS
    params = dict(m.named_parameters())
    for key, value in sd.items():
        own = params[key] if key in params else m.get_buffer(key)
        assert not isinstance(value, nn.Parameter)
        assert value.requires_grad is False and value.grad_fn is None
        # Parameters and buffers alike, at every depth: a reference, not a copy.
        assert shares_memory(value, own), key


@behavior("module.state_dict.keep_vars")
def test_state_dict_keep_vars_returns_the_parameters_themselves(device):
    m = _tree(device)
    sd = m.state_dict(keep_vars=True)
    assert sd["weight"] is m.weight and sd["sub1.bias"] is m.sub1.bias
    assert sd["weight"].requires_grad is True
    assert sd["steps"] is m.steps


@behavior("module.state_dict.excludes_non_persistent_buffers")
def test_state_dict_leaves_out_non_persistent_buffers(device):
    m = _tree(device)
    assert "scratch" in dict(m.named_buffers())
    assert list(m.state_dict()) == TREE_KEYS


@behavior("module.state_dict.excludes_none_and_plain_tensors")
def test_state_dict_leaves_out_none_entries_and_plain_tensors(device):
    m = _tree(device)
    m.register_parameter("unused", None)
    m.register_buffer("empty", None)
    m.plain = torch.ones(2, device=device)
    assert list(m.state_dict()) == TREE_KEYS


@behavior("module.state_dict.load_restores")
@given(spec=module_trees())
@example(spec=DEEP_TREE)
def test_load_state_dict_copies_values_into_the_existing_tensors(device, spec):
    source, target = build(spec, device), build(spec, device)
    for module in (source, target):  # integer buffers load too (tree names start "n_": no clash)
        module.register_buffer("int_count", torch.randint(0, 1000, (3,), device=device))
    frozen = [p for i, p in enumerate(target.parameters()) if i % 2 == 0]
    for p in frozen:
        p.requires_grad_(False)
    params_before = list(target.parameters())
    target.load_state_dict(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert target.int_count.dtype == torch.int64
    assert all(a is b for a, b in zip(target.parameters(), params_before))  # copied in place
    # Copying values leaves each parameter's requires_grad as it was.
    assert [p.requires_grad for p in target.parameters()] == [
        all(p is not f for f in frozen) for p in params_before]


@behavior("module.state_dict.load_restores")
def test_load_state_dict_restores_every_entry_of_a_nested_tree(device):
    source, target = _tree(device), _tree(device)
    with torch.no_grad():
        for value in [*source.parameters(), *source.buffers()]:
            value.copy_(torch.arange(value.numel()).view(value.shape) + 11)
    target.sub1.weight.requires_grad_(False)
    target.load_state_dict(source.state_dict())
    for key in TREE_KEYS:
        got = target.state_dict()[key].cpu()
        assert torch.equal(got, source.state_dict()[key].cpu()), key
        assert got.flatten()[0].item() == 11, key
    assert target.sub1.count.dtype == torch.int64
    assert {n: p.requires_grad for n, p in target.named_parameters()} == {
        "weight": True, "bias": True, "sub1.weight": False, "sub1.bias": True}


@behavior("module.state_dict.strict_raises")
def test_strict_load_raises_naming_missing_and_unexpected_keys(device):
    m = _tree(device)
    sd = m.state_dict()
    del sd["sub1.bias"]
    sd["extra.weight"] = torch.zeros(1, device=device)
    sd["sub1.extra"] = torch.zeros(1, device=device)  # unknown, under an existing submodule
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(sd)
    message = str(info.value)
    assert "Missing key(s)" in message and '"sub1.bias"' in message
    assert "Unexpected key(s)" in message
    assert '"extra.weight"' in message and '"sub1.extra"' in message


@behavior("module.state_dict.non_strict_returns_keys")
def test_non_strict_load_returns_missing_and_unexpected_keys(device):
    m = _tree(device)
    sd = {k: torch.full_like(v, 3) for k, v in m.state_dict().items()}
    del sd["sub1.bias"]
    sd["extra.weight"] = torch.zeros(1, device=device)
    sd["sub1.extra"] = torch.zeros(1, device=device)
    result = m.load_state_dict(sd, strict=False)
    assert list(result.missing_keys) == ["sub1.bias"]
    assert sorted(result.unexpected_keys) == ["extra.weight", "sub1.extra"]
    # Everything else was loaded: parameters and buffers (floating and integer) at every depth.
    now = m.state_dict()
    for key in TREE_KEYS:
        if key != "sub1.bias":
            assert torch.equal(now[key].cpu(), torch.full_like(now[key].cpu(), 3)), key


@behavior("module.state_dict.shape_mismatch_raises")
def test_load_with_mismatched_shape_raises(device):
    m = LinearModel().to(device)
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        m.load_state_dict({"weight": torch.zeros(3, device=device),
                           "bias": torch.zeros(1, device=device)})


@behavior("module.state_dict.destination")
def test_state_dict_fills_and_returns_a_given_destination(device):
    m = _tree(device)
    destination = {"already": 1}
    assert m.state_dict(destination=destination) is destination  # updated, not copied
    assert list(destination) == ["already"] + TREE_KEYS
    assert destination["sub1.count"].tolist() == [2, 5]
    assert isinstance(m.state_dict(), OrderedDict)  # without one, a new OrderedDict


@behavior("module.state_dict.load_into_none_raises")
@pytest.mark.parametrize("kind", ["parameter", "buffer"])
def test_loading_a_key_registered_as_none_raises(device, kind):
    m = LinearModel().to(device)
    if kind == "parameter":
        m.bias = None  # the name stays registered, with no tensor behind it
        name = "bias"
    else:
        m.register_buffer("stats", None)
        name = "stats"
    state = {"weight": torch.full((1, 1), 2.0, device=device),
             name: torch.zeros(1, device=device)}
    with pytest.raises(RuntimeError, match=name):
        m.load_state_dict(state)
    assert getattr(m, name) is None  # the slot is not filled by the load
    assert name in (m._parameters if kind == "parameter" else m._buffers)


@behavior("module.state_dict.save_load_round_trip")
@given(spec=module_trees(max_depth=2))
@example(spec=DEEP_TREE)
def test_torch_save_and_load_of_a_state_dict_restores_an_equal_module(device, spec):
    requires(device, SERIALIZATION)
    source, target = build(spec, device), build(spec, device)
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, map_location=device, weights_only=True)
    assert list(loaded) == list(source.state_dict())
    target.load_state_dict(loaded)
    for (k1, v1), (k2, v2) in zip(source.state_dict().items(), target.state_dict().items()):
        assert k1 == k2 and v1.device == v2.device and torch.equal(v1, v2)


@behavior("module.state_dict.load_assign")
def test_load_state_dict_assign_takes_the_saved_tensors(device):
    m = _tree(device)
    m.sub1.bias.requires_grad_(False)
    # float64 values: assign keeps the saved tensors' dtype, where a copying load would cast
    # them to the module's float32.
    sd = {k: torch.full_like(v, 3.0, dtype=torch.float64) for k, v in m.state_dict().items()}
    m.load_state_dict(sd, assign=True)
    params = dict(m.named_parameters())
    for key, saved in sd.items():
        now = params[key] if key in params else m.get_buffer(key)
        assert now.dtype == torch.float64 and shares_memory(now, saved), key
        assert torch.equal(now.detach().cpu(), torch.full(saved.shape, 3.0, dtype=torch.float64))
    assert all(isinstance(p, nn.Parameter) for p in params.values())
    requires_grad = {n: p.requires_grad for n, p in params.items()}
    if since("2.3"):  # the module's requires_grad, not the saved tensors' (all False here)
        assert requires_grad == {
            "weight": True, "bias": True, "sub1.weight": True, "sub1.bias": False}
    else:  # 2.1-2.2 wrap each tensor as nn.Parameter(tensor): requires grad, like any Parameter
        assert all(requires_grad.values())


def _saved(obj) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


@behavior("module.state_dict.torch_load_weights_only_default")
def test_torch_load_default_refuses_a_pickled_module_from_2_6(device):
    requires(device, SERIALIZATION)
    saved = LinearModel().to(device)  # a whole module, as older tutorials saved models
    with warnings.catch_warnings():
        # 2.4-2.5 also warn here; module.state_dict.torch_load_future_warning asserts that.
        warnings.simplefilter("ignore", FutureWarning)
        if since("2.6"):
            with pytest.raises(pickle.UnpicklingError):
                torch.load(_saved(saved), map_location=device)
        else:
            loaded = torch.load(_saved(saved), map_location=device)
            assert isinstance(loaded, LinearModel)
            assert torch.equal(loaded.weight, saved.weight)
        # Asked for explicitly, full unpickling works on every version.
        loaded = torch.load(_saved(saved), map_location=device, weights_only=False)
    assert isinstance(loaded, LinearModel) and torch.equal(loaded.bias, saved.bias)


@behavior("module.state_dict.torch_load_future_warning")
def test_torch_load_without_weights_only_warns_on_2_4_and_2_5_only(device):
    requires(device, SERIALIZATION)
    saved = LinearModel().to(device).state_dict()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = torch.load(_saved(saved), map_location=device)
    future = [w for w in caught
              if issubclass(w.category, FutureWarning) and "weights_only" in str(w.message)]
    assert list(loaded) == ["weight", "bias"] and torch.equal(loaded["weight"], saved["weight"])
    if since("2.6"):
        assert future == []
    elif since("2.4"):
        assert len(future) == 1
    else:
        assert future == []
