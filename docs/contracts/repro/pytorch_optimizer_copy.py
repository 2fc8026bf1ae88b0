# pytorch_optimizer: options kept as instance attributes (self.foreach, ...) are lost by
# copy.deepcopy and pickle (Optimizer.__getstate__ keeps defaults, state and param_groups only).
import copy

import pytorch_optimizer as po
import torch

for name in ("Lion", "AdaBelief", "MADGRAD", "Prodigy", "DAdaptAdam", "SOAP"):
    cls = po.load_optimizer(name.lower())
    p = torch.nn.Parameter(torch.randn(4, 3))
    opt = cls([p])
    p.grad = torch.ones(4, 3)
    opt.step()
    p2, opt2 = copy.deepcopy((p, opt))
    p2.grad = torch.ones(4, 3)
    try:
        opt2.step()
        print(name, "ok")
    except Exception as exc:
        print(name, "step after deepcopy:", type(exc).__name__, exc)
