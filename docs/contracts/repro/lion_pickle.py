# lion_pytorch.Lion: an unpickled (or deep-copied) optimizer cannot step.
import pickle

import torch
from lion_pytorch import Lion

p = torch.nn.Parameter(torch.randn(3))
opt = Lion([p], lr=1e-4)
p.grad = torch.ones(3)
opt.step()
p2, opt2 = pickle.loads(pickle.dumps((p, opt)))
p2.grad = torch.ones(3)
try:
    opt2.step()
except AttributeError as exc:
    print("step after pickle:", type(exc).__name__, exc)
