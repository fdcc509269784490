"""The layers of the package stay layered: the data plane (store, storage, receiver,
coordinator, targets, and the wiring that builds them) never depends on the
Stream API, the Flask app or the command line, and the coordinator process runs
without Flask.

Imports are read from the source with :mod:`ast`, including the ones inside
functions (imported lazily, they count all the same)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import pushstream

PACKAGE_DIR = Path(pushstream.__file__).parent

#: Packages and modules of the data plane.
DATA_PLANE = (
    "pushstream.catalog",
    "pushstream.storage",
    "pushstream.receiver",
    "pushstream.coordinator",
    "pushstream.targets",
    "pushstream.cluster",
    "pushstream.wiring",
    "pushstream.config",
)
#: What the data plane must not import: the layers above it, and Flask.
ABOVE_DATA_PLANE = (
    "pushstream.api",
    "pushstream.app",
    "pushstream.cli",
    "pushstream.client",
    "pushstream.serving",
    "flask",
    "werkzeug",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


@cache
def _imports(module: str) -> frozenset[str]:
    """Every module that ``module`` imports, at its top or inside a function."""
    path = _modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            # `from pushstream.catalog import events` imports a module too.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _reachable(start: str) -> Iterator[tuple[str, str]]:
    """``(importer, imported)`` for everything ``start`` imports, directly or through
    other modules of the package."""
    seen, todo = {start}, [start]
    while todo:
        module = todo.pop()
        for imported in _imports(module):
            yield module, imported
            if imported in _modules() and imported not in seen:
                seen.add(imported)
                todo.append(imported)


def test_the_layering_rule_sees_the_modules() -> None:
    """The rule below would hold trivially if it found no modules or no imports."""
    plane = [m for m in _modules() if _within(m, DATA_PLANE)]
    assert "pushstream.storage.hooks" in plane
    assert "pushstream.coordinator.process" in plane
    assert "pushstream.catalog.events" in _imports("pushstream.storage.hooks")
    assert "pushstream.wiring" in _imports("pushstream.coordinator.process")  # imported inside main()
    assert "flask" in _imports("pushstream.app")


@pytest.mark.parametrize("module", [m for m in _modules() if _within(m, DATA_PLANE)])
def test_the_data_plane_does_not_import_the_layers_above(module: str) -> None:
    wrong = sorted(name for name in _imports(module) if _within(name, ABOVE_DATA_PLANE))
    assert wrong == [], f"{module} imports {', '.join(wrong)}"


def test_the_coordinator_process_reaches_neither_flask_nor_the_api() -> None:
    wrong = sorted(
        f"{importer} imports {imported}"
        for importer, imported in _reachable("pushstream.coordinator.process")
        if _within(imported, ABOVE_DATA_PLANE)
    )
    assert wrong == []


def test_the_coordinator_process_loads_without_flask() -> None:
    """What the coordinator process loads when it starts (its `main` and the wiring)."""
    script = (
        "import sys, pushstream.coordinator.process, pushstream.wiring\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')"
        " or m.startswith(('pushstream.api', 'pushstream.app')))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == ""


#: The SQLite implementations of the catalog and the storage state: the only
#: modules that reach for a SQLite connection of ``state.sqlite``.
SQLITE_STATE = (
    "pushstream.catalog.sqlite",
    "pushstream.catalog.connections",
    "pushstream.storage.sqlite_state",
)
#: The PostgreSQL implementations (``serve --cluster``): they hold connections and
#: SQL of their own, and import neither :mod:`sqlite3` nor the SQLite ones.
PG_STATE = (
    "pushstream.catalog.postgresql",
    "pushstream.catalog.pg_connections",
    "pushstream.storage.pg_state",
    "pushstream.cluster.postgresql",
)
#: May import :mod:`sqlite3` too: an embedded target is a SQLite database of its own.
SQLITE_TARGET = ("pushstream.targets.sqlite",)
#: The one place that picks the implementations, and the catalog package, which re-exports its own.
PICKS_IMPLEMENTATIONS = ("pushstream.wiring", "pushstream.catalog")
#: Attributes that are a catalog transaction's connection or a store's connection pool.
CONNECTION_ATTRIBUTES = frozenset({"connection", "_connection", "_pool"})


def _connection_uses(module: str) -> list[str]:
    """Attribute reads of a connection (``tx.connection``), except of the module
    ``multiprocessing.connection``."""
    path = _modules()[module]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in CONNECTION_ATTRIBUTES:
            if isinstance(node.value, ast.Name) and node.value.id == "multiprocessing":
                continue
            found.append(f"{module}:{node.lineno} .{node.attr}")
    return found


def test_the_sqlite_rule_sees_the_modules() -> None:
    """The rules below would hold trivially if they found nothing."""
    assert "sqlite3" in _imports("pushstream.catalog.sqlite")
    assert "sqlite3" in _imports("pushstream.storage.sqlite_state")
    assert "pushstream.storage.sqlite_state" in _imports("pushstream.wiring")
    assert _connection_uses("pushstream.catalog.sqlite") != []
    assert _connection_uses("pushstream.client.inputs") == []  # multiprocessing.connection is no connection


@pytest.mark.parametrize("module", [m for m in _modules() if not _within(m, SQLITE_STATE + SQLITE_TARGET)])
def test_only_the_sqlite_implementations_use_sqlite(module: str) -> None:
    """The catalog and the storage state are pluggable: nothing but their SQLite
    implementations imports :mod:`sqlite3` or touches a connection of theirs, and
    only the wiring picks (imports) those implementations."""
    imports = _imports(module)
    assert "sqlite3" not in imports, f"{module} imports sqlite3"
    if module not in PICKS_IMPLEMENTATIONS:
        wrong = sorted(name for name in imports if _within(name, SQLITE_STATE))
        assert wrong == [], f"{module} imports {', '.join(wrong)} (only pushstream.wiring picks implementations)"
    if module not in PG_STATE:
        assert _connection_uses(module) == []


def test_the_postgresql_rule_sees_the_modules() -> None:
    assert "psycopg" in _imports("pushstream.catalog.pg_connections")
    assert _sql_statements("pushstream.storage.pg_state") != []
    assert _sql_statements("pushstream.catalog.postgresql") != []


_SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b")


@pytest.mark.parametrize(
    "module",
    [
        m
        for m in _modules()
        if _within(m, ("pushstream.coordinator", "pushstream.receiver", "pushstream.storage", "pushstream.api"))
        and not _within(m, SQLITE_STATE + PG_STATE)
    ],
)
def test_the_coordinator_receivers_storage_users_and_api_run_no_sql(module: str) -> None:
    """SQL of the catalog and the storage state lives in their implementations;
    the coordinator keeps the policy (triggers, backoff) and asks the storage state."""
    assert _sql_statements(module) == []


def _sql_statements(module: str) -> list[str]:
    """Where string constants of a module hold SQL."""
    path = _modules()[module]
    return [
        f"{module}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.search(node.value)
    ]


def test_the_sql_rule_sees_sql() -> None:
    assert _sql_statements("pushstream.storage.sqlite_state") != []
