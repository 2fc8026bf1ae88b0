# schedulefree: the *Closure optimizers create state for parameters without a gradient;
# SGDScheduleFreeReference moves a parameter of an lr=0 group.
import schedulefree as sf
import torch

for cls in (sf.AdamWScheduleFreeClosure, sf.SGDScheduleFreeClosure):
    a, idle = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    opt = cls([a, idle], lr=1e-3)
    if hasattr(opt, "train"):
        opt.train()

    def closure():
        a.grad = None
        loss = (a ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    print(cls.__name__, "state of the parameter without grad:", sorted(opt.state[idle]))

a, frozen = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
before = frozen.detach().clone()
opt = sf.SGDScheduleFreeReference([{"params": [a]}, {"params": [frozen], "lr": 0.0}], lr=1e-3)
opt.train()
for _ in range(3):
    opt.zero_grad()
    ((a ** 2).sum() + (frozen ** 2).sum()).backward()
    opt.step()
print("SGDScheduleFreeReference: lr=0 group moved by", float((frozen - before).abs().max()))
