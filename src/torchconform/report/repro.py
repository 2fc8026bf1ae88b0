"""A standalone script that reproduces a failed conformance test: what a backend engineer
pastes into an upstream bug report.

It needs torch, numpy and the backend package only (no torchconform, pytest or Hypothesis):

- the test module's imports (minus torchconform, pytest, Hypothesis), the module-level helpers
  the test uses (found by name, transitively) and the test function without its decorators;
- the torchconform helpers it uses (assert_close, to_numpy, oracles, seed models, strategies'
  plain helpers, ...), inlined from their source, transitively; since(), not_applicable() and
  pytest.raises replaced by plain equivalents (REPLACEMENTS);
- the failing arguments: the test id's parameters, or Hypothesis' failing example;
- for a failure that happens only after other tests, the bodies of those tests first;
- a main that runs all of it on the device, then on the CPU (each from the seeded start state
  every conformance test gets), prints what each assert_close compared on both, and the
  expected value, and exits 1 while the device run fails.

`call_spec(...)` is what the script is made from; it is JSON, so the xdist controller can
build the script of an order-dependent failure from the specs its workers recorded.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import math
import re
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

_FAILING_CASE = re.compile(
    r"(?:Failing (?:explicit )?(?:test case|example)|Falsifying (?:explicit )?example): "
    r"\w+\((.*)\)\s*$", re.S)
_TORCH_DEVICE = re.compile(r"\bdevice\(type='([^']+)'(?:, index=(\d+))?\)")

#: Imports a reproducer never carries: the harness and the test machinery.
_DROPPED = ("torchconform", "hypothesis", "pytest", "_pytest", "packaging")
#: Names used only by decorators or by the harness.
_IGNORED = {"behavior", "given", "example", "settings", "st", "strategies", "assume", "note",
            "self", "True", "False", "None"}

#: Plain stand-ins for torchconform and pytest helpers that talk to the test runner.
REPLACEMENTS = {
    "since": '''
def _release(version):
    return tuple(int(p) for p in re.findall(r"\\d+", str(version).split("+")[0])[:3])


def since(version):
    """torchconform.since: True when the installed torch has `version`'s behavior."""
    return _release(torch.__version__) >= _release(version)
''',
    "torch_at_least": '''
def torch_at_least(version):
    return tuple(int(p) for p in re.findall(r"\\d+", torch.__version__.split("+")[0])[:3]) >= (
        tuple(int(p) for p in re.findall(r"\\d+", str(version))[:3]))
''',
    "TORCH_VERSION": "TORCH_VERSION = str(torch.__version__)\n",
    "not_applicable": '''
class NotApplicable(Exception):
    pass


def not_applicable(reason):
    raise NotApplicable(reason)
''',
    # assert_close reports each comparison to the differential: here, to the script's record.
    "differential": '''
class differential:
    """Where assert_close reports what it compared (torchconform.differential)."""
    seen = []

    @staticmethod
    def observe(what, dtype, got, want, bound, ok):
        differential.seen.append((what, got.copy(), want.copy(), bound, bool(ok)))
''',
    "pytest": '''
class pytest:
    """pytest.raises without pytest."""

    @staticmethod
    @contextlib.contextmanager
    def raises(expected, match=None):
        try:
            yield
        except expected as exc:
            if match is not None and not re.search(match, str(exc)):
                raise AssertionError(f"{exc!r} does not match {match!r}") from exc
        else:
            raise AssertionError(f"DID NOT RAISE {expected}")
