# torch_optimizer.RAdam / Ranger / RangerVA: float32 state for float64 parameters.
import torch
import torch_optimizer as optim

for cls in (optim.RAdam, optim.Ranger, optim.RangerVA):
    p = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    opt = cls([p], lr=1e-3)
    p.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    print(cls.__name__, {k: v.dtype for k, v in opt.state[p].items()
                         if isinstance(v, torch.Tensor) and v.dim() > 0})
