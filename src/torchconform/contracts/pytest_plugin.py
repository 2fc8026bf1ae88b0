"""pytest integration of the contract kit, loaded with the torchconform plugin.

A conftest.py that implements `pytest_torchconform_contracts(config)` gets the contract tests
(suite.py) collected beside it, once per (device, class, contract), with the suite's behavior
ids, device fixture, known-failure lists, isolation and reports:

    # tests/conftest.py
    from torchconform import contracts

    def pytest_torchconform_contracts(config):
        return [contracts.optimizer_spec("mylib.optim:Lion", kwargs={"lr": 1e-4}),
                contracts.module_spec("mylib.nets:TinyNet", input_shape=(2, 8))]

Test ids read `tests/conftest.py::test_contract[cpu-Lion-state_dict_round_trip]`.
"""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

from .. import devices, protocol
from ..behaviors import behavior
from . import hookspecs
from .config import Contract, Spec, SpecError

DEVIATION_PREFIX = "declared deviation"


def pytest_addhooks(pluginmanager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@dataclass(frozen=True)
class Case:
    """One class under one contract: the parameter of test_contract."""

    spec: Spec
    contract: Contract

    @property
    def id(self) -> str:
        return f"{self.spec.label}-{self.contract.short}"

    def factory(self):
        if self.spec.kind == "optimizer":
            from .optimizer import OptimizerFactory
            return OptimizerFactory(self.spec)
        from .module import ModuleFactory
        return ModuleFactory(self.spec)

    def run(self, device) -> None:
        self.contract.check(self.factory(), device)

    def reproduction(self, device: str, seed: int) -> Optional[str]:
        try:
            spec = json.dumps(self.spec.to_json())
        except SpecError:
            return None
        kind = self.spec.kind
        factory = "OptimizerFactory" if kind == "optimizer" else "ModuleFactory"
        fn = self.contract.check.__name__
        return "\n".join([
            f"# Reproduces {self.contract.id} for {self.spec.label} on {device} outside pytest.",
            "import torch",
            "",
            "from torchconform.contracts.config import Spec",
            f"from torchconform.contracts.{kind} import {factory}, {fn}",
            "",
            f"spec = Spec.from_json({spec})",
            f"torch.manual_seed({seed})",
            f"{fn}({factory}(spec), torch.device({device!r}))",
            "print('passed: the violation did not reproduce')",
            "",
        ])


class ContractsModule(pytest.Module):
    """suite.py, collected under the conftest.py whose hook listed the specs."""

    torchconform_specs: List[Spec] = []

    def _getobj(self):
        return importlib.import_module("torchconform.contracts.suite")


def _conftest_specs(config: pytest.Config, path: Path) -> Optional[List[Spec]]:
    plugin = config.pluginmanager.get_plugin(str(path))
    hook = getattr(plugin, "pytest_torchconform_contracts", None)
    if hook is None:
        return None
    specs = hook(config) if inspect.signature(hook).parameters else hook()
    specs = list(specs or [])
    bad = [s for s in specs if not isinstance(s, Spec)]
    if bad:
        raise pytest.UsageError(
            f"{path}: pytest_torchconform_contracts must return torchconform.contracts."
            f"optimizer_spec()/module_spec() specs, got {bad}")
    return specs


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name != "conftest.py":
        return None
    try:
        specs = _conftest_specs(parent.config, file_path)
    except SpecError as exc:
        raise pytest.UsageError(f"{file_path}: {exc}") from None
    if specs is None:
        return None
    node = ContractsModule.from_parent(parent, path=file_path)
    node.torchconform_specs = specs
    return node


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    node = metafunc.definition.parent
    if not isinstance(node, ContractsModule) or metafunc.function.__name__ != "test_contract":
        return
    metafunc.parametrize("device", devices.tested(metafunc.config), indirect=True)
    params = []
    for spec in node.torchconform_specs:
        for contract in spec.contracts():
            marks = [behavior(contract.id)]
            waived = spec.waived(contract.id)
            if waived is not None:
                marks.append(pytest.mark.xfail(reason=f"{DEVIATION_PREFIX}: {waived}",
                                               strict=True))
            case = Case(spec, contract)
            params.append(pytest.param(case, marks=marks, id=case.id))
    metafunc.parametrize("contract_case", params)


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        case = _case(item)
        if case is not None:
            protocol.record(item, protocol.SUBJECT, case.spec.label)
            waived = case.spec.waived(case.contract.id)
            if waived is not None:
                protocol.record(item, protocol.DEVIATION, waived)


def _case(item: pytest.Item) -> Optional[Case]:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("contract_case") if callspec is not None else None
    return case if isinstance(case, Case) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    case = _case(item)
    if case is None or not report.failed:
        return
    script = case.reproduction(str(item.callspec.params["device"]),
                               item.config.getoption("torch_seed"))
    if script is None:
        return
    protocol.record(report, protocol.REPRODUCE, script)
    if item.config.pluginmanager.hasplugin("html"):
        from pytest_html import extras

        report.extras = list(getattr(report, "extras", [])) + [
            extras.text(script, name="reproduce.py")]
