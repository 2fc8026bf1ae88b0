"""`python -m torchconform.bench`: time every benchmark on every selected device, save the
result under the torch version and devices, compare it with an earlier run, plot all runs.

    python -m torchconform.bench [--device cpu,cuda] [--large] [--compare [RUN]]
                                 [--fail-threshold 15%] [--out DIR] [-- PYTEST ARGS]

It runs `pytest suites/benchmarks --benchmark-enable` in one process (never under xdist: the
timing plugin refuses it) and writes into DIR (default reports/benchmarks):

    torch<version>-<devices>.json        this run, pytest-benchmark JSON (the latest per name)
    .storage/<machine>/NNNN_<name>.json  every run, pytest-benchmark's storage, for --compare
    benchmarks.svg                       medians of every torch*.json in DIR, side by side

--compare RUN compares with the newest saved run named RUN (e.g. torch2.12.0-cpu; a path to a
saved JSON works too; no RUN: the newest saved run) and fails when a benchmark's median is
slower by more than --fail-threshold. The exit status is pytest's: non-zero when a benchmark's
own check failed, when nothing ran (pytest's 5), or on a regression past the threshold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from packaging.version import Version

from . import devices

DEFAULT_OUT = Path("reports") / "benchmarks"
DEFAULT_THRESHOLD = "15%"
# Each benchmark is repeated for about MAX_TIME seconds (pytest-benchmark's default is 1 s):
# with ~70 cases a CPU run stays under 3 minutes on 2 cores. Each round lasts at least
# MIN_TIME (default 5 us): a round of many calls varies far less than a single call, which is
# what keeps IQR/median under 5%.
MAX_TIME = "0.5"
MIN_TIME = "0.002"


def run_name(torch_version: str, tested: Sequence[str]) -> str:
    """torch2.13.0-cpu, torch2.14.0.dev20260101-cpu+cuda1: the saved run's name."""
    return f"torch{Version(torch_version).public}-" + "+".join(
        d.replace(":", "") for d in tested)


