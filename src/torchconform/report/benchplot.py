"""benchmarks.svg: the medians of every saved benchmark run side by side (matplotlib, Agg).

Input: the torch<version>-<devices>.json files that `python -m torchconform.bench` leaves in
its output folder, one per torch version and device set. Each benchmark is a row; each run a
bar (median, log scale, whiskers from the first to the third quartile). With two runs or more
a second panel shows each run's median relative to the oldest torch's, which is the question
of an upgrade: what got slower, and by how much.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from packaging.version import InvalidVersion, Version

PLOT_NAME = "benchmarks.svg"
Run = Tuple[str, Dict[str, Dict[str, float]]]  # (label, {benchmark name: stats})


def _version_key(version: str):
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def load_runs(folder: Path) -> List[Run]:
    """(label, {name: stats}) of every torch*.json in `folder`, oldest torch first."""
    loaded = []
    for path in sorted(folder.glob("torch*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
            continue
        info: Dict[str, Any] = doc.get("machine_info") or {}
        torch_info = info.get("torch") if isinstance(info.get("torch"), dict) else {}
        version = str(torch_info.get("version", "?"))
        label = f"torch {version} · {'+'.join(info.get('devices') or []) or path.stem}"
        if info.get("node"):
            label += f" · {info['node']}"
        stats = {b.get("name", "?"): b.get("stats") or {} for b in doc["benchmarks"]}
        loaded.append((_version_key(version), path.name, label, stats))
    loaded.sort(key=lambda run: (run[0], run[1]))
    return [(label, stats) for _, _, label, stats in loaded]


def render(folder: Path, output: Optional[Path] = None, threshold: float = 0.15) -> Path:
    """Draw every run in `folder` into folder/benchmarks.svg (or `output`); returns its path.
    `threshold`: the regression threshold drawn on the relative panel (0.15: 15% slower)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    output = output or folder / PLOT_NAME
    runs = load_runs(folder)
    names: List[str] = []
    for _, stats in runs:
        names += [n for n in stats if n not in names and "median" in stats[n]]
    rows = max(len(names), 1)
    panels = 2 if len(runs) > 1 else 1
    fig, axes = plt.subplots(1, panels, sharey=True, squeeze=False,
                             figsize=(7 * panels + 4, 1.5 + 0.18 * rows * max(1, len(runs) * 0.7)))
    absolute = axes[0][0]
    height = 0.8 / max(len(runs), 1)
    for i, (label, stats) in enumerate(runs):
        ys, medians, lows, highs = [], [], [], []
        for row, name in enumerate(names):
            s = stats.get(name)
            if not s or "median" not in s:
                continue
            median = s["median"] * 1e6
            ys.append(row + (i - (len(runs) - 1) / 2) * height)
            medians.append(median)
            lows.append(max(median - s.get("q1", s["median"]) * 1e6, 0))
            highs.append(max(s.get("q3", s["median"]) * 1e6 - median, 0))
        absolute.barh(ys, medians, height=height, xerr=[lows, highs], label=label,
                       error_kw={"elinewidth": 0.6, "capsize": 1.5})
    absolute.set_xscale("log")
    absolute.set_xlabel("median time per call (µs, log scale; whiskers: quartiles)")
    absolute.set_yticks(range(len(names)))
    absolute.set_yticklabels(names, fontsize=7)
    absolute.invert_yaxis()
    absolute.grid(axis="x", which="both", alpha=0.3)
    if runs:
        absolute.legend(fontsize=8, loc="lower right")
    if not names:
        absolute.set_title("no benchmark results yet")
    if panels == 2:
        _relative_panel(axes[0][1], runs, names, height, threshold)
    fig.suptitle("torchconform benchmarks: lower is better", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format=output.suffix.lstrip(".") or "svg")
    plt.close(fig)
    return output


def _relative_panel(axis, runs: List[Run], names: List[str], height: float,
                    threshold: float) -> None:
    """Each later run's median over the first (oldest torch) run's, per benchmark."""
    base_label, base = runs[0]
    widest = threshold
    for i, (label, stats) in enumerate(runs[1:], start=1):
        ys, ratios = [], []
        for row, name in enumerate(names):
            if "median" in stats.get(name, {}) and base.get(name, {}).get("median"):
                ys.append(row + (i - (len(runs) - 1) / 2) * height)
                ratios.append(stats[name]["median"] / base[name]["median"])
        widest = max([widest] + [abs(r - 1) for r in ratios])
        axis.barh(ys, [r - 1 for r in ratios], left=1, height=height, color=f"C{i}",
                  label=label)
    axis.axvline(1, color="black", linewidth=0.8)
    axis.axvline(1 + threshold, color="red", linestyle="--", linewidth=0.8,
                 label=f"regression threshold (+{threshold:.0%})")
    axis.set_xlim(max(0.0, 1 - 1.1 * widest), 1 + 1.1 * widest)
    axis.set_xlabel(f"median relative to {base_label} (> 1: slower)")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
