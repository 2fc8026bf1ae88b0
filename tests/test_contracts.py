"""Self-tests of the contract kit (torchconform.contracts): torch's own classes keep every
contract, each purpose-built broken class (tests/contracts_broken.py) fails exactly the
contract it breaks, declared deviations are reported as such, and both ways of use (a
conftest.py hook, python -m torchconform.contracts) run the checks through the plugin and
write the suite's reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from torchconform import protocol
from torchconform.behaviors import load_catalog
from torchconform.contracts import CONTRACTS, contracts_for, module_spec, optimizer_spec
from torchconform.contracts.module import ModuleFactory
from torchconform.contracts.optimizer import OptimizerFactory

from . import contracts_broken as B
from .conftest import ROOT

SGD_MOMENTUM = {"lr": 0.1, "momentum": 0.9}


def _failing(spec) -> list:
    """The contracts a spec's class fails, checked in this process on the CPU."""
    factory = (OptimizerFactory if spec.kind == "optimizer" else ModuleFactory)(spec)
    failed = []
    for contract in spec.contracts():
        torch.manual_seed(0)
        try:
            contract.check(factory, torch.device("cpu"))
        except Exception as exc:  # noqa: BLE001 - any exception is a violation
            failed.append((contract.id, f"{type(exc).__name__}: {exc}"[:300]))
    return failed


def conv_net():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))


def test_every_contract_is_catalogued_and_every_contract_behavior_has_a_check():
    catalog = {b for b in load_catalog() if b.startswith("contract.")}
    contracts_for("optimizer"), contracts_for("module")
    assert set(CONTRACTS) == catalog


@pytest.mark.parametrize("spec", [
    optimizer_spec(torch.optim.SGD, kwargs=SGD_MOMENTUM, reference="torch.optim:SGD"),
    optimizer_spec(torch.optim.Adam, kwargs={"lr": 0.01}),
    optimizer_spec(torch.optim.AdamW, kwargs={"lr": 0.01, "weight_decay": 0.1}),
    optimizer_spec(torch.optim.RMSprop, kwargs={"lr": 0.01, "momentum": 0.5}),
    optimizer_spec(torch.optim.Adagrad, kwargs={"lr": 0.1}),
    optimizer_spec(B.Momentum, reference="torch.optim:SGD", reference_kwargs=SGD_MOMENTUM),
    module_spec(torch.nn.Linear, args=[4, 3], input_shape=(2, 4)),
    module_spec(conv_net, input_shape=(2, 3, 8, 8)),
    module_spec(torch.nn.BatchNorm1d, args=[4], input_shape=(3, 4)),
    module_spec(B.Net, input_shape=(5, B.IN)),
], ids=lambda s: s.label)
def test_torch_classes_keep_every_contract(spec):
    assert _failing(spec) == []


BROKEN = B.BROKEN_OPTIMIZERS + B.BROKEN_MODULES


@pytest.mark.parametrize("cls", BROKEN, ids=[c.__name__ for c in BROKEN])
def test_broken_class_fails_exactly_its_contract(cls):
    if issubclass(cls, torch.optim.Optimizer):
        reference = "torch.optim:SGD" if cls.breaks.endswith("matches_reference") else None
        spec = optimizer_spec(cls, reference=reference, reference_kwargs=SGD_MOMENTUM)
    else:
        spec = module_spec(cls, input_shape=(5, B.IN))
    assert [bid for bid, _ in _failing(spec)] == [cls.breaks]


def test_one_broken_class_per_contract():
    assert sorted(c.breaks for c in BROKEN) == sorted(CONTRACTS)


# -- through pytest: the conftest.py hook ----------------------------------------------------

CONFTEST = """
import torch
from torchconform import contracts
from tests import contracts_broken as B

def pytest_torchconform_contracts(config):
    return [
        contracts.optimizer_spec(B.NeedsClosure, deviations={"needs_closure": ""}),
        contracts.optimizer_spec(B.TrainEvalSwitch, deviations={"train_eval_switch": ""}),
        contracts.optimizer_spec(B.Momentum, name="StaleDeclaration",
                                 deviations={"needs_closure": "not true"}),
        contracts.optimizer_spec(B.ZeroGradZeros),
        contracts.module_spec(torch.nn.Linear, args=[3, 2], input_shape=(4, 3)),
    ]
"""