''',
}


def _defined_names(node: ast.stmt) -> Set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _free_names(node: ast.AST, skip_decorators: bool = False) -> Set[str]:
    """The names `node` reads from outside: not those a function (or lambda, or
    comprehension) inside it binds, its parameters and local assignments, which must never
    be resolved against module-level definitions of the same name. Annotations are skipped:
    a script has `from __future__ import annotations`."""
    found: Set[str] = set()

    def visit(current: ast.AST, bound: frozenset, top: bool = False) -> None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not (top and skip_decorators):
                for decorator in getattr(current, "decorator_list", ()):
                    visit(decorator, bound)
            for default in current.args.defaults + [d for d in current.args.kw_defaults if d]:
                visit(default, bound)
            local = bound | _bound_in(current)
            for statement in (current.body if isinstance(current.body, list)
                              else [current.body]):
                visit(statement, local)
            return
        if isinstance(current, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            bound = bound | {n.id for g in current.generators for n in ast.walk(g.target)
                             if isinstance(n, ast.Name)}
        elif isinstance(current, ast.ClassDef) and top and skip_decorators:
            for child in current.bases + current.keywords + current.body:
                visit(child, bound)
            return
        if isinstance(current, ast.Name) and not isinstance(current.ctx, ast.Store):
            if current.id not in bound:
                found.add(current.id)
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, ast.arguments):
                visit(child, bound)

    visit(node, frozenset(), top=True)
    return found


def _bound_in(function: ast.AST) -> frozenset:
    """The names local to a function or lambda: parameters, assignments, imports, nested
    definitions (minus `global`/`nonlocal` ones)."""
    arguments = function.args
    names = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
    names |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    declared: Set[str] = set()
    for statement in (function.body if isinstance(function.body, list) else [function.body]):
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {a.asname or a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                declared |= set(node.names)
    return frozenset(names - declared)


def _attributes_of(node: ast.AST, name: str) -> Set[str]:
    """X for every `name.X` in node."""
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == name}


def _used_bare(node: ast.AST, name: str) -> bool:
    """Whether node uses `name` other than as `name.X` (so any of its attributes may be)."""
    names = sum(1 for n in ast.walk(node) if isinstance(n, ast.Name) and n.id == name)
    return names > sum(1 for n in ast.walk(node) if isinstance(n, ast.Attribute)
                       and isinstance(n.value, ast.Name) and n.value.id == name)


def _import_module_name(node: ast.ImportFrom, package: str) -> str:
    if node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        return f"{base}.{node.module}" if node.module else base
    return node.module or ""


def _dropped(module: str) -> bool:
    return module.split(".")[0] in _DROPPED


class _Source:
    """One parsed module: top-level definitions and where its imported names come from."""

    def __init__(self, text: str, package: str) -> None:
        self.text = text
        self.tree = ast.parse(text)
        self.definitions: Dict[str, ast.stmt] = {}
        self.imports: Dict[str, Tuple[str, Optional[str], ast.stmt]] = {}  # name -> (mod, attr)
        for node in self.tree.body:
            for name in _defined_names(node):
                self.definitions.setdefault(name, node)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0], None, node)
            elif isinstance(node, ast.ImportFrom):
                module = _import_module_name(node, package)
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (module, alias.name, node)

    def segment(self, node: ast.AST) -> str:
        """The statement's source, decorators (@dataclass) included."""
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            lines = self.text.splitlines()
            return "\n".join(lines[decorators[0].lineno - 1:node.end_lineno])
        return ast.get_source_segment(self.text, node)


class _Inliner:
    """Collects, in dependency order, the torchconform definitions a script needs, and the
    plain imports (numpy, torch, stdlib) they rely on."""

    def __init__(self) -> None:
        self.sources: Dict[str, _Source] = {}
        self.blocks: List[str] = []
        self.imports: List[str] = []
        self.done: Set[Tuple[str, str]] = set()
        self.replaced: Set[str] = set()
        self.namespaces: Dict[str, Set[str]] = {}

    def source(self, module: str) -> Optional[_Source]:
        if module not in self.sources:
            try:
                spec = importlib.util.find_spec(module)
                text = Path(spec.origin).read_text(encoding="utf-8")
                package = module if spec.origin.endswith("__init__.py") else module.rpartition(
                    ".")[0]
                self.sources[module] = _Source(text, package)
            except (ImportError, AttributeError, TypeError, OSError, SyntaxError, ValueError):
                self.sources[module] = None
        return self.sources[module]

    def need(self, module: str, name: str, uses: Optional[ast.AST] = None) -> None:
        """Make `name` of torchconform module `module` available under that name."""
        if name in REPLACEMENTS:
            self.replace(name)
            return
        if (module, name) in self.done or name in _IGNORED:
            return
        self.done.add((module, name))
        source = self.source(module)
        if source is None:
            return
        if name in source.definitions:
            node = source.definitions[name]
            self.uses(source, module, node)
            self.blocks.append(source.segment(node))
        elif name in source.imports:
            target, attr, statement = source.imports[name]
            self.imported(target, attr, name, statement, source, uses)
        else:  # a submodule used as a namespace (`from torchconform import oracles`)
            self.namespace(f"{module}.{name}", name, uses)

    def namespace(self, module: str, alias: str, uses: Optional[ast.AST]) -> None:
        if self.source(module) is None:
            return
        wanted = _attributes_of(uses, alias) if uses is not None else set()
        if uses is not None and _used_bare(uses, alias):  # getattr(oracles_optim, name)
            wanted |= {name for name in self.source(module).definitions
                       if not name.startswith("_")}
        for attr in sorted(wanted):
            self.need(module, attr)
        self.namespaces.setdefault(alias, set()).update(wanted)

    def imported(self, target: str, attr: Optional[str], name: str, statement: ast.stmt,
                 source: _Source, uses: Optional[ast.AST]) -> None:
        if target.split(".")[0] == "torchconform":
            if attr is None or self.source(f"{target}.{attr}") is not None:
                self.namespace(target if attr is None else f"{target}.{attr}", name, uses)
                if name in REPLACEMENTS:
                    self.replace(name)
            else:
                self.need(target, attr, uses)
        elif not _dropped(target):
            text = source.segment(statement)
            if text not in self.imports and not text.startswith("from __future__"):
                self.imports.append(text)

    def uses(self, source: _Source, module: str, node: ast.AST) -> None:
        for used in sorted(_free_names(node) - _defined_names(node)):
            if used in source.definitions or used in source.imports:
                self.need(module, used, node)

    def replace(self, name: str) -> None:
        if name not in self.replaced:
            self.replaced.add(name)
            self.blocks.append(REPLACEMENTS[name].strip("\n"))

    def text(self) -> str:
        parts = [b.rstrip() + "\n" for b in self.blocks]
        for alias, attrs in sorted(self.namespaces.items()):
            if attrs and alias not in self.replaced:
                fields = ", ".join(f"{a}={a}" for a in sorted(attrs))
                parts.append(f"{alias} = types.SimpleNamespace({fields})\n")
        return "\n\n".join(parts)


# -- the failing call ------------------------------------------------------------------------

class Unrenderable(ValueError):
    """A failing argument with no Python source a script can evaluate (an object whose repr
    is `<...>`, a lambda whose source cannot be told apart from others on its line, ...)."""


def render_arguments(values: Dict[str, Any]) -> str:
    """`name=<source>` per argument, one per line: the body of the script's dict(...).
    Raises Unrenderable (or what reading a value raises) when a value has no source."""
    return ",\n".join(f"{name}={source_of(value, name)}" for name, value in values.items())


def item_spec(item: Any, notes: List[str] = (), example: Optional[Dict[str, Any]] = None,
              ) -> Dict[str, Any]:
    """call_spec of a collected test: its file, function and item_params; `example` (a
    Hypothesis example's arguments) is cut to the drawn ones, fixtures come from the script."""
    params = item_params(item)
    if example is not None:
        example = {k: v for k, v in example.items() if k not in item.funcargs or k in params}
    return call_spec(Path(str(item.path)), getattr(item, "originalname", item.name), params,
                     list(notes), example)


def item_params(item: Any) -> Dict[str, Any]:
    """The arguments a script gives a test besides the drawn ones: its id's parameters, and
    the mode fixture where the run did not parametrize it (eager only: Mode('eager'))."""
    callspec = getattr(item, "callspec", None)
    params = dict(callspec.params) if callspec else {}
    if "mode" in getattr(item, "fixturenames", ()) and "mode" not in params:
        params["mode"] = "eager"
    return params


def call_spec(path: Path, function: str, params: Dict[str, Any],
              notes: List[str], example: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What a reproducer replays of one test, as JSON: its file and function, the Python
    source of each argument (the test id's parameters, or Hypothesis' failing example), the
    device, and Hypothesis' reproduce_failure hint if any. `arguments` is None (and
    `unrenderable` says why) when an argument has no source that parses as Python: then there
    is no reproducer rather than a script that fails for its own reasons. `example`: the
    failing example's own values (copied before the body ran), written out in full where
    Hypothesis' printout abbreviates (numpy prints `...` for arrays over 1000 elements)."""
    arguments = None
    unrenderable = None
    if example is not None:
        try:
            arguments = render_arguments({**params, **example})
        except Exception:  # Unrenderable, or a value that cannot be read (a meta tensor)
            arguments = None
    for note in notes if arguments is None else ():
        match = _FAILING_CASE.search(note.strip())
        if match:
            body = _TORCH_DEVICE.sub(
                lambda m: f"torch.device('{m.group(1)}'{', ' + m.group(2) if m.group(2) else ''})",
                match.group(1))
            arguments = textwrap.dedent(body).strip().rstrip(",")
    if arguments is None:
        try:
            arguments = render_arguments(params)
        except Exception as exc:  # Unrenderable, or a value that cannot be read
            arguments, unrenderable = None, str(exc) or type(exc).__name__
    if arguments is not None and not _parses(arguments):
        arguments, unrenderable = None, f"the failing case is not Python: {arguments}"
    elif arguments is not None and _abbreviated(arguments):
        arguments, unrenderable = None, "the failing case was printed abbreviated (`...`)"
    hints = [line.strip() for note in notes for line in note.splitlines()
             if "reproduce_failure" in line]
    spec = {"path": str(path), "function": function, "arguments": arguments,
            "device": str(params.get("device", "cpu")), "hints": hints}
    if unrenderable is not None:
        spec["unrenderable"] = unrenderable
    return spec


def _abbreviated(arguments: str) -> bool:
    """Whether the printout elides values (`...`, numpy's summary of a large array): it
    parses, as Ellipsis, but is not the failing case."""
    tree = ast.parse(f"f(\n{arguments}\n)")
    return any(isinstance(node, ast.Constant) and node.value is Ellipsis
               for node in ast.walk(tree))


def _parses(arguments: str) -> bool:
    try:
        ast.parse(f"f(\n{arguments}\n)")
    except SyntaxError:
        return False
    return True


#: Names the reprs in a Hypothesis failing example (text we cannot re-render) may use:
#: numpy's array reprs (`array([1.], dtype=float32)`) and non-finite floats. Bound inside
#: `_arguments()` only, so they shadow nothing the test or its helpers use.
_REPR_NAMES = {
    "array": "from numpy import array",
    "inf": "inf = float('inf')",
    "nan": "nan = float('nan')",
    **{name: f"from numpy import {name}" for name in (
        "float16", "float32", "float64", "longdouble", "complex64", "complex128", "int8",
        "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool_")},
}


def _repr_bindings(arguments: Optional[str]) -> List[str]:
    """The lines `_arguments()` needs for the reprs in `arguments` (see _REPR_NAMES)."""
    if not arguments:
        return []
    try:
        used = _free_names(ast.parse(f"f(\n{arguments}\n)"))
    except SyntaxError:
        return []
    return [_REPR_NAMES[name] + "  # a repr in the failing case"
            for name in sorted(used & set(_REPR_NAMES))]


def source_of(value: Any, name: str = "") -> str:
    """Python source that evaluates, in the script, to `value` (a test id's parameter).
    Raises Unrenderable when there is none."""
    if name == "mode":  # the mode fixture's object (torchconform.modes.Mode, inlined)
        return f"Mode({str(value)!r})"
    if type(value).__name__ == "device" and type(value).__module__.startswith("torch"):
        return f"torch.device({str(value)!r})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"  # repr() gives `inf`/`nan`: names, not literals
    if type(value).__module__ == "numpy":
        return _numpy_source(value)
    import torch

    if isinstance(value, torch.Tensor) and value.layout == torch.strided:
        return (f"torch.tensor({source_of(value.tolist())}, dtype={value.dtype}, "
                f"requires_grad={value.requires_grad})")
    if isinstance(value, (list, tuple, set, frozenset)) and type(value) in (
            list, tuple, set, frozenset):
        items = [source_of(v) for v in value]
        if isinstance(value, list):
            return f"[{', '.join(items)}]"
        if isinstance(value, tuple):
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        return f"{type(value).__name__}([{', '.join(items)}])"
    if type(value) is dict:
        return "{" + ", ".join(f"{source_of(k)}: {source_of(v)}"
                               for k, v in value.items()) + "}"
    if inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
        return _callable_source(value)
    text = repr(value)
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        raise Unrenderable(f"{name or 'a value'}={text} has no Python source") from None
    return text


def _numpy_dtype(dtype: Any) -> str:
    """np.float32, or np.dtype('bool') where numpy has no attribute of the dtype's name
    (np.bool exists only since numpy 2)."""
    import numpy as np

    return f"np.{dtype.name}" if hasattr(np, dtype.name) else f"np.dtype({dtype.str!r})"


def _numpy_source(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        items = source_of(value.tolist())
        return f"np.array({items}, dtype={_numpy_dtype(value.dtype)})"
    if isinstance(value, np.generic) and hasattr(np, value.dtype.name):
        return f"np.{value.dtype.name}({source_of(value.item())})"
    if isinstance(value, np.dtype):
        return f"np.dtype({value.name!r})"
    if isinstance(value, np.ufunc) and getattr(np, value.__name__, None) is value:
        return f"np.{value.__name__}"
    text = repr(value)
    raise Unrenderable(f"{text} has no Python source")


def _callable_source(value: Any) -> str:
    """A function or class parameter: a lambda by its source text, a function or class of a
    test module by its name (the script then includes its definition: _Unit resolves the
    names the arguments use), one of a library by its dotted path."""
    qualname = getattr(value, "__qualname__", "")
    module = getattr(value, "__module__", None) or ""
    if getattr(value, "__name__", "") == "<lambda>":
        return _lambda_source(value)
    if "<" in qualname:  # defined inside a function: no name reaches it from module level
        raise Unrenderable(f"{qualname} is local to a function")
    target = sys.modules.get(module)
    if target is None and inspect.isfunction(value):  # a module imported by path
        target = types.SimpleNamespace(**dict(
            value.__globals__, __file__=value.__code__.co_filename))
    resolved = target
    for part in qualname.split("."):
        resolved = getattr(resolved, part, None)
    if resolved is not value:
        raise Unrenderable(f"{module}.{qualname} does not name {value!r}")
    if module == "builtins":
        return qualname
    root = module.split(".")[0]
    if root == "torch":  # the shortest package path that names it: torch.optim.Adam
        parts = module.split(".")
        for end in range(1, len(parts) + 1):
            package = sys.modules.get(".".join(parts[:end]))
            if package is not None and getattr(package, qualname, None) is value:
                return f"{'.'.join(parts[:end])}.{qualname}"
        raise Unrenderable(f"{module}.{qualname} is not reachable from `import torch`")
    if root == "numpy" and getattr(sys.modules["numpy"], qualname, None) is value:
        return f"np.{qualname}"
    path = getattr(target, "__file__", "") or ""
    if "." not in qualname and (root == "torchconform" or (
            "site-packages" not in path and root not in _stdlib())):
        return qualname  # the test module's own definition, or torchconform's (inlined)
    return f"__import__({module!r}, fromlist=['_']).{qualname}"


def _stdlib() -> Set[str]:
    return set(getattr(sys, "stdlib_module_names", ()))


def _lambda_source(value: Any) -> str:
    """A lambda's source text when its lines hold exactly one lambda; free variables of an
    enclosing function have no source."""
    if value.__code__.co_freevars:
        raise Unrenderable(f"a lambda closing over {', '.join(value.__code__.co_freevars)}")
    try:
        filename = inspect.getsourcefile(value)
        text = Path(filename).read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError, ValueError) as exc:
        raise Unrenderable(f"a lambda without readable source ({exc})") from None
    line = value.__code__.co_firstlineno
    found = [node for node in ast.walk(tree)
             if isinstance(node, ast.Lambda) and node.lineno == line]
    if len(found) != 1:
        raise Unrenderable(f"{len(found)} lambdas on line {line} of {filename}: "
                           f"which one is ambiguous")
    return ast.get_source_segment(text, found[0])


class _Unit:
    """One test of a script: its module's plain imports, the helpers it uses and its
    function, with the torchconform names it uses registered in the inliner."""

    def __init__(self, spec: Dict[str, Any], inliner: _Inliner) -> None:
        path = Path(spec["path"])
        text = path.read_text(encoding="utf-8")
        source = _Source(text, "")
        self.function = spec["function"]
        target = source.definitions.get(self.function)
        if not isinstance(target, ast.FunctionDef):
            raise LookupError(f"{self.function} not found in {path}")
        self.spec = spec
        needed: List[ast.stmt] = []
        roots: List[ast.AST] = [target]
        arguments = []  # the failing case, and each recorded example of a preceding test
        for case in [spec["arguments"], *[e for e in spec.get("examples") or [] if e]]:
            try:
                arguments.append(ast.parse(f"f(\n{case}\n)"))
            except SyntaxError:
                pass
        roots += arguments
        # Free names only: the test's parameters and locals (a parameter `etas` next to a
        # module-level strategy `etas = st.tuples(...)`) are not the module's definitions.
        pending = set().union(*(_free_names(r, skip_decorators=True) for r in roots))
        # A module-level statement that needs Hypothesis (a strategy) cannot run in a script.
        # (torchconform's names are inlined, pytest's replaced.)
        harness = {name for name, (module, _, _) in source.imports.items()
                   if _dropped(module) and module.split(".")[0] != "torchconform"
                   and name not in REPLACEMENTS}
        seen: Set[str] = set()
        torchconform_names: Dict[str, ast.AST] = {}
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            node = source.definitions.get(name)
            if node is not None and node is not target and not isinstance(
                    node, (ast.Import, ast.ImportFrom)):
                uses = _free_names(node, skip_decorators=True)
                if node not in needed and not uses & harness:
                    needed.append(node)
                    pending |= uses
            elif name in source.imports:
                module, attr, statement = source.imports[name]
                if module.split(".")[0] == "torchconform":
                    torchconform_names[name] = (module, attr)
        needed.sort(key=lambda n: n.lineno)
        everything = ast.Module(body=needed + [target], type_ignores=[])
        for name, (module, attr) in sorted(torchconform_names.items()):
            if attr is None:
                inliner.namespace(module, name, everything)
            else:
                inliner.imported(module, attr, name, source.imports[name][2], source,
                                 everything)
        self.imports = [source.segment(n) for n in source.tree.body
                        if isinstance(n, (ast.Import, ast.ImportFrom))
                        and not _dropped(n.module if isinstance(n, ast.ImportFrom)
                                         else n.names[0].name)
                        and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
        # Names the failing example's reprs use (TreeSpec, ...): from torchconform's modules.
        if arguments:
            for name in sorted(set().union(*map(_free_names, arguments))
                               - set(source.definitions)
                               - set(source.imports) - set(_REPR_NAMES)
                               - {"torch", "np", "f"}):
                for module_name, module in list(sys.modules.items()):
                    if module_name.startswith("torchconform") and hasattr(module, name):
                        inliner.need(getattr(getattr(module, name), "__module__", module_name)
                                     or module_name, name)
                        break
        self.uses_pytest = "pytest" in set().union(
            *(_free_names(n, skip_decorators=True) for n in needed + [target]))
        if self.uses_pytest:
            inliner.replace("pytest")
        self.code = "\n\n\n".join(
            [source.segment(n) for n in needed] + [_without_decorators(target, text)])


def _preceding_def(number: int, unit: _Unit) -> str:
    """`_preceding_<number>(device)`: one test that ran before the failing one, called with
    each example it ran (a Hypothesis test's examples as recorded on the rerun that made the
    failure show, else its test id's parameters once)."""
    examples = unit.spec.get("examples") or [unit.spec["arguments"]]
    kept = [e for e in examples if e is not None]
    defs, calls = [], []
    for k, text in enumerate(kept, 1):
        bindings = "".join(f"        {line}\n" for line in _repr_bindings(text))
        defs.append(f"    def _example_{k}():\n{bindings}        return dict(\n"
                    f"{textwrap.indent(text, ' ' * 12)}\n        )\n")
        calls.append(f"_example_{k}")
    if not kept:  # every recorded example lacked Python source: the script says so
        defs.append("    def _example_1():\n        raise _CannotReplay(\"no example of "
                    f"{unit.function} has Python source\")\n")
        calls.append("_example_1")
    left_out = len(examples) - len(kept)
    body = "\n".join(unit.imports + ["", unit.code, ""])
    many = f" ({len(kept)} examples)" if len(kept) > 1 else ""
    return (f"def _preceding_{number}(device):\n"
            f"    \"\"\"{Path(unit.spec['path']).name}::{unit.function}{many}, which ran "
            f"before it.\"\"\"\n"
            + (f"    # {left_out} recorded example(s) had no Python source: left out\n"
               if left_out else "")
            + "\n".join(defs) + "\n"
            + textwrap.indent(body, "    ") + "\n"
            f"    for _arguments in ({', '.join(calls)},):\n"
            f"        _call({unit.function}, _arguments, device)")


def _without_decorators(node: ast.FunctionDef, source: str) -> str:
    lines = source.splitlines()
    return "\n".join(lines[node.lineno - 1:node.end_lineno])  # lineno is the `def` line


#: The script's first lines after its imports of the standard library: a failure of the
#: script itself before the test runs (a module that does not import, a missing name at
#: module level) exits 2, not with Python's 1.
_GUARD = '''
_SCRIPT = sys._getframe().f_code.co_filename  # this script's code, to tell its own errors


