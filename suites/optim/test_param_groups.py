"""Parameter groups: per-group options, defaults for the rest, and add_param_group()."""

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, oracles, to_numpy
from torchconform.optim_alongside import compiled_sgd_alongside
from torchconform.strategies import arrays

#: The optimizer's keyword arguments: every option set, none to SGD's own default, so a group
#: stepped with SGD's defaults instead of these shows as well.
DEFAULTS = dict(lr=0.01, momentum=0.5, dampening=0.25, weight_decay=0.1, nesterov=False,
                maximize=True)
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


@st.composite
def group_options(draw):
    """All six options of a group, valid together (nesterov needs zero dampening)."""
    nesterov = draw(st.booleans())
    return dict(lr=draw(st.floats(0.05, 1.0)), momentum=draw(st.floats(0.6, 0.95)),
                dampening=0.0 if nesterov else draw(st.floats(0.3, 0.9)),
                weight_decay=draw(st.floats(0.2, 0.5)), nesterov=nesterov,
                maximize=draw(st.booleans()))


@st.composite
def partial_group_options(draw):
    """Some of a group's options (the rest come from the defaults), still valid together."""
    options = draw(group_options())
    keys = draw(st.sets(st.sampled_from(SGD_OPTIONS), min_size=1))
    if options["nesterov"]:
        keys |= {"dampening"}  # nesterov needs zero dampening; the default is 0.25
    return {k: options[k] for k in keys}


#: Each option of the first group unlike the default; the third group overrides two.
OWN_OPTIONS = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.3, nesterov=True,
                   maximize=False)


@behavior("optim.param_groups.per_group_options")
@given(values=arrays((3, 3)), grads=arrays((3, 3, 3), 0.125, 2.0),
       own=group_options(), partial=partial_group_options())
@example(values=np.array([[1.5, -0.5, 2.0], [0.25, -1.0, 0.75], [-0.75, 1.25, 0.5]]),
         grads=np.full((3, 3, 3), 0.5), own=OWN_OPTIONS,
         partial=dict(dampening=0.5, maximize=False))
def test_each_group_is_stepped_with_its_own_options(device, dtype, values, grads, own,
                                                    partial):
    """Three groups: one sets all six options, one none, one some of them."""
    params = [_leaf(v, device, dtype) for v in values]
    optimizer = torch.optim.SGD([{"params": [params[0]], **own}, {"params": [params[1]]},
                                 {"params": [params[2]], **partial}], **DEFAULTS)
    expected_options = [own, DEFAULTS, dict(DEFAULTS, **partial)]
    for i, (group, options) in enumerate(zip(optimizer.param_groups, expected_options)):
        assert group["params"] == [params[i]]
        assert _options(group) == options, f"group {i}"
    pairs = [(oracles.SGD([values[i]], **options), [i])
             for i, options in enumerate(expected_options)]
    for t in range(3):
        _step_all(params, [optimizer], pairs, list(grads[t]), f"after step {t + 1}")


#: (first group, second group) options at the start, and what each becomes after two steps:
#: every option changes, nesterov both ways.
BEFORE = (dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.0, nesterov=False,
               maximize=False),
          dict(lr=0.2, momentum=0.5, dampening=0.0, weight_decay=0.1, nesterov=True,
               maximize=True))
AFTER = (dict(lr=0.05, momentum=0.6, dampening=0.0, weight_decay=0.2, nesterov=True,
              maximize=True),
         dict(lr=0.3, momentum=0.8, dampening=0.3, weight_decay=0.0, nesterov=False,
              maximize=False))


@behavior("optim.param_groups.per_group_options")
def test_changing_a_groups_options_changes_the_next_steps(device, dtype):
    """A group's options are read at every step: editing param_groups[i] between steps (as
    schedulers do for lr and momentum) takes effect, for each of the six options."""
    values = [np.array([[1.5, -0.5], [0.25, 2.0]]), np.array([-1.0, 0.75, 1.25])]
    grads = [[np.array([[0.5, 1.0], [-1.0, 0.5]]), np.array([0.25, -1.5, 1.0])],
             [np.array([[-0.25, 0.75], [1.5, -0.5]]), np.array([1.0, 0.5, -0.75])],
             [np.array([[1.25, -0.5], [0.5, 1.0]]), np.array([-0.5, 1.25, 0.25])],
             [np.array([[0.75, 0.25], [-1.25, 0.5]]), np.array([1.5, -0.25, 0.5])]]
    params = [_leaf(v, device, dtype) for v in values]
    optimizer = torch.optim.SGD([{"params": [p], **options}
                                 for p, options in zip(params, BEFORE)], lr=1.0)
    pairs = [(oracles.SGD([v], **options), [i])
             for i, (v, options) in enumerate(zip(values, BEFORE))]
    for t, step_grads in enumerate(grads, start=1):
        if t == 3:
            for group, (oracle, _), options in zip(optimizer.param_groups, pairs, AFTER):
                group.update(options)
                for key, value in options.items():
                    setattr(oracle, key, value)  # the oracle reads its options every step
        _step_all(params, [optimizer], pairs, step_grads, f"after step {t}")


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


# A fixed two-parameter trajectory (initial values, gradients of four steps) for the compiled
# check below.
_TWO_PARAMS = (
    [np.array([[1.5, -0.75], [0.5, 2.0]]), np.array(-1.25)],
    [[np.array([[0.5, -1.0], [0.25, 1.5]]), np.array(0.75)],
     [np.array([[-0.5, 0.25], [1.0, -0.125]]), np.array(1.5)],
     [np.array([[1.25, 0.5], [-0.75, 0.5]]), np.array(-0.5)],
     [np.array([[0.125, -1.5], [0.5, 1.0]]), np.array(0.25)]])


@behavior("optim.param_groups.per_group_options")
def test_float_lr_changed_between_steps_takes_effect_in_every_mode(device, mode):
    """A float lr edited in param_groups between (compiled) steps is the lr of the next step
    (under torch.compile each new float value recompiles the step)."""
    compiled_sgd_alongside(device, mode, _TWO_PARAMS, {"momentum": 0.9},
                           lrs=[0.1, 0.05, 0.2, 0.01])
