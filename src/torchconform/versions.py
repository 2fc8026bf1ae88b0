"""The installed torch version and the one gate helper every suite uses.

`since("2.0")` answers "does the installed torch have the 2.0 behaviour?" and records the
answer on the running test, so reports can show which side of each gate a run asserted.
"""

from __future__ import annotations

from typing import Tuple

import torch
from packaging.version import Version

from . import protocol


def release(version: str) -> Tuple[int, ...]:
    """(major, minor, micro) of a version string; pre-releases and local tags such as
    "2.0.0a0+git1234" or "2.13.0+cpu" count as their release, because nightlies of X
    already carry X's semantics."""
    parts = Version(str(version)).release
    return tuple(parts) + (0,) * (3 - len(parts))


TORCH_VERSION: str = str(torch.__version__)
TORCH_RELEASE: Tuple[int, ...] = release(TORCH_VERSION)

def torch_at_least(version: str) -> bool:
    """True when the installed torch is `version` or newer (no recording)."""
    return TORCH_RELEASE >= release(version)


def since(version: str) -> bool:
    """Gate for a behaviour that changed in torch `version`: True when the installed torch
    has the new behaviour. The decision is recorded on the running test as a
    ("gate", "torch>=X: yes|no") user property."""
    answer = torch_at_least(version)
    protocol.record(None, protocol.GATE, f"torch>={version}: {'yes' if answer else 'no'}")
    return answer
