"""Merge many runs' conformance.json (tox envs, devices, machines) into one static matrix.html.

Rows are behaviors grouped by area, columns are (torch version, device, machine) runs, cells
say pass / fail / not applicable / skipped with the reason on hover and a link to the run's
HTML report. A "changed between versions" section lists behaviors whose outcome or gated
expectation differs between columns: the upgrade checklist. pytest-benchmark JSON files given
alongside become bar charts comparing runs. One file, no script or font from the network.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..behaviors import Behavior, load_catalog
from ..versions import release
from .results import SCHEMA, SCHEMA_VERSION, write_atomically


class ReportError(ValueError):
    """An input the merge cannot use; the message names the file."""


# Cell states, worst first: a column's cell shows the worst outcome among its tests.
STATES = ["fail", "xpass", "xfail", "pass", "skip", "n/a"]
_OUTCOME_STATE = {"failed": "fail", "error": "fail", "xpassed": "xpass", "xfailed": "xfail",
                  "passed": "pass", "skipped": "skip", "not applicable": "n/a",
                  "declared deviation": "xfail"}
_SYMBOL = {"fail": "✗", "xpass": "!", "xfail": "⚠", "pass": "✓", "skip": "∅", "n/a": "–",
           None: "·"}
_LABEL = {"fail": "fail", "xpass": "unexpected pass", "xfail": "known failure",
          "pass": "pass", "skip": "skipped", "n/a": "not applicable", None: "not run"}


@dataclass
class Column:
    """One (run, device): the unit compared in the matrix."""

    source: Path
    run: Dict[str, Any]
    device: str
    tests: List[Dict[str, Any]] = field(default_factory=list)
    html_report: Optional[Path] = None
    mode: str = ""  # "compile": the torch.compile half of a run with a mode axis

    @property
    def label(self) -> str:
        return f"{self.device} · {self.mode}" if self.mode else self.device

    @property
    def torch(self) -> str:
        return self.run["torch"]["version"]

    @property
    def env(self) -> str:
        parent = self.source.parent.name
        return parent if parent not in ("reports", "") else ""

    def sort_key(self) -> Tuple:
        try:
            version = release(self.torch)
        except ValueError:
            version = (0,)
        return (version, self.torch, self.device, self.mode, self.run.get("machine", ""),
                self.run.get("started", ""))

    def by_behavior(self) -> Dict[str, List[Dict[str, Any]]]:
        grouped: Dict[str, List[Dict[str, Any]]] = {}
        for test in self.tests:
            grouped.setdefault(test["behavior"], []).append(test)
        return grouped


@dataclass
class Cell:
    state: Optional[str]
    tests: List[Dict[str, Any]]
    gates: List[str]

    @property
    def detail(self) -> str:
        if not self.tests:
            return "not run in this column"
        counts: Dict[str, int] = {}
        for test in self.tests:
            counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
        lines = [", ".join(f"{n} {outcome}" for outcome, n in counts.items())]
        lines += [f"gate {g}" for g in self.gates]
        for test in self.tests:
            if test["outcome"] in ("failed", "error", "xpassed"):
                first = (test.get("message") or "").strip().splitlines()[:1]
                lines.append(f"{test['outcome'].upper()} {test['nodeid']}: "
                             f"{first[0][:200] if first else ''}")
            elif test.get("reason"):
                lines.append(f"{test['outcome']}: {test['reason']}")
        unique = list(dict.fromkeys(lines))
        return "\n".join(unique[:12]) + ("\n..." if len(unique) > 12 else "")


def cell_for(tests: List[Dict[str, Any]]) -> Cell:
    states = {_OUTCOME_STATE.get(t["outcome"], "fail") for t in tests}
    state = next((s for s in STATES if s in states), None)
    gates = sorted({g for t in tests for g in t.get("gates", [])})
    return Cell(state, tests, gates)


# -- reading inputs --------------------------------------------------------------------------

def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not valid JSON: {exc}") from None


def _check_results(path: Path, doc: Any) -> None:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ReportError(f"{path}: not a torchconform results file (no \"schema\": "
                          f"\"{SCHEMA}\"); give conformance.json files or pytest-benchmark JSON")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ReportError(f"{path}: schema_version {version!r} is not supported "
                          f"(this torchconform reads up to {SCHEMA_VERSION})")
    run, tests = doc.get("run"), doc.get("tests")
    if not isinstance(run, dict) or not isinstance(tests, list):
        raise ReportError(f"{path}: 'run' must be an object and 'tests' a list")
    for key in ("torch", "devices", "machine"):
        if key not in run:
            raise ReportError(f"{path}: run.{key} is missing")
    for index, test in enumerate(tests):
        if not isinstance(test, dict) or not {"nodeid", "behavior", "outcome"} <= set(test):
            raise ReportError(f"{path}: tests[{index}] lacks nodeid, behavior or outcome")
        if test["outcome"] not in _OUTCOME_STATE:
            raise ReportError(f"{path}: tests[{index}] has unknown outcome {test['outcome']!r}")


def _is_benchmark(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list) and (
        "machine_info" in doc)


def _benchmark_file(path: Path) -> bool:
    try:
        return _is_benchmark(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False


def _searched(path: Path, folder: Path) -> bool:
    """Not in previous/ (replaced runs) nor in a hidden folder (copies: the benchmark history
    in reports/benchmarks/.storage)."""
    parts = path.relative_to(folder).parts[:-1]
    return "previous" not in path.parts and not any(part.startswith(".") for part in parts)


def expand(paths: Iterable[str]) -> List[Path]:
    """Files as given (each must be ours or pytest-benchmark's); folders are searched for
    conformance.json and pytest-benchmark files, skipping reports/previous/ and hidden
    folders."""
    found: List[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json") if _searched(p, path) and (
                p.name == "conformance.json" or _benchmark_file(p)))
        elif path.exists():
            found.append(path)
        else:
            raise ReportError(f"{path}: no such file or directory")
    return list(dict.fromkeys(found))


def read_inputs(paths: List[Path]) -> Tuple[List[Column], List[Tuple[Path, Dict[str, Any]]]]:
    """Validate every input before anything is written; results -> columns."""
    columns: List[Column] = []
    benchmarks = []
    for path in paths:
        doc = _load_json(path)
        if _is_benchmark(doc):
            benchmarks.append((path, doc))
            continue
        _check_results(path, doc)
        devices = list(doc["run"]["devices"]) or sorted(
            {t.get("device") or "?" for t in doc["tests"]})
        sibling = path.with_name("conformance.html")
        for device in devices:
            tests = [t for t in doc["tests"] if (t.get("device") or device) == device]
            # A run with a mode axis: its compiled results form a column of their own.
            compiled = [t for t in tests if t.get("mode") == "compile"]
            tests = [t for t in tests if t.get("mode") != "compile"]
            html = sibling if sibling.exists() else None
            columns.append(Column(path, doc["run"], device, tests, html))
            if compiled:
                columns.append(Column(path, doc["run"], device, compiled, html, "compile"))
    if not columns and not benchmarks:
        raise ReportError("no input: give conformance.json files (or folders holding them)")
    columns.sort(key=Column.sort_key)
    return columns, benchmarks


# -- rendering -------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.4em 0 .4em}
.note{color:#555;max-width:60em}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ddd;padding:3px 6px;vertical-align:top}
th.col{font-weight:600;text-align:center;font-size:12px;min-width:6.5em}
td.cell{text-align:center;font-size:15px;white-space:nowrap}
td.cell a{color:inherit;text-decoration:none}
.fail{background:#f8d7da;color:#842029}.xpass{background:#ffe5b4}.xfail{background:#fff3cd}
.pass{background:#d1e7dd;color:#0f5132}.skip{background:#eee;color:#555}
.na{background:#f6f6f6;color:#888}.none{color:#bbb}
td.bid a{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;color:#0b5394}
.stmt{color:#666;font-size:12px}
summary{cursor:pointer;font-weight:600;padding:.3em 0;font-size:1.05em}
td.total{font-size:11px;text-align:center;color:#333;white-space:nowrap}
.legend span{display:inline-block;padding:1px 6px;margin-right:6px;border:1px solid #ddd}
.chart{display:inline-block;margin:0 1.5em 1em 0;vertical-align:top}
@media print{body{margin:0;font-size:11px}a{color:inherit}.noprint{display:none}
 tr{page-break-inside:avoid}}
"""

_PRINT_OPENS_DETAILS = (
    "<script>addEventListener('beforeprint',()=>document.querySelectorAll('details')"
    ".forEach(d=>d.open=true))</script>")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _state_class(state: Optional[str]) -> str:
    return {"n/a": "na", None: "none"}.get(state, state)


def _header(columns: List[Column], output: Path) -> str:
    cells = []
    for column in columns:
        report = column.html_report
        link = (f' <a href="{_esc(os.path.relpath(report, output.parent))}">report</a>'
                if report else "")
        env = f"{_esc(column.env)}<br>" if column.env else ""
        title = f"{column.source}\nstarted {column.run.get('started')}\n" + str(
            column.run.get("platform", ""))
        cells.append(
            f'<th class="col" title="{_esc(title)}">{env}torch {_esc(column.torch)}<br>'
            f'{_esc(column.label)} · {_esc(column.run.get("machine", "?"))}{link}</th>')
    return "".join(cells)


def _cell_html(cell: Cell, column: Column, output: Path) -> str:
    symbol = _SYMBOL[cell.state]
    if cell.state in ("fail", "xpass") and column.html_report is not None:
        href = _esc(os.path.relpath(column.html_report, output.parent))
        symbol = f'<a href="{href}">{symbol}</a>'
    return (f'<td class="cell {_state_class(cell.state)}" title="{_LABEL[cell.state]}: '
            f'{_esc(cell.detail)}">{symbol}</td>')


def _area_totals(area_rows: List[List[Cell]], n_columns: int) -> List[str]:
    totals = []
    for index in range(n_columns):
        counts: Dict[Optional[str], int] = {}
        for row in area_rows:
            counts[row[index].state] = counts.get(row[index].state, 0) + 1
        ran = sum(v for k, v in counts.items() if k not in (None, "n/a", "skip"))
        parts = [f"{counts.get('pass', 0)}/{ran} pass" if ran else "no test ran"]
        parts += [f"{counts[s]} {_LABEL[s]}" for s in ("fail", "xpass", "xfail", "skip", "n/a",
                                                      None) if counts.get(s)]
        totals.append(f'<td class="total">{"<br>".join(parts)}</td>')
    return totals


def _behavior_cell(bid: str, entry: Optional[Behavior]) -> str:
    if entry is None:
        return (f'<td class="bid"><a>{_esc(bid)}</a>'
                '<div class="stmt">(not in this catalog)</div></td>')
    extra = f" Changed in torch {entry.changed}: {entry.change}." if entry.changed else ""
    extra += f" Since torch {entry.since}." if entry.since else ""
    return (f'<td class="bid"><a href="{_esc(entry.doc)}">{_esc(bid)}</a>'
            f'<div class="stmt">{_esc(entry.statement)}{_esc(extra)}</div></td>')


def changed_behaviors(rows: Dict[str, List[Cell]]) -> List[str]:
    """Behaviors whose outcome or gated expectation differs between the columns that ran it."""
    changed = []
    for bid, cells in rows.items():
        ran = [c for c in cells if c.state is not None]
        if len({c.state for c in ran}) > 1 or len({tuple(c.gates) for c in ran}) > 1:
            changed.append(bid)
    return changed


def _bar_chart(title: str, bars: List[Tuple[str, float]], unit: str) -> str:
    """A horizontal bar chart as inline SVG (no script, prints as vector)."""
    width, bar_h, label_w = 420, 16, 170
    top = max(v for _, v in bars) or 1.0
    rows = []
    for i, (label, value) in enumerate(bars):
        y = 22 + i * (bar_h + 4)
        w = max(1.0, (width - label_w - 70) * value / top)
        rows.append(
            f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end" font-size="11">'
            f'{_esc(label)}</text><rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
            f'fill="#5b8def"><title>{_esc(label)}: {value:.4g} {unit}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="11">'
            f'{value:.3g} {unit}</text>')
    height = 26 + len(bars) * (bar_h + 4)
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" role="img"><text x="0" y="13" font-size="12" '
            f'font-weight="600">{_esc(title)}</text>{"".join(rows)}</svg>')


