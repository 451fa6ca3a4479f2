"""The checks that make ``otel-llmcost query`` read-only unless ``--write`` is given.

The main guard is ClickHouse's own ``readonly=1`` setting, sent with the query: the
server then refuses every write, DDL, ``SET``/``SETTINGS`` change (so a query cannot
turn it off with ``SETTINGS readonly=0``) and every table function not marked safe for
read-only use (``file``, ``url``, ``s3``, ``remote``, ``executable`` ...). Measured in
chdb, ``readonly=1`` still lets these through, so they are checked here first:

- several statements in one string (chdb runs ``SELECT 1; DROP ...`` as a script);
- ``KILL QUERY`` and ``USE``, which are not reads;
- ``DESCRIBE file('/etc/passwd')`` (it reads the file to infer its structure);
- the scalar function ``file('/etc/hostname')``, which returns the file's contents;
- ``INTO OUTFILE``, which chdb writes to the local disk;
- table functions that ClickHouse allows in read-only mode but that reach other hosts
  (``cluster``, ``clusterAllReplicas``) or are not needed for reading our tables; a
  parameterized view of this server (``v_unit_cost(since_hours = 24)``) is a view, not a
  table function, and is allowed.

Every check reads the query as ClickHouse's parser sees it, never with a hand-written
tokenizer: ``formatQuery`` (with the SQL passed as a query parameter, so it is never
run) rejects more than one statement, and ``EXPLAIN AST`` gives the tree in which the
statement kind, the table functions and the functions are looked up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Table functions a read may use: they generate rows or read this server's own tables
# (``view``/``merge``; the tables inside them are checked like any other). Everything
# else is refused, including functions ClickHouse itself would allow (``cluster`` reaches
# other hosts, ``input`` only works in INSERT). ClickHouse matches the names regardless
# of case, and so do the checks here.
ALLOWED_TABLE_FUNCTIONS = (
    "numbers",
    "numbers_mt",
    "generate_series",
    "generateSeries",
    "primes",
    "values",
    "null",
    "generateRandom",
    "view",
    "merge",
)
_ALLOWED = frozenset(name.lower() for name in ALLOWED_TABLE_FUNCTIONS)

# Scalar functions that read outside the database: ``file(path)`` returns a local
# file's contents even with readonly=1.
REFUSED_FUNCTIONS = frozenset({"file"})

# Root nodes of the statements a read may be (EXPLAIN AST names): SELECT (with WITH,
# UNION, INTERSECT, EXCEPT), EXPLAIN, DESCRIBE, SHOW ..., EXISTS ...
_READ_KINDS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "Explain", "DescribeQuery")
_READ_KIND_PREFIXES = ("Show", "Exists")

READONLY_SETTINGS = {"readonly": 1}

EMPTY_QUERY = 'empty query: give one SQL statement, e.g. "SELECT count() FROM llm_calls"'


class QueryRefused(ValueError):
    """The query is not a single read; the message says why, in one line."""


@dataclass(frozen=True)
class _Node:
    kind: str
    name: str
    depth: int
    parent: str


def check_single_statement(client: Any, sql: str) -> None:
    """Raise :class:`QueryRefused` unless ``sql`` is exactly one statement.

    The SQL is a parameter of ``formatQuery``, so ClickHouse parses it without running it
    (chdb would run each statement of a script). Empty input (only blanks, comments or
    ``;``) is refused too, in one line.
    """
    if not sql.strip().strip(";").strip():
        raise QueryRefused(EMPTY_QUERY)
    try:
        client.query("SELECT formatQuery({sql:String})", parameters={"sql": sql})
    except Exception as exc:
        message = str(exc)
        if "Multi-statements are not allowed" in message:
            raise QueryRefused("one statement at a time: the query has more than one") from None
        if "Empty query" in message:
            raise QueryRefused(EMPTY_QUERY) from None
        raise


def check_read_only(client: Any, sql: str) -> None:
    """Raise :class:`QueryRefused` unless the single statement ``sql`` is a read of this
    database only (see the module docstring for what that excludes)."""
    nodes = _ast(client, sql)
    root = nodes[0].kind if nodes else ""
    if root not in _READ_KINDS and not root.startswith(_READ_KIND_PREFIXES):
        raise QueryRefused(f"read-only: a {root or 'statement'} is not a read (use --write for maintenance)")
    views = _parameterized_views(client, nodes)
    for node in nodes:
        _check_node(node, views)


def _parameterized_views(client: Any, nodes: list[_Node]) -> frozenset[str]:
    """The table-function names of ``nodes`` that are views of this server (lower-cased):
    ``v_unit_cost(since_hours = 24)`` calls a parameterized view, which reads this
    server's own tables like any view. An unqualified name is looked up in the current
    database, as ClickHouse resolves it."""
    calls = {n.name for n in nodes if n.kind == "Function" and n.parent == "TableExpression"}
    calls = {name for name in calls if name.lower() not in _ALLOWED}
    if not calls:
        return frozenset()
    rows = client.query(
        "SELECT database, name FROM system.tables WHERE engine = 'View'"
        " AND (database IN {dbs:Array(String)} OR database = currentDatabase())",
        parameters={"dbs": sorted({name.split(".", 1)[0] for name in calls if "." in name})},
        settings=READONLY_SETTINGS,
    ).result_rows
    current = client.query("SELECT currentDatabase()", settings=READONLY_SETTINGS).result_rows[0][0]
    known = {f"{db}.{name}".lower() for db, name in rows}
    known |= {name.lower() for db, name in rows if db == current}
    return frozenset(name.lower() for name in calls if name.lower() in known)


def _check_node(node: _Node, views: frozenset[str] = frozenset()) -> None:
    if node.depth == 1 and node.kind == "Literal":
        # The only literals directly under a statement are INTO OUTFILE's file name and
        # its compression: the result would be written to the local disk.
        raise QueryRefused("read-only: INTO OUTFILE writes a local file")
    if node.kind != "Function":
        return
    name = node.name.lower()
    if node.parent == "TableExpression" and name not in _ALLOWED and name not in views:
        allowed = ", ".join(ALLOWED_TABLE_FUNCTIONS)
        raise QueryRefused(f"read-only: table function {node.name}() is not allowed (allowed: {allowed})")
    if name in REFUSED_FUNCTIONS:
        raise QueryRefused(f"read-only: function {node.name}() reads outside the database")


def _ast(client: Any, sql: str) -> list[_Node]:
    """The statement's syntax tree, one node per line of ``EXPLAIN AST`` (indented by depth).

    ``sql`` was checked to be one statement, so prefixing it makes one EXPLAIN statement;
    it runs read-only too. The line format is ClickHouse's: ``<Kind> [<name>] [(alias a)]
    [(children n)]``; names and literals in it are quoted and escaped, so a line is one node.
    """
    rows = client.query(f"EXPLAIN AST {sql}", settings=READONLY_SETTINGS).result_rows
    nodes: list[_Node] = []
    parents: list[str] = []
    for (line,) in rows:
        text = str(line)
        depth = len(text) - len(text.lstrip(" "))
        words = text.split()
        if not words:
            continue
        del parents[depth:]
        kind = words[0]
        name = words[1] if len(words) > 1 and not words[1].startswith("(") else ""
        nodes.append(_Node(kind, name, depth, parents[-1] if parents else ""))
        parents.append(kind)
    return nodes


def refusal(exc: Exception) -> QueryRefused | None:
    """The server's own ``readonly`` refusal of ``exc`` as one line (which write or
    setting it refused), or None when ``exc`` is another error."""
    text = str(exc)
    if "(READONLY)" not in text:
        return None
    reason = text.split("(READONLY)")[0].rsplit("DB::Exception:", 1)[-1]
    reason = reason.strip().removeprefix("default:").strip().rstrip(".")
    return QueryRefused(f"read-only: {reason} (use --write for maintenance)")
