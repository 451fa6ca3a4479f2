"""Embedded ClickHouse (chdb) for the tests: a migrated database, and rows in and out of it.

chdb holds one data path per process at a time, so a client is always closed before
the next test module opens its own path (the fixtures in tests/conftest.py do that).
Rows go into ``otel_traces`` as the collector writes them (tests.helpers.span_rows),
so the materialized views run.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from otel_llmcost.exporter.rows import COLUMNS

DATABASE = "otel"


def chdb_dsn(directory: Path) -> str:
    """The DSN of an embedded database under ``directory``."""
    return f"chdb://{directory / 'chdb'}"


@contextmanager
def migrated_client(dsn: str, **migrate_options: Any) -> Iterator[Any]:
    """A clickhouse-connect client on ``dsn`` with the schema migrated into DATABASE; closed on exit."""
    import clickhouse_connect

    from otel_llmcost.storage import migrations

    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        migrations.migrate(client, database=DATABASE, **migrate_options)
        yield client
    finally:
        client.close()


# One migrated database per set of migrate options, made once per process (per xdist
# worker): migrating runs every SQL file (seconds on a loaded machine), copying the
# closed data directory takes a fraction of that. The copy is opened and migrated again,
# which skips every unchanged file, so it is the same database a fresh migration makes.
_TEMPLATES: dict[str, Path] = {}


def _template(**migrate_options: Any) -> Path:
    key = json.dumps(migrate_options, sort_keys=True, default=repr)
    if key not in _TEMPLATES:
        directory = Path(tempfile.mkdtemp(prefix="llmcost-chdb-template-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        with migrated_client(chdb_dsn(directory), **migrate_options):
            pass
        _TEMPLATES[key] = directory / "chdb"
    return _TEMPLATES[key]


def copy_migrated(directory: Path, **migrate_options: Any) -> str:
    """The DSN of a migrated database under ``directory``, copied from this process's
    template (the data directory's symlinks are relative, so the copy stands alone)."""
    dsn = chdb_dsn(directory)
    shutil.copytree(_template(**migrate_options), directory / "chdb", symlinks=True)
    return dsn


@contextmanager
def fresh_client(directory: Path, **migrate_options: Any) -> Iterator[Any]:
    """Like ``migrated_client(chdb_dsn(directory))``, from a copy of the migrated template."""
    with migrated_client(copy_migrated(directory, **migrate_options), **migrate_options) as client:
        yield client


def insert_spans(client: Any, rows: list[list[Any]], *, token: str | None = None, **settings: Any) -> None:
    """Insert otel_traces rows; ``token`` deduplicates a repeated insert as a retrying collector would."""
    if token:
        settings["insert_deduplication_token"] = token
    client.insert(f"{DATABASE}.otel_traces", rows, column_names=list(COLUMNS), settings=settings or None)


def q(client: Any, sql: str, **params: Any) -> list[tuple]:
    """The rows of ``sql`` run with ``params`` (``{name:Type}`` or ``%(name)s`` placeholders)."""
    return client.query(sql, parameters=params).result_rows


def reads_only_the_window(client: Any, sql: str, **params: Any) -> bool:
    """Whether every table ``sql`` reads is cut by a condition on its partition key (the
    day), so old days are never read: ClickHouse's ``force_index_by_date`` refuses the
    query otherwise. Needs rows in the tables (a table with no parts is not checked)."""
    try:
        client.query(sql, parameters=params, settings={"force_index_by_date": 1})
    except Exception as exc:
        if "INDEX_NOT_USED" in str(exc):
            return False
        raise
    return True


def query_dsn(dsn: str, sql: str, **params: Any) -> list[tuple]:
    """Open ``dsn``, run ``sql``, close: for modules whose code under test opens the path itself."""
    from otel_llmcost import storage

    with storage.open_client(dsn) as client:
        return q(client, sql, **params)
