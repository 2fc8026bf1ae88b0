"""get_extra_state / set_extra_state: extra, non-tensor state saved in state_dict() under the
'_extra_state' key and handed back on load_state_dict()."""

import io

import pytest
import torch
from torch import nn

from torchconform import SERIALIZATION, behavior, requires


class Counter(nn.Module):
    """A layer whose step counter (a Python int) and a small int tensor are extra state."""

    def __init__(self, steps=0):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.steps = steps
        self.received = []

    def get_extra_state(self):
        return {"steps": self.steps, "table": torch.arange(3) * self.steps}

    def set_extra_state(self, state):
        self.received.append(state)
        self.steps = state["steps"]


class Holder(nn.Module):
    def __init__(self, steps=0):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))
        self.counter = Counter(steps)


@behavior("module.extra_state.saved_under_key")
def test_extra_state_is_saved_under_the_extra_state_key(device):
    m = Holder(steps=4).to(device)
    sd = m.state_dict()
    # The module's own parameters, then its extra state, then its children's entries.
    assert list(sd) == ["w", "counter.scale", "counter._extra_state"]
    assert sd["counter._extra_state"]["steps"] == 4
    assert torch.equal(sd["counter._extra_state"]["table"], torch.tensor([0, 4, 8]))
    assert list(m.state_dict(prefix="model.")) == [
        "model.w", "model.counter.scale", "model.counter._extra_state"]
    assert list(nn.Linear(1, 1).state_dict()) == ["weight", "bias"]  # nothing by default


@behavior("module.extra_state.round_trip")
def test_load_state_dict_hands_the_extra_state_to_set_extra_state(device):
    requires(device, SERIALIZATION)  # the state_dict goes through torch.save / torch.load
    source, target = Holder(steps=9).to(device), Holder(steps=0).to(device)
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)  # ints and tensors: loadable with weights_only
    buffer.seek(0)
    loaded = torch.load(buffer, map_location=device, weights_only=True)
    result = target.load_state_dict(loaded)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert target.counter.steps == 9
    assert len(target.counter.received) == 1
    assert target.counter.received[0]["steps"] == 9
    assert torch.equal(target.counter.received[0]["table"].cpu(), torch.tensor([0, 9, 18]))
    # Any extra state found in the state_dict is handed over, also by a non-strict load.
    lenient = Holder(steps=0).to(device)
    lenient.load_state_dict({"counter._extra_state": loaded["counter._extra_state"]},
                            strict=False)
    assert lenient.counter.steps == 9 and len(lenient.counter.received) == 1


@behavior("module.extra_state.missing_is_a_missing_key")
def test_missing_extra_state_is_reported_as_a_missing_key(device):
    target = Holder(steps=2).to(device)
    sd = Holder(steps=5).to(device).state_dict()
    del sd["counter._extra_state"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\).*"counter\._extra_state"'):
        target.load_state_dict(sd)
    result = target.load_state_dict(sd, strict=False)
    assert list(result.missing_keys) == ["counter._extra_state"]
    assert target.counter.received == [] and target.counter.steps == 2
