"""Optimizer step hooks (torch >= 2.0): pre-hooks before the update, post-hooks after it."""

import torch

from torchconform import behavior


@behavior("optim.hooks.step_pre_and_post")
def test_step_hooks_run_around_the_update_in_registration_order(device):
    p = torch.tensor([1.0, -2.0], device=device, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=0.5)
    events = []

    def hook(name):
        def record(opt, args, kwargs):
            assert opt is optimizer
            events.append((name, p.detach().cpu().tolist()))
        return record

    handles = [optimizer.register_step_pre_hook(hook("pre1")),
               optimizer.register_step_pre_hook(hook("pre2")),
               optimizer.register_step_post_hook(hook("post"))]
    p.grad = torch.tensor([1.0, 1.0], device=device)
    optimizer.step()
    assert events == [("pre1", [1.0, -2.0]), ("pre2", [1.0, -2.0]), ("post", [0.5, -2.5])]

    events.clear()
    handles[0].remove()
    handles[2].remove()
    optimizer.step()
    assert events == [("pre2", [0.5, -2.5])]
    assert p.detach().cpu().tolist() == [0.0, -3.0]
