"""Apply the numbered SQL files in ``otel_llmcost/storage/sql`` to a ClickHouse (or chdb) database.

The SQL stays plain ``.sql`` (like the collector's ClickHouse exporter templates) so it
can be read, diffed and run by hand. Code only fills in a small, explicit set of
placeholders, and nothing else in the text is touched: ClickHouse's own macros such as
``{shard}`` and ``{replica}`` in a Replicated engine path must reach the server
verbatim, which rules out ``str.format``.

Every statement is ``CREATE ... IF NOT EXISTS`` or an idempotent ``ALTER``, so
``migrate`` can run on every start-up and twice in a row. Applied files are recorded
with their checksum (``sql/000_schema_files.sql``): unchanged files are skipped, and a
new or edited file is applied in upgrade mode (:func:`upgrade_statements`), which is
how a database created by an older release gets new columns, queries and views.

A view "as of now" is written once, as a view parameterized by ``{now:DateTime}``
(``v_anomalies_at``, which tests and benchmarks ask about any moment); its twin for now
is ``{as_of_now:v_anomalies_at}``: the same query with ``now()`` for ``{now:DateTime}``,
reading the twin ``X`` wherever it reads ``X_at(now = {now:DateTime})``. A plain view,
because ClickHouse analyses a parameterized one twice, and the planning of the anomaly
detectors is most of their cost.

The record says what was applied, not what still exists: a table, materialized view or
view dropped since (by hand, or a bad ``query --write``) would stay missing, and with
``otel_traces`` or an MV's target table gone every insert fails. So each file whose
objects are not all in ``system.tables`` is applied again (idempotent: existing tables
and their rows are untouched) and the objects it recreated are reported as repaired.

On a cluster (``cluster=NAME``) the same files are laid out per statement kind
(:func:`cluster_layout`; docs/cluster.md): a table that a materialized view reads or
writes becomes a Replicated ``X_local`` on every shard plus a Distributed ``X`` over the
shards (sharded by ``cityHash64(TraceId)`` when it has a TraceId), the materialized views
read and write the ``_local`` tables (they fire on the shard that stores the insert), and
the views keep reading ``X``, now the Distributed table. Every other table (settings,
prices, budgets: written by hand or by the CLI) is one Replicated table with a copy on
every node. Before any DDL, :func:`check_schema` refuses an ``otel_traces`` this schema
cannot use (the exporter's JSON mode, or a layout of the other kind).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIGRATIONS_DIR = Path(__file__).with_name("sql")

# TTLs are `toDateTime(Timestamp) + ttl`, and DateTime ends in 2106: a longer TTL wraps
# around to a date in the past and ClickHouse drops every row as expired on insert.
MAX_TTL_DAYS = 20_000

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Path and replica name use ClickHouse macros, expanded by the server from its
# <macros> config; {database} and {table} are built-in macros there too.
_REPLICATED_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"

# A table with a copy on every node (not sharded): one replica set for the whole cluster.
_REPLICATED_EVERYWHERE_PATH = "'/clickhouse/tables/all/{database}/{table}', '{replica}'"

# On a cluster, the shard-local table behind the Distributed table X is X + this suffix.
LOCAL_SUFFIX = "_local"

_PLACEHOLDER = re.compile(r"\{(database|cluster|ttl_days|merge_tree|aggregating_merge_tree)\}")
_AS_OF_NOW = re.compile(r"\{as_of_now:(\w+)\}")
_VIEW_QUERY = re.compile(r"CREATE VIEW IF NOT EXISTS (\w+)\.(\w+)\b[^\n]* AS\n")
_AT_NOW = re.compile(r"\b(\w+)\.(\w+)_at\(now = \{now:DateTime\}\)")


def check_identifier(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"invalid {kind} name {value!r}: expected [A-Za-z_][A-Za-z0-9_]*")
    return value


def render(sql: str, *, database: str, cluster: str | None, ttl_days: int) -> str:
    """Fill the placeholders of one migration file.

    ``{cluster}`` becomes `` ON CLUSTER name`` (or nothing) and the engine placeholders
    become Replicated engines when a cluster is given. Substitution is a single pass, so
    text produced by a replacement (the ``{database}`` macro inside the replicated path)
    is never substituted again and reaches ClickHouse as a macro.
    """
    check_identifier("database", database)
    if cluster is not None and cluster != "":
        check_identifier("cluster", cluster)
    if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or not 0 < ttl_days <= MAX_TTL_DAYS:
        raise ValueError(f"ttl_days must be an integer from 1 to {MAX_TTL_DAYS}, got {ttl_days!r}")
    if cluster:
        values = {
            "database": database,
            "cluster": f" ON CLUSTER {cluster}",
            "ttl_days": str(ttl_days),
            "merge_tree": f"ReplicatedMergeTree({_REPLICATED_PATH})",
            "aggregating_merge_tree": f"ReplicatedAggregatingMergeTree({_REPLICATED_PATH})",
        }
    else:
        values = {
            "database": database,
            "cluster": "",
            "ttl_days": str(ttl_days),
            "merge_tree": "MergeTree()",
            "aggregating_merge_tree": "AggregatingMergeTree()",
        }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], sql)


def split_statements(sql: str) -> list[str]:
    """Split a file into statements at ``;`` ending a line; drop comments before each one.

    Only a semicolon at the end of a line ends a statement, so semicolons inside string
    literals or comments in the middle of a line never split one.
    """
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        stripped = line.rstrip()
        if stripped.endswith(";") and not stripped.lstrip().startswith("--"):
            current.append(stripped[:-1])
            statements.append("\n".join(current))
            current = []
        else:
            current.append(line)
    statements.append("\n".join(current))
    return [_strip_leading_comments(s) for s in statements if _has_code(s)]


def expand_as_of_now(statements: list[str]) -> list[str]:
    """Replace ``{as_of_now:V}`` by the query of the view ``V`` created earlier in the
    same statements, with ``now()`` for ``{now:DateTime}`` and ``X`` for ``X_at(now = ...)``."""
    queries: dict[str, str] = {}
    out = []
    for statement in statements:

        def as_of_now(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in queries:
                raise ValueError(f"{{as_of_now:{name}}} names no view created before it")
            query = _AT_NOW.sub(lambda m: f"{m.group(1)}.{m.group(2)}", queries[name])
            return query.replace("{now:DateTime}", "now()")

        statement = _AS_OF_NOW.sub(as_of_now, statement)
        created = _VIEW_QUERY.match(statement)
        if created:
            queries[created.group(2)] = statement[created.end() :]
        out.append(statement)
    return out


def _strip_leading_comments(statement: str) -> str:
    lines = statement.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))


def rendered_statements(*, database: str = "otel", cluster: str | None = None, ttl_days: int = 180) -> list[str]:
    """Every statement ``migrate`` would run, in order, starting with CREATE DATABASE."""
    on_cluster = render("{cluster}", database=database, cluster=cluster, ttl_days=ttl_days)
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster}"]
    for _, _, file_statements in _rendered_files(database=database, cluster=cluster, ttl_days=ttl_days):
        statements.extend(file_statements)
    return statements


def _rendered_files(*, database: str, cluster: str | None, ttl_days: int) -> list[tuple[Path, str, list[str]]]:
    """Each migration file, its rendered text, and its statements (on a cluster, laid out)."""
    files = []
    sharded = sharded_tables(database=database) if cluster else frozenset()
    for path in migration_files():
        text = render(path.read_text(encoding="utf-8"), database=database, cluster=cluster, ttl_days=ttl_days)
        statements = expand_as_of_now(split_statements(text))
        if cluster:
            statements = [
                laid_out
                for statement in statements
                for laid_out in cluster_layout(statement, database=database, cluster=cluster, sharded=sharded)
            ]
        files.append((path, text, statements))
    return files


# --- cluster layout -----------------------------------------------------------------------

_TABLE_NAME = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\b")
_MV_HEAD = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS \w+\.\w+\b")
_ALTER_TABLE = re.compile(r"^ALTER TABLE (\w+)\.(\w+)\b")
_CODEC = re.compile(r"\s+CODEC\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)")


def sharded_tables(*, database: str = "otel") -> frozenset[str]:
    """The tables a materialized view reads or writes: sharded on a cluster.

    A materialized view fires on the insert into its source table on the node that
    stores it, so its source and target must both be the shard-local tables. Found from
    the files themselves, so a new file's tables and views are laid out with no code change.
    """
    tables: set[str] = set()
    in_views: set[str] = set()
    reference = re.compile(rf"\b{re.escape(database)}\.(\w+)\b")
    for path in migration_files():
        text = render(path.read_text(encoding="utf-8"), database=database, cluster=None, ttl_days=1)
        for statement in split_statements(text):
            table = _TABLE_NAME.match(statement)
            if table:
                tables.add(table.group(2))
            elif _MV_HEAD.match(statement):
                in_views.update(reference.findall(statement))
    return frozenset(tables & in_views)


def cluster_layout(statement: str, *, database: str, cluster: str, sharded: frozenset[str]) -> list[str]:
    """One rendered statement as it runs on a cluster (per statement kind, see the module doc).

    - CREATE TABLE of a sharded table ``X``: the Replicated table is created as ``X_local``,
      then a Distributed ``X`` with the same columns (no codecs or indexes: it stores nothing);
    - CREATE TABLE of any other table: Replicated with one replica set for the whole
      cluster (a copy on every node, so a view joins it on any shard);
    - CREATE MATERIALIZED VIEW and ALTER TABLE: every sharded table they name is its ``_local``;
    - views (and anything else): unchanged, so they read the Distributed tables.
    """
    table = _TABLE_NAME.match(statement)
    if table and table.group(2) in sharded:
        name = table.group(2)
        local = f"{statement[: table.start(2)]}{name}{LOCAL_SUFFIX}{statement[table.end(2) :]}"
        return [local, _distributed(local, database=database, cluster=cluster, name=name)]
    if table:
        return [statement.replace(f"({_REPLICATED_PATH})", f"({_REPLICATED_EVERYWHERE_PATH})")]
    view = _MV_HEAD.match(statement)
    if (view or _ALTER_TABLE.match(statement)) and sharded:
        start = view.end() if view else 0  # the view keeps its own name
        names = "|".join(map(re.escape, sorted(sharded)))
        to_local = re.compile(rf"\b({re.escape(database)}\.(?:{names}))\b")
        return [statement[:start] + to_local.sub(rf"\g<1>{LOCAL_SUFFIX}", statement[start:])]
    return [statement]


def _distributed(local: str, *, database: str, cluster: str, name: str) -> str:
    """CREATE TABLE ``database.name`` ON CLUSTER: Distributed over the local table ``local`` creates."""
    body = _CREATE_TABLE.match(local)
    if body is None:
        raise ValueError(f"cannot read the columns of {database}.{name}{LOCAL_SUFFIX}")
    columns = [
        _CODEC.sub("", item)
        for item in _top_level_items(body.group("body"))
        if not item.upper().startswith(_NOT_COLUMNS)
    ]
    key = "cityHash64(TraceId)" if any(c.split()[0] == "TraceId" for c in columns) else "rand()"
    listed = ",\n".join(f"    {c}" for c in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} (\n{listed}\n)"
        f" ENGINE = Distributed('{cluster}', '{database}', '{name}{LOCAL_SUFFIX}', {key})"
    )


@dataclass
class MigrationResult:
    """What :func:`apply_migrations` ran, and which objects it recreated because an
    applied file's table, materialized view or view had been dropped."""

    statements: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def migrate(client: Any, *, database: str = "otel", cluster: str | None = None, ttl_days: int = 180) -> list[str]:
    """Create, complete or repair the schema through a clickhouse-connect client; return what ran.

    Safe to repeat: files already applied with the same checksum are skipped unless an
    object they create is missing, and every statement is idempotent. A new or changed
    file is applied in upgrade mode (:func:`upgrade_statements`), so databases created by
    an older release gain the new columns, materialized-view queries and views. On
    failure the exception names the statement that failed (its first line), never
    credentials.
    """
    return apply_migrations(client, database=database, cluster=cluster, ttl_days=ttl_days).statements


