"""Opening a database to read reports from.

Embedded (chdb): the reader first ingests what instrumented apps spooled since the
last flush (so a report never misses what an app already handed over) and brings the
schema up to date, as the embedded store's single writer does; then it reads. Remote:
nothing is written; the schema is the collector's and ``otel-llmcost migrate``'s job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .. import storage
from ..config import Settings
from ..exporter.ingest import ensure_schema, ingest_pending


@contextlib.contextmanager
def open_for_reading(
    dsn: str, database: str, *, wait_s: float = 5.0, warn: Callable[[str], None] | None = None
) -> Iterator[Any]:
    """A client whose default database is ``database``, closed on exit.

    ``warn`` hears about spooled spans that could not be ingested yet (the path was busy).
    Raises :class:`storage.StorageBusy` when an embedded path stays held for long, and
    the connection errors of :func:`storage.open_client`.
    """
    storage.check_identifier("database", database)
    if not storage.is_chdb(dsn):
        with storage.open_client(dsn, database=database) as client:
            yield client
        return
    ttl_days = Settings.load().ttl_days
    try:
        ingest_pending(dsn, database, wait_s=wait_s, ttl_days=ttl_days)
    except storage.StorageBusy:
        if warn is not None:
            warn("the database is busy; spans spooled since the last flush are not shown yet")
    with storage.open_client(dsn) as client:
        ensure_schema(client, str(storage.chdb_path(dsn)), database, ttl_days)
        client.database = database
        yield client
