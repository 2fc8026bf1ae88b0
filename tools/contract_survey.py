"""Run the contract kit over third-party optimizers and models (docs/contracts/third-party.md).

    python tools/contract_survey.py [--libraries pytorch_optimizer,timm_models] [--quick]
        [--out reports/contracts]

For each library: list its classes, probe each once (construct on small parameters and step
once) to choose how the kit drives it (lr when the class has no default, backward with
create_graph for Hessian methods, a declared deviation where the library documents one),
write the specs to OUT/<library>/specs.json and run `python -m torchconform.contracts
--spec-file` on them (one pytest run per library, reports in OUT/<library>/). Classes the
probe cannot construct are listed as not checked, with the error. --quick runs the fixed CI
sample (QUICK) instead. Prints a markdown summary per library.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import torch
import torch.library


def _import_torchvision() -> None:
    """torchvision's PyPI wheels are CUDA builds: against a CPU-only torch their native
    library does not load and `import torchvision` fails registering fake kernels of its
    missing ops (torchvision::nms). Skip those registrations: the models surveyed here use
    no torchvision op."""
    original = torch.library.register_fake

    def tolerant(op, fn=None, **kw):
        def apply(f):
            try:
                return original(op, f, **kw)
            except RuntimeError:
                return f
        return apply if fn is None else apply(fn)

    torch.library.register_fake = tolerant
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass
    finally:
        torch.library.register_fake = original


_import_torchvision()

# -- factories the specs name (contract_survey:...) ------------------------------------------


def timm_optimizer(params, name, **kwargs):
    from timm.optim import create_optimizer_v2

    return create_optimizer_v2(params, opt=name, **kwargs)


def timm_model(name, **kwargs):
    import timm

    return timm.create_model(name, pretrained=False, **kwargs)


def torchvision_model(name, **kwargs):
    import torchvision

    return torchvision.models.get_model(name, weights=None, **kwargs)


# -- candidates --------------------------------------------------------------------------------

TIMM_MODELS = [("resnet18", (2, 3, 32, 32)), ("mobilenetv3_small_050", (2, 3, 32, 32)),
               ("vit_tiny_patch16_224", (2, 3, 224, 224)), ("efficientnet_b0", (2, 3, 32, 32)),
               ("convnext_atto", (2, 3, 32, 32)), ("deit_tiny_patch16_224", (2, 3, 224, 224))]
TV_MODELS = [("resnet18", (2, 3, 32, 32)), ("mobilenet_v3_small", (2, 3, 32, 32)),
             ("squeezenet1_1", (2, 3, 64, 64)), ("shufflenet_v2_x0_5", (2, 3, 32, 32))]


def optimizer_candidates(library: str) -> List[Tuple[str, str, list]]:
    """(label, target, args) of every optimizer the library offers."""
    if library == "pytorch_optimizer":
        import pytorch_optimizer as po

        out = []
        for name in po.get_supported_optimizers():
            try:
                cls = po.load_optimizer(name)
            except Exception:  # noqa: BLE001 - listed as not checked by the probe
                out.append((name, f"pytorch_optimizer:{name}", []))
                continue
            out.append((cls.__name__, f"{cls.__module__}:{cls.__qualname__}", []))
        return out
    if library == "torch_optimizer":
        import torch_optimizer as to

        return [(n, f"torch_optimizer:{n}", []) for n in dir(to)
                if isinstance(getattr(to, n), type)
                and issubclass(getattr(to, n), torch.optim.Optimizer)
                and getattr(to, n) is not torch.optim.Optimizer]
    if library == "lion_pytorch":
        return [("Lion", "lion_pytorch:Lion", [])]
    if library == "schedulefree":
        import schedulefree as sf

        return [(n, f"schedulefree:{n}", []) for n in dir(sf)
                if isinstance(getattr(sf, n), type)
                and issubclass(getattr(sf, n), torch.optim.Optimizer)]
    if library == "timm_optimizers":
        from timm.optim import list_optimizers

        return [(f"timm:{n}", "contract_survey:timm_optimizer", [n])
                for n in list_optimizers()]
    raise ValueError(library)


def probe_optimizer(label, target, args) -> Tuple[dict, str]:
    """A spec for the kit, or (None, why it cannot be checked)."""
    from torchconform.contracts.config import resolve

    spec = {"kind": "optimizer", "target": target, "args": args, "name": label}
    deviations = {}
    try:
        factory = resolve(target)
    except Exception as exc:  # noqa: BLE001
        return None, f"import: {type(exc).__name__}: {exc}"
    kwargs: Dict = {}

    def build():
        params = [torch.randn(4, 3, requires_grad=True), torch.randn(5, requires_grad=True)]
        return params, factory(params, *args, **kwargs)

    try:
        params, opt = build()
    except TypeError as exc:
        if "lr" not in str(exc):
            return None, f"construct: TypeError: {exc}"
        kwargs["lr"] = 1e-3
        try:
            params, opt = build()
        except Exception as exc2:  # noqa: BLE001
            return None, f"construct: {type(exc2).__name__}: {exc2}"
    except Exception as exc:  # noqa: BLE001
        return None, f"construct: {type(exc).__name__}: {str(exc)[:200]}"
    loss = sum((p ** 2).sum() for p in params)
    loss.backward()
    try:
        try:
            opt.step()
        except Exception as exc:  # noqa: BLE001
            switch = callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))
            if not (switch and "train" in str(exc).lower()):
                raise
            deviations["train_eval_switch"] = (
                f"documents optimizer.train()/eval(); step() before train() raises: "
                f"{str(exc)[:100]}")
            opt.train()
            opt.step()
    except Exception as exc:  # noqa: BLE001
        text = str(exc).lower()
        if "closure" in text:
            deviations["needs_closure"] = f"step() without a closure raises: {str(exc)[:120]}"
        elif "create_graph" in text or "hessian" in text or "grad_fn" in text:
            spec["create_graph"] = True
        else:
            return None, f"first step: {type(exc).__name__}: {str(exc)[:200]}"
    if kwargs:
        spec["kwargs"] = kwargs
    if deviations:
        spec["deviations"] = deviations
    return spec, ""


def module_specs(library: str) -> List[dict]:
    if library == "timm_models":
        return [{"kind": "module", "target": "contract_survey:timm_model", "args": [n],
                 "name": f"timm:{n}", "input_shape": list(s)} for n, s in TIMM_MODELS]
    return [{"kind": "module", "target": "contract_survey:torchvision_model", "args": [n],
             "name": f"torchvision:{n}", "input_shape": list(s or (2, 3, 224, 224))}
            for n, s in TV_MODELS]  # vit_b_16 (86M parameters) overran the time budget


LIBRARIES = ["pytorch_optimizer", "torch_optimizer", "lion_pytorch", "schedulefree",
             "timm_optimizers", "timm_models", "torchvision_models"]

#: The fixed CI sample (--quick): per library, classes and the contracts each is known to
#: break (docs/contracts/third-party.md, reproduced there). The run fails when the kit finds
#: other violations than these: a missed known violation, or a new one.
QUICK: Dict[str, Dict[str, set]] = {
    "lion_pytorch": {"Lion": {"copy"}},
    "torch_optimizer": {"Ranger": {"copy", "state_device_dtype", "step_closure"},
                        "RAdam": {"param_groups", "state_device_dtype"},
                        "Yogi": set()},
    "schedulefree": {"AdamWScheduleFreeClosure": {"lr_edit", "params_without_grad"}},
    "pytorch_optimizer": {"Conda": {"copy", "state_dict_weights_only"}},
    "timm_models": {"timm:mobilenetv3_small_050": set()},
}


def run(library: str, out: Path, quick_targets=None) -> dict:
    folder = out / library
    folder.mkdir(parents=True, exist_ok=True)
    specs, skipped = [], {}
    started = time.time()
    if library.endswith("_models"):
        specs = module_specs(library)
    else:
        for label, target, args in optimizer_candidates(library):
            if quick_targets is not None and label not in quick_targets:
                continue
            spec, why = probe_optimizer(label, target, args)
            if spec is None:
                skipped[label] = why
            else:
                specs.append(spec)
    if quick_targets is not None:
        specs = [s for s in specs if s.get("name") in quick_targets]
    (folder / "specs.json").write_text(json.dumps(specs, indent=1))
    command = [sys.executable, "-m", "torchconform.contracts", "--spec-file",
               str(folder / "specs.json"), "--report-dir", str(folder), "--", "-q",
               "--timeout", "60", "-p", "no:randomly"]
    env_path = str(Path(__file__).parent)
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [env_path, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    (folder / "pytest.log").write_text(proc.stdout + proc.stderr)
    elapsed = time.time() - started
    return {"library": library, "specs": specs, "skipped": skipped, "exit": proc.returncode,
            "seconds": round(elapsed, 1), "report": folder / "conformance.json"}


def summarize(result: dict) -> str:
    lines = [f"### {result['library']}  ({result['seconds']} s, exit {result['exit']})", ""]
    path = result["report"]
    if not path.exists():
        return "\n".join(lines + ["no report (see pytest.log)", ""])
    tests = json.loads(path.read_text())["tests"]
    by_class = defaultdict(dict)
    for t in tests:
        by_class[t["subject"]][t["behavior"].rsplit(".", 1)[1]] = (t["outcome"], t["message"])
    conforming = [c for c, r in by_class.items()
                  if all(o in ("passed", "declared deviation") for o, _ in r.values())]
    lines.append(f"checked {len(by_class)}, conforming {len(conforming)}, not checked "
                 f"{len(result['skipped'])}")
    per_contract = defaultdict(list)
    for c, r in sorted(by_class.items()):
        for contract, (o, _) in sorted(r.items()):
            if o not in ("passed",):
                per_contract[(contract, o)].append(c)
    for (contract, o), classes in sorted(per_contract.items()):
        lines.append(f"- {contract} [{o}] ({len(classes)}): {', '.join(classes)}")
    for name, why in sorted(result["skipped"].items()):
        lines.append(f"- not checked: {name}: {why}")
    return "\n".join(lines + [""])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--libraries", default=",".join(LIBRARIES))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="reports/contracts")
    ns = p.parse_args()
    out = Path(ns.out).resolve()
    failed = False
    libraries = ns.libraries.split(",")
    for library in libraries:
        quick = QUICK.get(library) if ns.quick else None
        if ns.quick and not quick:
            continue
        result = run(library, out, quick)
        print(summarize(result), flush=True)
        failed |= result["exit"] not in (0, 1)
        if ns.quick:
            found = violations(result["report"])
            for name, expected in quick.items():
                got = found.get(name, set())
                if got != expected:
                    print(f"QUICK MISMATCH {library} {name}: found {sorted(got)}, "
                          f"known {sorted(expected)}")
                    failed = True
    return 1 if failed else 0


def violations(report: Path) -> Dict[str, set]:
    """Contracts each class failed (declared deviations excluded)."""
    found: Dict[str, set] = defaultdict(set)
    if report.exists():
        for t in json.loads(report.read_text())["tests"]:
            if t["outcome"] in ("failed", "error"):
                found[t["subject"]].add(t["behavior"].rsplit(".", 1)[1])
    return found


if __name__ == "__main__":
    sys.exit(main())
