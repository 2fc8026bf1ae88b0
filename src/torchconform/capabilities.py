"""Capabilities a device may lack (float64, fused optimizers, serialization: adapters/base.py).

A test that needs one calls `requires(device, FLOAT64)`: on a device whose adapter lacks it,
the test stops as "not applicable" with the adapter's reason (recorded through protocol.py,
with the capability's name), never as a pass. The terminal summary lists, per tested device,
the capabilities it lacks and how many tests that made not applicable; the JSON report has
the same in its run facts (`backends`) and per test (`missing_capability`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, List, Optional

import pytest
import torch

from . import protocol
from .adapters import CAPABILITIES, adapter_for


def missing(device: Any, capability: str) -> Optional[str]:
    """Why `device` lacks `capability`, or None when it has it."""
    return adapter_for(device).lacks(capability)


def requires(device: Any, capability: str, item: Optional[pytest.Item] = None) -> None:
    """Stop the running test as not applicable when `device` lacks `capability`."""
    reason = missing(device, capability)
    if reason is None:
        return
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    protocol.record(item, protocol.CAPABILITY, capability)
    protocol.not_applicable(f"{kind} lacks {capability}: {reason}", item)


class MissingCapabilitySummary:
    """Counts the tests each missing capability made not applicable, per device, and prints
    the per-device list at the end of the run (registered on the controller)."""

    def __init__(self, devices: List[str]) -> None:
        self.devices = list(devices)
        self.counts: Counter = Counter()
        self.seen = False  # a conformance test ran (not a self-test run of the harness)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        found = protocol.facts(report)
        self.seen = self.seen or protocol.DEVICE in found
        capability = found.get(protocol.CAPABILITY)
        if capability and report.skipped:
            self.counts[(found.get(protocol.DEVICE), capability)] += 1

    def lines(self) -> List[str]:
        out = []
        for device in self.devices:
            lacking = adapter_for(device).missing_capabilities()
            backend = adapter_for(device).backend()
            if not lacking:
                out.append(f"{device} ({backend}): has every capability the suite asks about "
                           f"({', '.join(CAPABILITIES)})")
                continue
            out.append(f"{device} ({backend}) lacks:")
            for capability, reason in lacking.items():
                count = self.counts[(device, capability)]
                out.append(f"  {capability}: {reason} -> {count} test(s) not applicable")
        return out

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.seen:
            return
        terminalreporter.write_sep("-", "torchconform: device capabilities")
        for line in self.lines():
            terminalreporter.write_line(line)

