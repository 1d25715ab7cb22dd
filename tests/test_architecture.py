"""The package's shape, read with `ast` (docs/architecture.md): imports run one way (no
cycle between modules, nothing in core/ importing outside it, no runtime module importing
synth/), no class over 250 lines and no function over 60, no SQL outside store/, and a bare
`import adw_patternd` loads no store and no sqlite3."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "daemon" / "adw_patternd"
NAME = "adw_patternd"
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b")
REFERENCE = ("record_pattern_occurrence", "update_pattern_statistics", "process_and_persist_workflow",
             "batch_process_workflows", "sync_workflow_history")

# Functions over the limit in files another change is rewriting now (the lead empties this
# list when that lands): "module:qualified name".
TOO_LONG_FOR_NOW: set[str] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join([NAME, *parts])] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST):
    """Every import statement, at any depth (function-level imports too), except those under
    `if TYPE_CHECKING:`, which never run."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            yield from (n for stmt in child.orelse for n in _import_nodes_of(stmt))
            continue
        yield from _import_nodes_of(child)


def _import_nodes_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    yield from _import_nodes(node)


def _known(name: str) -> str | None:
    """The package module ``name`` is, or lies in (an imported function's module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports (relative imports resolved)."""
    base = module if _is_package(module) else module.rpartition(".")[0]
    found = set()
    for node in _import_nodes(TREES[module]):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                anchor = base
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                start = f"{anchor}.{node.module}" if node.module else anchor
            else:
                start = node.module or ""
            # `from . import x` names a module x, or a name in the package: whichever exists.
            targets = [f"{start}.{a.name}" if f"{start}.{a.name}" in MODULES else start for a in node.names]
        for target in targets:
            if target == NAME or target.startswith(NAME + "."):
                known = _known(target)
                if known and known != module:
                    found.add(known)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or _is_package(module) and len(parts) == 2 else ""


def test_the_import_graph_is_read():
    """The check sees the imports it is about (a broken resolver would pass everything)."""
    assert f"{NAME}.engine" in GRAPH[f"{NAME}.sync"]
    assert f"{NAME}.core.model" in GRAPH[f"{NAME}.core.rules"]
    assert f"{NAME}.live.daemon" in GRAPH[f"{NAME}.cli"]  # a function-level import
    assert f"{NAME}.store.db" in GRAPH[f"{NAME}.store"]


def test_no_import_cycle():
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            # A package imports its own modules, and a module in it runs the package's
            # __init__ first: that pair is how packages work, not a cycle between rooms.
            if target == module.rpartition(".")[0]:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


def test_core_imports_only_core():
    outside = {module: sorted(t for t in targets if _room(t) != "core")
               for module, targets in GRAPH.items() if _room(module) == "core"}
    assert {m: t for m, t in outside.items() if t} == {}


def test_no_runtime_module_imports_synth():
    found = {module: sorted(t for t in targets if _room(t) == "synth")
             for module, targets in GRAPH.items() if _room(module) != "synth"}
    assert {m: t for m, t in found.items() if t} == {}


def _lengths():
    for module, tree in TREES.items():
        def walk(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    yield module, name, child, child.end_lineno - child.lineno + 1
                    yield from walk(child, name + ".")
                else:
                    yield from walk(child, prefix)

        yield from walk(tree, "")


# The layers, from the command line down (docs/architecture.md): a module imports its own
# layer and those below it, never one above. Keyed by room (subpackage) or top-level module.
LAYERS = (
    ("core",),
    ("config", "sources"),
    ("store",),
    ("engine", "roots", "sync", "sync_workers"),
    ("outputs",),
    ("live",),
    ("", "__main__", "cli", "check_files", "compat", "synth"),  # "": the package's own face
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _layer_of(module: str) -> str:
    return _room(module) or module.removeprefix(NAME).lstrip(".")


def test_every_module_has_a_layer():
    assert sorted({_layer_of(m) for m in MODULES} - set(RANK)) == []


def test_imports_run_down_the_layers():
    upward = [f"{m} -> {t}" for m, targets in GRAPH.items() for t in sorted(targets)
              if RANK[_layer_of(t)] > RANK[_layer_of(m)]]
    assert upward == []


def test_no_class_over_250_lines():
    long = [f"{m}:{n} {lines}" for m, n, node, lines in _lengths()
            if isinstance(node, ast.ClassDef) and lines > MAX_CLASS_LINES]
    assert long == []


def test_no_function_over_60_lines():
    long = [f"{m}:{n} {lines}" for m, n, node, lines in _lengths()
            if not isinstance(node, ast.ClassDef) and lines > MAX_FUNCTION_LINES
            and f"{m}:{n}" not in TOO_LONG_FOR_NOW]
    assert long == []


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


# Readers of another program's own database (read-only input, not our store): OpenCode keeps
# its sessions in SQLite (issue 33), so its reader's queries are its file format.
FOREIGN_DATABASE_READERS = {"adw_patternd.sources.opencode"}


def test_no_sql_outside_the_store():
    found = []
    for module, tree in TREES.items():
        if _room(module) == "store" or module in FOREIGN_DATABASE_READERS:
            continue
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
                if SQL.search(node.value):
                    found.append(f"{module}:{node.lineno} {node.value[:60]!r}")
    assert found == []


def test_sql_check_sees_sql():
    """The pattern finds the store's own statements (a pattern matching nothing passes all)."""
    store = [node for module, tree in TREES.items() if _room(module) == "store" for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)]
    assert len(store) > 20


def test_the_package_face_is_light():
    """`import adw_patternd` (and its core) loads no store and no sqlite3; the reference
    design's five functions still import from the package."""
    code = ("import sys, adw_patternd, adw_patternd.core.model, adw_patternd.core.rules\n"
            "heavy = sorted(m for m in sys.modules if m.startswith('adw_patternd.store') or m in "
            "('sqlite3', 'adw_patternd.engine', 'adw_patternd.sync', 'adw_patternd.compat'))\n"
            "print(' '.join(heavy) or 'light')\n"
            f"from adw_patternd import {', '.join(REFERENCE)}\n"
            "print(all(callable(f) for f in (" + ", ".join(REFERENCE) + ")))\n"
            "print(sorted(adw_patternd.__all__))\n")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE.parent))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["light", "True", str(sorted(REFERENCE))]