def apply_migrations(
    client: Any, *, database: str = "otel", cluster: str | None = None, ttl_days: int = 180
) -> MigrationResult:
    """:func:`migrate`, also saying which dropped objects were recreated."""
    on_cluster = render("{cluster}", database=database, cluster=cluster, ttl_days=ttl_days)
    result = MigrationResult()
    files = _rendered_files(database=database, cluster=cluster, ttl_days=ttl_days)
    check_schema(client, database=database, cluster=cluster)
    _run(client, f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster}", result.statements)
    applied = _applied_checksums(client, database)
    existing = _existing_objects(client, database)
    for path, text, statements in files:
        # On one node the rendered file, as every release recorded it; on a cluster what
        # runs, since the layout depends on every file (which tables are sharded).
        recorded = "\n;\n".join(statements) if cluster else text
        checksum = hashlib.sha256(recorded.encode("utf-8")).hexdigest()
        missing = [name for name in created_objects(statements) if name not in existing]
        if applied.get(path.name) == checksum and not missing:
            continue
        if path.name in applied:  # recorded as applied, yet objects are gone: a repair
            result.repaired.extend(missing)
        for statement in statements:
            for upgraded in upgrade_statements(statement, stored_query=_stored_view_query(client, statement)):
                _run(client, upgraded, result.statements)
        _run(
            client,
            f"INSERT INTO {database}.llmcost_schema_files (File, Checksum) VALUES ('{path.name}', '{checksum}')",
            result.statements,
        )
    return result


