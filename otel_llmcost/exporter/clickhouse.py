"""Span exporter writing the collector's ``otel_traces`` table, embedded (chdb) or remote.

Embedded (``chdb://path``, the default): chdb lets one process at a time open a path, and
the app must never hold it, or ``otel-llmcost report`` could not run next to it. So
``export`` first appends the batch to a spool directory as one JSON-lines file written
atomically (temp file + ``os.replace``: a reader sees all of it or nothing), then tries to
ingest. Ingesting takes a non-blocking ``flock`` on ``<data_dir>/ingest.lock``, opens chdb,
inserts every spool file in name order with ``insert_deduplication_token = file name``
and unlinks it, then closes chdb. If the lock or the path is busy, the files wait for the
next flush, for shutdown, or for whoever ingests next (the CLI calls ``ingest_pending``).
A crash between insert and unlink replays the file with the same token, which the
deduplication windows set by the migrations drop, in otel_traces and through every
materialized view. JSON lines, not a binary format: stdlib only, inspectable, and a
half-written temp file is never renamed into the spool.

Remote (``http(s)://``): rows are inserted directly, with a few retries and backoff
bounded in time; a batch that still fails is dropped and counted.

``export`` never raises. Dropped spans are counted and logged once at shutdown.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_llmcost import migrations, storage
from otel_llmcost.exporter.rows import COLUMNS, span_to_row

logger = logging.getLogger(__name__)

TTL_DAYS_ENV = "OTEL_EXPORTER_LLMCOST_TTL_DAYS"
SPOOL_SUFFIX = ".jsonl"

# Schemas already migrated by this process, keyed by (dsn or path, database).
_migrated: set[tuple[str, str]] = set()
_migrated_lock = threading.Lock()
# flock is per open file description; this serialises ingestion between threads too.
_ingest_thread_lock = threading.Lock()
_spool_counter = 0
_spool_counter_lock = threading.Lock()


def data_dir(dsn: str) -> Path:
    """Directory holding the chdb path, its spool/ and ingest.lock."""
    return storage.chdb_path(dsn).parent


def spool_dir(dsn: str) -> Path:
    return data_dir(dsn) / "spool"


def _lock_path(dsn: str) -> Path:
    return data_dir(dsn) / "ingest.lock"


def _insert_settings(token: str) -> dict[str, Any]:
    return {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}


def write_spool(dsn: str, rows: Sequence[Sequence[Any]]) -> Path:
    """Write rows as one spool file, atomically; names sort in write order."""
    global _spool_counter
    directory = spool_dir(dsn)
    directory.mkdir(parents=True, exist_ok=True)
    with _spool_counter_lock:
        _spool_counter += 1
        counter = _spool_counter
    name = f"{time.time_ns():020d}-{os.getpid()}-{counter:06d}{SPOOL_SUFFIX}"
    tmp = directory / f".{name}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / name)
    return directory / name


def pending_files(dsn: str) -> list[Path]:
    directory = spool_dir(dsn)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(SPOOL_SUFFIX) and not p.name.startswith("."))


def _read_spool(path: Path) -> list[list[Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def ensure_schema(client: Any, key: str, database: str, ttl_days: int) -> None:
    """Run the migrations once per process and schema."""
    with _migrated_lock:
        if (key, database) in _migrated:
            return
        migrations.migrate(client, database=database, ttl_days=ttl_days)
        _migrated.add((key, database))


def insert_rows(client: Any, database: str, rows: Sequence[Sequence[Any]], token: str | None = None) -> None:
    settings = _insert_settings(token) if token else None
    client.insert(f"{database}.otel_traces", list(rows), column_names=list(COLUMNS), settings=settings)


class IngestStats:
    """What one ingest pass did (files/rows inserted, files quarantined as unreadable)."""

    __slots__ = ("files", "rows", "quarantined_rows")

    def __init__(self) -> None:
        self.files = 0
        self.rows = 0
        self.quarantined_rows = 0


def ingest_pending(
    dsn: str | None = None,
    database: str | None = None,
    *,
    wait_s: float = 0.0,
    ttl_days: int = 180,
    stats: IngestStats | None = None,
) -> int:
    """Insert every spooled file into chdb; return the number of rows inserted.

    Returns 0 without waiting beyond ``wait_s`` when another thread or process is
    ingesting. Raises ``storage.StorageBusy`` when the chdb path stays held by another
    process for ``wait_s``. Remote DSNs have no spool: returns 0.
    """
    dsn = dsn or storage.configured_dsn()
    database = database or storage.configured_database()
    migrations.render("", database=database, cluster=None, ttl_days=ttl_days)  # validates
    stats = stats if stats is not None else IngestStats()
    if not storage.is_chdb(dsn) or not pending_files(dsn):
        return 0
    deadline = time.monotonic() + max(wait_s, 0.0)
    acquired = _ingest_thread_lock.acquire(timeout=wait_s) if wait_s > 0 else _ingest_thread_lock.acquire(False)
    if not acquired:
        return 0
    try:
        _lock_path(dsn).parent.mkdir(parents=True, exist_ok=True)
        with open(_lock_path(dsn), "a+") as lock_fh:
            while True:
                try:
                    fcntl.flock(lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return 0
                    time.sleep(0.05)
            try:
                return _ingest_locked(dsn, database, deadline, ttl_days, stats)
            finally:
                fcntl.flock(lock_fh.fileno(), fcntl.LOCK_UN)
    finally:
        _ingest_thread_lock.release()


def _open_with_retry(dsn: str, deadline: float) -> Any:
    delay = 0.1
    while True:
        try:
            return storage.connect(dsn)
        except storage.StorageBusy:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _ingest_locked(dsn: str, database: str, deadline: float, ttl_days: int, stats: IngestStats) -> int:
    client = _open_with_retry(dsn, deadline)
    try:
        ensure_schema(client, str(storage.chdb_path(dsn)), database, ttl_days)
        inserted = 0
        while True:
            files = pending_files(dsn)
            if not files:
                return inserted
            for path in files:
                try:
                    rows = _read_spool(path)
                except FileNotFoundError:
                    continue
                except (ValueError, UnicodeDecodeError):
                    stats.quarantined_rows += _quarantine(path)
                    continue
                if rows:
                    try:
                        insert_rows(client, database, rows, token=path.name)
                    except Exception as exc:
                        if storage.is_busy_error(exc):
                            raise
                        # A file the server rejects would block the queue forever: set it
                        # aside (kept on disk, renamed) and go on with the next one.
                        logger.warning("otel-llmcost: spool file %s rejected: %s", path.name, exc)
                        stats.quarantined_rows += _quarantine(path)
                        continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                inserted += len(rows)
                stats.files += 1
                stats.rows += len(rows)
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _quarantine(path: Path) -> int:
    try:
        count = sum(1 for line in open(path, encoding="utf-8", errors="replace") if line.strip())
    except OSError:
        count = 0
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".rejected"))
    return count


class LLMCostSpanExporter(SpanExporter):
    """Export spans to ClickHouse's ``otel_traces`` (embedded chdb by default).

    Configured by arguments or, for ``opentelemetry-instrument --traces_exporter llmcost``
    (no arguments), by $OTEL_EXPORTER_LLMCOST_DSN, $OTEL_EXPORTER_LLMCOST_DATABASE and
    $OTEL_EXPORTER_LLMCOST_TTL_DAYS.

    ``ingest_interval_s`` bounds how often ``export`` opens chdb (a few hundred ms each):
    in between, batches only go to the spool; ``force_flush`` and ``shutdown`` always
    ingest. Remote inserts retry ``max_retries`` times within ``timeout_s``.
    """

    def __init__(
        self,
        dsn: str | None = None,
        database: str | None = None,
        *,
        ttl_days: int | None = None,
        ingest_interval_s: float = 1.0,
        max_retries: int = 3,
        retry_backoff_s: float = 0.2,
        timeout_s: float = 10.0,
        shutdown_wait_s: float = 5.0,
    ) -> None:
        self._dsn = dsn or storage.configured_dsn()
        self._database = database or storage.configured_database()
        self._ttl_days = ttl_days or int(os.environ.get(TTL_DAYS_ENV) or 180)
        migrations.render("", database=self._database, cluster=None, ttl_days=self._ttl_days)  # validates
        self._embedded = storage.is_chdb(self._dsn)
        self._ingest_interval_s = ingest_interval_s
        self._max_retries = max(1, max_retries)
        self._retry_backoff_s = retry_backoff_s
        self._timeout_s = timeout_s
        self._shutdown_wait_s = shutdown_wait_s
        self._last_ingest = 0.0
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._remote_client: Any = None
        self._remote_lock = threading.Lock()
        self._shutdown = False
        self._warned: set[str] = set()

    @property
    def dsn_redacted(self) -> str:
        return storage.redact_dsn(self._dsn)

    @property
    def dropped_spans(self) -> int:
        """Spans that will never reach storage (failed remote batches, rejected files)."""
        return self._dropped

    def _drop(self, count: int, reason: str) -> None:
        with self._dropped_lock:
            self._dropped += count
        if reason not in self._warned:
            self._warned.add(reason)
            logger.warning("otel-llmcost: dropping spans (%s); further drops are counted quietly", reason)

    # --- SpanExporter ------------------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            return self._export(spans)
        except Exception as exc:  # never let storage trouble reach the application
            self._drop(len(spans), f"unexpected error: {type(exc).__name__}")
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if not self._embedded:
            return True
        try:
            self._ingest(wait_s=min(timeout_millis / 1000.0, self._shutdown_wait_s))
        except Exception:
            return False
        return not pending_files(self._dsn)

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        if self._embedded:
            with contextlib.suppress(Exception):
                self._ingest(wait_s=self._shutdown_wait_s)
            with contextlib.suppress(Exception):
                left = len(pending_files(self._dsn))
                if left:
                    logger.info(
                        "otel-llmcost: %d spool file(s) left in %s; they are ingested on next use",
                        left,
                        spool_dir(self._dsn),
                    )
        with self._remote_lock:
            if self._remote_client is not None:
                with contextlib.suppress(Exception):
                    self._remote_client.close()
                self._remote_client = None
        if self._dropped:
            logger.warning("otel-llmcost: %d span(s) were dropped by the exporter", self._dropped)

    # --- internals ---------------------------------------------------------------
    def _rows(self, spans: Sequence[ReadableSpan]) -> list[list[Any]]:
        rows = []
        for span in spans:
            try:
                rows.append(span_to_row(span))
            except Exception as exc:
                self._drop(1, f"unconvertible span: {type(exc).__name__}")
        return rows

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        rows = self._rows(spans)
        if not rows:
            return SpanExportResult.SUCCESS
        if not self._embedded:
            return self._export_remote(rows)
        try:
            write_spool(self._dsn, rows)
        except Exception as exc:
            self._drop(len(rows), f"cannot write spool: {type(exc).__name__}")
            return SpanExportResult.FAILURE
        if time.monotonic() - self._last_ingest >= self._ingest_interval_s:
            try:
                self._ingest(wait_s=0.0)
            except storage.StorageBusy:
                pass  # spooled: the next flush, shutdown or CLI run ingests it
            except Exception as exc:
                if exc.__class__.__name__ not in self._warned:
                    self._warned.add(exc.__class__.__name__)
                    logger.warning("otel-llmcost: ingest deferred: %s", storage.redact_text(str(exc), self._dsn))
        return SpanExportResult.SUCCESS

    def _ingest(self, *, wait_s: float) -> int:
        self._last_ingest = time.monotonic()
        stats = IngestStats()
        try:
            return ingest_pending(self._dsn, self._database, wait_s=wait_s, ttl_days=self._ttl_days, stats=stats)
        finally:
            if stats.quarantined_rows:
                self._drop(stats.quarantined_rows, "spool file rejected by the database")

    def _remote(self) -> Any:
        with self._remote_lock:
            if self._remote_client is None:
                client = storage.connect(self._dsn, connect_timeout=min(self._timeout_s, 5.0))
                try:
                    ensure_schema(client, storage.redact_dsn(self._dsn), self._database, self._ttl_days)
                except Exception as exc:
                    # The collector may own the schema and we may lack DDL rights: insert anyway.
                    if "schema" not in self._warned:
                        self._warned.add("schema")
                        logger.warning(
                            "otel-llmcost: migrations not applied on %s: %s",
                            self.dsn_redacted,
                            storage.redact_text(str(exc), self._dsn),
                        )
                self._remote_client = client
            return self._remote_client

    def _export_remote(self, rows: list[list[Any]]) -> SpanExportResult:
        deadline = time.monotonic() + self._timeout_s
        token = f"{time.time_ns():020d}-{os.getpid()}-{id(rows):x}"
        delay = self._retry_backoff_s
        for attempt in range(self._max_retries):
            try:
                insert_rows(self._remote(), self._database, rows, token=token)
                return SpanExportResult.SUCCESS
            except Exception:
                with self._remote_lock:
                    client, self._remote_client = self._remote_client, None
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                if attempt + 1 >= self._max_retries or time.monotonic() + delay > deadline:
                    break
                time.sleep(delay)
                delay *= 2
        self._drop(len(rows), f"remote insert failed for {self.dsn_redacted}")
        return SpanExportResult.FAILURE
