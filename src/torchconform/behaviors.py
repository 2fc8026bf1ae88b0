"""The behavior marker and the catalog of documented behaviors.

Every conformance test carries `@behavior("area.topic.rule")`. The catalog
(`catalog/<area>.toml`) maps each id to a one-line statement in our words, the PyTorch
documentation that states it, the tutorial seed that shows it, and its version facts:

    ["module.state_dict.excludes_non_persistent_buffers"]
    statement = "state_dict() leaves out buffers registered with persistent=False."
    doc = "https://docs.pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.register_buffer"
    seed = "002"            # optional: ../shared/seeds/002_*.txt shows it
    since = "2.5"           # optional: the API exists from this torch; before, not applicable
    changed = "2.0"         # optional: the documented expectation differs before this torch
    change = "..."          # with `changed`: what differs
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older Pythons only
    import tomli as tomllib

CATALOG_DIR = Path(__file__).parent / "catalog"

#: Names the documented behavior a test asserts: ``@behavior("module.apply.returns_self")``.
behavior = pytest.mark.behavior

_FIELDS = {"statement", "doc", "seed", "since", "changed", "change"}


@dataclass(frozen=True)
class Behavior:
    id: str
    statement: str
    doc: str
    seed: Optional[str] = None
    since: Optional[str] = None
    changed: Optional[str] = None
    change: Optional[str] = None

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]


class CatalogError(ValueError):
    """A catalog file that does not follow the format above."""


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def _parse(path: Path, seeds: Dict[str, dict]) -> Dict[str, Behavior]:
    raw = _read(path)
    entries = {}
    for bid, fields in raw.items():
        where = f"{path.name}: [{bid!r}]"
        if not isinstance(fields, dict):
            raise CatalogError(f"{where} must be a table")
        if bid.split(".", 1)[0] != path.stem:
            raise CatalogError(f"{where}: ids in {path.name} start with '{path.stem}.'")
        unknown = set(fields) - _FIELDS
        if unknown:
            raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
        for required in ("statement", "doc"):
            if not str(fields.get(required, "")).strip():
                raise CatalogError(f"{where}: '{required}' is required")
        if not fields["doc"].startswith("https://"):
            raise CatalogError(f"{where}: doc must be an https URL")
        if ("changed" in fields) != ("change" in fields):
            raise CatalogError(f"{where}: 'changed' and 'change' go together")
        if "seed" in fields and fields["seed"] not in seeds:
            raise CatalogError(f"{where}: seed {fields['seed']!r} is not in [seeds]")
        entries[bid] = Behavior(id=bid, **{k: str(v) for k, v in fields.items()})
    return entries


@lru_cache(maxsize=None)
def load_catalog(directory: str = str(CATALOG_DIR)) -> Dict[str, Behavior]:
    """All behaviors of every area, keyed by id."""
    catalog: Dict[str, Behavior] = {}
    seeds = load_seeds(directory)
    for path in sorted(Path(directory).glob("*.toml")):
        if path.stem == "seeds":
            continue
        for bid, entry in _parse(path, seeds).items():
            if bid in catalog:
                raise CatalogError(f"{path.name}: behavior {bid!r} is defined twice")
            catalog[bid] = entry
    return catalog


@lru_cache(maxsize=None)
def load_seeds(directory: str = str(CATALOG_DIR)) -> Dict[str, Dict[str, str]]:
    """Seed id -> {title, topic}: the tutorials the suite turns into checks."""
    path = Path(directory) / "seeds.toml"
    return _read(path) if path.exists() else {}


def format_catalog(catalog: Dict[str, Behavior],
                   tests: Optional[Dict[str, List[str]]] = None) -> str:
    """The catalog as text, grouped by area: the table of contents of the suite. With `tests`
    (behavior id -> node ids), each behavior also lists the tests that check it."""
    seeds = load_seeds()
    lines = []
    area = None
    for entry in sorted(catalog.values(), key=lambda e: e.id):
        if entry.area != area:
            area = entry.area
            count = sum(e.area == area for e in catalog.values())
            lines.append(f"\n== {area} ({count} behaviors) ==")
        lines.append(f"{entry.id}\n    {entry.statement}\n    doc:  {entry.doc}")
        if entry.seed:
            lines.append(f"    seed: {entry.seed} {seeds.get(entry.seed, {}).get('title', '')}")
        if entry.since:
            lines.append(f"    since torch {entry.since} (not applicable before)")
        if entry.changed:
            lines.append(f"    changed in torch {entry.changed}: {entry.change}")
        if tests is not None:
            lines += [f"    test: {nodeid}" for nodeid in tests.get(entry.id, [])] or [
                "    test: none collected"]
    return "\n".join(lines).lstrip("\n")
