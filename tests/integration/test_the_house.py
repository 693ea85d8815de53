"""The house keeps its shape: every module named in the map, none over 400 lines,
SQL only in the store, the core free of I/O, and no import cycles.

These read the package's own source (no server, no database), so a restructuring
that breaks a rule fails here with the module's name, not in a review.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "maildesk"
MAP = ROOT / "docs" / "architecture.md"
LIMIT = 400
SQL = re.compile(r"^\s*(SELECT\s|INSERT\s+(INTO|OR)\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX|UNIQUE|VIEW|TRIGGER)\s|DROP\s+(TABLE|INDEX)\s|PRAGMA\s)")  # SQL is written in capitals here; prose is not
# What the core may import from the standard library and the package: no socket, file,
# database, process or clock of its own.
CORE_FORBIDDEN = {"sqlite3", "socket", "ssl", "imaplib", "smtplib", "imapclient", "aiosmtplib",
                  "subprocess", "urllib.request", "http.client", "asyncio", "sqlite_utils", "schedule",
                  "shutil", "tempfile", "logging"}
CORE_MAY_USE = ("maildesk.core", "maildesk.config")
PURE_LIBRARY_PARTS = ("aiosmtplib.email",)  # a parser of addresses, no connection


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "shipped" in path.parts:
            continue
        rel = path.relative_to(PACKAGE)
        name = ".".join(("maildesk",) + rel.with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path) -> list[str]:
    """Every module this one imports, at the top or inside a function (a lazy import is still an edge)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from maildesk.core import policy` uses maildesk.core.policy; `from x import name` uses x
            out += [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return out


MODULES = modules()


def test_every_module_is_named_in_the_map():
    text = MAP.read_text(encoding="utf-8")
    missing = [str(p.relative_to(PACKAGE)) for p in MODULES.values()
               if p.name != "__init__.py" and f"`{p.relative_to(PACKAGE)}`" not in text]
    assert missing == [], f"docs/architecture.md does not name: {missing}"


def test_the_map_names_no_module_that_is_gone():
    named = {n for n in re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", MAP.read_text(encoding="utf-8"))
             if not n.startswith("tests/") and not n.startswith("test_")}  # the map also points at tests
    present = {str(p.relative_to(PACKAGE)) for p in MODULES.values()}
    assert sorted(named - present) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_limit(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= LIMIT, f"{name} has {lines} lines"


def _names(node) -> list[str]:
    return [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]


def test_sql_lives_only_in_the_store():
    found = []
    for name, path in MODULES.items():
        if name.startswith("maildesk.store"):
            continue
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("execute", "executemany",
                                                                                  "executescript"):
                found.append(f"{name}:{node.lineno} calls .{node.func.attr}()")
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    i.split(".")[0] in ("sqlite3", "sqlite_utils") for i in _names(node)):
                found.append(f"{name}:{node.lineno} imports SQLite (its specifics stay in the store)")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                found.append(f"{name}:{node.lineno} {node.value.strip()[:40]!r}")
    assert found == []


def test_the_core_does_no_io_and_imports_only_the_core():
    found = []
    for name, path in MODULES.items():
        if not name.startswith("maildesk.core"):
            continue
        for imported in imports(name, path):
            if imported.startswith(PURE_LIBRARY_PARTS):
                continue
            if imported.startswith("maildesk") and not imported.startswith(CORE_MAY_USE):
                found.append(f"{name} imports {imported}")
            elif imported in CORE_FORBIDDEN or imported.split(".")[0] in CORE_FORBIDDEN:
                found.append(f"{name} imports {imported}")
    assert found == []


# Which rooms each room may use: a room stands above what it imports (docs/architecture.md).
GROUND = ("maildesk.config", "maildesk.clock", "maildesk.lock", "maildesk.logs")
MAY_USE = {
    "maildesk.core": ("maildesk.core", "maildesk.config"),
    "maildesk.inbound": ("maildesk.inbound", "maildesk.core") + GROUND,
    "maildesk.outbound": ("maildesk.outbound", "maildesk.core") + GROUND,
    "maildesk.store": ("maildesk.store", "maildesk.core") + GROUND,
    "maildesk.adapters": ("maildesk.adapters", "maildesk.core", "maildesk.inbound", "maildesk.outbound",
                          "maildesk.store", "maildesk.testing.faults") + GROUND,
    "maildesk.service": ("maildesk.service", "maildesk.adapters", "maildesk.core", "maildesk.inbound",
                         "maildesk.outbound", "maildesk.store", "maildesk.testing.faults") + GROUND,
    "maildesk.config": ("maildesk.config",),
    "maildesk.clock": (),
    "maildesk.lock": (),
    "maildesk.logs": (),
}


def test_each_room_uses_only_the_rooms_below_it():
    found = []
    for name, path in MODULES.items():
        room = next((r for r in MAY_USE if name == r or name.startswith(r + ".")), None)
        if room is None:
            continue  # app, daemon, cli and testing stand on top and may use the rest
        for imported in imports(name, path):
            if imported.startswith("maildesk.") and not imported.startswith(MAY_USE[room]):
                found.append(f"{name} imports {imported}")
    assert found == []


def test_no_import_cycles():
    graph = {name: {i for i in imports(name, path) if i in MODULES and i != name}
             for name, path in MODULES.items()}
    # a package's __init__ importing its own modules is not a cycle of the modules
    cycles, index, low, stack, on, counter = [], {}, {}, [], set(), [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []
