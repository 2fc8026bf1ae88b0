# torch_optimizer.Ranger / RangerVA: step(closure) never calls the closure (and returns None).
import torch
import torch_optimizer as optim

for cls in (optim.Ranger, optim.RangerVA):
    p = torch.nn.Parameter(torch.randn(3))
    opt = cls([p], lr=1e-3)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        calls.append(loss)
        return loss

    p.grad = torch.zeros(3)  # Ranger raises on grad None before it would look at the closure
    print(cls.__name__, "returned", opt.step(closure), "closure calls:", len(calls))
