# torch_optimizer: add_param_group after construction (fine-tuning a frozen layer).
import torch
import torch_optimizer as optim

for cls in (optim.MADGRAD, optim.AdaBound):
    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    opt = cls([a], lr=1e-3)
    opt.add_param_group({"params": [b]})
    before = b.detach().clone()
    try:
        for _ in range(3):
            opt.zero_grad()
            ((a ** 2).sum() + (b ** 2).sum()).backward()
            opt.step()
        print(cls.__name__, "added group moved by", float((b - before).abs().max()))
    except Exception as exc:
        print(cls.__name__, type(exc).__name__, exc)
