# pytorch_optimizer: state kept in another dtype than the parameter's.
import pytorch_optimizer as po
import torch

for name in ("FAdam", "FlashAdamW", "QHAdam", "AdaFactor"):
    cls = po.load_optimizer(name.lower())
    for dtype in (torch.float32, torch.float64):
        p = torch.nn.Parameter(torch.randn(4, 3, dtype=dtype))
        opt = cls([p], lr=1e-3)
        try:
            for _ in range(2):
                p.grad = torch.randn(4, 3, dtype=dtype)
                opt.step()
            print(name, dtype, {k: v.dtype for k, v in opt.state[p].items()
                                if isinstance(v, torch.Tensor) and v.dim() > 0
                                and v.dtype != dtype})
        except Exception as exc:
            print(name, dtype, type(exc).__name__, exc)
