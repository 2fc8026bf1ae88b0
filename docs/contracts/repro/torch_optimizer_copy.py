# torch_optimizer: options kept as instance attributes are lost by pickle and deepcopy
# (Optimizer.__getstate__ keeps defaults, state and param_groups only).
import copy

import torch
import torch_optimizer as optim

for cls in (optim.AdaBelief, optim.AdaBound, optim.Lamb, optim.Ranger, optim.RangerQH):
    p = torch.nn.Parameter(torch.randn(3))
    opt = cls([p], lr=1e-3)
    p.grad = torch.ones(3)
    opt.step()
    p2, opt2 = copy.deepcopy((p, opt))
    p2.grad = torch.ones(3)
    try:
        opt2.step()
        print(cls.__name__, "ok")
    except AttributeError as exc:
        print(cls.__name__, "step after deepcopy:", exc)
