"""Ingest: move spooled batches into ClickHouse, exactly once.

Whoever holds the embedded path's turn (:func:`otel_llmcost.storage.chdb_turn`: a
``flock`` on ``<data dir>/ingest.lock`` that the CLI takes too) inserts every
process's pending spool files, in name order, many files per insert (an insert costs
~100 ms on chdb whatever its size, so one insert per file could not keep up with a
busy app): the group is first recorded in ``spool/.ingest-manifest.json`` with its
``insert_deduplication_token``, then inserted, then its files are unlinked and the
manifest removed. An ingest killed after its insert replays exactly the manifest's
files with the same token, which the deduplication windows set by the migrations drop,
in otel_traces and in every materialized view (a manifest whose files are partly
unlinked was stored: only the cleanup is finished).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import storage
from .rows import COLUMNS
from .spool import count_lines, pending_files, read_spool, recover_abandoned, spool_dir

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".ingest-manifest.json"
# One grouped insert stays well inside one ClickHouse block (min_insert_block_size_rows
# ~1M, _bytes 256 MiB), so it is stored or rejected as a whole, under one token.
MAX_GROUP_ROWS = 20_000
MAX_GROUP_BYTES = 64 << 20

# Schemas already migrated by this process, keyed by (dsn or path, database).
_migrated: set[tuple[str, str]] = set()
_migrated_lock = threading.Lock()


def _insert_settings(token: str) -> dict[str, Any]:
    return {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}


def ensure_schema(client: Any, key: str, database: str, ttl_days: int) -> None:
    """Run the migrations once per process and schema."""
    with _migrated_lock:
        if (key, database) in _migrated:
            return
        storage.migrate(client, database=database, ttl_days=ttl_days)
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
    storage.render("", database=database, cluster=None, ttl_days=ttl_days)  # validates
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
                    file_rows = read_spool(path)
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
            rows = read_spool(path)
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
        rows.extend(read_spool(path))
    # Same files, same token: if the crashed insert was stored, this one is dropped as a
    # duplicate (in otel_traces and in every materialized view).
    if rows:
        insert_rows(client, database, rows, token=token)
    return _group_stored(manifest, paths, len(rows), stats)


def _quarantine(path: Path) -> int:
    count = count_lines(path)
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".rejected"))
    return count
