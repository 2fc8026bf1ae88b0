# timm.optim.create_optimizer_v2: state dtype, lr=0 with RMSpropTF (lr_in_momentum) and MADGRAD.
# Run from the checkout: timm imports torchvision, whose PyPI wheel (a CUDA build) does not
# import against torch+cpu without the survey's shim.
import sys

sys.path.insert(0, "tools")
import contract_survey  # noqa: E402, F401
import timm.optim  # noqa: E402
import torch  # noqa: E402

for name in ("radamlegacy", "adafactorbv"):
    p = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = timm.optim.create_optimizer_v2([p], opt=name, lr=1e-3)
    for _ in range(2):
        p.grad = torch.randn(4, 3, dtype=torch.float64)
        opt.step()
    print(name, "float64 parameter, state dtypes:",
          {k: v.dtype for k, v in opt.state[p].items()
           if isinstance(v, torch.Tensor) and v.dim() > 0})

for name in ("rmsproptf", "madgrad"):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(4, 3))
    opt = timm.optim.create_optimizer_v2([p], opt=name, lr=1e-2)
    for _ in range(8):
        opt.zero_grad()
        ((p - 1) ** 2).sum().backward()
        opt.step()
    opt.param_groups[0]["lr"] = 0.0
    before = p.detach().clone()
    opt.zero_grad()
    ((p - 1) ** 2).sum().backward()
    opt.step()
    print(name, "moved with lr=0 by", float((p - before).abs().max()))
