"""torchconform: executable conformance checks of documented PyTorch semantics.

Suites import what they need from here:

    from torchconform import behavior, since, not_applicable, requires, FLOAT64

`requires(device, FLOAT64)` makes a test not applicable on a device whose adapter
(torchconform.adapters) lacks the capability.
"""

from .adapters import FLOAT64, FUSED_OPTIMIZERS, SERIALIZATION
from .behaviors import behavior
from .capabilities import requires
from .protocol import not_applicable
from .tolerances import assert_close, to_numpy
from .versions import TORCH_VERSION, since, torch_at_least

__all__ = ["behavior", "since", "not_applicable", "torch_at_least", "TORCH_VERSION",
           "assert_close", "to_numpy", "requires", "FLOAT64", "FUSED_OPTIMIZERS",
           "SERIALIZATION"]
__version__ = "0.1.0"
