"""Facts about a run's environment: what torch, which build, which GPUs, which machine.

Computed once per run and shown in three places: the JSON report's `run` object, the HTML
report's environment table, and the benchmark machine info.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from .. import __version__
from ..devices import build_kind


def _run(args: List[str], cwd: Optional[Path] = None) -> Optional[str]:
    """Output of a small command, or None if it is missing, fails or hangs."""
    if shutil.which(args[0]) is None:
        return None
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=5, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def torch_build() -> Dict[str, Any]:
    build = build_kind()
    cudnn = None
    if build != "cpu":
        try:
            cudnn = torch.backends.cudnn.version()
        except (RuntimeError, AttributeError):
            cudnn = None
    return {
        "version": str(torch.__version__),
        "git_version": getattr(torch.version, "git_version", None),
        "build": build,
        "cuda": getattr(torch.version, "cuda", None),
        "hip": getattr(torch.version, "hip", None),
        "cudnn": cudnn,
    }


def gpus() -> List[Dict[str, Any]]:
    """Visible CUDA/ROCm GPUs with name, memory and driver (driver from nvidia-smi if any)."""
    if not torch.cuda.is_available():
        return []
    driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    drivers = driver.splitlines() if driver else []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append({
            "index": index,
            "name": props.name,
            "memory_gb": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "driver": drivers[index] if index < len(drivers) else None,
        })
    return found


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def suite_commit(root: Path) -> Optional[str]:
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    if commit and _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root):
        commit += "+dirty"
    return commit


def run_facts(root: Path, devices: List[str]) -> Dict[str, Any]:
    """Everything a reader needs to tell two runs apart and reproduce one."""
    import hypothesis

    return {
        "torchconform": __version__,
        "suite_commit": suite_commit(root),
        "torch": torch_build(),
        "devices": list(devices),
        "gpus": gpus(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "hypothesis": hypothesis.__version__,
        "command": [Path(sys.argv[0]).name] + sys.argv[1:],
    }
