"""A short script that reproduces a failed conformance test outside pytest.

It holds the test module's imports, the module-level helpers the test uses (found by name,
transitively), the test function without its decorators, the start state the plugin gives
every test, and one call with the failing arguments: the device, dtype and parameters of the
test id, and Hypothesis' failing example when there is one.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Set

_FAILING_CASE = re.compile(
    r"(?:Failing (?:explicit )?(?:test case|example)|Falsifying (?:explicit )?example): "
    r"\w+\((.*)\)\s*$", re.S)
_TORCH_DEVICE = re.compile(r"\bdevice\(type='([^']+)'(?:, index=(\d+))?\)")


def _defined_names(node: ast.stmt) -> Set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _used_names(node: ast.AST) -> Set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _without_decorators(node: ast.FunctionDef, source: str) -> str:
    lines = source.splitlines()
    start = node.lineno - 1  # `def` line (decorators come before lineno)
    return "\n".join(lines[start:node.end_lineno])


def _call_arguments(params: Dict[str, object], notes: List[str]) -> str:
    """`name=value` pairs for the call: Hypothesis' failing case if any, else the test id's."""
    for note in notes:
        match = _FAILING_CASE.search(note.strip())
        if match:
            body = _TORCH_DEVICE.sub(
                lambda m: f"torch.device('{m.group(1)}'{', ' + m.group(2) if m.group(2) else ''})",
                match.group(1))
            return textwrap.indent(textwrap.dedent(body).strip(), "    ")
    pairs = []
    for name, value in params.items():
        if name == "device":
            text = f"torch.device({str(value)!r})"
        elif name == "mode":  # the fixture's object (torch.compile with the default backend)
            text = f"Mode({str(value)!r})"
        else:
            text = repr(value)
        pairs.append(f"    {name}={text},")
    return "\n".join(pairs)


def _imports_for_arguments(arguments: str, known: Set[str]) -> List[str]:
    """`from M import N` for names the failing example's reprs use (e.g. TreeSpec) that the
    script does not define, found among the loaded torchconform and test modules."""
    try:
        names = _used_names(ast.parse(f"f(\n{arguments}\n)"))
    except SyntaxError:
        return []
    lines = []
    for name in sorted(names - known - {"torch", "f"}):
        for module_name, module in list(sys.modules.items()):
            if module_name.startswith("torchconform") and hasattr(module, name):
                owner = getattr(getattr(module, name), "__module__", module_name)
                lines.append(f"from {owner} import {name}")
                break
    return lines


def reproduction(path: Path, function: str, params: Dict[str, object], notes: List[str],
                 seed: int, torch_version: str) -> Optional[str]:
    """The reproduction script for test `function` of file `path`, or None if the source
    cannot be read."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError):
        return None
    top = tree.body
    target = next((n for n in top if isinstance(n, ast.FunctionDef) and n.name == function), None)
    if target is None:
        return None
    imports = [n for n in top if isinstance(n, (ast.Import, ast.ImportFrom))]
    definitions = {name: n for n in top for name in _defined_names(n)}
    needed: List[ast.stmt] = []
    pending = _used_names(target) - {function}
    seen: Set[str] = set()
    while pending:
        name = pending.pop()
        seen.add(name)
        node = definitions.get(name)
        if node is not None and node not in needed and node is not target:
            needed.append(node)
            pending |= _used_names(node) - seen
    needed.sort(key=lambda n: n.lineno)
    arguments = _call_arguments(params, notes)
    known = set(definitions) | {a.asname or a.name.split(".")[0] for n in imports
                                for a in n.names}
    hints = [f"# {line.strip()}" for note in notes for line in note.splitlines()
             if "reproduce_failure" in line]
    parts = [
        f"# Reproduces {path.name}::{function} outside pytest (torch {torch_version}).",
        "# The start state every conformance test gets: seeded RNGs, no TF32.",
        "import random",
        "",
        "import numpy as np",
        "import torch",
        "",
        *[ast.get_source_segment(source, n) for n in imports],
        *_imports_for_arguments(arguments, known),
        "",
        *[ast.get_source_segment(source, n) + "\n" for n in needed],
        _without_decorators(target, source),
        "",
        "",
        "if __name__ == '__main__':",
        f"    random.seed({seed}); np.random.seed({seed}); torch.manual_seed({seed})",
        "    torch.set_float32_matmul_precision('highest')",
        f"    {function}(",
        textwrap.indent(arguments, "    "),
        "    )",
        "    print('passed: the failure did not reproduce')",
        *hints,
    ]
    return "\n".join(parts) + "\n"
