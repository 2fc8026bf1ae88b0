"""Moving a module to XLA (Module.to('xla'), Module.to_empty(device='xla')) creates new
Parameter objects instead of changing the existing ones in place, the documented default
(torch.__future__.get_overwrite_module_params_on_conversion() is False): torch's Module._apply
keeps a Parameter only when the new tensor's type is shallow-copy compatible with the old one
(torch._has_compatible_shallow_copy_type), and CPU and XLA tensors are not. An optimizer
built before the move keeps stepping the old CPU Parameters (torch.optim's documentation
advises moving the model before building the optimizer).

Run: PJRT_DEVICE=CPU python module_to_xla_replaces_parameters.py   (exit 1: it shows)
"""
import sys

import torch
import torch_xla  # noqa: F401
from torch import nn

print("overwrite on conversion (documented default False):",
      torch.__future__.get_overwrite_module_params_on_conversion())
m = nn.Linear(2, 3)
weight = m.weight
m.to("xla")
kept_to = m.weight is weight
m2 = nn.Linear(2, 3)
weight2 = m2.weight
m2.to_empty(device="xla")
kept_empty = m2.weight is weight2
print("Module.to('xla') keeps the Parameter object:", kept_to)
print("Module.to_empty(device='xla') keeps the Parameter object:", kept_empty)
print("CPU and XLA tensors shallow-copy compatible:",
      torch._has_compatible_shallow_copy_type(torch.zeros(1), torch.zeros(1, device="xla")))
sys.exit(0 if kept_to and kept_empty else 1)
