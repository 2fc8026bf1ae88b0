"""The numpy oracles against values computed by hand (in the comments), not by the oracles."""

import math

import numpy as np
import pytest

from torchconform import oracles


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, rtol=1e-12, atol=1e-12)


# -- closed-form gradients --------------------------------------------------------------------

def test_square_scaled():
    z, dz = oracles.square_scaled([1.0, -2.0])
    close(z, [35.0, 65.0])  # 10 * 1 + 25, 10 * 4 + 25
    close(dz, [20.0, -40.0])  # 20 w
    close(oracles.square_scaled_second([1.0, -2.0]), [20.0, 20.0])


def test_cubic_minus_square_is_the_autograd_tutorials_example():
    # The tutorial's a = [2, 3], b = [6, 4], external gradient ones: a.grad = 9 a^2 = [36, 81],
    # b.grad = -2 b = [-12, -8]; Q = 3 a^3 - b^2 = [24 - 36, 81 - 16].
    q, da, db = oracles.cubic_minus_square([2.0, 3.0], [6.0, 4.0], [1.0, 1.0])
    close(q, [-12.0, 65.0])
    close(da, [36.0, 81.0])
    close(db, [-12.0, -8.0])
    _, da, db = oracles.cubic_minus_square([2.0], [6.0], [0.5])  # v scales both
    close(da, [18.0])
    close(db, [-6.0])
    close(oracles.cubic_second([2.0, 3.0], [1.0, 2.0]), [36.0, 108.0])  # 18 a v


def test_mean_scaled_square():
    o, do = oracles.mean_scaled_square(np.ones((3, 3)))
    close(o, 48.0)  # 3 * (1 + 3)^2 in every element
    close(do, np.full((3, 3), 8 / 3))  # 6 * 4 / 9


def test_linear_mse_one_sample():
    # pred = 1*3 + 2*4 + 1 = 12, residual 2, N = 1: L = 4, dL/dpred = 4.
    loss, dw, db = oracles.linear_mse([[1.0, 2.0]], [[3.0, 4.0]], [1.0], [[10.0]])
    close(loss, 4.0)
    close(dw, [[4.0, 8.0]])
    close(db, [4.0])


def test_linear_mse_averages_over_every_element():
    # Two samples, pred = [1, 1], y = [0, 0]: L = 1, dL/dpred = 2 * 1 / 2 = 1 each.
    loss, dw, db = oracles.linear_mse(np.eye(2), [[1.0, 1.0]], [0.0], [[0.0], [0.0]])
    close(loss, 1.0)
    close(dw, [[1.0, 1.0]])
    close(db, [2.0])


def test_logistic_regression():
    # W = 0, b = 0: y_hat = sigmoid(0) = 1/2 for both samples, L = -log(1/2) = ln 2;
    # y_hat - y = [-1/2, 1/2]: dL/dW = (-1/2 * 1 + 1/2 * 2) / 2 = 1/4, dL/db = 0.
    loss, y_hat, dw, db = oracles.logistic_regression([[1.0, 2.0]], [[0.0]], 0.0, [[1.0, 0.0]])
    close(loss, math.log(2))
    close(y_hat, [[0.5, 0.5]])
    close(dw, [[0.25]])
    close(db, 0.0)


# -- the SGD pseudo-code ----------------------------------------------------------------------

def steps(optimizer, *grads):
    return [list(optimizer.step(g)) for g in grads]


def test_sgd_plain_step():
    close(oracles.SGD([[1.0, 2.0]], lr=0.1).step([[2.0, -1.0]])[0], [0.8, 2.1])


def test_sgd_momentum_buffer_starts_as_the_first_gradient():
    # t=1: b = g = 1, theta = 1 - 0.1 = 0.9; t=2: b = 0.9 * 1 + (1 - 0.5) * 1 = 1.4,
    # theta = 0.9 - 0.14 = 0.76 (dampening only from the second step on).
    sgd = oracles.SGD([1.0], lr=0.1, momentum=0.9, dampening=0.5)
    [[first], [second]] = steps(sgd, [1.0], [1.0])
    close(first, 0.9)
    close(second, 0.76)
    close(sgd.buffers[0], 1.4)


def test_sgd_nesterov():
    # t=1: b = 1, g = 1 + 0.9 * 1 = 1.9, theta = 0.81; t=2: b = 0.9 + 1 = 1.9,
    # g = 1 + 0.9 * 1.9 = 2.71, theta = 0.81 - 0.271 = 0.539.
    sgd = oracles.SGD([1.0], lr=0.1, momentum=0.9, nesterov=True)
    [[first], [second]] = steps(sgd, [1.0], [1.0])
    close(first, 0.81)
    close(second, 0.539)


def test_sgd_weight_decay_and_maximize():
    close(oracles.SGD([1.0], lr=0.1, weight_decay=0.1).step([1.0])[0], 0.89)  # g = 1 + 0.1
    close(oracles.SGD([1.0], lr=0.1, maximize=True).step([1.0])[0], 1.1)  # g = -1
    # maximize negates the gradient before weight decay: g = -1 + 0.1 * 1 = -0.9.
    close(oracles.SGD([1.0], lr=0.1, maximize=True, weight_decay=0.1).step([1.0])[0], 1.09)


def test_sgd_skips_a_parameter_without_gradient_and_its_first_step_comes_later():
    sgd = oracles.SGD([1.0, 1.0], lr=0.1, momentum=0.9, dampening=0.5)
    close(sgd.step([1.0, None]), [0.9, 1.0])
    assert sgd.buffers[1] is None
    # The second parameter's first step: its buffer is its gradient, no dampening.
    close(sgd.step([1.0, 1.0]), [0.76, 0.9])


def test_sgd_does_not_alias_its_inputs():
    start, grad = np.array([1.0]), np.array([1.0])
    oracles.SGD([start], lr=0.1, momentum=0.9).step([grad])
    close(start, [1.0])
    close(grad, [1.0])


# -- the seeds' training loop -----------------------------------------------------------------

def test_linear_regression_sgd_two_epochs():
    # x = [1, 2], y = [2, 4], w = b = 0, lr = 0.1.
    # epoch 1: r = [-2, -4], L = (4 + 16) / 2 = 10, dw = 2 mean([-2, -8]) = -10,
    #          db = 2 mean([-2, -4]) = -6 -> w = 1, b = 0.6.
    # epoch 2: r = [-0.4, -1.4], L = (0.16 + 1.96) / 2 = 1.06, dw = 2 mean([-0.4, -2.8]) = -3.2,
    #          db = 2 mean([-0.4, -1.4]) = -1.8 -> w = 1.32, b = 0.78.
    losses, params = oracles.linear_regression_sgd([1.0, 2.0], [2.0, 4.0], 0.0, 0.0, 0.1, 2)
    close(losses, [10.0, 1.06])
    close(params, [[1.0, 0.6], [1.32, 0.78]])


@pytest.mark.parametrize("epochs", [0, 1])
def test_linear_regression_sgd_epoch_count(epochs):
    losses, params = oracles.linear_regression_sgd([1.0], [1.0], 1.0, 0.0, 0.1, epochs)
    assert len(losses) == len(params) == epochs
