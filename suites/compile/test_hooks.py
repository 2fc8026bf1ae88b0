"""Module hooks under torch.compile (torch.compiler_nn_module): hooks present when the compiled
module is first called are traced into its graph; by default Dynamo does not guard on hooks
(`skip_nnmodule_hook_guards`), so a hook added to a submodule afterwards is silently not run,
while removing a hook that was traced takes effect. (Run with --mode compile.)"""

import torch
from torch import nn

from torchconform import assert_close, behavior, to_numpy


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x) * 2


def _expected(net, x):
    return 2 * (to_numpy(x) @ to_numpy(net.lin.weight).T + to_numpy(net.lin.bias))


@behavior("compile.hooks.added_after_first_call_ignored")
def test_a_submodule_hook_added_after_the_first_compiled_call_is_not_run(device, compiler):
    net = Net().to(device)
    run = compiler.module(net)
    x = torch.ones(3, 2, device=device)
    run(x)
    calls = []

    def zero_output(module, args, output):
        calls.append(module)
        return output * 0

    net.lin.register_forward_hook(zero_output)
    out = run(x)
    assert calls == [] and torch.equal(net(x), torch.zeros_like(out)), "premise: eager runs it"
    calls.clear()
    out = run(x)
    assert calls == [], "the compiled module ran a hook added after its first call"
    assert_close(out, _expected(net, x), what="compiled output (hook not applied)")


@behavior("compile.hooks.removal_takes_effect")
def test_removing_a_traced_hook_after_the_first_compiled_call_takes_effect(device, compiler):
    net = Net().to(device)
    calls = []

    def zero_output(module, args, output):
        calls.append(module)
        return output * 0

    handle = net.lin.register_forward_hook(zero_output)
    run = compiler.module(net)
    x = torch.ones(3, 2, device=device)
    assert torch.equal(run(x), torch.zeros(3, 2, device=device))
    handle.remove()
    assert_close(run(x), _expected(net, x), what="compiled output after removing the hook")
