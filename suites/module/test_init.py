"""`super().__init__()` must run before a Module registers anything (seed 000).

Module.__init__ creates the registries (parameters, buffers, submodules, hooks); assigning a
Parameter or a Module, or calling register_*, before it exists raises AttributeError.
"""

import pytest
import torch
from torch import nn

from torchconform import behavior


def _assign_before_init(device, register):
    class Early(nn.Module):
        def __init__(self):
            register(self)
            super().__init__()

    return Early


@behavior("module.init.parameter_before_init_raises")
def test_assigning_parameter_before_init_raises(device):
    def register(self):
        self.p = nn.Parameter(torch.zeros(2, device=device))

    with pytest.raises(AttributeError, match=r"cannot assign parameters? before Module\.__init__"):
        _assign_before_init(device, register)()


@behavior("module.init.register_parameter_before_init_raises")
def test_register_parameter_before_init_raises(device):
    def register(self):
        self.register_parameter("p", nn.Parameter(torch.zeros(2, device=device)))

    with pytest.raises(AttributeError, match=r"cannot assign parameters? before Module\.__init__"):
        _assign_before_init(device, register)()


@behavior("module.init.submodule_before_init_raises")
def test_assigning_submodule_before_init_raises(device):
    def register(self):
        self.sub = nn.Linear(2, 2).to(device)

    with pytest.raises(AttributeError, match=r"cannot assign module before Module\.__init__"):
        _assign_before_init(device, register)()


@behavior("module.init.register_buffer_before_init_raises")
def test_register_buffer_before_init_raises(device):
    def register(self):
        self.register_buffer("b", torch.zeros(2, device=device))

    with pytest.raises(AttributeError, match=r"cannot assign buffer before Module\.__init__"):
        _assign_before_init(device, register)()


@behavior("module.init.plain_attributes_before_init_allowed")
def test_plain_attributes_before_init_are_kept_and_unregistered(device):
    class Early(nn.Module):
        def __init__(self):
            self.count = 3
            self.table = torch.arange(4.0, device=device)
            super().__init__()

    m = Early()
    assert m.count == 3
    assert torch.equal(m.table.cpu(), torch.arange(4.0))
    assert list(m.parameters()) == [] and list(m.buffers()) == []
    assert "table" not in m.state_dict()


@behavior("module.init.skipped_super_not_callable")
def test_module_without_super_init_cannot_be_called(device):
    class NoSuper(nn.Module):
        def __init__(self):  # forgets super().__init__()
            self.scale = 2.0

        def forward(self, x):
            return x * self.scale

    m = NoSuper()
    with pytest.raises(AttributeError):
        m(torch.ones(2, device=device))


@behavior("module.init.fresh_state")
def test_fresh_module_is_training_with_empty_registries(device):
    m = nn.Module().to(device)
    assert m.training is True
    assert list(m.parameters()) == []
    assert list(m.buffers()) == []
    assert list(m.children()) == []
    assert list(m.named_modules()) == [("", m)]
    assert len(m.state_dict()) == 0
