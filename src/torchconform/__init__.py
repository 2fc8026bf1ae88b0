"""torchconform: executable conformance checks of documented PyTorch semantics.

Suites import what they need from here:

    from torchconform import behavior, since, not_applicable, requires, FLOAT64

`requires(device, FLOAT64)` makes a test not applicable on a device whose adapter
(torchconform.adapters) lacks the capability.
"""

from .environment import require_importable_torch

# A torch that cannot be imported is a usage error with the fix (pytest exit code 4), not a
# traceback from whichever module imported it first. The rest of the checks run at configure.
require_importable_torch()

from .adapters import FLOAT64, FUSED_OPTIMIZERS, SERIALIZATION, SPARSE  # noqa: E402
from .aliasing import shares_memory  # noqa: E402
from .behaviors import behavior  # noqa: E402
from .capabilities import requires  # noqa: E402
from .protocol import not_applicable  # noqa: E402
from .tolerances import assert_close, to_numpy  # noqa: E402
from .versions import TORCH_VERSION, since, torch_at_least  # noqa: E402

__all__ = ["behavior", "since", "not_applicable", "torch_at_least", "TORCH_VERSION",
           "assert_close", "to_numpy", "shares_memory", "requires", "FLOAT64",
           "FUSED_OPTIMIZERS", "SERIALIZATION", "SPARSE"]
__version__ = "0.1.0"
