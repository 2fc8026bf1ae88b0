"""The hook a library's conftest.py implements to have its classes checked."""

from typing import List

import pytest


@pytest.hookspec
def pytest_torchconform_contracts(config: pytest.Config) -> List:
    """Return the classes (specs) whose contracts the tests under this conftest.py check:
    `torchconform.contracts.optimizer_spec(...)` / `module_spec(...)`. torchconform collects
    one test per (device, class, contract) for each conftest.py that implements this hook."""
