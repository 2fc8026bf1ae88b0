"""torch.compile(module) returns an OptimizedModule that wraps the module as `_orig_mod`: its
state_dict keys carry the `_orig_mod.` prefix, while Module.compile() compiles in place and keeps
the module's own keys. (Run with --mode compile.)"""

import pytest
import torch
from torch import nn

from torchconform import behavior


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3)
        self.register_buffer("scale", torch.full((3,), 2.0))

    def forward(self, x):
        return self.lin(x) * self.scale


@behavior("compile.state_dict.orig_mod_prefix")
def test_compiled_module_state_dict_keys_carry_the_orig_mod_prefix(device, compiler):
    net = Net().to(device)
    compiled = compiler.module(net)
    eager_keys = list(net.state_dict())
    assert list(compiled.state_dict()) == [f"_orig_mod.{k}" for k in eager_keys]
    # Same objects behind both names: the wrapper shares the module's parameters.
    assert all(a is b for a, b in zip(compiled.parameters(), net.parameters()))
    with pytest.raises(RuntimeError, match="Missing key"):
        compiled.load_state_dict(net.state_dict())
    compiled._orig_mod.load_state_dict(net.state_dict())  # the documented way round
    compiled.load_state_dict(compiled.state_dict())


@behavior("compile.state_dict.module_compile_in_place")
def test_module_compile_keeps_the_class_and_state_dict_keys(device, compiler):
    from torch._dynamo.utils import counters

    net = Net().to(device)
    keys = list(net.state_dict())
    assert net.compile(backend=compiler.backend) is None  # in place
    assert type(net) is Net and list(net.state_dict()) == keys
    x = torch.ones(4, 2, device=device)
    out = net(x)
    assert counters["stats"]["unique_graphs"] >= 1, "calling the module compiled nothing"
    assert torch.allclose(out, net.forward(x))
