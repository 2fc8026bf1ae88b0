# pytorch_optimizer: a param group with lr=0 next to a group with the default lr.
import pytorch_optimizer as po
import torch

for name in ("DAdaptAdam", "Prodigy", "Nero", "SRMM", "AdaFactor", "ApolloDQN", "FTRL", "ASGD",
             "Gravity"):
    cls = po.load_optimizer(name.lower())
    torch.manual_seed(0)
    a, frozen = torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(4, 3))
    before = frozen.detach().clone()
    try:
        opt = cls([{"params": [a]}, {"params": [frozen], "lr": 0.0}])
        for _ in range(8):
            opt.zero_grad()
            ((a ** 2).sum() + (frozen ** 2).sum()).backward()
            opt.step()
        print(name, "lr=0 group moved by", float((frozen - before).abs().max()))
    except Exception as exc:
        print(name, type(exc).__name__, exc)
