"""torch.autograd.detect_anomaly: a backward that produces NaN raises, naming the backward
function, and a warning carries the traceback of the forward call that created it.

sqrt(w) * 0 at w = 0 is the NaN: the gradient reaching sqrt is 0, and SqrtBackward0 computes
0 / (2 sqrt(0)) = 0 / 0.
"""

import inspect
import math
import os
import warnings

import pytest
import torch

from torchconform import behavior


def _w(device):
    return torch.tensor([0.0, 4.0], device=device, requires_grad=True)


def _messages(caught):
    return [str(w.message) for w in caught]


@behavior("autograd.anomaly.nan_raises")
def test_nan_gradient_raises_naming_the_backward_function(device):
    w = _w(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            loss = (torch.sqrt(w) * 0).sum()
            with pytest.raises(RuntimeError,
                               match=r"Function 'SqrtBackward0' returned nan values in its "
                                     r"0th output"):
                loss.backward()


@behavior("autograd.anomaly.nan_raises")
def test_without_anomaly_mode_the_nan_is_accumulated_silently(device):
    w = _w(device)
    assert torch.is_anomaly_enabled() is False
    (torch.sqrt(w) * 0).sum().backward()
    grad = w.grad.cpu().tolist()
    assert math.isnan(grad[0]) and grad[1] == 0.0


@behavior("autograd.anomaly.forward_traceback")
def test_warning_carries_the_forward_traceback_of_the_failing_node(device):
    w = _w(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            line = _line() + 1
            loss = (torch.sqrt(w) * 0).sum()
            with pytest.raises(RuntimeError):
                loss.backward()
    found = [m for m in _messages(caught) if "Error detected in SqrtBackward0" in m]
    assert found, _messages(caught)
    assert "Traceback of forward call" in found[0]
    assert f'{os.path.basename(__file__)}", line {line}' in found[0]


@behavior("autograd.anomaly.forward_traceback")
def test_error_in_a_custom_backward_reports_its_forward_call(device):
    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("Some error in backward")

    w = _w(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            line = _line() + 1
            out = Broken.apply(w).sum()
            with pytest.raises(ValueError, match="Some error in backward"):
                out.backward()
    found = [m for m in _messages(caught) if "Error detected in BrokenBackward" in m]
    assert found, _messages(caught)
    assert f'{os.path.basename(__file__)}", line {line}' in found[0]


@behavior("autograd.anomaly.check_nan_false")
def test_check_nan_false_keeps_anomaly_mode_without_raising(device):
    w = _w(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly(check_nan=False):
            assert torch.is_anomaly_enabled() is True
            (torch.sqrt(w) * 0).sum().backward()  # no error
        assert torch.is_anomaly_enabled() is False
    assert math.isnan(w.grad.cpu().tolist()[0])


def _line():
    """The caller's current line number."""
    return inspect.currentframe().f_back.f_lineno


@behavior("autograd.anomaly.set_detect_anomaly")
def test_set_detect_anomaly_as_a_function_switches_until_set_again(device):
    w = _w(device)
    prev = torch.is_anomaly_enabled()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.autograd.set_detect_anomaly(True)  # a plain call, no with block
            assert torch.is_anomaly_enabled() is True
            with pytest.raises(RuntimeError, match="'SqrtBackward0' returned nan"):
                (torch.sqrt(w) * 0).sum().backward()
            torch.autograd.set_detect_anomaly(False)
            assert torch.is_anomaly_enabled() is False
    finally:
        torch.autograd.set_detect_anomaly(prev)


@behavior("autograd.anomaly.set_detect_anomaly")
@pytest.mark.parametrize("outer", [False, True])
def test_set_detect_anomaly_block_sets_the_mode_and_restores_the_previous(device, outer):
    prev = torch.is_anomaly_enabled()
    try:
        torch.autograd.set_detect_anomaly(outer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.autograd.set_detect_anomaly(not outer):
                assert torch.is_anomaly_enabled() is (not outer)
            assert torch.is_anomaly_enabled() is outer
    finally:
        torch.autograd.set_detect_anomaly(prev)
