"""The conftest of `python -m torchconform.contracts`: the command line's specs (JSON in
TORCHCONFORM_CONTRACT_SPECS) go through the same hook a library's conftest.py implements."""

from torchconform.contracts.config import specs_from_env


def pytest_torchconform_contracts(config):
    return specs_from_env()