class SchemaConflict(RuntimeError):
    """The database holds an ``otel_traces`` that this schema cannot build on; the message
    says why and what to do. Raised before any DDL runs."""


class ClusterLayout(SchemaConflict):
    """A migrate without ``cluster`` over a database laid out for a cluster (``otel_traces``
    is Distributed): the schema is there, run by ``migrate --cluster NAME``; commands that
    only need the tables to exist go on."""


_JSON_TYPES = ("JSON", "Object(")


def check_schema(client: Any, *, database: str, cluster: str | None) -> None:
    """Refuse, before any DDL, an ``otel_traces`` the migrations would fail on or misuse.

    - the collector's ClickHouse exporter in JSON mode (``json: true``) creates the
      attribute columns as ``JSON``; every extraction here reads
      ``Map(LowCardinality(String), String)`` (the exporter's default), and the migrations
      would fail half-way (``CAST AS Array ... same-dimensional``);
    - ``--cluster`` over a database whose ``otel_traces`` stores rows itself (the exporter's
      own ``create_schema`` on a cluster, or a single-node database), and a single-node
      migrate over a cluster layout (``otel_traces`` Distributed).

    Says nothing when the server cannot answer (every statement is idempotent anyway).
    """
    try:
        rows = client.query(
            "SELECT t.name, t.engine, c.type FROM system.tables AS t "
            "LEFT JOIN (SELECT table, type FROM system.columns WHERE database = {d:String} "
            "AND name = 'SpanAttributes') AS c ON c.table = t.name "
            "WHERE t.database = {d:String} AND t.name IN ('otel_traces', {local:String})",
            parameters={"d": database, "local": f"otel_traces{LOCAL_SUFFIX}"},
        ).result_rows
    except Exception:
        return
    found = {str(name): (str(engine), str(kind or "")) for name, engine, kind in rows}
    for name, (_, kind) in sorted(found.items()):
        if kind.startswith(_JSON_TYPES):
            raise SchemaConflict(
                f"{database}.{name} stores attributes as {kind} (the collector's ClickHouse exporter with "
                "`json: true`); otel-llmcost reads them as Map(LowCardinality(String), String), the "
                "exporter's default. Remove `json: true` from the exporter (and set `create_schema: false`), "
                f"move the table aside (RENAME TABLE {database}.{name} TO {database}.{name}_json), "
                "then run otel-llmcost migrate again"
            )
    engine = found.get("otel_traces", ("", ""))[0]
    if cluster and engine and engine != "Distributed":
        raise SchemaConflict(
            f"--cluster: {database}.otel_traces is a {engine} table, not the Distributed table the cluster "
            f"layout writes through (to otel_traces{LOCAL_SUFFIX} on each shard; docs/cluster.md). If the "
            f"exporter created it (create_schema: true), move it: RENAME TABLE {database}.otel_traces TO "
            f"{database}.otel_traces{LOCAL_SUFFIX} ON CLUSTER {cluster}, set create_schema: false, "
            "and run migrate again"
        )
    if not cluster and engine == "Distributed":
        raise ClusterLayout(
            f"{database}.otel_traces is Distributed: this database has the cluster layout; "
            "run otel-llmcost migrate --cluster NAME"
        )


