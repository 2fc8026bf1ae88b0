"""Loads the torchconform plugin when pytest runs from a checkout.

After `pip install -e .` the pytest11 entry point loads the same module under the same name,
so this line is a no-op there; without an install it finds the harness in src/.
"""

import sys
from pathlib import Path

try:
    import torchconform  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).parent / "src"))

pytest_plugins = ["torchconform.plugin"]
