# pytorch_optimizer: add_param_group and load_state_dict.
import copy

import pytorch_optimizer as po
import torch


def steps(opt, params, n=8):
    for _ in range(n):
        opt.zero_grad()
        sum((p ** 2).sum() for p in params).backward()
        opt.step()


for name in ("AdaBound", "AdaShift"):
    cls = po.load_optimizer(name.lower())
    a, b = torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(2, 3))
    opt = cls([a])
    opt.add_param_group({"params": [b]})
    before = b.detach().clone()
    try:
        steps(opt, [a, b])
        print(name, "add_param_group: the added group moved by",
              float((b - before).abs().max()))
    except Exception as exc:
        print(name, "add_param_group:", type(exc).__name__, exc)

for name in ("AdaShift", "Conda", "ScalableShampoo"):
    cls = po.load_optimizer(name.lower())
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(4, 3))
    opt = cls([a])
    steps(opt, [a], 3)
    b = torch.nn.Parameter(a.detach().clone())
    other = cls([b])
    try:
        other.load_state_dict(copy.deepcopy(opt.state_dict()))
        steps(opt, [a], 3)
        steps(other, [b], 3)
        print(name, "load_state_dict: continued differently by",
              float((a - b).abs().max()))
    except Exception as exc:
        print(name, "load_state_dict:", type(exc).__name__, exc)
