"""python -m torchconform.contracts: run the contract checks on one class from the shell.

It builds a spec from the options, hands it to pytest (the bundled cli/conftest.py reads it
from an environment variable) and runs the same plugin a library's conftest.py uses, so the
reports (conformance.json and conformance.html in --report-dir), ids, known-failure lists and
exit codes are the suite's: 0 when every contract holds (or is a declared deviation), 1 on a
violation, 4 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from .config import ENV, Spec, SpecError, module_spec, optimizer_spec, parse_deviation, resolve

CLI_DIR = Path(__file__).parent / "cli"


def _json(text: str, what: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SpecError(f"{what}: not JSON: {exc}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m torchconform.contracts",
        description="Check an nn.Module or torch.optim.Optimizer class against PyTorch's "
                    "contracts. Arguments after -- go to pytest.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--optimizer", metavar="TARGET",
                      help="optimizer class or factory, pkg.mod:Name; built as "
                           "Name(params, *args, **kwargs)")
    what.add_argument("--module", metavar="TARGET",
                      help="module class or factory, pkg.mod:Name; built as "
                           "Name(*args, **kwargs)")
    what.add_argument("--spec-file", metavar="FILE",
                      help="a JSON list of specs (fields of torchconform.contracts.Spec)")
    p.add_argument("--args", default="[]", help="JSON list of positional arguments")
    p.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    p.add_argument("--input-shape", help="modules: shape of the standard-normal input, "
                                         "e.g. 2,3,64,64")
    p.add_argument("--deviation", action="append", default=[], metavar="NAME[=REASON]",
                   help="a declared deviation: needs_closure, train_eval_switch, or a "
                        "contract name with its reason. Repeatable.")
    p.add_argument("--reference", metavar="TARGET",
                   help="optimizers: a torch optimizer implementing the same rule, e.g. "
                        "torch.optim.AdamW; both are stepped on the same gradients")
    p.add_argument("--reference-kwargs", help="JSON keyword arguments of the reference "
                                              "(default: --kwargs)")
    p.add_argument("--create-graph", action="store_true",
                   help="optimizers: backward(create_graph=True) (Hessian-based methods)")
    p.add_argument("--name", help="label of the class in test ids")
    p.add_argument("--device", default="cpu", help="devices, comma-separated (default cpu)")
    p.add_argument("--report-dir", default="reports",
                   help="where conformance.json and conformance.html go (default ./reports)")
    return p


def specs(ns: argparse.Namespace) -> List[Spec]:
    if ns.spec_file:
        data = _json(Path(ns.spec_file).read_text(encoding="utf-8"), ns.spec_file)
        return [Spec.from_json(d) for d in data]
    deviations = dict(parse_deviation(d) for d in ns.deviation)
    args, kwargs = _json(ns.args, "--args"), _json(ns.kwargs, "--kwargs")
    if ns.optimizer:
        ref_kwargs = _json(ns.reference_kwargs, "--reference-kwargs") \
            if ns.reference_kwargs else None
        return [optimizer_spec(ns.optimizer, args=args, kwargs=kwargs, name=ns.name,
                               deviations=deviations, reference=ns.reference,
                               reference_kwargs=ref_kwargs, create_graph=ns.create_graph)]
    shape = [int(n) for n in ns.input_shape.split(",")] if ns.input_shape else None
    return [module_spec(ns.module, args=args, kwargs=kwargs, name=ns.name,
                        deviations=deviations, input_shape=shape)]


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    ns = parser().parse_args(argv)
    try:
        found = specs(ns)
        for spec in found:  # fail fast, before pytest, on a target that cannot be imported
            resolve(spec.target)
            if spec.reference:
                resolve(spec.reference)
        payload = json.dumps([s.to_json() for s in found])
    except (SpecError, OSError, TypeError) as exc:
        print(f"torchconform.contracts: {exc}", file=sys.stderr)
        return 4
    import pytest

    os.environ[ENV] = payload
    return int(pytest.main([
        str(CLI_DIR), "-c", str(CLI_DIR / "pytest.ini"), "--rootdir", str(CLI_DIR),
        "--device", ns.device, "--report-dir", ns.report_dir, *extra]))


if __name__ == "__main__":
    sys.exit(main())
