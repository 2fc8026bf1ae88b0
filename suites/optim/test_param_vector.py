"""torch.nn.utils.parameters_to_vector / vector_to_parameters: one flat vector of all
parameters, in iteration order, and back (used to hand a model to vector-based optimizers).

The expected vector and slices come from oracles_autograd.flatten / unflatten applied to the
values the test itself put into the parameters.
"""

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from torchconform import assert_close, behavior
from torchconform import oracles_autograd as oracle
from torchconform.strategies import generators, shapes, signed_values


def _utils():
    return torch.nn.utils


@st.composite
def parameter_values(draw):
    """One to four arrays of different shapes (scalars included) with distinct values."""
    rng = draw(generators())
    sizes = draw(st.lists(shapes(max_dims=3, max_side=3), min_size=1, max_size=4))
    return [signed_values(rng, s) for s in sizes]


def _params(values, device, dtype=torch.float32):
    return [nn.Parameter(torch.tensor(v, device=device, dtype=dtype)) for v in values]


@behavior("optim.param_vector.parameters_to_vector")
@given(values=parameter_values())
@example(values=[np.arange(6.0).reshape(2, 3), np.array(7.0), np.array([8.0, 9.0])])
def test_parameters_are_flattened_and_concatenated_in_order(device, values):
    vec = _utils().parameters_to_vector(_params(values, device))
    assert vec.dim() == 1 and vec.numel() == sum(np.size(v) for v in values)
    assert_close(vec, oracle.flatten(values), what="flattened parameters")  # an exact copy


@behavior("optim.param_vector.parameters_to_vector")
def test_vector_has_the_parameters_device_and_dtype(device, dtype):
    vec = _utils().parameters_to_vector(_params([np.ones((2, 2)), np.zeros(3)], device, dtype))
    assert vec.device.type == device.type and vec.dtype == dtype
    assert vec.cpu().tolist() == [1.0] * 4 + [0.0] * 3


@behavior("optim.param_vector.parameters_to_vector")
def test_a_module_is_flattened_in_parameters_order(device):
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)).to(device)
    values = [np.arange(6.0).reshape(3, 2), np.array([6.0, 7.0, 8.0]),
              np.array([[9.0, 10.0, 11.0]]), np.array([12.0])]
    with torch.no_grad():  # weight, bias of layer 0, then of layer 1: registration order
        for p, v in zip([model[0].weight, model[0].bias, model[1].weight, model[1].bias],
                        values):
            p.copy_(torch.tensor(v))
    vec = _utils().parameters_to_vector(model.parameters())
    assert vec.cpu().tolist() == list(range(13))


@behavior("optim.param_vector.vector_to_parameters")
@given(values=parameter_values(), rng=generators())
@example(values=[np.zeros((2, 3)), np.array(0.0), np.zeros(2)],
         rng=np.random.default_rng(0))
def test_vector_slices_go_into_the_parameters_in_order(device, values, rng):
    params = _params(values, device)
    ids = [id(p) for p in params]
    shapes_before = [tuple(p.shape) for p in params]
    vec_np = signed_values(rng, (sum(np.size(v) for v in values),))
    assert _utils().vector_to_parameters(torch.tensor(vec_np, device=device,
                                                      dtype=torch.float32), params) is None
    assert [id(p) for p in params] == ids  # the same Parameter objects
    for p, want in zip(params, oracle.unflatten(vec_np, shapes_before)):
        assert isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf
        assert tuple(p.shape) == want.shape
        assert_close(p, want, what="parameter from its slice")


@behavior("optim.param_vector.vector_to_parameters")
def test_round_trip_through_a_vector_keeps_a_model(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(device)
    model[2].bias.requires_grad_(False)  # a frozen parameter stays frozen
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.ones(2, 3, device=device)
    out_before = model(x).detach()
    vec = _utils().parameters_to_vector(model.parameters()).detach().clone()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    _utils().vector_to_parameters(vec, model.parameters())
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p.detach(), b)
    assert [p.requires_grad for p in model.parameters()] == [True, True, True, False]
    assert torch.equal(model(x).detach(), out_before)