def _benchmark_section(benchmarks: List[Tuple[Path, Dict[str, Any]]]) -> str:
    if not benchmarks:
        return ""
    series: Dict[str, List[Tuple[str, float]]] = {}
    for path, doc in benchmarks:
        info = doc.get("machine_info", {})
        torch_info = info.get("torch") or {}
        run = (f"{torch_info.get('version', '?')} {info.get('node', '')}".strip()
               if isinstance(torch_info, dict) else str(path.parent.name))
        for bench in doc["benchmarks"]:
            stats = bench.get("stats") or {}
            if "median" in stats:
                series.setdefault(bench.get("fullname") or bench.get("name", "?"), []).append(
                    (run, stats["median"] * 1e6))
    charts = "".join(_bar_chart(name.split("::")[-1], bars, "µs")
                     for name, bars in sorted(series.items()))
    return (f'<h2 id="benchmarks">Benchmarks (median, lower is better)</h2><p class="note">'
            f'From {len(benchmarks)} pytest-benchmark file(s).</p>{charts}')


def render(columns: List[Column], benchmarks, output: Path,
           catalog: Optional[Dict[str, Behavior]] = None) -> str:
    catalog = load_catalog() if catalog is None else catalog
    per_column = [c.by_behavior() for c in columns]
    ids = sorted(set(catalog) | {bid for c in per_column for bid in c})
    rows = {bid: [cell_for(c.get(bid, [])) for c in per_column] for bid in ids}
    n = len(columns)
    head = f'<tr><th>Behavior</th>{_header(columns, output)}</tr>'

    areas: Dict[str, List[str]] = {}
    for bid in ids:
        areas.setdefault(bid.split(".", 1)[0], []).append(bid)
    sections = []
    for area, bids in areas.items():
        body = "".join(
            f"<tr>{_behavior_cell(b, catalog.get(b))}"
            f"{''.join(_cell_html(cell, col, output) for cell, col in zip(rows[b], columns))}</tr>"
            for b in bids)
        totals = _area_totals([rows[b] for b in bids], n)
        failing = any(cell.state in ("fail", "xpass") for b in bids for cell in rows[b])
        sections.append(
            f'<details {"open" if failing or len(areas) == 1 else ""} id="area-{_esc(area)}">'
            f'<summary>{_esc(area)} — {len(bids)} behaviors</summary><table>{head}'
            f'<tr><td class="total"><b>{_esc(area)} totals</b></td>{"".join(totals)}</tr>'
            f'{body}</table></details>')

    changed = changed_behaviors(rows)
    if changed:
        body = "".join(
            f"<tr>{_behavior_cell(b, catalog.get(b))}"
            + "".join(
                f'<td class="cell {_state_class(c.state)}" title="{_esc(c.detail)}">'
                f'{_SYMBOL[c.state]}<div class="stmt">{"<br>".join(map(_esc, c.gates))}</div></td>'
                for c in rows[b]) + "</tr>" for b in changed)
        checklist = (f'<p class="note">Behaviors whose outcome or version-gated expectation '
                     f'differs between columns: what an upgrade changes.</p><table>{head}{body}'
                     f'</table>')
    else:
        checklist = '<p class="note">No behavior differs between the columns.</p>'

    legend = "".join(f'<span class="{_state_class(s)}">{_SYMBOL[s]} {_LABEL[s]}</span>'
                     for s in STATES + [None])
    runs = ", ".join(sorted({c.torch for c in columns}))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>torchconform matrix</title><style>{_CSS}</style></head><body>"
        f"<h1>torchconform conformance matrix</h1>"
        f'<p class="note">{len(columns)} column(s) from {len({c.source for c in columns})} '
        f"run(s); torch {_esc(runs)}. Rows are documented behaviors (linked to the PyTorch "
        f"documentation); hover a cell for its tests, reasons and gates; ✗ links to the run's "
        f"report. There is deliberately no overall score.</p>"
        f'<p class="legend">{legend}</p>'
        f'<h2 id="changed">Changed between versions</h2>{checklist}'
        f'<h2 id="behaviors">Behaviors by area</h2>{"".join(sections)}'
        f"{_benchmark_section(benchmarks)}{_PRINT_OPENS_DETAILS}</body></html>\n")


def merge(paths: Iterable[str], output: Path) -> Tuple[int, int]:
    """Validate all inputs, then write `output` atomically. Returns (columns, benchmarks)."""
    files = [p for p in expand(paths) if p.resolve() != output.resolve()]
    columns, benchmarks = read_inputs(files)
    write_atomically(output, render(columns, benchmarks, output))
    return len(columns), len(benchmarks)
