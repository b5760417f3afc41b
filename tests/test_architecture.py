"""The design document's architecture rules, checked on the source itself (`ast`, no import):

- dependencies point one way: a package imports only packages of a lower layer, never one above
  it or beside it;
- the pure packages (`money`, `sms`, `numbers`, `policy`, `rating`) do no I/O: no database,
  network, file, process or clock module, no `open()`; the one exception is the rate-card
  directory (`rating/loader.py`: reading, importing and pinning card versions), which the
  README names;
- `wallet` is the only package that writes money: nothing else inserts, updates or deletes the
  grants, the ledger, holds, hold allocations or period usage (migrations aside).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "talktime"

LAYERS: list[set[str]] = [
    {"__main__"},
    {"api", "cli"},
    {"web", "ops"},
    {"service"},
    {"policy", "rating", "wallet", "keys"},
    {"store", "money", "sms", "numbers"},
    {"config", "logs", "paging"},
    {"errors", "ids", "talktime"},
]
"""Top to bottom, as in DESIGN.md (`api`/`cli` -> `service` -> `policy`, `rating`, `wallet` ->
`store`, `money`, `sms`, `numbers`), with the packages the document does not draw placed where
they sit: `web` and `ops` (the pages, the worker's jobs) over `service`; `keys` (API keys) over
`store`; settings, logs and paging (how a list splits into pages, and the refusal of a
cursor that names no row of it), then errors and ids at the bottom. `talktime` is the root
package (its version)."""

PURE = ("money", "sms", "numbers", "policy", "rating")
IO_ALLOWED = {Path("rating/loader.py")}
IO_MODULES = {
    "alembic",
    "asyncio",
    "fcntl",
    "http",
    "httpx",
    "io",
    "os",
    "pathlib",
    "psycopg",
    "shutil",
    "socket",
    "sqlalchemy",
    "sqlite3",
    "subprocess",
    "tempfile",
    "threading",
    "time",
    "urllib",
}
CLOCK_CALLS = {"now", "utcnow", "today", "fromtimestamp", "utcfromtimestamp"}
"""Reading the clock (`datetime.now()`, `date.today()`): pure code is given the time."""
MONEY_TABLES = {"grants", "ledger", "holds", "hold_allocations", "usage_periods"}
WRITE_SQL = re.compile(
    r"\b(insert\s+into|update|delete\s+from)\s+(" + "|".join(sorted(MONEY_TABLES)) + r")\b",
    re.IGNORECASE,
)


def _package(path: Path) -> str:
    """The top-level package (or module) of a source file: `wallet`, `money`, `talktime`."""
    first = path.relative_to(SRC).with_suffix("").parts[0]
    return "talktime" if first == "__init__" else first


def _layer(package: str) -> int:
    for index, members in enumerate(LAYERS):
        if package in members:
            return index
    raise AssertionError(f"talktime.{package} is in no layer of LAYERS: place it there")


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.relative_to(SRC).parts)


def _absolute(node: ast.ImportFrom, path: Path | None) -> str | None:
    """The absolute module an ImportFrom names (``from ..service import x`` in
    ``talktime/wallet/charges.py`` is ``talktime.service``); None when it cannot be told."""
    if node.level == 0:
        return node.module
    if path is None:
        return None
    package = ["talktime", *path.relative_to(SRC).parent.parts]
    if node.level > len(package):
        return None
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _talktime_imports(tree: ast.AST, path: Path | None = None) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every import of talktime code in ``tree`` (the source file
    at ``path``, which resolves relative imports)."""
    for node in ast.walk(tree):
        module = _absolute(node, path) if isinstance(node, ast.ImportFrom) else None
        if isinstance(node, ast.ImportFrom) and module:
            parts = module.split(".")
            if parts[0] != "talktime":
                continue
            if len(parts) > 1:
                yield node.lineno, parts[1]
            else:  # from talktime import money, keys
                for alias in node.names:
                    sub = alias.name
                    yield (
                        node.lineno,
                        sub if (SRC / sub).exists() or (SRC / f"{sub}.py").exists() else "talktime",
                    )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "talktime":
                    yield node.lineno, parts[1] if len(parts) > 1 else "talktime"


def _breaches_of_layering(path: Path, tree: ast.AST) -> list[str]:
    me = _package(path)
    mine = _layer(me)
    out = []
    for line, target in _talktime_imports(tree, path):
        if target == me:
            continue
        if _layer(target) <= mine:
            out.append(f"{path.relative_to(SRC)}:{line}: {me} imports {target}")
    return out


def test_every_package_imports_only_packages_below_it() -> None:
    breaches = []
    for path in _sources():
        breaches += _breaches_of_layering(path, ast.parse(path.read_text(), str(path)))
    assert breaches == []


def test_the_layer_check_sees_an_import_upwards_and_one_sideways() -> None:
    wallet_file = SRC / "wallet" / "charges.py"
    upwards = ast.parse("from talktime.service import messages\n")
    sideways = ast.parse("from talktime import rating\n")
    relative = ast.parse("from ..service import messages\nfrom . import book\n")
    downwards = ast.parse("from talktime.store import wallet_tables\nimport talktime\n")
    assert _breaches_of_layering(wallet_file, upwards) == [
        "wallet/charges.py:1: wallet imports service"
    ]
    assert _breaches_of_layering(wallet_file, sideways) == [
        "wallet/charges.py:1: wallet imports rating"
    ]
    assert _breaches_of_layering(wallet_file, relative) == [
        "wallet/charges.py:1: wallet imports service"
    ]
    assert _breaches_of_layering(wallet_file, downwards) == []


def _io_uses(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in IO_MODULES:
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in IO_MODULES:
                yield node.lineno, f"from {node.module} import ..."
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("open", "print", "input")
        ):
            yield node.lineno, f"{node.func.id}()"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
        ):
            yield node.lineno, f".{node.func.attr}()"


