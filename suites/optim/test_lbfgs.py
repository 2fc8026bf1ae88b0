"""torch.optim.LBFGS: the L-BFGS two-loop recursion with its documented options, driven by a
closure.

Checked against oracles_optim.LBFGS (the two-loop recursion of Nocedal & Wright with minFunc's
conventions, line_search_fn=None) on convex quadratics f(x) = 0.5 x.A x - b.x with a random
symmetric positive definite A: the iterate after every step() call must agree. A small
history_size and several iterations per step make the history's truncation and its carrying
over between step() calls count. The tolerances are set where they cannot stop the run early,
so that every iteration is compared; max_eval, the single-group rule and the closure's
evaluation count are checked separately.
"""

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from torchconform import assert_close, behavior, oracles_optim, to_numpy
from torchconform.optim_alongside import few_examples
from torchconform.strategies import generators, signed_values


@st.composite
def quadratics(draw):
    """(A, b, x0): A = M M^T / n + I (eigenvalues in [1, ~5]), n = 2..5."""
    n = draw(st.integers(2, 5))
    rng = draw(generators())
    m = signed_values(rng, (n, n), 0.1, 1.5)
    a = (m @ m.T / n + np.eye(n)).astype(np.float32).astype(np.float64)
    return a, signed_values(rng, (n,)), signed_values(rng, (n,))


SEED_QUADRATIC = (np.array([[3.0, 0.5, 0.0], [0.5, 2.0, -0.25], [0.0, -0.25, 1.0]]),
                  np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.5, -1.0]))


def _closure(x, a, b, calls):
    def closure():
        calls.append(1)
        x.grad = None
        loss = 0.5 * x @ a @ x - b @ x
        loss.backward()
        return loss
    return closure


@behavior("optim.lbfgs.two_loop_recursion")
@few_examples()
@given(quadratic=quadratics(), lr=st.sampled_from([0.25, 0.5, 1.0]),
       history_size=st.integers(1, 3), max_iter=st.integers(2, 4))
@example(quadratic=SEED_QUADRATIC, lr=1.0, history_size=2, max_iter=4)
@example(quadratic=SEED_QUADRATIC, lr=0.5, history_size=1, max_iter=3)
def test_lbfgs_steps_along_the_two_loop_direction(device, dtype, quadratic, lr, history_size,
                                                 max_iter):
    a_np, b_np, x0 = quadratic
    a, b = (torch.tensor(v, device=device, dtype=dtype) for v in (a_np, b_np))
    x = torch.tensor(x0, device=device, dtype=dtype, requires_grad=True)
    options = dict(lr=lr, max_iter=max_iter, history_size=history_size,
                   tolerance_grad=0.0, tolerance_change=0.0)
    optimizer = torch.optim.LBFGS([x], **options)
    oracle = oracles_optim.LBFGS(x0, **options)
    rtol = 1e-9 if dtype == torch.float64 else 2e-4  # float32: rounding grows with iterations
    for t in range(1, 4):
        calls, oracle_calls = [], []

        def fun(v, oracle_calls=oracle_calls):
            oracle_calls.append(1)
            return 0.5 * v @ a_np @ v - b_np @ v, a_np @ v - b_np
        loss = optimizer.step(_closure(x, a, b, calls))
        expected_loss = oracle.step(fun)
        assert_close(loss, expected_loss, rtol=rtol, atol=rtol,
                     what=f"loss returned by step {t}")
        assert_close(x, oracle.x, rtol=rtol, atol=rtol, what=f"x after step {t}")
        # One evaluation per iteration, none after the last. Once the run has converged to
        # rounding noise (small quadratics do), float32 and float64 may stop at other
        # iterations: the count is compared while the gradient is still well above it.
        assert len(calls) <= max_iter
        if np.max(np.abs(a_np @ oracle.x - b_np)) > 1e-3:
            assert len(calls) == len(oracle_calls)


@behavior("optim.lbfgs.max_eval")
@pytest.mark.parametrize("max_iter,max_eval,evaluations", [(8, None, 8), (8, 3, 3), (4, 10, 4)],
                         ids=["default-1.25-max_iter", "max_eval-3", "max_iter-first"])
def test_lbfgs_evaluates_the_closure_at_most_max_eval_times(device, max_iter, max_eval,
                                                            evaluations):
    """max_eval defaults to max_iter * 1.25 (10 for 8 iterations, which stop first); a smaller
    max_eval ends the step early, after exactly max_eval evaluations."""
    a_np, b_np, x0 = SEED_QUADRATIC
    a, b = (torch.tensor(v, device=device) for v in (a_np, b_np))
    x = torch.tensor(x0, device=device, requires_grad=True)
    optimizer = torch.optim.LBFGS([x], lr=0.1, max_iter=max_iter, max_eval=max_eval,
                                  tolerance_grad=0.0, tolerance_change=0.0)
    calls = []
    optimizer.step(_closure(x, a, b, calls))
    assert len(calls) == evaluations
    assert optimizer.state[x]["func_evals"] == evaluations


@behavior("optim.lbfgs.single_param_group")
def test_lbfgs_refuses_parameter_groups(device):
    a = torch.tensor([1.0], device=device, requires_grad=True)
    b = torch.tensor([2.0], device=device, requires_grad=True)
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        torch.optim.LBFGS([{"params": [a]}, {"params": [b], "lr": 0.5}])
    optimizer = torch.optim.LBFGS([a, b], lr=0.5)  # one group of two parameters is fine
    assert len(optimizer.param_groups) == 1
    assert to_numpy(a) == 1.0
