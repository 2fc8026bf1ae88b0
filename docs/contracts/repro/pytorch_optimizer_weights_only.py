# pytorch_optimizer: state_dicts that torch.load(weights_only=True) (the default since torch
# 2.6) refuses.
import io

import pytorch_optimizer as po
import torch

for name in ("AdaShift", "Conda", "SCION", "SCIONLight", "ScalableShampoo"):
    cls = po.load_optimizer(name.lower())
    p = torch.nn.Parameter(torch.randn(4, 3))
    opt = cls([p], lr=1e-3)
    for _ in range(3):
        p.grad = torch.randn(4, 3)
        opt.step()
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
        print(name, "ok")
    except Exception as exc:
        print(name, type(exc).__name__, str(exc).split("\n")[-3:])