def _pure_sources() -> list[Path]:
    return [p for p in _sources() if _package(p) in PURE and p.relative_to(SRC) not in IO_ALLOWED]


def test_the_pure_packages_do_no_io() -> None:
    found = [
        f"{path.relative_to(SRC)}:{line}: {what}"
        for path in _pure_sources()
        for line, what in _io_uses(ast.parse(path.read_text(), str(path)))
    ]
    assert found == []


def test_the_io_check_sees_a_database_a_file_and_the_clock() -> None:
    tree = ast.parse(
        "import sqlite3\nfrom pathlib import Path\nimport time\nopen('x')\n"
        "dt.datetime.now(dt.UTC)\ndate.today()\n"
    )
    assert list(_io_uses(tree)) == [
        (1, "import sqlite3"),
        (2, "from pathlib import ..."),
        (3, "import time"),
        (4, "open()"),
        (5, ".now()"),
        (6, ".today()"),
    ]
    # what pure code may use
    assert list(_io_uses(ast.parse("import re\nfrom decimal import Decimal\n"))) == []


def _money_table_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The local names bound to the money tables (`from talktime.store.wallet_tables import
    grants as g`, and plain aliases `G = g`), and those bound to the module itself."""
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "talktime.store.wallet_tables":
            for alias in node.names:
                if alias.name in MONEY_TABLES:
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module == "talktime.store":
            for alias in node.names:
                if alias.name == "wallet_tables":
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "talktime.store.wallet_tables" and alias.asname:
                    modules.add(alias.asname)
    grew = True
    while grew:  # G = grants; H = G
        grew = False
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and _is_money_table(node.value, names, modules)
                and all(isinstance(t, ast.Name) for t in node.targets)
            ):
                for target in node.targets:
                    assert isinstance(target, ast.Name)
                    if target.id not in names:
                        names.add(target.id)
                        grew = True
    return names, modules


def _is_money_table(node: ast.AST, names: set[str], modules: set[str]) -> bool:
    """`grants` (a bound name) or `wallet_tables.grants` (through the module)."""
    if isinstance(node, ast.Name):
        return node.id in names
    return (
        isinstance(node, ast.Attribute)
        and node.attr in MONEY_TABLES
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
    )


def _money_writes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    tables, modules = _money_table_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = WRITE_SQL.search(node.value)
            if match:
                yield node.lineno, match.group(0)
        elif isinstance(node, ast.Call):
            func = node.func
            verb = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if verb not in ("insert", "update", "delete"):
                continue
            # grants.update() / wallet_tables.ledger.insert()
            if isinstance(func, ast.Attribute) and _is_money_table(func.value, tables, modules):
                yield node.lineno, f"{ast.unparse(func.value)}.{verb}()"
            # sa.update(grants) / insert(wallet_tables.ledger)
            elif node.args and _is_money_table(node.args[0], tables, modules):
                yield node.lineno, f"{verb}({ast.unparse(node.args[0])})"


def test_only_the_wallet_writes_the_money_tables() -> None:
    found = [
        f"{path.relative_to(SRC)}:{line}: {what}"
        for path in _sources()
        if _package(path) not in ("wallet",)
        for line, what in _money_writes(ast.parse(path.read_text(), str(path)))
    ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "from talktime.store.wallet_tables import grants\nsa.update(grants)\n",
        "from talktime.store.wallet_tables import ledger as entries\nentries.insert()\n",
        "x = 'INSERT INTO ledger (amount) VALUES (1)'\n",
        "x = 'update grants set remaining = 0'\n",
        "from talktime.store import wallet_tables as wt\nwt.grants.update()\n",
        "from talktime.store import wallet_tables\nsa.delete(wallet_tables.ledger)\n",
        "from talktime.store.wallet_tables import grants\nG = grants\nG.update()\n",
    ],
)
def test_the_money_write_check_sees_core_and_sql_writes(source: str) -> None:
    assert len(list(_money_writes(ast.parse(source)))) == 1


def test_the_money_write_check_lets_reads_through() -> None:
    source = (
        "from talktime.store.wallet_tables import ledger, accounts\n"
        "sa.select(ledger).where(ledger.c.id == 1)\n"
        "sa.update(accounts)\n"
        "x = 'SELECT amount FROM ledger'\n"
    )
    assert list(_money_writes(ast.parse(source))) == []
