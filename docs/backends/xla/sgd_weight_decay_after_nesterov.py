"""torch_xla 2.9.0: an SGD step with weight decay gives a wrong result when an SGD step with
nesterov=True ran earlier in the same process (fresh tensors, fresh optimizers). Silent: no
error, no warning. Alone, the same weight-decay step is right.

Run: PJRT_DEVICE=CPU python sgd_weight_decay_after_nesterov.py   (exit 1: the departure shows)
"""
import subprocess
import sys

import numpy as np
import torch
import torch_xla  # noqa: F401  (registers the 'xla' device)

THETA, GRAD, LR, WD = [1.5, -0.75], [0.5, -1.0], 0.1, 0.1


def sgd_step(device, **options):
    p = torch.tensor(THETA, device=device, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=LR, **options)
    p.grad = torch.tensor(GRAD, device=device)
    optimizer.step()
    return p.detach().cpu().numpy()


# The documented rule (torch.optim.SGD): g = grad + weight_decay * theta; theta -= lr * g
expected = np.array(THETA) - LR * (np.array(GRAD) + WD * np.array(THETA))
if sys.argv[1:] == ["alone"]:  # the weight-decay step in a fresh process
    print(sgd_step("xla", weight_decay=WD).tolist())
    sys.exit(0)
alone = subprocess.run([sys.executable, __file__, "alone"], capture_output=True, text=True,
                       check=True).stdout.strip().splitlines()[-1]
sgd_step("xla", momentum=0.9, nesterov=True)  # one nesterov step first, then:
after = sgd_step("xla", weight_decay=WD)
cpu = sgd_step("cpu", weight_decay=WD)
print(f"expected (numpy, documented rule):        {expected.tolist()}")
print(f"cpu:                                      {cpu.tolist()}")
print(f"xla, weight-decay step in a fresh process: {alone}")
print(f"xla, weight-decay step after a nesterov step in the same process: {after.tolist()}")
departs = not np.allclose(after, expected, rtol=1e-6, atol=1e-6)
print("DEPARTURE: xla differs from the documented rule" if departs else "xla agrees")
sys.exit(1 if departs else 0)
