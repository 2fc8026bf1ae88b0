"""Parameter groups: per-group options, defaults for the rest, and add_param_group()."""

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.strategies import arrays

DEFAULTS = dict(lr=0.01, momentum=0.5, weight_decay=0.1)
SGD_OPTIONS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")


def _leaf(values, device, dtype=torch.float32):
    return torch.tensor(values, device=device, dtype=dtype, requires_grad=True)


def _options(group):
    return {k: group[k] for k in SGD_OPTIONS}


def _step_all(params, optimizers, oracle_pairs, grads, what):
    """Assign grads, step the torch optimizer and every (oracle, indices) pair; compare."""
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, device=p.device, dtype=p.dtype)
    for optimizer in optimizers:
        optimizer.step()
    for oracle, indices in oracle_pairs:
        expected = oracle.step([grads[i] for i in indices])
        for i, e in zip(indices, expected):
            assert_close(params[i], e, what=f"parameter {i} {what}")


@behavior("optim.param_groups.per_group_options")
@given(values=arrays((2, 3)), grads=arrays((3, 2, 3), 0.125, 2.0),
       lr=st.floats(0.05, 1.0), momentum=st.floats(0.6, 0.95))
@example(values=np.array([[1.5, -0.5, 2.0], [0.25, -1.0, 0.75]]),
         grads=np.full((3, 2, 3), 0.5), lr=0.1, momentum=0.9)
def test_each_group_is_stepped_with_its_own_options(device, dtype, values, grads, lr, momentum):
    first, second = _leaf(values[0], device, dtype), _leaf(values[1], device, dtype)
    optimizer = torch.optim.SGD([{"params": [first], "lr": lr, "momentum": momentum},
                                 {"params": [second]}], **DEFAULTS)
    group0, group1 = optimizer.param_groups
    assert group0["params"][0] is first and group1["params"][0] is second
    assert (group0["lr"], group0["momentum"], group0["weight_decay"]) == (lr, momentum, 0.1)
    assert (group1["lr"], group1["momentum"], group1["weight_decay"]) == (0.01, 0.5, 0.1)
    oracle0 = oracles.SGD([values[0]], **_options(group0))
    oracle1 = oracles.SGD([values[1]], **_options(group1))
    for t in range(3):
        _step_all([first, second], [optimizer], [(oracle0, [0]), (oracle1, [1])],
                  list(grads[t]), f"after step {t + 1}")


@behavior("optim.param_groups.per_group_options")
def test_changing_a_groups_lr_changes_the_next_step(device):
    p = _leaf([1.0, -2.0], device)
    optimizer = torch.optim.SGD([p], lr=0.1)
    p.grad = torch.tensor([1.0, 1.0], device=device)
    optimizer.step()
    optimizer.param_groups[0]["lr"] = 0.5  # what learning-rate schedulers do
    optimizer.step()
    assert_close(p, [1.0 - 0.1 - 0.5, -2.0 - 0.1 - 0.5])


@behavior("optim.param_groups.add_param_group")
def test_add_param_group_adds_a_group_with_defaults_filled_in(device, dtype):
    base, extra = _leaf([1.5, -0.5], device, dtype), _leaf([[0.25, 2.0]], device, dtype)
    optimizer = torch.optim.SGD([base], lr=0.1, momentum=0.9, dampening=0.25)
    oracle_base = oracles.SGD([to_numpy(base)], **_options(optimizer.param_groups[0]))
    _step_all([base], [optimizer], [(oracle_base, [0])], [np.array([0.5, 1.0])],
              "before the group was added")
    optimizer.add_param_group({"params": extra, "lr": 0.5})  # a lone tensor is accepted
    assert len(optimizer.param_groups) == 2
    added = optimizer.param_groups[1]
    assert added["params"] == [extra]
    assert added["lr"] == 0.5 and added["momentum"] == 0.9 and added["dampening"] == 0.25
    assert added["weight_decay"] == 0 and added["nesterov"] is False
    oracle_extra = oracles.SGD([to_numpy(extra)], **_options(added))
    for t, (g0, g1) in enumerate([([1.0, -0.5], [[0.5, 1.5]]), ([0.25, 0.75], [[-1.0, 0.5]]),
                                  ([-0.5, 1.0], [[0.75, 0.25]])], start=1):
        _step_all([base, extra], [optimizer], [(oracle_base, [0]), (oracle_extra, [1])],
                  [np.array(g0), np.array(g1)], f"{t} steps after add_param_group")


@behavior("optim.param_groups.add_param_group")
def test_add_param_group_makes_a_frozen_layer_trainable(device):
    """The documented use: layers that were frozen are added to the optimizer later."""
    head, body = _leaf([1.0], device), _leaf([2.0, 3.0], device)
    optimizer = torch.optim.SGD([head], lr=0.1)
    optimizer.add_param_group({"params": [body], "lr": 0.01})
    body.grad = torch.tensor([10.0, -20.0], device=device)
    optimizer.step()
    assert_close(body, [2.0 - 0.1, 3.0 + 0.2])
    assert head.detach().cpu().tolist() == [1.0]  # no gradient: untouched