# -- the source interface (issue 33): kinds are named only where they are read ---------------------------------
AGENT_NAMES = re.compile(r"claude|codex|copilot|gemini|qwen|opencode", re.I)
# Where an agent may be named: its reader, the sources of the kinds and the registry of
# kinds (sources/), and synth/, which writes agents' files for the tests and examples (no
# runtime module imports it).
NAMING_ROOMS = {"sources", "synth"}
# Named for other reasons, each said here:
# - config.py: config.yaml's first two keys of session roots (claude_projects, codex_homes),
#   kept working as they are (issue 33), and the Config fields and Root flags that hold them;
# - core/pricing.py: model families priced (claude-*, gpt-5-codex, gemini-*, qwen*): models,
#   not the agents that run them;
# - store/schema.py's migration m012, which created the tables m017 renamed, and m017, which
#   names what it renames: a migration is history and keeps its name and statements (HISTORY).
NAMING_COMPAT = {f"{NAME}.config", f"{NAME}.core.pricing"}
HISTORY = {f"{NAME}.store.schema": ("m012_codex_facts", "m017_cross_file_names")}


def _names_in(tree: ast.AST) -> list[tuple[int, str]]:
    """Identifiers, imported module paths and string literals (docstrings apart: prose)."""
    prose = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        words = []
        if isinstance(node, ast.Name):
            words = [node.id]
        elif isinstance(node, ast.Attribute):
            words = [node.attr]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            words = [node.name]
        elif isinstance(node, ast.arg):
            words = [node.arg]
        elif isinstance(node, ast.alias):
            words = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom):
            words = [node.module or ""]
        elif isinstance(node, ast.keyword):
            words = [node.arg or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            words = [node.value]
        found += [(getattr(node, "lineno", 0), w) for w in words if AGENT_NAMES.search(w)]
    return found


def _history_lines(module: str) -> set[int]:
    """The lines of the functions HISTORY keeps as they were written."""
    return {line for node in ast.walk(TREES[module]) if isinstance(node, ast.FunctionDef)
            and node.name in HISTORY.get(module, ()) for line in range(node.lineno, node.end_lineno + 1)}


def test_no_module_outside_the_sources_names_an_agent():
    named = [f"{m}:{line} {word[:60]!r}" for m, tree in TREES.items()
             if _room(m) not in NAMING_ROOMS and m not in NAMING_COMPAT for line, word in _names_in(tree)
             if line not in _history_lines(m) and word not in HISTORY.get(m, ())]
    assert named == []


def test_history_is_where_it_is_said():
    """Each function HISTORY keeps exists (a renamed one would leave its exception behind)."""
    assert all(len(_history_lines(m)) > 3 for m in HISTORY)


def test_the_agent_check_sees_names():
    """It finds the readers' own names (a pattern matching nothing passes all)."""
    assert len(_names_in(TREES[f"{NAME}.sources.kinds"])) > 6


def test_neither_the_store_nor_the_daemon_imports_a_reader():
    found = [f"{m} -> {t}" for m, targets in GRAPH.items() if _room(m) in ("store", "live")
             for t in sorted(targets) if _room(t) == "sources"]
    assert found == []
