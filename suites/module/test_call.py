"""Calling a module runs forward() and its hooks; calling forward() directly skips the hooks."""

import numpy as np
import pytest
import torch
from torch import nn

from torchconform import assert_close, behavior, to_numpy
from torchconform.seed_models import LinearModel


def _model_and_input(device):
    m = LinearModel().to(device)
    x = torch.arange(10, dtype=torch.float32, device=device).view(-1, 1)
    return m, x


@behavior("module.call.runs_forward")
def test_calling_the_module_returns_forward_output(device):
    m, x = _model_and_input(device)
    expected = to_numpy(x) * to_numpy(m.weight) + to_numpy(m.bias)  # seed 002: x*w + b
    assert_close(m(x), expected)
    assert_close(m.forward(x), expected)


@behavior("module.call.forward_pre_hook")
def test_forward_pre_hook_runs_before_forward_and_can_replace_the_input(device):
    m, x = _model_and_input(device)
    seen = []

    def double_input(module, args):
        seen.append((module, args[0]))
        return (args[0] * 2,)

    m.register_forward_pre_hook(double_input)
    out = m(x)
    assert len(seen) == 1 and seen[0][0] is m and seen[0][1] is x
    assert_close(out, 2 * to_numpy(x) * to_numpy(m.weight) + to_numpy(m.bias))


@behavior("module.call.forward_pre_hook")
def test_forward_pre_hook_returning_a_single_value_replaces_the_input(device):
    m, x = _model_and_input(device)
    m.register_forward_pre_hook(lambda module, args: args[0] * 3)  # not a tuple: gets wrapped
    assert_close(m(x), 3 * to_numpy(x) * to_numpy(m.weight) + to_numpy(m.bias))
    m.register_forward_pre_hook(lambda module, args: None)  # None: the input is kept
    assert_close(m(x), 3 * to_numpy(x) * to_numpy(m.weight) + to_numpy(m.bias))


@behavior("module.call.forward_hook")
def test_forward_hook_sees_input_and_output_and_can_replace_the_output(device):
    m, x = _model_and_input(device)
    seen = []

    def negate_output(module, args, output):
        seen.append((module, args[0], output.detach().clone()))
        return -output

    m.register_forward_hook(negate_output)
    out = m(x)
    expected = to_numpy(x) * to_numpy(m.weight) + to_numpy(m.bias)
    assert len(seen) == 1 and seen[0][0] is m and seen[0][1] is x
    assert_close(seen[0][2], expected)
    assert_close(out, -expected)


@behavior("module.call.hook_order")
def test_hooks_run_in_registration_order_around_forward(device):
    events = []

    class Traced(nn.Module):
        def forward(self, x):
            events.append("forward")
            return x + 1

    m = Traced().to(device)
    m.register_forward_pre_hook(lambda mod, args: events.append("pre1"))
    m.register_forward_pre_hook(lambda mod, args: events.append("pre2"))
    m.register_forward_hook(lambda mod, args, out: events.append("post1"))
    m.register_forward_hook(lambda mod, args, out: events.append("post2"))
    out = m(torch.zeros(1, device=device))
    assert events == ["pre1", "pre2", "forward", "post1", "post2"]
    assert out.item() == 1.0


@behavior("module.call.hook_prepend")
def test_prepended_hooks_run_before_the_registered_ones(device):
    events = []

    class Traced(nn.Module):
        def forward(self, x):
            events.append("forward")
            return x + 1

    def record(name):
        return lambda *args: events.append(name)

    m = Traced().to(device)
    m.register_forward_pre_hook(record("pre1"))
    m.register_forward_pre_hook(record("pre2"))
    m.register_forward_pre_hook(record("pre0"), prepend=True)
    m.register_forward_pre_hook(record("pre-1"), prepend=True)  # before the earlier prepend
    m.register_forward_hook(record("post1"))
    m.register_forward_hook(record("post0"), prepend=True)
    m.register_forward_hook(record("post2"), prepend=False)
    out = m(torch.zeros(1, device=device))
    assert events == ["pre-1", "pre0", "pre1", "pre2", "forward", "post0", "post1", "post2"]
    assert out.item() == 1.0


class _Scaled(nn.Module):
    def forward(self, x, scale=1.0, shift=0.0):
        return x * scale + shift


