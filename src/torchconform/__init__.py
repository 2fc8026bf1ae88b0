"""torchconform: executable conformance checks of documented PyTorch semantics.

Suites import what they need from here:

    from torchconform import behavior, since, not_applicable
"""

from .behaviors import behavior
from .protocol import not_applicable
from .tolerances import assert_close, to_numpy
from .versions import TORCH_VERSION, since, torch_at_least

__all__ = ["behavior", "since", "not_applicable", "torch_at_least", "TORCH_VERSION",
           "assert_close", "to_numpy"]
__version__ = "0.1.0"
