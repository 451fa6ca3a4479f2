"""Span exporter writing the collector's ``otel_traces`` table, embedded (chdb) or remote.

Embedded (``chdb://path``, the default)
---------------------------------------
chdb lets one process at a time open a path, and the app must never hold it, or
``otel-llmcost report`` (or the other workers of a multi-process server) could not run
next to it. So ``export`` first appends the batch to ``<data dir>/spool/`` as one
JSON-lines file written atomically (temp file, fsync, ``os.replace``: a reader sees all
of it or nothing), then, at most every ``ingest_interval_s``, tries to ingest. Ingesting
takes the path's turn (:func:`otel_llmcost.storage.chdb_turn`: a ``flock`` on
``<data dir>/ingest.lock`` that the CLI takes too) without waiting, opens chdb, and
inserts the pending spool files, in name order, many files per insert (an insert costs
~100 ms on chdb whatever its size, so one insert per file could not keep up with a busy
app): the group is first recorded in ``spool/.ingest-manifest.json`` with its
``insert_deduplication_token``, then inserted, then its files are unlinked and the
manifest removed; then chdb is closed. Whoever holds the turn ingests *every* process's files, so
with N worker processes sharing one path, each batch is stored by exactly one of them.
If the turn or the path is busy, the files wait for the next flush, for shutdown, or for
whoever ingests next (``otel-llmcost report`` calls :func:`ingest_pending` first).

Guarantees (checked by ``tests/reliability``):

- a span whose batch ``export`` accepted (returned SUCCESS) is stored exactly once, by
  whichever process ingests next, whatever happens to the app afterwards (kill -9 during
  the insert included): an ingest killed after its insert replays exactly the manifest's
  files with the same token, which the deduplication windows set by the migrations drop,
  in otel_traces and in every materialized view (a manifest whose files are partly
  unlinked was stored: only the cleanup is finished);
- spans a process had not yet handed to ``export`` when it died (a
  ``BatchSpanProcessor`` queue: at most ``max_queue_size``, 2048 by default) are lost and
  cannot be counted. What the exporter *can* count it does: every exporter keeps a
  liveness marker (``spool/.live-<owner>``, ``flock``-ed for its lifetime, holding the
  size of the batch being written); the next exporter or CLI run that finds a marker of a
  dead process logs a warning with that count, removes its half-written temp file and
  counts the spans in ``llmcost.exporter.dropped_spans`` (reason ``process_crash``).

Remote (``http(s)://``)
-----------------------
Rows are inserted directly, ``max_retries`` attempts with exponential backoff (from
``retry_backoff_s``, doubling, plus up to 10% jitter) within ``timeout_s``; each HTTP
request is bounded by the time left. A batch that still fails is dropped and counted;
the remote then gets a cool-down (``retry_backoff_s`` doubling up to 30 s) during which
batches are dropped and counted at once instead of stalling the exporting thread, so a
``BatchSpanProcessor`` queue never backs up behind a dead server and shutdown is never
held for long.

With a ``BatchSpanProcessor`` (what ``opentelemetry-instrument`` installs) none of this
runs on the application's threads: an instrumented call only appends the ended span to
the processor's bounded queue. With a ``SimpleSpanProcessor``, each span end waits for
at most one export: ``timeout_s`` remote, one spool write (+ at most one ingest every
``ingest_interval_s``) embedded.

``export`` never raises. Spans that never reach storage are counted in
``dropped_spans``, exported as the OTel counter ``llmcost.exporter.dropped_spans``
(attribute ``reason``) through ``meter_provider`` (default: the global one), and logged
once per reason and in total at shutdown. Attribute values above the size limit are cut
(see ``rows.py``) and counted in ``llmcost.exporter.truncated_attributes``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import random
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_llmcost import migrations, semconv, storage
from otel_llmcost.exporter.rows import COLUMNS, Truncations, max_value_bytes_from_env, span_to_row

logger = logging.getLogger(__name__)

TTL_DAYS_ENV = "OTEL_EXPORTER_LLMCOST_TTL_DAYS"
SPOOL_SUFFIX = ".jsonl"
LIVE_PREFIX = ".live-"
CLAIM_PREFIX = ".claim-"
TMP_PREFIX = ".tmp-"
# A temp file with no live owner older than this was left by a process that died writing it.
STALE_TMP_S = 600.0
MAX_COOLDOWN_S = 30.0
MANIFEST_NAME = ".ingest-manifest.json"
# One grouped insert stays well inside one ClickHouse block (min_insert_block_size_rows
# ~1M, _bytes 256 MiB), so it is stored or rejected as a whole, under one token.
MAX_GROUP_ROWS = 20_000
MAX_GROUP_BYTES = 64 << 20

# Reasons for dropped spans (the ``reason`` attribute of llmcost.exporter.dropped_spans).
DROP_REMOTE_FAILED = "remote_failed"
DROP_REMOTE_COOLDOWN = "remote_cooldown"
DROP_SPOOL_WRITE = "spool_write_failed"
DROP_UNCONVERTIBLE = "unconvertible_span"
DROP_REJECTED = "rejected_by_database"
DROP_CRASH = "process_crash"
DROP_AFTER_SHUTDOWN = "after_shutdown"
DROP_UNEXPECTED = "unexpected_error"

# Schemas already migrated by this process, keyed by (dsn or path, database).
_migrated: set[tuple[str, str]] = set()
_migrated_lock = threading.Lock()
_spool_counter = 0
_spool_counter_lock = threading.Lock()


def data_dir(dsn: str) -> Path:
    """Directory holding the chdb path, its spool/ and ingest.lock."""
    return storage.chdb_path(dsn).parent


def spool_dir(dsn: str) -> Path:
    return data_dir(dsn) / "spool"


def _insert_settings(token: str) -> dict[str, Any]:
    return {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}


def write_spool(dsn: str, rows: Sequence[Sequence[Any]], owner: str | None = None) -> Path:
    """Write rows as one spool file, atomically; names sort in write order.

    The temp file is named after ``owner`` (an exporter's liveness marker) so that a
    crash mid-write can be attributed and cleaned up.
    """
    global _spool_counter
    directory = spool_dir(dsn)
    directory.mkdir(parents=True, exist_ok=True)
    with _spool_counter_lock:
        _spool_counter += 1
        counter = _spool_counter
    pid = os.getpid()
    name = f"{time.time_ns():020d}-{pid}-{counter:06d}{SPOOL_SUFFIX}"
    tmp = directory / f"{TMP_PREFIX}{owner or f'p{pid}'}-{name}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
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
    """What one ingest pass did: files/rows inserted, rows quarantined as unreadable or
    rejected, spans lost by processes found dead without a clean shutdown."""

    __slots__ = ("files", "rows", "quarantined_rows", "crashed_spans")

    def __init__(self) -> None:
        self.files = 0
        self.rows = 0
        self.quarantined_rows = 0
        self.crashed_spans = 0


# --- liveness markers -----------------------------------------------------------------


class _Liveness:
    """``spool/.live-<owner>``: exists and is ``flock``-ed while its exporter lives.

    Holds the number of spans handed to ``export`` and not yet safely in the spool, as 20
    digits at offset 0 (a ``pwrite`` into the page cache: it survives SIGKILL).
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self.owner = f"{self.pid}-{secrets.token_hex(4)}"
        claim = directory / f"{CLAIM_PREFIX}{self.owner}"
        self.path = directory / f"{LIVE_PREFIX}{self.owner}"
        fd = os.open(claim, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.pwrite(fd, b"%020d\n" % 0, 0)
            os.replace(claim, self.path)  # visible only once locked
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                claim.unlink()
            raise
        self.fd: int | None = fd

    def in_flight(self, count: int) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.pwrite(self.fd, b"%020d\n" % count, 0)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if os.getpid() == self.pid:
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(fd)


def recover_abandoned(dsn: str) -> int:
    """Clean up after exporters whose process died without shutdown; return the spans
    they were writing (lost), and log them. Safe to run from any process at any time."""
    directory = spool_dir(dsn)
    if not directory.is_dir():
        return 0
    lost = 0
    live_owners: set[str] = set()
    try:
        entries = list(directory.iterdir())
    except OSError:
        return 0
    now = time.time()
    for path in entries:
        name = path.name
        if name.startswith(CLAIM_PREFIX):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > 60:
                    path.unlink()
            continue
        if not name.startswith(LIVE_PREFIX):
            continue
        owner = name[len(LIVE_PREFIX) :]
        count = _reap_marker(path)
        if count is None:
            live_owners.add(owner)
            continue
        tmp_rows = 0
        for tmp in directory.glob(f"{TMP_PREFIX}{owner}-*"):
            tmp_rows += _count_lines(tmp)
            with contextlib.suppress(OSError):
                tmp.unlink()
        spans = max(count, tmp_rows)
        lost += spans
        logger.warning(
            "otel-llmcost: the process behind exporter %s (pid %s) ended without shutting its exporter down: "
            "%d span(s) it was writing are lost; spans still queued in its memory (BatchSpanProcessor, at most "
            "max_queue_size) were lost too and cannot be counted. Everything it had spooled is kept.",
            owner,
            owner.split("-", 1)[0],
            spans,
        )
    for tmp in entries:
        if not tmp.name.startswith(TMP_PREFIX) or any(tmp.name.startswith(f"{TMP_PREFIX}{o}-") for o in live_owners):
            continue
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > STALE_TMP_S and tmp.exists():
                lost += _count_lines(tmp)
                tmp.unlink()
    return lost


def _reap_marker(path: Path) -> int | None:
    """None if the marker's owner lives; else its in-flight count, marker removed."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # held: its owner is alive
        try:
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                return None  # reaped by someone else meanwhile
        except FileNotFoundError:
            return None
        raw = os.pread(fd, 20, 0)
        try:
            count = int(raw or b"0")
        except ValueError:
            count = 0
        path.unlink()
        return count
    finally:
        os.close(fd)


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


# --- ingest ---------------------------------------------------------------------------


def ingest_pending(
    dsn: str | None = None,
    database: str | None = None,
    *,
    wait_s: float = 0.0,
    ttl_days: int = 180,
    stats: IngestStats | None = None,
) -> int:
    """Insert every spooled file into chdb; return the number of rows inserted.

    Returns 0 without waiting beyond ``wait_s`` when another thread or process holds the
    path's turn (it ingests them). Raises ``storage.StorageBusy`` when the chdb path stays
    held by a foreign process for ``wait_s``. Remote DSNs have no spool: returns 0.
    """
    dsn = dsn or storage.configured_dsn()
    database = database or storage.configured_database()
    migrations.render("", database=database, cluster=None, ttl_days=ttl_days)  # validates
    stats = stats if stats is not None else IngestStats()
    if not storage.is_chdb(dsn):
        return 0
    stats.crashed_spans += recover_abandoned(dsn)
    if not pending_files(dsn):
        return 0
    deadline = time.monotonic() + max(wait_s, 0.0)
    with storage.chdb_turn(dsn, wait_s=wait_s) as mine:
        if not mine:
            return 0
        if not pending_files(dsn):  # the previous holder took them
            return 0
        return _ingest_locked(dsn, database, deadline, ttl_days, stats)


def _ingest_locked(dsn: str, database: str, deadline: float, ttl_days: int, stats: IngestStats) -> int:
    client = storage.connect_waiting(dsn, deadline)
    try:
        ensure_schema(client, str(storage.chdb_path(dsn)), database, ttl_days)
        inserted = _finish_interrupted_group(client, dsn, database, stats)
        while True:
            files = pending_files(dsn)
            if not files:
                return inserted
            group: list[Path] = []
            rows: list[list[Any]] = []
            size = 0
            for path in files:
                try:
                    file_rows = _read_spool(path)
                    size += path.stat().st_size
                except FileNotFoundError:
                    continue
                except (ValueError, UnicodeDecodeError):
                    stats.quarantined_rows += _quarantine(path)
                    continue
                group.append(path)
                rows.extend(file_rows)
                if len(rows) >= MAX_GROUP_ROWS or size >= MAX_GROUP_BYTES:
                    break
            if group:
                inserted += _insert_group(client, dsn, database, group, rows, stats)
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _manifest_path(dsn: str) -> Path:
    return spool_dir(dsn) / MANIFEST_NAME


def _group_token(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]  # a lone file keeps its own name as token (as before groups existed)
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:32]
    return f"g-{len(names)}-{digest}"


def _insert_group(
    client: Any, dsn: str, database: str, group: list[Path], rows: list[list[Any]], stats: IngestStats
) -> int:
    """Insert many spool files as ONE insert (an insert costs ~100 ms on chdb, whatever its
    size), crash-safe: the group is first recorded in a manifest, so a restart replays
    exactly the same files with the same deduplication token."""
    names = [p.name for p in group]
    token = _group_token(names)
    manifest = _manifest_path(dsn)
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(json.dumps({"token": token, "files": names}), encoding="utf-8")
    os.replace(tmp, manifest)
    if rows:
        try:
            insert_rows(client, database, rows, token=token)
        except Exception as exc:
            if storage.is_busy_error(exc):
                raise
            # Rejected as a whole (a group stays within one block, so nothing of it was
            # stored): find the culprit file by file.
            manifest.unlink()
            return _insert_one_by_one(client, database, group, stats, exc)
    return _group_stored(manifest, group, len(rows), stats)


def _group_stored(manifest: Path, paths: Sequence[Path], rows: int, stats: IngestStats) -> int:
    """The group's insert returned: unlink its files, then the manifest (in that order, which
    is how a restart tells an interrupted cleanup from an interrupted insert)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    manifest.unlink()
    stats.files += len(paths)
    stats.rows += rows
    return rows


def _insert_one_by_one(client: Any, database: str, group: list[Path], stats: IngestStats, cause: Exception) -> int:
    inserted = 0
    for path in group:
        try:
            rows = _read_spool(path)
        except FileNotFoundError:
            continue
        try:
            if rows:
                insert_rows(client, database, rows, token=path.name)
        except Exception as exc:
            if storage.is_busy_error(exc):
                raise
            # A file the server rejects would block the queue forever: set it aside
            # (kept on disk, renamed) and go on with the next one.
            logger.warning("otel-llmcost: spool file %s rejected: %s", path.name, exc)
            stats.quarantined_rows += _quarantine(path)
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        inserted += len(rows)
        stats.files += 1
        stats.rows += len(rows)
    logger.debug("otel-llmcost: grouped insert failed (%s); inserted file by file", cause)
    return inserted


def _finish_interrupted_group(client: Any, dsn: str, database: str, stats: IngestStats) -> int:
    """Complete a group insert a crashed ingest left behind (its manifest exists)."""
    manifest = _manifest_path(dsn)
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        token, names = str(recorded["token"]), [str(n) for n in recorded["files"]]
    except FileNotFoundError:
        return 0
    except (ValueError, KeyError, TypeError):
        manifest.unlink()
        return 0
    directory = spool_dir(dsn)
    paths = [directory / name for name in names]
    present = [p for p in paths if p.exists()]
    if len(present) < len(paths):
        # Unlinking had begun, so the insert had returned: it is stored. Finish the cleanup.
        for path in present:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        manifest.unlink()
        return 0
    rows: list[list[Any]] = []
    for path in paths:
        rows.extend(_read_spool(path))
    # Same files, same token: if the crashed insert was stored, this one is dropped as a
    # duplicate (in otel_traces and in every materialized view).
    if rows:
        insert_rows(client, database, rows, token=token)
    return _group_stored(manifest, paths, len(rows), stats)


def _quarantine(path: Path) -> int:
    count = _count_lines(path)
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".rejected"))
    return count


