"""Opening a database to read reports from.

Embedded (chdb): a read announces itself (``read.lock``: the ingester ends its pass
between two inserts and gives way), takes the path's turn, and when no ingester runs
stores what instrumented apps spooled so far (a pass bounded by
:data:`INGEST_BEFORE_READ_S`; with an ingester running it is storing them already), brings
the schema up to date, and reads what is stored. It waits for a busy path rather than
failing, up to ``wait_s``. Nothing is created where there is nothing to read: a path
with no database and an empty spool raises :class:`storage.DatabaseMissing`. Remote:
nothing is written; the schema is the collector's and ``otel-llmcost migrate``'s job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .. import storage
from ..config import Settings
from ..exporter.ingest import IngestDeferred, ensure_schema, ingest_pending
from ..exporter.ingester import running
from ..exporter.spool import drop_totals, drops_detail, pending_files

INGEST_BEFORE_READ_S = 1.0
DEFAULT_READ_WAIT_S = 60.0


@contextlib.contextmanager
def open_for_reading(
    dsn: str, database: str, *, wait_s: float = DEFAULT_READ_WAIT_S, warn: Callable[[str], None] | None = None
) -> Iterator[Any]:
    """A client whose default database is ``database``, closed on exit.

    ``warn`` hears about spans that could not be stored yet and spans dropped before the
    spool. Raises :class:`storage.DatabaseMissing` when there is nothing to read,
    :class:`storage.StorageBusy` when an embedded path stays held by a foreign process
    for ``wait_s``, and the connection errors of :func:`storage.open_client`.
    """
    storage.check_identifier("database", database)
    _report_drops(dsn, warn)
    if not storage.is_chdb(dsn):
        with storage.open_client(dsn, database=database) as client:
            if not client.command(f"EXISTS DATABASE {database}"):
                raise storage.DatabaseMissing(storage.redact_dsn(dsn), database)
            yield client
        return
    if not storage.embedded_available():
        raise storage.EmbeddedStoreMissing()
    path = storage.chdb_path(dsn)
    if not path.exists() and not pending_files(dsn):
        raise storage.DatabaseMissing(str(path), database)
    ttl_days = Settings.load().ttl_days
    # One announced turn and one client for the ingest and the read: the ingester cannot
    # slip a pass in between, and the path is opened once.
    with storage.open_client(dsn, wait_s=wait_s) as client:
        if not running(dsn):  # a running ingester stores spans as they come: read what is stored now
            try:
                ingest_pending(
                    dsn, database, wait_s=wait_s, ttl_days=ttl_days, max_s=INGEST_BEFORE_READ_S, client=client
                )
            except IngestDeferred as exc:
                if warn is not None:
                    warn(f"spooled spans could not be stored yet ({exc}); showing what is stored")
        left = pending_files(dsn)
        if left and warn is not None:
            warn(f"{len(left)} spool file(s) of spans are not stored yet (apps are writing); showing what is stored")
        if not client.command(f"EXISTS DATABASE {database}"):
            raise storage.DatabaseMissing(str(path), database)
        ensure_schema(client, str(path), database, ttl_days)
        client.database = database
        yield client


def _report_drops(dsn: str, warn: Callable[[str], None] | None) -> None:
    if warn is None:
        return
    with contextlib.suppress(Exception):
        drops = drop_totals(dsn)
        if drops:
            detail = drops_detail(drops)
            total = sum(drops.values())
            warn(f"{total} span(s) were dropped before reaching the spool ({detail}); see `otel-llmcost spool`")