_CREATES = re.compile(
    r"^CREATE (?:OR REPLACE )?(?:TABLE|(?:MATERIALIZED )?VIEW) (?:IF NOT EXISTS )?\w+\.(?P<name>\w+)", re.IGNORECASE
)


def created_objects(statements: list[str]) -> list[str]:
    """The names (without the database) of the tables and views ``statements`` create.

    Our own files only, rendered: every CREATE starts a statement and names its object
    as ``database.name`` (the files are written so; a test checks every object is seen).
    """
    return [match.group("name") for match in map(_CREATES.match, statements) if match]


def _existing_objects(client: Any, database: str) -> set[str]:
    """Names of the tables and views in ``database``; empty when the server cannot say
    (then every file is applied again, which is safe on any state)."""
    try:
        rows = client.query(
            "SELECT name FROM system.tables WHERE database = {d:String}", parameters={"d": database}
        ).result_rows
    except Exception:
        return set()
    return {str(name) for (name,) in rows}


def _run(client: Any, statement: str, done: list[str]) -> None:
    try:
        client.command(statement)
    except Exception as exc:
        first = next((ln for ln in statement.splitlines() if ln and not ln.startswith("--")), "")
        raise RuntimeError(f"migration failed at: {first.strip()}: {exc}") from exc
    done.append(statement)