def _could_not_replay(kind, value, tb):
    traceback.print_exception(kind, value, tb)
    print(f"could not replay: {kind.__name__}: {value} (the script's own failure, "
          "not the device's)")
    sys.exit(2)


sys.excepthook = _could_not_replay
'''

_MAIN = '''

def _start_state():
    """The start state of every conformance test: seeded RNGs, no TF32."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False


class _CannotReplay(Exception):
    """The recorded arguments do not build, or do not fit the test's signature."""


def _describe(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _call(test, arguments, device):
    """test(**arguments(), device=device); _CannotReplay if that call cannot be made."""
    try:
        kwargs = dict(arguments(), device=torch.device(device))
        inspect.signature(test).bind(**kwargs)
    except Exception as exc:
        raise _CannotReplay(f"{{test.__name__}}: {{_describe(exc)}}") from exc
    return test(**kwargs)


def _script_error(exc):
    """Whether `exc` is this script's own failure, not the test's: arguments that cannot be
    replayed, or a name, module or module attribute the script's own code lacks (raised in
    this file, not inside torch or the backend)."""
    if isinstance(exc, _CannotReplay):
        return True
    if isinstance(exc, AttributeError) and not re.match(
            r"(module |'types.SimpleNamespace' object)", str(exc)):
        return False
    if not isinstance(exc, (NameError, ImportError, SyntaxError, AttributeError)):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename == _SCRIPT


def _run(device):
    """The test on `device`: (outcome, what each assert_close compared, the script's own
    failures, preceding tests it could not replay)."""
    _start_state()
    own, skipped = [], []
    for before in PRECEDING:  # the tests that ran before it and make it fail
        try:
            before(torch.device(device))
        except Exception as exc:  # it passed in the suite; say so if it cannot here
            print(f"{{before.__doc__}}: raised {{exc!r}}")
            if _script_error(exc):  # (a fixture the script lacks, ...)
                skipped.append(f"{{before.__doc__}}: {{_describe(exc)}}")
    _start_state()
    del differential.seen[:]  # the failing test's comparisons only, not its predecessors'
    try:
        _call({function}, _arguments, device)
        outcome = "passed"
    except Exception as exc:  # what failed is the result here
        outcome = "failed: " + _describe(exc)
        if _script_error(exc):
            own.append(_describe(exc))
    return outcome, list(differential.seen), own, skipped


def _at(array, index):
    try:
        return array.item() if array.ndim == 0 else array[index]
    except IndexError:  # the two runs compared values of other shapes here
        return "(other shape)"


def _show(device_seen, cpu_seen):
    for k in range(max(len(device_seen), len(cpu_seen))):
        dev = device_seen[k] if k < len(device_seen) else None
        ref = cpu_seen[k] if k < len(cpu_seen) else None
        what, _, want, bound, _ = dev or ref
        worst = dev if dev is not None and not dev[4] else ref or dev
        index = ()
        if worst[1].ndim and worst[1].shape == worst[2].shape:
            excess = np.abs(worst[1] - worst[2]) - np.broadcast_to(worst[3], worst[1].shape)
            index = np.unravel_index(np.argmax(np.nan_to_num(excess, nan=np.inf)),
                                     excess.shape)
        verdict = ("not reached on " + DEVICE if dev is None else
                   "device departs from CPU and oracle" if not dev[4] and ref and ref[4] else
                   "device departs from the oracle; no CPU record" if not dev[4] and not ref
                   else "both depart from the oracle" if not dev[4] else "ok")
        print(f"{{what}} at {{tuple(int(i) for i in index)}}: "
              f"device {{_at(dev[1], index) if dev else 'n/a'}}, "
              f"cpu {{_at(ref[1], index) if ref else 'n/a'}}, "
              f"expected {{_at(want, index)}}  ({{verdict}})")


if __name__ == "__main__":
    device_outcome, device_seen, device_own, skipped = _run(DEVICE)
    cpu_outcome, cpu_seen, cpu_own, _ = _run("cpu")
    _show(device_seen, cpu_seen)
    print(f"device {{DEVICE}}: {{device_outcome}}")
    print(f"cpu: {{cpu_outcome}}")
    if device_own or cpu_own:  # no evidence either way: exit 2, never 1
        print(f"could not replay: {{(device_own + cpu_own)[0]}} (the script's own failure, "
              "not the device's)")
        sys.exit(2)
    if device_outcome != "passed":
        print("REPRODUCED: " + (
            "both depart from the oracle: the test or oracle is wrong"
            if cpu_outcome != "passed" else
            "the device departs from the CPU and the oracle"
            if any(not seen[4] for seen in device_seen) else
            "the device fails where the CPU passes")
            + (f" ({{len(skipped)}} preceding test(s) could not be replayed, and were not "
               "needed)" if skipped else ""))
        sys.exit(1)
    if skipped:  # it may need one of them: no evidence either way
        print(f"could not replay: {{len(skipped)}} preceding test(s), e.g. {{skipped[0]}}; "
              "without them the device passes")
        sys.exit(2)
    print("did not reproduce: the device passes")
'''


#: For a failure that crashed its interpreter: the script runs itself in a child process, so
#: that a crash (a signal, not an exit status) reads as reproduced, with its Python stack.
_CRASH_GUARD = """
import os  # noqa: E402


if __name__ == "__main__" and "--in-child" not in sys.argv and os.path.isfile(_SCRIPT):
    import signal
    import subprocess

    print("the failure this reproduces crashed the interpreter: running it in a child process")
    sys.stdout.flush()
    child = subprocess.run([sys.executable, *(["-I"] if sys.flags.isolated else []), _SCRIPT,
                            "--in-child"])
    if child.returncode < 0:  # killed by a signal (POSIX)
        try:
            name = signal.Signals(-child.returncode).name
        except ValueError:  # a real-time signal has no name
            name = f"signal {-child.returncode}"
        print(f"REPRODUCED: the run crashed the interpreter ({name}; its Python stack is "
              "above)")
        sys.exit(1)
    sys.exit(child.returncode)
import faulthandler  # noqa: E402

faulthandler.enable()  # the Python stack of a native crash, on stderr
"""


def _device_preamble(device: str) -> List[str]:
    """What the device's adapter says a script needs to use it (torch_xla's import, ...)."""
    from ..adapters import adapter_for

    try:
        return list(adapter_for(device).script_preamble())
    except Exception:  # an unknown or broken device: the script shows the failure itself
        return []


def reproduction(spec: Dict[str, Any], seed: int, torch_version: str,
                 backends: List[str] = (), preceding: List[Dict[str, Any]] = (),
                 nodeid: str = "", crashed: bool = False) -> Optional[str]:
    """The standalone script for the failing test `spec` (call_spec), after the tests of
    `preceding` (specs, in run order) for an order-dependent failure. `crashed`: the failure
    killed the interpreter (the script then runs in a child and reports a crash as exit 1).
    None if a source cannot be read."""
    if spec.get("arguments") is None or any(p.get("arguments") is None for p in preceding):
        return None  # an argument has no Python source (call_spec's `unrenderable`)
    inliner = _Inliner()
    inliner.replace("differential")  # the script's record of comparisons, used by its main
    try:
        unit = _Unit(spec, inliner)
        before = [_Unit(other, inliner) for other in preceding]
    except (OSError, SyntaxError, LookupError):
        return None
    imports: List[str] = []
    base = {"import numpy as np", "import torch", "from __future__ import annotations"}
    for line in unit.imports + [i for u in before for i in u.imports] + inliner.imports:
        if line not in imports and line not in base:
            imports.append(line)
    preceding_defs = [_preceding_def(number, other) for number, other in enumerate(before, 1)]
    title = nodeid or f"{Path(spec['path']).name}::{spec['function']}"
    parts = [
        f"# Reproduces {title}",
        f"# (torch {torch_version}) without torchconform, pytest or Hypothesis: runs it on the",
        "# device, then on the CPU, from the same seeded start state, and prints what each",
        "# comparison saw. Exit status:",
        "#   0  the device passes: it does not reproduce here;",
        "#   1  REPRODUCED: the device run fails (if the CPU run fails too, both depart from",
        "#      the oracle: the test or oracle is wrong);",
        "#   2  could not replay: the script itself failed (an import, a name or a module",
        "#      attribute its own code lacks, arguments that do not fit the test), on either",
        "#      run: no evidence about the device.",
        "from __future__ import annotations",
        "",
        "import contextlib",
        "import inspect",
        "import random",
        "import re",
        "import sys",
        "import traceback",
        "import types",
        _GUARD,
        *([_CRASH_GUARD.strip() + "\n"] if crashed else []),
        "import numpy as np",
        "import torch",
        *[f"import {b}" for b in backends],
        *_device_preamble(spec["device"]),
        *imports,
        "",
        f"DEVICE = {spec['device']!r}",
        f"SEED = {seed}",
        "",
        "# -- torchconform helpers the test uses, inlined " + "-" * 44,
        "",
        inliner.text(),
        "",
        "# -- the test " + "-" * 78,
        "",
        unit.code,
        "",
        "",
        "def _arguments():",
        "    \"\"\"The failing case: the test id's parameters or Hypothesis' example.\"\"\"",
        *[f"    {line}" for line in _repr_bindings(spec["arguments"])],
        "    return dict(",
        textwrap.indent(spec["arguments"], " " * 8),
        "    )",
        "",
        "",
        *[d + "\n\n" for d in preceding_defs],
        f"PRECEDING = [{', '.join(f'_preceding_{n}' for n in range(1, len(before) + 1))}]",
        _MAIN.format(function=spec["function"]).rstrip(),
    ]
    script = "\n".join(parts) + "\n"
    try:  # the last guard: a script that does not compile would exit 1 for its own reason
        compile(script, "reproduce.py", "exec")
    except SyntaxError:
        return None
    return script
