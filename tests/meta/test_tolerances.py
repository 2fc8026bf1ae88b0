"""Tolerance helpers: the bounds by dtype, the float64 copy, and what assert_close accepts."""

import numpy as np
import pytest
import torch

from torchconform import tolerances
from torchconform.tolerances import assert_close


def test_tolerances_by_dtype():
    assert tolerances.tolerance(torch.float32) == (1e-5, 1e-6)
    assert tolerances.tolerance(torch.float64) == (1e-10, 1e-12)
    with pytest.raises(ValueError, match="no tolerance defined for torch.int64"):
        tolerances.tolerance(torch.int64)


def test_to_numpy_is_a_float64_copy():
    t = torch.tensor([1.5, -2.0], dtype=torch.float64)
    copy = tolerances.to_numpy(t)
    t.add_(1)  # changing the tensor afterwards leaves the copy alone
    assert copy.dtype == np.float64 and copy.tolist() == [1.5, -2.0]
    assert tolerances.to_numpy(torch.tensor([0.25], dtype=torch.float32)).tolist() == [0.25]
    assert tolerances.to_numpy(3).dtype == np.float64


def test_sum_atol_scales_with_the_sum_of_absolute_terms():
    # float32: atol 1e-6 + rtol 1e-5 * magnitude.
    np.testing.assert_allclose(tolerances.sum_atol(torch.float32, [[1.0, 100.0]]),
                               [[1.1e-5, 1.001e-3]], rtol=1e-12)


def test_assert_close_accepts_rounding_error():
    # float32 bound at 1: 1e-6 + 1e-5 * 1 = 1.1e-5.
    assert_close(torch.tensor([1.0]), np.array([1.0 + 1e-5]))
    assert_close(torch.tensor([1.0], dtype=torch.float64), [1.0 + 1e-11])


@pytest.mark.parametrize("actual, expected", [
    ([1.0], [1.001]),  # a 0.1% error in float32
    ([0.0], [2e-6]),  # beyond atol near zero
    ([float("nan")], [1.0]),
    ([float("inf")], [1.0]),
])
def test_assert_close_refuses(actual, expected):
    with pytest.raises(AssertionError, match="differs from the float64 oracle"):
        assert_close(torch.tensor(actual), np.array(expected))


def test_assert_close_float64_is_stricter_than_float32():
    with pytest.raises(AssertionError):
        assert_close(torch.tensor([1.0], dtype=torch.float64), [1.0 + 1e-8])


def test_assert_close_names_the_worst_element_and_the_shape():
    with pytest.raises(AssertionError, match=r"at index \(1, 0\) got \S*5\.0\S*, expected \S*4\.0"):
        assert_close(torch.tensor([[1.0, 2.0], [5.0, 4.0]]), [[1.0, 2.0], [4.0, 4.0]],
                     what="grad")
    with pytest.raises(AssertionError, match=r"grad: shape \(2,\) != expected \(1, 2\)"):
        assert_close(torch.tensor([1.0, 2.0]), [[1.0, 2.0]], what="grad")


def test_assert_close_takes_an_elementwise_atol():
    # 1e-3 off: inside an atol of 2e-3 for the first element, outside 1e-6 for the second.
    assert_close(torch.tensor([0.0]), [1e-3], atol=np.array([2e-3]))
    with pytest.raises(AssertionError, match=r"at index \(1,\)"):
        assert_close(torch.tensor([0.0, 0.0]), [1e-3, 1e-3], atol=np.array([2e-3, 1e-6]))
