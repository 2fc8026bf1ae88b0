"""What a user hands the contract kit, and the registry of contract checks.

A `Spec` names one class (or factory) under test: `optimizer_spec("pytorch_optimizer:Lion",
kwargs={"lr": 1e-4})` or `module_spec("timm:create_model", args=["resnet18"], input_shape=(2, 3,
64, 64))`. Targets are objects or import paths `pkg.mod:Name` (`pkg.mod.Name` works too).
A spec travels as JSON (the CLI hands it to pytest through an environment variable), so
everything in it except a target given as an object is plain data.

Declared deviations waive contracts the class documents it breaks. Each is reported as a
"declared deviation" (a strict xfail: a contract that passes anyway fails the run, so a stale
declaration shows), never as a pass. A deviation is either a contract id (or its last part)
with a reason, or one of the named deviations below, which also tell the kit how to drive the
class so that the remaining contracts can be checked.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

ENV = "TORCHCONFORM_CONTRACT_SPECS"

#: Named deviations: (contracts waived, what the kit does instead, default reason).
NAMED_DEVIATIONS: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "needs_closure": (
        ("contract.optimizer.step_plain",),
        "step() needs a closure: every other contract steps with step(closure)"),
    "train_eval_switch": (
        ("contract.optimizer.step_plain",),
        "the optimizer must be switched with optimizer.train() before stepping (and "
        "optimizer.eval() for evaluation): the kit calls optimizer.train() after building it"),
}


# -- the registry of contract checks ---------------------------------------------------------

@dataclass(frozen=True)
class Contract:
    id: str            # catalog id, "contract.optimizer.state_dict_round_trip"
    kind: str          # "optimizer" | "module"
    check: Callable    # check(factory, device)
    optional: bool = False  # only run when the spec asks for it (a reference is named)

    @property
    def short(self) -> str:
        return self.id.rsplit(".", 1)[1]


CONTRACTS: Dict[str, Contract] = {}


def contract(bid: str, optional: bool = False) -> Callable:
    """Register the decorated `check(factory, device)` as the check of catalog id `bid`."""
    kind = bid.split(".")[1]

    def register(fn: Callable) -> Callable:
        assert bid not in CONTRACTS, f"contract {bid} registered twice"
        CONTRACTS[bid] = Contract(bid, kind, fn, optional)
        fn.contract_id = bid
        return fn

    return register


def contracts_for(kind: str) -> List[Contract]:
    importlib.import_module(f"{__package__}.{kind}")  # importing registers the checks

    return [c for c in CONTRACTS.values() if c.kind == kind]


# -- specs -----------------------------------------------------------------------------------

class SpecError(ValueError):
    """A spec the kit cannot use; the message says which part and why."""


def resolve(target: Union[str, Callable]) -> Callable:
    """An object from `pkg.mod:Name` (or `pkg.mod.Name`, `pkg.mod:Outer.Inner`), or the object
    itself."""
    if not isinstance(target, str):
        return target
    if ":" in target:
        module_name, _, attr = target.partition(":")
    else:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise SpecError(f"{target!r}: expected 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"{target!r}: cannot import {module_name}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(f"{target!r}: {module_name} has no attribute {attr!r}") from None
    return obj


def _target_name(target: Union[str, Callable]) -> str:
    if isinstance(target, str):
        return target.replace(":", ".").rsplit(".", 1)[-1]
    return getattr(target, "__name__", type(target).__name__)


@dataclass
class Spec:
    kind: str                                   # "optimizer" | "module"
    target: Union[str, Callable]
    args: Sequence[Any] = ()
    kwargs: Dict[str, Any] = field(default_factory=dict)
    name: Optional[str] = None                  # label in test ids; default from the target
    deviations: Dict[str, str] = field(default_factory=dict)  # name or contract id -> reason
    # optimizers
    reference: Union[str, Callable, None] = None
    reference_kwargs: Optional[Dict[str, Any]] = None
    create_graph: bool = False                  # backward(create_graph=True) (Hessian methods)
    # modules
    input_shape: Optional[Sequence[int]] = None
    inputs: Optional[Callable] = None           # inputs(device, dtype) -> tensor or tuple

    def __post_init__(self) -> None:
        if self.kind not in ("optimizer", "module"):
            raise SpecError(f"kind must be 'optimizer' or 'module', not {self.kind!r}")
        self.args = list(self.args)
        self.kwargs = dict(self.kwargs)
        if self.kind == "module" and self.input_shape is None and self.inputs is None:
            raise SpecError(f"module {self.label}: give input_shape or inputs")
        if self.input_shape is not None:
            self.input_shape = tuple(int(n) for n in self.input_shape)
        known = {c.id for c in contracts_for(self.kind)}
        waived: Dict[str, str] = {}
        for key, reason in dict(self.deviations).items():
            if key in NAMED_DEVIATIONS:
                ids, default = NAMED_DEVIATIONS[key]
                for bid in ids:
                    waived[bid] = f"{key}: {reason or default}"
                continue
            bid = key if key.startswith("contract.") else f"contract.{self.kind}.{key}"
            if bid not in known:
                raise SpecError(
                    f"{self.label}: unknown deviation {key!r}; known: "
                    f"{', '.join(sorted(NAMED_DEVIATIONS))} or a contract id "
                    f"({', '.join(sorted(c.rsplit('.', 1)[1] for c in known))})")
            if not reason:
                raise SpecError(f"{self.label}: deviation {key!r} needs a reason")
            waived[bid] = reason
        self._waived = waived

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        base = _target_name(self.target)
        if self.args and isinstance(self.args[0], str):  # factories by name: create_model
            base = f"{base}({self.args[0]})"
        return base

    def waived(self, contract_id: str) -> Optional[str]:
        """The reason a declared deviation waives this contract, or None."""
        return self._waived.get(contract_id)

    def has(self, deviation: str) -> bool:
        return deviation in self.deviations

    def build(self, *leading: Any) -> Any:
        """A new instance: target(*leading, *args, **kwargs)."""
        return resolve(self.target)(*leading, *self.args, **self.kwargs)

    def contracts(self) -> List[Contract]:
        return [c for c in contracts_for(self.kind)
                if not c.optional or (c.short == "matches_reference" and self.reference)]

    # -- JSON (the CLI passes specs to pytest through ENV) --------------------------------
    def to_json(self) -> Dict[str, Any]:
        for what in ("target", "reference"):
            value = getattr(self, what)
            if value is not None and not isinstance(value, str):
                raise SpecError(f"{self.label}: a {what} given as an object cannot be passed "
                                f"as JSON; use 'package.module:Name'")
        if self.inputs is not None:
            raise SpecError(f"{self.label}: inputs= is a Python-only option")
        return {k: v for k, v in {
            "kind": self.kind, "target": self.target, "args": list(self.args),
            "kwargs": self.kwargs, "name": self.name, "deviations": self.deviations,
            "reference": self.reference, "reference_kwargs": self.reference_kwargs,
            "create_graph": self.create_graph,
            "input_shape": list(self.input_shape) if self.input_shape else None,
        }.items() if v not in (None, [], {}, False)}

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> Spec:
        unknown = set(data) - {"kind", "target", "args", "kwargs", "name", "deviations",
                               "reference", "reference_kwargs", "create_graph", "input_shape"}
        if unknown:
            raise SpecError(f"unknown spec fields {sorted(unknown)}")
        return cls(**data)


def optimizer_spec(target: Union[str, Callable], *, args: Sequence[Any] = (),
              kwargs: Optional[Dict[str, Any]] = None, name: Optional[str] = None,
              deviations: Optional[Dict[str, str]] = None,
              reference: Union[str, Callable, None] = None,
              reference_kwargs: Optional[Dict[str, Any]] = None,
              create_graph: bool = False) -> Spec:
    """An optimizer class (or factory) under test, built as target(params, *args, **kwargs)."""
    return Spec("optimizer", target, args, kwargs or {}, name, deviations or {},
                reference=reference, reference_kwargs=reference_kwargs,
                create_graph=create_graph)


def module_spec(target: Union[str, Callable], *, args: Sequence[Any] = (),
           kwargs: Optional[Dict[str, Any]] = None, name: Optional[str] = None,
           deviations: Optional[Dict[str, str]] = None,
           input_shape: Optional[Sequence[int]] = None,
           inputs: Optional[Callable] = None) -> Spec:
    """A module class (or factory) under test, built as target(*args, **kwargs) and called
    with a standard-normal tensor of input_shape (or inputs(device, dtype))."""
    return Spec("module", target, args, kwargs or {}, name, deviations or {},
                input_shape=input_shape, inputs=inputs)


def specs_to_env(specs: Sequence[Spec]) -> str:
    return json.dumps([s.to_json() for s in specs])


def specs_from_env() -> List[Spec]:
    text = os.environ.get(ENV)
    if not text:
        raise SpecError(f"{ENV} is not set")
    return [Spec.from_json(d) for d in json.loads(text)]


def parse_deviation(text: str) -> Tuple[str, str]:
    """'needs_closure' or 'state_dict_weights_only=stores a lambda' -> (name, reason)."""
    name, _, reason = text.partition("=")
    return name.strip(), reason.strip()
