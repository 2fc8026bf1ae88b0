"""Reports of one conformance run: decides whether a run writes them and where, moves an
earlier run's reports aside, and registers the JSON writer and the pytest-html columns."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import pytest

from .facts import run_facts
from .html import HtmlReport
from .results import ResultsWriter, keep_previous


def configure_reports(config: pytest.Config, devices: List[str],
                      roots: List[Path]) -> Optional[Path]:
    """Per-run JSON and HTML for conformance runs (not for a `pytest tests/` run that merely
    has the plugin installed), written by the xdist controller or the only process."""
    if (config.getoption("no_report") or hasattr(config, "workerinput")
            or config.option.collectonly):
        return None
    chosen = config.getoption("report_dir")
    if chosen is None and not _is_conformance_run(config, roots):
        return None
    directory = Path(chosen) if chosen else config.rootpath / "reports"
    directory = (config.invocation_params.dir / directory).resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise pytest.UsageError(f"--report-dir: cannot write reports to {directory}: "
                                f"{exc.strerror or exc}") from None
    facts = run_facts(config.rootpath, devices)
    facts["hypothesis_profile"] = config.hypothesis_profile_name
    facts["torch_seed"] = config.getoption("torch_seed")
    html_wanted = config.pluginmanager.hasplugin("html") and not config.getoption(
        "htmlpath", default=None)
    names = ["conformance.json"] + (["conformance.html"] if html_wanted else [])
    moved = keep_previous(directory, facts, names)
    config.pluginmanager.register(ResultsWriter(directory / "conformance.json", facts),
                                  "torchconform-results")
    if html_wanted:  # pytest-html reads these in its own pytest_configure, after this one
        config.option.htmlpath = str(directory / "conformance.html")
        config.option.self_contained_html = True
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(
            HtmlReport(facts, config.hypothesis_profile_name, config.getoption("torch_seed")),
            "torchconform-html")
    return moved


def _is_conformance_run(config: pytest.Config, roots: List[Path]) -> bool:
    """Does any path this run was given lie inside, or contain, a suite folder? Or does a
    conftest.py list classes for the contract kit (pytest_torchconform_contracts)?"""
    hook = getattr(config.hook, "pytest_torchconform_contracts", None)
    if hook is not None and hook.get_hookimpls():
        return True
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if any(path == r or r in path.parents or path in r.parents for r in roots):
            return True
    return False
