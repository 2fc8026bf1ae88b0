# Setting param_groups[0]["lr"] = 0 after 8 steps: does the next step leave the parameters?
import pytorch_optimizer as po
import schedulefree as sf
import torch
import torch_optimizer as to

classes = {"torch_optimizer.AccSGD": to.AccSGD, "torch_optimizer.MADGRAD": to.MADGRAD,
           "pytorch_optimizer.LaProp": po.LaProp,
           "pytorch_optimizer.MADGRAD": po.MADGRAD,
           "schedulefree.AdamWScheduleFree": sf.AdamWScheduleFree}
for name, cls in classes.items():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(4, 3))
    opt = cls([p], lr=1e-3)
    if hasattr(opt, "train"):
        opt.train()

    def step():
        opt.zero_grad()
        ((p - 1) ** 2).sum().backward()
        opt.step()

    for _ in range(8):
        step()
    opt.param_groups[0]["lr"] = 0.0
    before = p.detach().clone()
    step()
    print(name, "moved with lr=0 by", float((p - before).abs().max()))
