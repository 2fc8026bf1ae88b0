"""The behavior catalog: well formed, and in one-to-one use by the suite."""

from pathlib import Path

import pytest

from torchconform import protocol
from torchconform.behaviors import CatalogError, load_catalog, load_seeds

from .conftest import ROOT, SUITES


@pytest.fixture(scope="module")
def collected_tests():
    """(file relative to suites/, behavior id) of every test in suites/, collected once."""
    items = []

    class Grab:
        def pytest_collection_finish(self, session):
            items.extend(session.items)

    # --mode eager,compile: suites/compile is collected only in a run with compilation.
    ret = pytest.main([str(SUITES), "--collect-only", "-q", "--device=cpu", "--mode=eager,compile",
                               "-p", "no:randomly", "-p", "no:cacheprovider",
                               "-c", str(ROOT / "pyproject.toml")], plugins=[Grab()])
    assert ret == 0
    return [(Path(str(item.path)).relative_to(SUITES).as_posix(), protocol.behavior_of(item))
            for item in items]


@pytest.fixture(scope="module")
def collected_behaviors(collected_tests):
    return {behavior for _, behavior in collected_tests}


def test_a_behavior_is_tested_in_the_file_its_id_names(collected_tests):
    """Behavior `area.topic.rest` is tested in suites/<area>/test_<topic>.py, so an id leads to
    its tests in one step (and a mutant's run collects one file). Benchmarks time behaviors of
    every topic and are exempt."""
    misplaced = sorted({(path, behavior) for path, behavior in collected_tests
                        if not path.startswith("benchmarks/") and behavior is not None
                        and path != "{}/test_{}.py".format(*behavior.split(".")[:2])})
    assert misplaced == []


def test_every_catalogued_behavior_has_a_test(collected_behaviors):
    # The contract area is checked by the contract kit's registered checks, on users' classes.
    from torchconform.contracts import CONTRACTS, contracts_for

    contracts_for("optimizer"), contracts_for("module")
    untested = sorted(set(load_catalog()) - collected_behaviors - set(CONTRACTS))
    assert untested == [], "catalog entries without a test"


def test_every_collected_test_names_a_catalogued_behavior(collected_behaviors):
    assert None not in collected_behaviors
    assert collected_behaviors <= set(load_catalog())
    assert not any(b.startswith("contract.") for b in collected_behaviors)


def test_entries_have_statement_doc_and_known_seed():
    seeds = load_seeds()
    for entry in load_catalog().values():
        assert entry.statement.endswith("."), entry.id
        assert entry.doc.startswith("https://docs.pytorch.org/"), entry.id
        assert entry.seed is None or entry.seed in seeds, entry.id
        assert entry.area in {"module", "autograd", "optim", "distributed", "compile",
                              "contract"}, entry.id


@pytest.mark.parametrize("text, message", [
    ('["module.x"]\nstatement = "s."\n', "'doc' is required"),
    ('["module.x"]\nstatement = "s."\ndoc = "http://x"\n', "https URL"),
    ('["other.x"]\nstatement = "s."\ndoc = "https://x"\n', "start with 'module.'"),
    ('["module.x"]\nstatement = "s."\ndoc = "https://x"\nseed = "999"\n', "not in \\[seeds\\]"),
    ('["module.x"]\nstatement = "s."\ndoc = "https://x"\nchanged = "2.0"\n', "go together"),
    ('["module.x"]\nstatment = "s."\ndoc = "https://x"\n', "unknown fields"),
    ('["module.x"\n', "module.toml"),
])
def test_malformed_catalog_is_refused_with_the_reason(tmp_path, text, message):
    (tmp_path / "seeds.toml").write_text('["000"]\ntitle = "t"\n')
    (tmp_path / "module.toml").write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_catalog(str(tmp_path))
