"""Mutation self-tests: every mutant (a torch with one behavior broken) must make the suite
fail, and specifically a test of the behavior it breaks."""

import pytest

from torchconform.behaviors import load_catalog
from torchconform.versions import TORCH_VERSION, torch_at_least

from .conftest import SUITES
from .mutants import all_mutants, area_of

MUTANTS = all_mutants()
AREAS = sorted({area_of(b) for m in MUTANTS for b in m.behaviors})
# The run options an area's mutants need (e.g. --mode compile) go into its baseline run too.
AREA_ARGS = {area: next((m.extra_args for m in MUTANTS if m.extra_args
                         and any(area_of(b) == area for b in m.behaviors)), ())
             for area in AREAS}


@pytest.mark.parametrize("area", AREAS)
def test_unmutated_area_passes(run_suite, area):
    """The baseline: without a mutant the same run passes, so failures below are the mutant's."""
    result = run_suite(area, extra=AREA_ARGS[area])
    passed, failed, _ = result.counts
    assert result.ret == 0 and failed == 0 and passed > 0, result.behaviors("failed")


# One check per (mutant, behavior it names): a mutant naming several behaviors must make a
# test of each of them fail. Ids lead with the behavior, so `-k module.state_dict` (or `-k
# optim`, or a mutant's name) selects checks.
CHECKS = [(m, b) for m in MUTANTS for b in m.behaviors]


def _quick_loop_sample(checks):
    """The first check of each catalog topic (area.topic) runs in the quick loop; the rest are
    marked slow (run by --run-slow: .ci/run, tox -e selftest). Every topic keeps a proof in the
    quick loop, and every mutant is checked on each landing."""
    seen, params = set(), []
    for m, b in checks:
        topic = ".".join(b.split(".")[:2])
        marks = () if topic not in seen else (pytest.mark.slow,)
        seen.add(topic)
        params.append(pytest.param(m, b, id=f"{b}-{m.name}", marks=marks))
    return params


@pytest.mark.parametrize("mutant, behavior", _quick_loop_sample(CHECKS))
def test_mutant_is_caught(run_suite, monkeypatch, mutant, behavior):
    entry = load_catalog()[behavior]
    if entry.since and not torch_at_least(entry.since):
        pytest.skip(f"not applicable: {behavior} needs torch>={entry.since} "
                    f"(installed {TORCH_VERSION})")
    mutant.apply(monkeypatch)
    # -x: the first failure of the behavior proves the point; --tb=no: formatting tracebacks
    # (pytest parses each failing test's source) cost more than running the tests.
    result = run_suite(_home(behavior),
                       extra=[*mutant.extra_args, "--behavior", behavior, "-x", "--tb=no"])
    failed = result.behaviors("failed")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, f"exit {result.ret}: the suite missed it"
    assert behavior in failed, f"{behavior} still passes; failed instead: {failed}"


def _home(behavior: str) -> str:
    """Where the behavior's tests live: suites/<area>/test_<topic>.py by the naming rule
    (tests/test_catalog.py enforces it), else the whole area. Collecting one file instead of an
    area is most of a mutant run's cost (every run imports and assertion-rewrites its files)."""
    area, topic = behavior.split(".")[:2]
    home = f"{area}/test_{topic}.py"
    return home if (SUITES / home).is_file() else area


def test_every_mutant_targets_a_catalogued_behavior():
    catalog = load_catalog()
    assert [(m.name, b) for m, b in CHECKS if b not in catalog] == []


def test_every_catalogued_behavior_has_a_mutant():
    """A behavior no mutant breaks has no proof that its tests can fail. The contract kit's
    mutants are purpose-built broken classes (tests/contracts_broken.py, proven caught by
    tests/test_contracts.py): its checks run on a class, not on torch."""
    from .contracts_broken import BROKEN_MODULES, BROKEN_OPTIMIZERS

    broken = {b for _, b in CHECKS} | {c.breaks for c in BROKEN_OPTIMIZERS + BROKEN_MODULES}
    assert sorted(set(load_catalog()) - broken) == []
