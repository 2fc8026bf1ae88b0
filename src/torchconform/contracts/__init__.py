"""The contract kit: check your own nn.Module and Optimizer classes against PyTorch's contracts.

    python -m torchconform.contracts --optimizer pytorch_optimizer:Lion --kwargs '{"lr": 1e-4}'
    python -m torchconform.contracts --module timm:create_model --args '["resnet18"]' \\
        --input-shape 2,3,64,64

or, in a library's own tests, a conftest.py hook (see pytest_plugin.py and the README):

    def pytest_torchconform_contracts(config):
        return [torchconform.contracts.optimizer_spec(Lion, kwargs={"lr": 1e-4})]

The checks are in optimizer.py and module.py (one function per catalogued contract,
catalog/contract.toml); config.py holds the specs and declared deviations.
"""

from .config import (
                     CONTRACTS,
                     NAMED_DEVIATIONS,
                     Spec,
                     SpecError,
                     contracts_for,
                     module_spec,
                     optimizer_spec,
)

__all__ = ["optimizer_spec", "module_spec", "Spec", "SpecError", "CONTRACTS", "NAMED_DEVIATIONS",
           "contracts_for"]
