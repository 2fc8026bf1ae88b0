"""Mutation self-tests: every mutant (a torch with one behavior broken) must make the suite
fail, and specifically a test of the behavior it breaks."""

import pytest

from torchconform.behaviors import load_catalog
from torchconform.versions import TORCH_VERSION, torch_at_least

from .mutants import all_mutants

MUTANTS = all_mutants()
AREAS = sorted({m.area for m in MUTANTS})
# The run options an area's mutants need (e.g. --mode compile) go into its baseline run too.
AREA_ARGS = {area: next((m.extra_args for m in MUTANTS if m.area == area and m.extra_args), ())
             for area in AREAS}


@pytest.mark.parametrize("area", AREAS)
def test_unmutated_area_passes(run_suite, area):
    """The baseline: without a mutant the same run passes, so failures below are the mutant's."""
    result = run_suite(area, extra=AREA_ARGS[area])
    passed, failed, _ = result.counts
    assert result.ret == 0 and failed == 0 and passed > 0, result.behaviors("failed")


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_is_caught(run_suite, monkeypatch, mutant):
    entry = load_catalog()[mutant.breaks]
    if entry.since and not torch_at_least(entry.since):
        pytest.skip(f"not applicable: {mutant.breaks} needs torch>={entry.since} "
                    f"(installed {TORCH_VERSION})")
    mutant.apply(monkeypatch)
    result = run_suite(mutant.area, extra=[*mutant.extra_args, "--behavior", mutant.breaks])
    failed = result.behaviors("failed")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, f"exit {result.ret}: the suite missed it"
    assert mutant.breaks in failed, f"{mutant.breaks} still passes; failed instead: {failed}"


def test_every_mutant_targets_a_catalogued_behavior():
    catalog = load_catalog()
    assert [m.name for m in MUTANTS if m.breaks not in catalog] == []


def test_every_catalogued_behavior_has_a_mutant():
    """A behavior no mutant breaks has no proof that its tests can fail. The contract kit's
    mutants are purpose-built broken classes (tests/contracts_broken.py, proven caught by
    tests/test_contracts.py): its checks run on a class, not on torch."""
    from .contracts_broken import BROKEN_MODULES, BROKEN_OPTIMIZERS

    broken = {m.breaks for m in MUTANTS} | {c.breaks for c in BROKEN_OPTIMIZERS + BROKEN_MODULES}
    assert sorted(set(load_catalog()) - broken) == []
