"""torch 2.9.0 + torch_xla 2.9.0: an LBFGS step with max_iter=8 on a 3-parameter quadratic
(float64, tolerance_grad = tolerance_change = 0, so all 8 iterations run) can kill the
interpreter with a segmentation fault inside LBFGS's two-loop recursion (lbfgs.py line 408,
`r.add_(old_stps[i], alpha=al[i] - be_i)`, where alpha is a 0-dim XLA tensor). Seen once in
a full `-n 2` run of the suite (worker crashed, faulthandler stack in lbfgs.py:408); this
script repeats the step to give the crash a chance. Exit codes: 1 if the CPU and XLA results
differ, -11 (SIGSEGV) if it crashes, 0 if every step agrees.

Run: PJRT_DEVICE=CPU python lbfgs_step_segfault.py
"""
import faulthandler
import sys

import numpy as np
import torch
import torch_xla  # noqa: F401

faulthandler.enable()
torch_xla.device()  # start the runtime before any CPU backward (backward_after_a_cpu_backward.py)
A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, -0.25], [0.0, -0.25, 1.0]])
B = np.array([1.0, -2.0, 0.5])
X0 = np.array([0.5, 1.5, -1.0])


def step(device):
    a, b = torch.tensor(A, device=device), torch.tensor(B, device=device)
    x = torch.tensor(X0, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=0.1, max_iter=8, tolerance_grad=0.0, tolerance_change=0.0)
    calls = []

    def closure():
        calls.append(1)
        x.grad = None
        loss = 0.5 * x @ a @ x - b @ x
        loss.backward()
        return loss

    opt.step(closure)
    return len(calls), x.detach().cpu().numpy()


cpu_calls, cpu_x = step("cpu")
print("cpu: closure calls", cpu_calls, "x", cpu_x.tolist())
for attempt in range(1, 21):
    calls, x = step("xla")
    if calls != cpu_calls or not np.allclose(x, cpu_x, rtol=1e-10, atol=1e-12):
        print(f"xla (attempt {attempt}): closure calls {calls}, x {x.tolist()}")
        print("DEPARTURE: xla's LBFGS step differs from the CPU's")
        sys.exit(1)
print("xla: 20 steps, each equal to the CPU's (no crash this time)")