@behavior("module.call.forward_kwargs")
def test_keyword_arguments_reach_forward_with_and_without_hooks(device):
    m = _Scaled().to(device)
    x = torch.arange(4.0, device=device)
    assert_close(m(x, scale=3.0, shift=0.5), 3 * to_numpy(x) + 0.5)
    seen = []
    m.register_forward_pre_hook(lambda module, args: seen.append(("pre", args)))
    assert_close(m(x, scale=3.0, shift=0.5), 3 * to_numpy(x) + 0.5)
    m.register_forward_hook(lambda module, args, out: seen.append(("post", args)))
    assert_close(m(x, shift=-2.0, scale=0.5), 0.5 * to_numpy(x) - 2.0)
    # The hooks see the positional arguments only.
    assert [(kind, len(args)) for kind, args in seen] == [("pre", 1), ("pre", 1), ("post", 1)]
    assert all(args[0] is x for _, args in seen)


@behavior("module.call.forward_hook_with_kwargs")
def test_forward_hook_with_kwargs_sees_the_kwargs_and_can_replace_the_output(device):
    m = _Scaled().to(device)
    x = torch.arange(4.0, device=device)
    seen = []

    def negate(module, args, kwargs, output):
        seen.append((module, args, dict(kwargs), output.detach().clone()))
        return -output

    m.register_forward_hook(negate, with_kwargs=True)
    out = m(x, scale=3.0)
    assert len(seen) == 1 and seen[0][0] is m and seen[0][1][0] is x
    assert seen[0][2] == {"scale": 3.0}
    assert_close(seen[0][3], 3 * to_numpy(x))
    assert_close(out, -3 * to_numpy(x))


@behavior("module.call.forward_pre_hook_with_kwargs")
def test_forward_pre_hook_with_kwargs_can_replace_args_and_kwargs(device):
    m = _Scaled().to(device)
    x = torch.arange(4.0, device=device)
    seen = []

    def rewrite(module, args, kwargs):
        seen.append((module, args, dict(kwargs)))
        return (args[0] * 2,), {"scale": kwargs["scale"] + 1, "shift": 1.0}

    m.register_forward_pre_hook(rewrite, with_kwargs=True)
    out = m(x, scale=3.0)
    assert len(seen) == 1 and seen[0][0] is m and seen[0][1][0] is x
    assert seen[0][2] == {"scale": 3.0}
    assert_close(out, 2 * to_numpy(x) * 4 + 1)


@behavior("module.call.forward_skips_hooks")
def test_calling_forward_directly_skips_hooks(device):
    m, x = _model_and_input(device)
    calls = []
    m.register_forward_pre_hook(lambda mod, args: calls.append("pre"))
    m.register_forward_hook(lambda mod, args, out: calls.append("post"))
    out = m.forward(x)
    assert calls == []
    assert_close(out, to_numpy(x) * to_numpy(m.weight) + to_numpy(m.bias))
    m(x)
    assert calls == ["pre", "post"]


@behavior("module.call.hook_removal")
def test_removed_hook_no_longer_runs(device):
    m, x = _model_and_input(device)
    calls = []
    handle = m.register_forward_hook(lambda mod, args, out: calls.append(1))
    m(x)
    handle.remove()
    m(x)
    assert calls == [1]


@behavior("module.call.same_result_as_forward")
def test_model_call_and_forward_give_identical_values(device):
    m, x = _model_and_input(device)
    assert np.array_equal(to_numpy(m(x)), to_numpy(m.forward(x)))


@behavior("module.call.forward_pre_hook")
def test_hooks_registered_before_compiling_run_in_every_mode(device, mode):
    """A forward pre-hook and a forward hook registered before mode.module(m) run on every
    call of the (compiled) module, with their replacements of input and output applied."""
    m, x = _model_and_input(device)
    calls = []

    def double_input(module, args):
        calls.append("pre")
        return (args[0] * 2,)

    def negate_output(module, args, output):
        calls.append("post")
        return -output

    m.register_forward_pre_hook(double_input)
    m.register_forward_hook(negate_output)
    run = mode.module(m)
    expected = -(2 * to_numpy(x) * to_numpy(m.weight) + to_numpy(m.bias))
    for _ in range(2):
        assert_close(run(x), expected)
    assert calls == ["pre", "post"] * 2


@behavior("module.call.forward_hook_always_call")
def test_forward_hook_with_always_call_runs_even_when_forward_raises(device):
    class Failing(nn.Module):
        def forward(self, x):
            if x.sum() < 0:
                raise ValueError("negative input")
            return x

    m = Failing().to(device)
    calls = []
    m.register_forward_hook(lambda mod, args, out: calls.append("plain"))
    m.register_forward_hook(lambda mod, args, out: calls.append("always"), always_call=True)
    m(torch.ones(1, device=device))
    assert calls == ["plain", "always"]  # no exception: both run, in registration order
    calls.clear()
    with pytest.raises(ValueError, match="negative input"):  # the error still propagates
        m(-torch.ones(1, device=device))
    assert calls == ["always"]
