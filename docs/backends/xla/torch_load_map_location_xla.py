"""torch_xla 2.9.0: torch.load(map_location='xla') cannot restore a tensor that torch.save()
wrote from an XLA tensor (no restore function is registered for storages tagged 'xla').
torch_xla documents xm.save(), which moves the data to the CPU before saving; loading that
with map_location='cpu' and moving it to the device works.

Run: PJRT_DEVICE=CPU python torch_load_map_location_xla.py   (exit 1: the limitation shows)
"""
import io
import sys

import torch
import torch_xla  # noqa: F401
import torch_xla.core.xla_model as xm

t = torch.arange(3.0, device="xla")
buffer = io.BytesIO()
torch.save(t, buffer)
buffer.seek(0)
try:
    loaded = torch.load(buffer, map_location="xla", weights_only=True)
    print("torch.load(map_location='xla'):", loaded)
    failed = False
except RuntimeError as exc:
    print("torch.load(map_location='xla') raises RuntimeError:", exc)
    failed = True
buffer = io.BytesIO()
xm.save(t, buffer)
buffer.seek(0)
print("xm.save + torch.load(map_location='cpu') + .to('xla'):",
      torch.load(buffer, map_location="cpu", weights_only=True).to("xla"))
sys.exit(1 if failed else 0)
