"""Optimizer.state_dict() and load_state_dict(): what is saved and that training resumes."""

import io

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import SERIALIZATION, assert_close, behavior, oracles, requires, since, to_numpy
from torchconform.strategies import arrays

OPTIONS = dict(lr=0.1, momentum=0.9, dampening=0.25, weight_decay=0.05)


def _leaf(values, device, dtype=torch.float32):
    return torch.tensor(values, device=device, dtype=dtype, requires_grad=True)


def _step(params, optimizer, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else torch.tensor(g, device=p.device, dtype=p.dtype)
    optimizer.step()


@behavior("optim.state_dict.contents")
def test_state_dict_holds_buffers_by_index_and_group_options(device):
    a, b, idle = _leaf([[1.5, -0.5]], device), _leaf([2.0, 0.25], device), _leaf([1.0], device)
    optimizer = torch.optim.SGD([{"params": [a, idle]}, {"params": [b], "lr": 0.5}], **OPTIONS)
    oracle_a = oracles.SGD([to_numpy(a)], **OPTIONS)
    oracle_b = oracles.SGD([to_numpy(b)], **dict(OPTIONS, lr=0.5))
    for ga, gb in [([[0.5, 1.0]], [1.0, -1.0]), ([[-0.25, 0.5]], [0.5, 2.0])]:
        _step([a, idle, b], optimizer, [ga, None, gb])  # idle never gets a gradient
        oracle_a.step([np.array(ga)])
        oracle_b.step([np.array(gb)])

    sd = optimizer.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    # Indices number the parameters through the groups in order: a=0, idle=1, b=2.
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sorted(sd["state"]) == [0, 2]  # no state for the parameter never stepped
    assert_close(sd["state"][0]["momentum_buffer"], oracle_a.buffers[0], what="buffer of a")
    assert_close(sd["state"][2]["momentum_buffer"], oracle_b.buffers[0], what="buffer of b")
    for group, lr in zip(sd["param_groups"], [0.1, 0.5]):
        assert group["lr"] == lr
        assert (group["momentum"], group["dampening"], group["weight_decay"]) == (0.9, 0.25, 0.05)
        assert group["nesterov"] is False and group["maximize"] is False
        assert not any(isinstance(v, torch.Tensor) for v in group["params"])


def _saved_and_loaded(sd, device):
    """torch.save / torch.load through memory, as a checkpoint would go. The restricted
    unpickler (weights_only=True) is used where it can read an optimizer state_dict: 1.13's
    rejects the Python floats of the hyperparameters ("Unsupported operand 71")."""
    requires(device, SERIALIZATION)
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    buffer.seek(0)
    restricted = {"weights_only": True} if since("2.0") else {}
    return torch.load(buffer, map_location=device, **restricted)


#: The second group's own options, each unlike the first group's (OPTIONS and nesterov).
SECOND_GROUP = dict(lr=0.5, momentum=0.6, dampening=0.0, weight_decay=0.0, nesterov=False,
                    maximize=True)
SGD_OPTIONS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")


@behavior("optim.state_dict.round_trip")
@given(values=arrays((4, 3)), grads=arrays((6, 4, 3), 0.125, 2.0),
       nesterov=st.booleans())
@example(values=np.array([[1.5, -0.5, 2.0], [0.25, -1.0, 0.75],
                          [-0.75, 1.25, 0.5], [2.0, 0.5, -1.5]]),
         grads=np.full((6, 4, 3), 0.5), nesterov=False)
def test_loaded_optimizer_continues_exactly_like_the_original(device, dtype, values, grads,
                                                              nesterov):
    """Two parameter groups of two parameters each: every group's options and every
    parameter's momentum buffer come back, not only the first group's."""
    options = dict(OPTIONS, nesterov=nesterov, dampening=0.0 if nesterov else 0.25,
                   maximize=False)
    original = [_leaf(v, device, dtype) for v in values]
    optimizer = torch.optim.SGD([{"params": original[:2]},
                                 {"params": original[2:], **SECOND_GROUP}], **options)
    oracle_first = oracles.SGD(values[:2], **options)
    oracle_second = oracles.SGD(values[2:], **SECOND_GROUP)
    for t in range(3):
        _step(original, optimizer, list(grads[t]))
        oracle_first.step(list(grads[t][:2]))
        oracle_second.step(list(grads[t][2:]))

    resumed = [_leaf(to_numpy(p), device, dtype) for p in original]
    # Different hyperparameters on purpose: loading must bring back the saved ones.
    other = torch.optim.SGD([{"params": resumed[:2]}, {"params": resumed[2:], "lr": 0.05}],
                            lr=0.7, momentum=0.3)
    other.load_state_dict(_saved_and_loaded(optimizer.state_dict(), device))
    for i, (group, saved) in enumerate(zip(other.param_groups, [options, SECOND_GROUP])):
        assert {k: group[k] for k in SGD_OPTIONS} == {k: saved[k] for k in SGD_OPTIONS}, i
    # Each group holds its own new parameters, not the saved ones.
    assert [g["params"] for g in other.param_groups] == [resumed[:2], resumed[2:]]
    for i, (a, b) in enumerate(zip(original, resumed)):
        assert torch.equal(other.state[b]["momentum_buffer"],
                           optimizer.state[a]["momentum_buffer"]), f"momentum buffer {i}"
    for t in range(3, 6):
        _step(original, optimizer, list(grads[t]))
        _step(resumed, other, list(grads[t]))
        expected = (oracle_first.step(list(grads[t][:2]))
                    + oracle_second.step(list(grads[t][2:])))
        for i, (a, b) in enumerate(zip(original, resumed)):
            assert torch.equal(a, b), f"parameter {i} differs after step {t + 1}"
            assert_close(b, expected[i], what=f"resumed parameter {i} after step {t + 1}")
