# torch_optimizer: a param group with lr=0 still moves (RAdam, AccSGD, MADGRAD) or crashes
# (AdaBound).
import torch
import torch_optimizer as optim

for cls in (optim.RAdam, optim.AccSGD, optim.MADGRAD, optim.AdaBound):
    a = torch.nn.Parameter(torch.randn(3))
    frozen = torch.nn.Parameter(torch.randn(3))
    before = frozen.detach().clone()
    opt = cls([{"params": [a]}, {"params": [frozen], "lr": 0.0}], lr=1e-3)
    try:
        for _ in range(3):
            opt.zero_grad()
            ((a ** 2).sum() + (frozen ** 2).sum()).backward()
            opt.step()
        print(cls.__name__, "lr=0 group moved by", float((frozen - before).abs().max()))
    except Exception as exc:
        print(cls.__name__, type(exc).__name__, exc)
