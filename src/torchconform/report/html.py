"""pytest-html hooks: behavior (linked to its documentation), area and device columns, and the
environment table (through pytest-metadata). The reproduction script of a failure is attached
by the plugin where the test ran (see plugin.pytest_runtest_makereport).

Registered by the plugin only when pytest-html is active (its hookspecs must exist)."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from .. import protocol
from ..behaviors import load_catalog
from . import triage


class HtmlReport:
    def __init__(self, facts: Dict[str, Any], profile: str, seed: int) -> None:
        self.facts = facts
        self.profile = profile
        self.seed = seed

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before pytest-html (trylast) reads pytest-metadata's table.
        from pytest_metadata.plugin import metadata_key

        torch = self.facts["torch"]
        session.config.stash[metadata_key].update({
            "torch": f"{torch['version']} (git {torch['git_version']})",
            "torch build": {"cpu": "CPU only", "cuda": f"CUDA {torch['cuda']}",
                            "rocm": f"ROCm {torch['hip']}"}[torch["build"]]
                           + (f", cuDNN {torch['cudnn']}" if torch["cudnn"] else ""),
            "devices tested": ", ".join(self.facts["devices"]),
            "backends": "; ".join(
                f"{device}: {_backend_text(info['backend'])}"
                for device, info in self.facts.get("backends", {}).items()),
            "missing capabilities": "; ".join(
                f"{device}: {capability} ({reason})"
                for device, info in self.facts.get("backends", {}).items()
                for capability, reason in info["missing_capabilities"].items()) or "none",
            "GPUs": "; ".join(f"{g['index']}: {g['name']} (driver {g['driver'] or '?'})"
                              for g in self.facts["gpus"]) or "none",
            "CPU": f"{self.facts['cpu']} ({self.facts['cpu_count']} cores, torch threads "
                   f"{self.facts['torch_threads']})",
            "hypothesis": f"{self.facts['hypothesis']}, profile {self.profile}",
            "seed": str(self.seed),
            "suite commit": self.facts["suite_commit"] or "unknown",
        })

    def pytest_html_report_title(self, report) -> None:
        report.title = (f"torchconform: torch {self.facts['torch']['version']} on "
                        f"{', '.join(self.facts['devices'])}")

    def pytest_html_results_table_header(self, cells: List[str]) -> None:
        cells.insert(1, '<th class="sortable" data-column-type="behavior">Behavior</th>')
        cells.insert(2, '<th class="sortable" data-column-type="area">Area</th>')
        cells.insert(3, '<th class="sortable" data-column-type="device">Device</th>')

    def pytest_html_results_table_row(self, report, cells: List[str]) -> None:
        props = protocol.facts(report)
        bid = props.get(protocol.BEHAVIOR, "")
        entry = load_catalog().get(bid)
        link = (f'<a href="{html.escape(entry.doc)}" title="{html.escape(entry.statement)}">'
                f'{html.escape(bid)}</a>' if entry else html.escape(bid))
        cells.insert(1, f'<td class="col-behavior">{link}</td>')
        cells.insert(2, f'<td class="col-area">{html.escape(props.get(protocol.AREA, ""))}</td>')
        device = props.get(protocol.DEVICE, "")
        if props.get(protocol.DTYPE):
            device += f" / {props[protocol.DTYPE]}"
        if props.get(protocol.MODE):
            device += f" / {props[protocol.MODE]}"
        cells.insert(3, f'<td class="col-device">{html.escape(device)}</td>')

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        writer = session.config.pluginmanager.get_plugin("torchconform-results")
        if writer is not None:
            prefix.extend(triage_block(writer.tests()))
        htmlpath = session.config.getoption("htmlpath", default=None)
        if not htmlpath:
            return
        page = (session.config.invocation_params.dir / htmlpath).resolve()
        href = benchmark_plot_href(page, session.config.rootpath)
        if href is not None:
            prefix.append(f'<p class="benchmarks">Benchmarks (python -m torchconform.bench): '
                          f'<a href="{html.escape(href)}">{html.escape(href)}</a></p>')


def _backend_text(backend: Dict[str, Any]) -> str:
    """'torch_xla 2.9.0, PJRT device CPU' from a backend's facts."""
    text = f"{backend['package']} {backend['version'] or '(version unknown)'}"
    return f"{text}, {backend['details']}" if backend.get("details") else text


#: Where `python -m torchconform.bench` draws its plot, relative to the checkout.
BENCHMARK_PLOT = Path("reports") / "benchmarks" / "benchmarks.svg"


def benchmark_plot_href(page: Path, root: Path) -> Optional[str]:
    """The benchmark plot relative to the HTML page `page`, if there is one: beside the page
    (DIR/benchmarks/ of --report-dir DIR) or in the checkout's reports/benchmarks/."""
    for plot in (page.parent / "benchmarks" / BENCHMARK_PLOT.name, root / BENCHMARK_PLOT):
        if plot.is_file():
            return Path(os.path.relpath(plot.resolve(), page.parent)).as_posix()
    return None


def triage_block(tests: List[Dict[str, Any]]) -> List[str]:
    """The summary block at the top of the page: the failures grouped by cause, each with its
    tests, the differential's values and one standalone reproducer."""
    found = triage.causes(tests)
    if not found:
        return []
    out = ['<div class="triage">',
           f"<h2>{html.escape(triage.summary_line(tests, found))}</h2>", "<ol>"]
    for cause in found:
        order = f" &middot; {html.escape(', '.join(cause['order']))}" if cause["order"] else ""
        out.append(
            f'<li id="cause-{cause["id"]}"><b>{html.escape(cause["area"])}: '
            f'{html.escape(cause["kind"])}</b>{order}<br><code>'
            f'{html.escape(cause["message"])}</code><br>{len(cause["tests"])} test(s): '
            + ", ".join(f"<code>{html.escape(t)}</code>" for t in cause["tests"]))
        if cause["departure"]:
            from ..differential import as_text

            out.append(f"<pre>{html.escape(as_text(cause['departure']))}</pre>")
        if cause["reproduce"]:
            out.append("<details><summary>standalone reproducer (python repro.py; exits 1 "
                       f"while it reproduces)</summary><pre>{html.escape(cause['reproduce'])}"
                       "</pre></details>")
        out.append("</li>")
    out += ["</ol>", "</div>"]
    return out