def _applied_checksums(client: Any, database: str) -> dict[str, str]:
    """File -> checksum last applied; empty for a new database or one that predates the record
    (every file is then applied in upgrade mode, which is safe on any state)."""
    try:
        result = client.query(
            f"SELECT File, argMax(Checksum, AppliedAt) FROM {database}.llmcost_schema_files GROUP BY File"
        )
        return {str(f): str(c) for f, c in result.result_rows}
    except Exception:  # no such table yet (or a server that cannot say): apply everything
        return {}


_CREATE_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS ", re.IGNORECASE)
_CREATE_MV = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\S+)(?P<cluster>\s+ON CLUSTER\s+\S+)?"
    r"\s+TO \S+\s+AS\s+(?P<query>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\S+)(?P<cluster>\s+ON CLUSTER\s+\S+)?\s*\((?P<body>.*)\)\s*ENGINE\b",
    re.IGNORECASE | re.DOTALL,
)
_NOT_COLUMNS = ("INDEX ", "PROJECTION ", "CONSTRAINT ")


def _stored_view_query(client: Any, statement: str) -> tuple[str, str] | None:
    """(stored query, our query), both as ClickHouse formats them, of an existing
    materialized view that ``statement`` creates; None when it does not exist yet (or
    the server cannot say)."""
    view = _CREATE_MV.match(statement)
    if not view:
        return None
    database, _, name = view.group("name").partition(".")
    try:
        rows = client.query(
            "SELECT as_select, formatQuerySingleLine({q:String}) FROM system.tables "
            "WHERE database = {d:String} AND name = {n:String}",
            parameters={"q": view.group("query"), "d": database, "n": name},
        ).result_rows
    except Exception:
        return None
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def upgrade_statements(statement: str, *, stored_query: tuple[str, str] | None = None) -> list[str]:
    """The statement, made to also bring an existing object up to date (all idempotent).

    - a view is created or replaced (``CREATE OR REPLACE VIEW``, atomic);
    - a table is created if missing, then gains any column it lacks
      (``ADD COLUMN IF NOT EXISTS``; existing columns are never altered or dropped);
    - a materialized view is created if missing; an existing one whose query differs
      (``stored_query``: stored, ours) gets ours with ``MODIFY QUERY`` (atomic: no insert
      is missed, as with drop and re-create). Only then: a modified view derives new
      deduplication tokens, so a crash-time replay that straddles the upgrade can be
      counted twice in its target table once.
    """
    if _CREATE_VIEW.match(statement):
        return [_CREATE_VIEW.sub("CREATE OR REPLACE VIEW ", statement, count=1)]
    table = _CREATE_TABLE.match(statement)
    if table:
        columns = [c for c in _top_level_items(table.group("body")) if not c.upper().startswith(_NOT_COLUMNS)]
        if not columns:
            return [statement]
        adds = ",\n".join(f"    ADD COLUMN IF NOT EXISTS {c}" for c in columns)
        return [statement, f"ALTER TABLE {table.group('name')}{_on(table)}\n{adds}"]
    view = _CREATE_MV.match(statement)
    if view and stored_query is not None and stored_query[0] != stored_query[1]:
        alter = f"ALTER TABLE {view.group('name')}{_on(view)} MODIFY QUERY\n{view.group('query')}"
        return [statement, alter]
    return [statement]


def _on(match: re.Match[str]) -> str:
    cluster = match.group("cluster")
    return " " + " ".join(cluster.split()) if cluster else ""


def _top_level_items(body: str) -> list[str]:
    """Split a column list at commas outside parentheses and quotes, dropping ``--`` comments."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    i = 0
    while i < len(body):
        char = body[i]
        if not quoted and body.startswith("--", i):
            end = body.find("\n", i)
            i = len(body) if end < 0 else end
            continue
        if char == "'" and (i == 0 or body[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    items.append("".join(current))
    return [" ".join(item.split()) for item in items if item.strip()]
