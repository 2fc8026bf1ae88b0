"""Grad modes besides no_grad: enable_grad, set_grad_enabled, inference_mode, and threads.

z = 10 w**2 + 25 (seed 001) is the recorded computation throughout: when a mode records,
backward leaves dz/dw = 20 w in w.grad.
"""

import threading

import pytest
import torch

from torchconform import assert_close, behavior, oracles


def _w(device):
    return torch.tensor([2.0, 3.0], device=device, requires_grad=True)


def _z(w):
    return 10 * w**2 + 25


def _records(t):
    return t.requires_grad and t.grad_fn is not None


# -- enable_grad ------------------------------------------------------------------------------

@behavior("autograd.grad_mode.enable_grad_inside_no_grad")
def test_enable_grad_inside_no_grad_records_and_backpropagates(device):
    w = _w(device)
    with torch.no_grad():
        with torch.enable_grad():
            assert torch.is_grad_enabled() is True
            z = _z(w)
        assert torch.is_grad_enabled() is False  # back to no_grad on leaving
        outside = _z(w)
    assert _records(z) and not outside.requires_grad
    z.sum().backward()
    assert_close(w.grad, oracles.square_scaled([2.0, 3.0])[1], what="dz/dw")


@behavior("autograd.grad_mode.enable_grad_inside_no_grad")
def test_enable_grad_decorated_function_records_when_called_under_no_grad(device):
    @torch.enable_grad()
    def forward(w):
        return _z(w)

    w = _w(device)
    with torch.no_grad():
        z = forward(w)
        assert torch.is_grad_enabled() is False
    assert _records(z)
    z.sum().backward()
    assert_close(w.grad, oracles.square_scaled([2.0, 3.0])[1], what="dz/dw")


# -- set_grad_enabled -------------------------------------------------------------------------

@behavior("autograd.grad_mode.set_grad_enabled_context")
@pytest.mark.parametrize("outer", [True, False])
@pytest.mark.parametrize("mode", [True, False])
def test_set_grad_enabled_block_records_by_mode_and_restores(device, outer, mode):
    w = _w(device)
    with torch.set_grad_enabled(outer):
        with torch.set_grad_enabled(mode):
            assert torch.is_grad_enabled() is mode
            z = _z(w)
        assert torch.is_grad_enabled() is outer
    assert torch.is_grad_enabled() is True
    assert _records(z) is mode
    assert_close(z, [65.0, 115.0])


@behavior("autograd.grad_mode.set_grad_enabled_context")
@pytest.mark.parametrize("mode", [True, False])
def test_set_grad_enabled_block_restores_after_an_exception(device, mode):
    with torch.set_grad_enabled(not mode):
        with pytest.raises(ValueError):
            with torch.set_grad_enabled(mode):
                raise ValueError("inside")
        assert torch.is_grad_enabled() is (not mode)
    assert _records(_z(_w(device)))


@behavior("autograd.grad_mode.set_grad_enabled_function")
def test_set_grad_enabled_as_a_function_switches_until_set_again(device):
    w = _w(device)
    torch.set_grad_enabled(False)  # the plugin restores grad mode after the test anyway
    assert torch.is_grad_enabled() is False
    off_first, off_second = _z(w), _z(w)  # stays off: not tied to a block
    torch.set_grad_enabled(True)
    on = _z(w)
    assert not off_first.requires_grad and not off_second.requires_grad
    assert _records(on)
    on.sum().backward()
    assert_close(w.grad, oracles.square_scaled([2.0, 3.0])[1], what="dz/dw")


@behavior("autograd.grad_mode.set_grad_enabled_function")
def test_set_grad_enabled_function_inside_no_grad_turns_recording_on(device):
    w = _w(device)
    with torch.no_grad():
        torch.set_grad_enabled(True)
        z = _z(w)
    assert _records(z)
    assert torch.is_grad_enabled() is True  # no_grad restores the mode it found: enabled


# -- threads ----------------------------------------------------------------------------------

