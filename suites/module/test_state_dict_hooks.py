"""Hooks around state_dict() and load_state_dict(): what each receives, in which order, and
what it may change."""

import pytest
import torch
from torch import nn

from torchconform import behavior


def _tree(device):
    """root (parameter w) with child 'sub' (Linear 1->1)."""
    root = nn.Module()
    root.w = nn.Parameter(torch.zeros(2, device=device))
    root.sub = nn.Linear(1, 1).to(device)
    return root


KEYS = ["w", "sub.weight", "sub.bias"]


@behavior("module.state_dict_hooks.state_dict_pre_hook")
def test_state_dict_pre_hook_runs_before_saving_with_prefix_and_keep_vars(device):
    root = _tree(device)
    calls = []

    def fill_before_saving(module, prefix, keep_vars):
        calls.append((module, prefix, keep_vars))
        with torch.no_grad():
            for p in module.parameters(recurse=False):
                p.fill_(7.0)
        return {"ignored": 1}  # the return value is not used

    handles = [root.register_state_dict_pre_hook(fill_before_saving),
               root.sub.register_state_dict_pre_hook(fill_before_saving)]
    sd = root.state_dict(prefix="m.", keep_vars=True)
    # Parent first, each with its own prefix, before its entries are saved.
    assert calls == [(root, "m.", True), (root.sub, "m.sub.", True)]
    assert list(sd) == ["m." + k for k in KEYS]
    assert all(torch.equal(v.detach().cpu(), torch.full_like(v.detach().cpu(), 7.0))
               for v in sd.values())
    for handle in handles:
        handle.remove()
    calls.clear()
    root.state_dict()
    assert calls == []


@behavior("module.state_dict_hooks.state_dict_post_hook")
def test_state_dict_post_hook_sees_the_entries_and_may_edit_them_in_place(device):
    root = _tree(device)
    calls = []

    def post(module, state_dict, prefix, local_metadata):
        calls.append((module, list(state_dict), prefix, dict(local_metadata)))
        state_dict[prefix + "note"] = torch.tensor(len(calls))

    root.register_state_dict_post_hook(post)
    handle = root.sub.register_state_dict_post_hook(post)
    sd = root.state_dict()
    # The child's hook runs after the child's entries, the root's after all of them.
    assert [(m, keys, prefix) for m, keys, prefix, _ in calls] == [
        (root.sub, KEYS, "sub."), (root, KEYS + ["sub.note"], "")]
    assert all("version" in meta for *_, meta in calls)
    assert list(sd) == KEYS + ["sub.note", "note"]
    assert sd["sub.note"].item() == 1 and sd["note"].item() == 2
    handle.remove()
    assert list(root.state_dict()) == KEYS + ["note"]
    root.register_state_dict_post_hook(lambda module, sd, prefix, meta: {"replaced": 1})
    with pytest.raises(RuntimeError, match="must return None"):
        root.state_dict()


@behavior("module.state_dict_hooks.load_state_dict_pre_hook")
def test_load_state_dict_pre_hook_can_rewrite_the_incoming_state_dict(device):
    root = _tree(device)
    calls = []

    def rename_legacy_keys(module, state_dict, prefix, local_metadata, strict, missing_keys,
                           unexpected_keys, error_msgs):
        calls.append((module, prefix, strict, sorted(state_dict)))
        legacy = prefix + "old_w"
        if legacy in state_dict:
            state_dict[prefix + "w"] = state_dict.pop(legacy)
        return "ignored"

    root.register_load_state_dict_pre_hook(rename_legacy_keys)
    handle = root.sub.register_load_state_dict_pre_hook(rename_legacy_keys)
    saved = {"old_w": torch.full((2,), 3.0), "sub.weight": torch.full((1, 1), 4.0),
             "sub.bias": torch.full((1,), 5.0)}
    result = root.load_state_dict(saved)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert torch.equal(root.w.detach().cpu(), torch.full((2,), 3.0))
    assert root.sub.bias.item() == 5.0
    # Parent first with the whole state_dict; the child sees its own entries.
    assert [(m, prefix, strict) for m, prefix, strict, _ in calls] == [
        (root, "", True), (root.sub, "sub.", True)]
    assert calls[0][3] == ["old_w", "sub.bias", "sub.weight"]
    assert calls[1][3] == ["sub.bias", "sub.weight"]
    handle.remove()
    calls.clear()
    root.load_state_dict(saved, strict=False)
    # (The strict argument the hooks get is not the call's: torch passes True through the
    # recursion on every probed version and applies strict=False at the end.)
    assert [(m, prefix) for m, prefix, _, _ in calls] == [(root, "")]


@behavior("module.state_dict_hooks.load_state_dict_post_hook")
def test_load_state_dict_post_hook_sees_and_may_clear_the_incompatible_keys(device):
    root = _tree(device)
    calls = []

    def forgive_unexpected(module, incompatible_keys):
        calls.append((module, list(incompatible_keys.missing_keys),
                      list(incompatible_keys.unexpected_keys)))
        incompatible_keys.unexpected_keys.clear()  # in place: the strict check sees it

    root.register_load_state_dict_post_hook(forgive_unexpected)
    saved = {k: torch.ones_like(v) for k, v in root.state_dict().items()}
    saved["junk"] = torch.zeros(1)
    result = root.load_state_dict(saved)  # strict, yet no error: the hook cleared the key
    assert calls == [(root, [], ["junk"])]
    assert list(result.unexpected_keys) == []
    assert torch.equal(root.w.detach().cpu(), torch.ones(2))
    # A child's post-hook runs before its parent's; adding a key makes a strict load fail.
    order = []
    root.sub.register_load_state_dict_post_hook(
        lambda module, keys: (order.append("sub"), keys.missing_keys.append("sub.ghost"))[0])
    root.register_load_state_dict_post_hook(lambda module, keys: order.append("root"))
    with pytest.raises(RuntimeError, match="sub.ghost"):
        root.load_state_dict({k: v for k, v in saved.items() if k != "junk"})
    assert order == ["sub", "root"]
