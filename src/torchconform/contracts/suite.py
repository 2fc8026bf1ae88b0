"""The contract tests: one test per (device, class, contract). The pytest plugin
(pytest_plugin.py) collects this module once for every conftest.py that lists classes with
`pytest_torchconform_contracts`, and parametrizes it with them."""

from __future__ import annotations

from typing import Any


def test_contract(device, contract_case: Any) -> None:
    contract_case.run(device)