# --- the exporter -----------------------------------------------------------------------


class LLMCostSpanExporter(SpanExporter):
    """Export spans to ClickHouse's ``otel_traces`` (embedded chdb by default).

    Configured by arguments or, for ``opentelemetry-instrument --traces_exporter llmcost``
    (no arguments), by $OTEL_EXPORTER_LLMCOST_DSN, $OTEL_EXPORTER_LLMCOST_DATABASE,
    $OTEL_EXPORTER_LLMCOST_TTL_DAYS and $OTEL_EXPORTER_LLMCOST_MAX_ATTRIBUTE_BYTES.

    ``ingest_interval_s`` bounds how often ``export`` opens chdb (a few hundred ms each):
    in between, batches only go to the spool; ``force_flush`` and ``shutdown`` always
    ingest. Remote inserts make ``max_retries`` attempts within ``timeout_s``. See the
    module docstring for what is guaranteed and what is counted.
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
        max_attribute_bytes: int | None = None,
        meter_provider: Any = None,
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
        self._max_value_bytes = (
            max_value_bytes_from_env() if max_attribute_bytes is None else max(max_attribute_bytes, 0)
        )
        self._last_ingest = 0.0
        self._dropped = 0
        self._truncated = 0
        self._counts_lock = threading.Lock()
        self._remote_client: Any = None
        self._remote_lock = threading.Lock()
        self._cooldown_until = 0.0
        self._cooldown_s = 0.0
        self._shutdown = False
        self._warned: set[str] = set()
        self._liveness: _Liveness | None = None
        self._liveness_lock = threading.Lock()
        self._dropped_counter: Any = None
        self._truncated_counter: Any = None
        self._init_metrics(meter_provider)
        if self._embedded:
            # A previous run that died leaves a marker: report what it lost, now.
            with contextlib.suppress(Exception):
                crashed = recover_abandoned(self._dsn)
                if crashed:
                    self._count_drop(crashed, DROP_CRASH, log=False)

    def _init_metrics(self, meter_provider: Any) -> None:
        try:
            from opentelemetry import metrics

            from otel_llmcost.version import __version__

            meter = (
                meter_provider.get_meter(__name__, __version__)
                if meter_provider is not None
                else metrics.get_meter(__name__, __version__)
            )
            self._dropped_counter = meter.create_counter(
                semconv.METRIC_EXPORTER_DROPPED_SPANS,
                unit="{span}",
                description="Spans the llmcost exporter could not store (attribute reason)",
            )
            self._truncated_counter = meter.create_counter(
                semconv.METRIC_EXPORTER_TRUNCATED_ATTRIBUTES,
                unit="{attribute}",
                description="Attribute values the llmcost exporter cut to its size limit",
            )
        except Exception:
            logger.debug("otel-llmcost: exporter metrics unavailable", exc_info=True)

    @property
    def dsn_redacted(self) -> str:
        return storage.redact_dsn(self._dsn)

    @property
    def dropped_spans(self) -> int:
        """Spans that will never reach storage (failed remote batches, rejected files,
        spans a crashed predecessor was writing, spans exported after shutdown)."""
        return self._dropped

    @property
    def truncated_attributes(self) -> int:
        """Attribute values cut to the size limit so far."""
        return self._truncated

    def _count_drop(self, count: int, reason: str, detail: str = "", log: bool = True) -> None:
        with self._counts_lock:
            self._dropped += count
        if self._dropped_counter is not None:
            with contextlib.suppress(Exception):
                self._dropped_counter.add(count, {"reason": reason})
        if log and reason not in self._warned:
            self._warned.add(reason)
            logger.warning(
                "otel-llmcost: dropping spans (%s%s); further drops are counted quietly",
                reason,
                f": {detail}" if detail else "",
            )

    # --- SpanExporter ------------------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            return self._export(spans)
        except Exception as exc:  # never let storage trouble reach the application
            self._count_drop(len(spans), DROP_UNEXPECTED, type(exc).__name__)
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if not self._embedded:
            return True
        try:
            self._ingest(wait_s=min(timeout_millis / 1000.0, self._shutdown_wait_s))
        except Exception:
            return False
        return not self._own_pending()

    def shutdown(self, timeout_millis: float | None = None) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        wait_s = self._shutdown_wait_s
        if timeout_millis is not None:
            wait_s = min(wait_s, max(timeout_millis / 1000.0, 0.0))
        if self._embedded:
            with contextlib.suppress(Exception):
                self._ingest(wait_s=wait_s)
            with contextlib.suppress(Exception):
                left = len(pending_files(self._dsn))
                if left:
                    logger.info(
                        "otel-llmcost: %d spool file(s) left in %s; they are ingested on next use",
                        left,
                        spool_dir(self._dsn),
                    )
            with self._liveness_lock:
                if self._liveness is not None:
                    self._liveness.close()
                    self._liveness = None
        with self._remote_lock:
            if self._remote_client is not None:
                with contextlib.suppress(Exception):
                    self._remote_client.close()
                self._remote_client = None
        if self._dropped:
            logger.warning(
                "otel-llmcost: %d span(s) were dropped by the exporter (%s)",
                self._dropped,
                ", ".join(sorted(self._warned)) or "see earlier warnings",
            )

    # --- internals ---------------------------------------------------------------
    def _own_pending(self) -> bool:
        marker = f"-{os.getpid()}-"
        return any(marker in p.name for p in pending_files(self._dsn))

    def _rows(self, spans: Sequence[ReadableSpan]) -> list[list[Any]]:
        rows = []
        cuts = Truncations()
        for span in spans:
            try:
                rows.append(span_to_row(span, self._max_value_bytes, cuts))
            except Exception as exc:
                self._count_drop(1, DROP_UNCONVERTIBLE, type(exc).__name__)
        if cuts.count:
            with self._counts_lock:
                self._truncated += cuts.count
            if self._truncated_counter is not None:
                with contextlib.suppress(Exception):
                    self._truncated_counter.add(cuts.count)
        return rows

    def _live(self) -> _Liveness:
        with self._liveness_lock:
            live = self._liveness
            if live is None or live.pid != os.getpid():  # first export, or a forked child
                if live is not None and live.fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(live.fd)  # the parent's: its flock stays with the parent
                live = self._liveness = _Liveness(spool_dir(self._dsn))
            return live

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            self._count_drop(len(spans), DROP_AFTER_SHUTDOWN)
            return SpanExportResult.FAILURE
        if not self._embedded:
            rows = self._rows(spans)
            return self._export_remote(rows) if rows else SpanExportResult.SUCCESS
        live = self._live()
        live.in_flight(len(spans))
        rows = self._rows(spans)
        if not rows:
            live.in_flight(0)
            return SpanExportResult.SUCCESS
        try:
            write_spool(self._dsn, rows, owner=live.owner)
        except Exception as exc:
            live.in_flight(0)
            self._count_drop(len(rows), DROP_SPOOL_WRITE, type(exc).__name__)
            return SpanExportResult.FAILURE
        live.in_flight(0)
        if time.monotonic() - self._last_ingest >= self._ingest_interval_s:
            try:
                self._ingest(wait_s=0.0)
            except storage.StorageBusy:
                pass  # spooled: the next flush, shutdown or CLI run ingests it
            except Exception as exc:
                key = f"ingest:{exc.__class__.__name__}"
                if key not in self._warned:
                    self._warned.add(key)
                    logger.warning("otel-llmcost: ingest deferred: %s", storage.redact_text(str(exc), self._dsn))
        return SpanExportResult.SUCCESS

    def _ingest(self, *, wait_s: float) -> int:
        self._last_ingest = time.monotonic()
        stats = IngestStats()
        try:
            return ingest_pending(self._dsn, self._database, wait_s=wait_s, ttl_days=self._ttl_days, stats=stats)
        finally:
            if stats.quarantined_rows:
                self._count_drop(stats.quarantined_rows, DROP_REJECTED)
            if stats.crashed_spans:
                self._count_drop(stats.crashed_spans, DROP_CRASH, log=False)

    def _remote(self, request_timeout_s: int) -> Any:
        with self._remote_lock:
            if self._remote_client is None:
                client = storage.connect(
                    self._dsn,
                    connect_timeout=min(request_timeout_s, 5),
                    send_receive_timeout=request_timeout_s,
                )
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

    def _set_request_timeout(self, client: Any, seconds: int) -> None:
        with contextlib.suppress(Exception):
            from urllib3 import Timeout

            client.timeout = Timeout(connect=min(seconds, 5), read=seconds)

    def _export_remote(self, rows: list[list[Any]]) -> SpanExportResult:
        now = time.monotonic()
        if now < self._cooldown_until:
            self._count_drop(len(rows), DROP_REMOTE_COOLDOWN, f"{self.dsn_redacted} failed recently")
            return SpanExportResult.FAILURE
        deadline = now + self._timeout_s
        token = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(6)}"
        delay = self._retry_backoff_s
        error: Exception | None = None
        for attempt in range(self._max_retries):
            request_timeout = max(1, math.ceil(deadline - time.monotonic()))
            try:
                client = self._remote(request_timeout)
                self._set_request_timeout(client, request_timeout)
                insert_rows(client, self._database, rows, token=token)
                self._cooldown_s = 0.0
                return SpanExportResult.SUCCESS
            except Exception as exc:
                error = exc
                with self._remote_lock:
                    client, self._remote_client = self._remote_client, None
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                sleep = delay * (1.0 + 0.1 * random.random())
                if attempt + 1 >= self._max_retries or time.monotonic() + sleep >= deadline:
                    break
                time.sleep(sleep)
                delay *= 2
        self._cooldown_s = min(max(self._cooldown_s * 2, self._retry_backoff_s), MAX_COOLDOWN_S)
        self._cooldown_until = time.monotonic() + self._cooldown_s
        detail = self.dsn_redacted
        if error is not None:
            detail += f": {type(error).__name__}: {storage.redact_text(str(error), self._dsn)[:300]}"
        self._count_drop(len(rows), DROP_REMOTE_FAILED, detail)
        return SpanExportResult.FAILURE
