"""Apply the numbered SQL files in ``otel_llmcost/sql`` to a ClickHouse (or chdb) database.

The SQL stays plain ``.sql`` (like the collector's ClickHouse exporter templates) so it
can be read, diffed and run by hand. Code only fills in a small, explicit set of
placeholders, and nothing else in the text is touched: ClickHouse's own macros such as
``{shard}`` and ``{replica}`` in a Replicated engine path must reach the server
verbatim, which rules out ``str.format``.

Every statement is ``CREATE ... IF NOT EXISTS`` or an idempotent ``ALTER ... MODIFY
SETTING``, so ``migrate`` can run on every start-up and twice in a row.
"""

from __future__ import annotations

import re
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

_PLACEHOLDER = re.compile(r"\{(database|cluster|ttl_days|merge_tree|aggregating_merge_tree)\}")


def _check_identifier(kind: str, value: str) -> str:
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
    _check_identifier("database", database)
    if cluster is not None and cluster != "":
        _check_identifier("cluster", cluster)
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
    for path in migration_files():
        text = render(path.read_text(encoding="utf-8"), database=database, cluster=cluster, ttl_days=ttl_days)
        statements.extend(split_statements(text))
    return statements


def migrate(client: Any, *, database: str = "otel", cluster: str | None = None, ttl_days: int = 180) -> list[str]:
    """Create or complete the schema through a clickhouse-connect client; return what ran.

    Safe to repeat: every statement is idempotent. On failure the exception names the
    statement that failed (its first line), never credentials.
    """
    done: list[str] = []
    for statement in rendered_statements(database=database, cluster=cluster, ttl_days=ttl_days):
        try:
            client.command(statement)
        except Exception as exc:
            first = next((ln for ln in statement.splitlines() if ln and not ln.startswith("--")), "")
            raise RuntimeError(f"migration failed at: {first.strip()}: {exc}") from exc
        done.append(statement)
    return done