def find_suite(explicit: Optional[str]) -> Path:
    """suites/benchmarks of the checkout: under the current folder, else beside the package
    (an editable install)."""
    candidates = [Path(explicit)] if explicit else [
        Path.cwd() / "suites" / "benchmarks",
        Path(__file__).resolve().parents[2] / "suites" / "benchmarks"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise SystemExit(f"bench: no benchmark suite at {', '.join(map(str, candidates))}; run "
                     f"from the torchconform checkout or pass --suite")


def saved_run(storage: Path, wanted) -> Path:
    """The saved JSON --compare means: a path, the newest run named `wanted`, or (True) the
    newest run of all."""
    if wanted is not True and Path(wanted).is_file():
        return Path(wanted).resolve()
    pattern = "*.json" if wanted is True else f"[0-9][0-9][0-9][0-9]_{wanted}.json"
    found = sorted(storage.glob(f"*/{pattern}"), key=lambda p: (p.stat().st_mtime, p.name))
    if not found:
        names = sorted({p.stem.split("_", 1)[-1] for p in storage.glob("*/*.json")})
        raise SystemExit(f"bench: --compare: no saved run {'' if wanted is True else wanted + ' '}"
                         f"in {storage} (saved: {', '.join(names) or 'none'})")
    return found[-1]


def dispersion(result: Path, floor: float = 10e-6, limit: float = 0.05) -> str:
    """How steady the run was: benchmarks above `floor` seconds whose IQR/median is within
    `limit` (the target), and the worst one."""
    stats = [(b["name"], b["stats"]) for b in json.loads(result.read_text())["benchmarks"]]
    timed = [(name, s["iqr"] / s["median"]) for name, s in stats if s["median"] > floor]
    steady = sum(ratio <= limit for _, ratio in timed)
    line = (f"{len(stats)} benchmarks; {steady} of the {len(timed)} above {floor * 1e6:g} us have "
            f"IQR/median <= {limit:.0%}")
    if timed:
        name, ratio = max(timed, key=lambda t: t[1])
        line += f" (worst: {name}, {ratio:.1%})"
    return line


def pytest_command(suite: Path, out: Path, name: str, device_option: str, large: bool,
                   compare: Optional[Path], threshold: str, extra: Sequence[str]) -> List[str]:
    command = [
        sys.executable, "-m", "pytest", str(suite), "--benchmark-enable",
        f"--device={device_option}", "--no-report", "-p", "no:randomly",
        f"--benchmark-storage=file://{out / '.storage'}", f"--benchmark-save={name}",
        f"--benchmark-json={out / (name + '.json')}", f"--benchmark-max-time={MAX_TIME}",
        f"--benchmark-min-time={MIN_TIME}",
        "--benchmark-disable-gc", "--benchmark-sort=fullname",
        "--benchmark-columns=min,median,iqr,mean,stddev,rounds,iterations",
    ]
    if large:
        command.append("--bench-large")
    if compare is not None:
        command += [f"--benchmark-compare={compare}",
                    f"--benchmark-compare-fail=median:{threshold}"]
    return command + list(extra)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m torchconform.bench",
        description="Time the benchmarks of suites/benchmarks, save and plot the results.",
        epilog="Arguments after -- go to pytest (e.g. -- -k sgd).")
    parser.add_argument("--device", default=None, metavar="LIST",
                        help="devices as for pytest --device (default: every available type)")
    parser.add_argument("--large", action="store_true",
                        help="add the 100M-element optimizer cases (pytest --bench-large)")
    parser.add_argument("--compare", nargs="?", const=True, default=None, metavar="RUN",
                        help="compare with the newest saved run named RUN (e.g. "
                             "torch2.12.0-cpu), or with the newest saved run")
    parser.add_argument("--fail-threshold", default=DEFAULT_THRESHOLD, metavar="PCT",
                        help=f"with --compare: fail when a median is slower by more than this "
                             f"(default {DEFAULT_THRESHOLD})")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--suite", default=None, help="the benchmark suite folder")
    args, extra = parser.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    args.pytest_args = extra
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        import matplotlib  # noqa: F401  (checked now, not after minutes of timing)
    except ImportError:
        print("bench: the plot needs matplotlib: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    try:
        tested = devices.resolve_devices(args.device)
    except devices.DeviceError as exc:
        print(f"bench: --device: {exc}", file=sys.stderr)
        return 2
    suite = find_suite(args.suite)
    out = Path(args.out).resolve()
    (out / ".storage").mkdir(parents=True, exist_ok=True)
    name = run_name(str(torch.__version__), tested)
    compare = saved_run(out / ".storage", args.compare) if args.compare is not None else None
    result = out / f"{name}.json"
    if result.exists():
        result.unlink()  # a run that fails early must not leave the previous one looking new
    command = pytest_command(suite, out, name, ",".join(tested), args.large, compare,
                             args.fail_threshold, args.pytest_args)
    print("bench:", " ".join(command), flush=True)
    # From the output folder: pytest-benchmark names the storage relative to the working
    # directory when it warns that machine_info differs (always, across torch versions) and
    # fails if the storage is elsewhere. pytest finds the suite's configuration from its path.
    status = subprocess.run(command, cwd=str(out)).returncode

    from .report.benchplot import render

    if result.exists():
        plot = render(out, threshold=float(args.fail_threshold.rstrip("%")) / 100)
        print(f"bench: results {result}\nbench: plot    {plot}\nbench: {dispersion(result)}")
        if compare is not None:
            print(f"bench: compared with {compare} (fails above median +{args.fail_threshold})")
    else:
        print(f"bench: pytest wrote no results ({result})", file=sys.stderr)
    if status != 0:
        print(f"bench: pytest exited with status {status}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
