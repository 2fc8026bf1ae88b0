"""python -m torchconform.report FILES_OR_DIRS... [-o reports/matrix.html]

Merges conformance.json files (and pytest-benchmark JSON) into one static matrix page.
Exit 0 on success, 2 on an unusable input (the message names the file; nothing is written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from .matrix import ReportError, merge


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m torchconform.report",
        description="Merge torchconform results (tox envs, devices, machines) into one matrix.")
    parser.add_argument("inputs", nargs="+", metavar="PATH",
                        help="conformance.json files, pytest-benchmark JSON files, or folders "
                             "to search for them (e.g. reports/)")
    parser.add_argument("-o", "--output", default="reports/matrix.html", type=Path,
                        help="the page to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        columns, benchmarks = merge(args.inputs, args.output)
    except ReportError as exc:
        print(f"torchconform.report: error: {exc}", file=sys.stderr)
        return 2
    print(f"torchconform.report: wrote {args.output} ({columns} column(s), "
          f"{benchmarks} benchmark file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