def _in_thread(fn):
    """Run fn() in a new thread; return its result (re-raising its exception here)."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@behavior("autograd.grad_mode.thread_local")
@pytest.mark.parametrize("mode", ["no_grad", "set_grad_enabled", "inference_mode"])
def test_a_new_thread_starts_with_grad_enabled_whatever_this_thread_does(device, mode):
    w = _w(device)
    enter = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode,
             "set_grad_enabled": lambda: torch.set_grad_enabled(False)}[mode]

    def worker():
        z = _z(w)
        return torch.is_grad_enabled(), torch.is_inference_mode_enabled(), _records(z)

    with enter():
        assert torch.is_grad_enabled() is False
        assert _in_thread(worker) == (True, False, True)
        assert torch.is_grad_enabled() is False  # and the thread left this one alone


@behavior("autograd.grad_mode.thread_local")
def test_disabling_grad_in_another_thread_leaves_this_thread_recording(device):
    w = _w(device)

    def worker():
        torch.set_grad_enabled(False)  # this thread's mode only
        return torch.is_grad_enabled(), _z(w).requires_grad

    assert _in_thread(worker) == (False, False)
    assert torch.is_grad_enabled() is True
    assert _records(_z(w))


# -- inference_mode ---------------------------------------------------------------------------

@behavior("autograd.grad_mode.inference_mode_results")
def test_results_inside_inference_mode_are_inference_tensors(device):
    w = _w(device)
    with torch.inference_mode():
        assert torch.is_inference_mode_enabled() is True
        assert torch.is_grad_enabled() is False
        z = _z(w)
        made = torch.ones(2, device=device)
    for t in (z, made):
        assert t.is_inference() is True
        assert t.requires_grad is False and t.grad_fn is None
    assert_close(z, [65.0, 115.0])
    assert torch.is_inference_mode_enabled() is False and torch.is_grad_enabled() is True
    assert w.is_inference() is False  # inputs made outside stay normal tensors


@behavior("autograd.grad_mode.inference_mode_results")
def test_inference_mode_decorator_and_restore_after_exception(device):
    @torch.inference_mode()
    def predict(w):
        assert torch.is_inference_mode_enabled()
        return _z(w)

    @torch.inference_mode()
    def fail():
        raise ValueError("inside")

    out = predict(_w(device))
    assert out.is_inference() and not out.requires_grad
    with pytest.raises(ValueError):
        fail()
    assert torch.is_inference_mode_enabled() is False and torch.is_grad_enabled() is True


@behavior("autograd.grad_mode.inference_tensor_in_place")
def test_in_place_update_of_an_inference_tensor_outside_inference_mode_raises(device):
    with torch.inference_mode():
        t = torch.tensor([1.0, 2.0], device=device)
    with pytest.raises(RuntimeError, match="(?i)inference tensor"):
        t.add_(1.0)  # (the data may already have changed when it raises: not asserted)
    with torch.inference_mode():
        t.copy_(torch.tensor([1.0, 2.0]))
        t.mul_(3.0)  # allowed inside inference mode
    assert t.cpu().tolist() == [3.0, 6.0]
    fixed = t.clone()  # the documented workaround: a clone outside is a normal tensor
    fixed.add_(1.0)
    assert not fixed.is_inference() and fixed.cpu().tolist() == [4.0, 7.0]


@behavior("autograd.grad_mode.inference_tensor_saved_for_backward")
def test_inference_tensor_in_a_recorded_operation_raises(device):
    w = _w(device)
    with torch.inference_mode():
        scale = torch.tensor([3.0, 5.0], device=device)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        w * scale  # mul saves both operands for backward
    ok = w * scale.clone()
    assert _records(ok)
    ok.sum().backward()
    assert w.grad.cpu().tolist() == [3.0, 5.0]


@behavior("autograd.grad_mode.inference_mode_false_nested")
def test_inference_mode_false_inside_inference_mode_makes_normal_recorded_tensors(device):
    w = _w(device)
    with torch.inference_mode():
        with torch.inference_mode(False):
            assert torch.is_inference_mode_enabled() is False
            assert torch.is_grad_enabled() is True
            z = _z(w)
        assert torch.is_inference_mode_enabled() is True
        after = _z(w)
    assert z.is_inference() is False and _records(z)
    assert after.is_inference() is True
    z.sum().backward()
    assert_close(w.grad, oracles.square_scaled([2.0, 3.0])[1], what="dz/dw")