def _outcomes(path):
    document = json.loads(path.read_text())
    return document, {t["nodeid"].split("[", 1)[1].rstrip("]"): t for t in document["tests"]}


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_conftest_hook_runs_every_contract_with_the_suites_reports(pytester, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".txt", xfails="conftest.py::test_contract[cpu-ZeroGradZeros-zero_grad_"
                                     "default]  keeps the pre-2.0 default on purpose")
    result = pytester.runpytest_inprocess(
        "--device=cpu", "-p", "no:randomly", "-p", "no:cacheprovider",
        "--report-dir", "out", "--xfails-file", "xfails.txt")
    document, tests = _outcomes(pytester.path / "out" / "conformance.json")
    assert (pytester.path / "out" / "conformance.html").exists()
    optimizer_contracts = len(contracts_for("optimizer")) - 1  # no reference named
    assert len(tests) == 4 * optimizer_contracts + len(contracts_for("module"))
    assert tests["cpu-NeedsClosure-step_plain"]["outcome"] == "declared deviation"
    assert "needs_closure" in tests["cpu-NeedsClosure-step_plain"]["reason"]
    assert tests["cpu-TrainEvalSwitch-step_plain"]["outcome"] == "declared deviation"
    # A declaration that does not hold fails the run, as a stale known failure does.
    assert tests["cpu-StaleDeclaration-step_plain"]["outcome"] == "failed"
    assert "XPASS(strict)" in tests["cpu-StaleDeclaration-step_plain"]["message"]
    assert tests["cpu-ZeroGradZeros-zero_grad_default"]["outcome"] == "xfailed"
    others = {k: t["outcome"] for k, t in tests.items() if k not in {
        "cpu-NeedsClosure-step_plain", "cpu-TrainEvalSwitch-step_plain",
        "cpu-StaleDeclaration-step_plain", "cpu-ZeroGradZeros-zero_grad_default"}}
    assert set(others.values()) == {"passed"}, others
    row = tests["cpu-Linear-state_dict_keys"]
    assert (row["behavior"], row["area"], row["device"], row["subject"]) == (
        "contract.module.state_dict_keys", "contract", "cpu", "Linear")
    assert document["summary"]["declared deviation"] == 2
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_conftest_without_the_hook_collects_no_contract_tests(pytester):
    pytester.makeconftest("X = 1\n")
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- the command line ------------------------------------------------------------------------

def _cli(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "torchconform.contracts", *args,
                           "--report-dir", str(tmp_path / "reports")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_cli_checks_an_optimizer_next_to_a_reference_and_writes_the_reports(tmp_path):
    run = _cli(tmp_path, "--optimizer", "tests.contracts_broken:Momentum", "--reference",
               "torch.optim.SGD", "--reference-kwargs", json.dumps(SGD_MOMENTUM))
    assert run.returncode == 0, run.stdout[-3000:]
    document, tests = _outcomes(tmp_path / "reports" / "conformance.json")
    assert (tmp_path / "reports" / "conformance.html").exists()
    assert {t["behavior"] for t in tests.values()} == {
        c.id for c in contracts_for("optimizer")}
    departure = tests["cpu-Momentum-matches_reference"]["departure"]  # JSON facts: objects
    assert departure["reference"] == "torch.optim.SGD" and departure["max_abs_difference"] < 1e-5


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_cli_exits_non_zero_on_a_violation_with_a_reproduction(tmp_path):
    run = _cli(tmp_path, "--module", "tests.contracts_broken:UnusedLayer", "--input-shape",
               f"5,{B.IN}")
    assert run.returncode == 1, run.stdout[-3000:]
    _, tests = _outcomes(tmp_path / "reports" / "conformance.json")
    failed = {k: t for k, t in tests.items() if t["outcome"] != "passed"}
    assert list(failed) == ["cpu-UnusedLayer-gradients"]
    script = failed["cpu-UnusedLayer-gradients"]["reproduce"]
    repro = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert "unused" in repro.stderr and "head.weight" in repro.stderr


def test_cli_refuses_a_target_it_cannot_import(tmp_path):
    run = _cli(tmp_path, "--optimizer", "no_such_package:Opt")
    assert run.returncode == 4 and "cannot import no_such_package" in run.stderr
    run = _cli(tmp_path, "--optimizer", "torch.optim:SGD", "--deviation", "no_such_contract")
    assert run.returncode == 4 and "unknown deviation" in run.stderr


def test_protocol_names_the_declared_deviation_outcome():
    assert protocol.DECLARED_DEVIATION_OUTCOME == "declared deviation"
