"""Ingest: move spooled batches into ClickHouse, exactly once.

Runs in the ingester process (:mod:`.ingester`) or a CLI command, never in an app.
Whoever holds the spool's turn (:func:`otel_llmcost.storage.turn`: a ``flock`` on
``<data dir>/ingest.lock`` that every CLI read takes too) inserts every
process's pending spool files, in name order, many files per insert (an insert costs
~100 ms on chdb whatever its size, so one insert per file could not keep up with a
busy app). Into chdb the files go as they are: a spool line is a row of ClickHouse's
``JSONCompactEachRow`` format, so the group's bytes are handed to chdb, which parses
them (:func:`insert_spool_bytes`); Python never decodes a row nor encodes the insert's
Native block, which cost more than chdb's own work and its materialized views' did
(issue 24). A remote server gets the decoded rows through clickhouse-connect
(:func:`insert_rows`). The group is first recorded in ``spool/.ingest-manifest.json`` with its
``insert_deduplication_token``, then inserted, then its files are unlinked and the
manifest removed. An ingest killed after its insert replays exactly the manifest's
files with the same token, which the deduplication windows set by the migrations drop,
in otel_traces and in every materialized view (a manifest whose files are partly
unlinked was stored: only the cleanup is finished).

What a failed insert means decides what happens to the files:

- rows the database refuses by *content* (a value that does not convert: only a
  hand-edited or corrupt file can hold one) are set aside file by file
  (``*.rejected``, with the reason; ``otel-llmcost spool replay`` puts them back);
- a missing table or database (dropped by hand) is repaired by re-running the
  migrations, then the insert is retried once;
- anything else (disk full, server down or timing out, the path busy) is transient:
  the files and the group's manifest stay, :class:`IngestDeferred` is raised, and the
  next pass retries the same group with the same token, so a server that stored the
  batch but never answered does not get it twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import storage
from ..config import Settings
from .rows import COLUMNS
from .spool import data_dir, pending_files, read_spool, recover_abandoned, reject, spool_dir, spool_line_count

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".ingest-manifest.json"
# One grouped insert stays well inside one ClickHouse block (min_insert_block_size_rows
# ~1M, _bytes 256 MiB), so it is stored or rejected as a whole, under one token.
MAX_GROUP_ROWS = 20_000
MAX_GROUP_BYTES = 64 << 20

# ClickHouse error codes that mean "this value cannot go in this column": the file's
# content is at fault, retrying cannot help. (6 CANNOT_PARSE_TEXT, 27 CANNOT_PARSE_INPUT_
# ASSERTION_FAILED, 38/41 CANNOT_PARSE_DATE(TIME), 53 TYPE_MISMATCH, 69 ARGUMENT_OUT_OF_BOUND,
# 70 CANNOT_CONVERT_TYPE, 72 CANNOT_PARSE_NUMBER, 117 INCORRECT_DATA, 131 TOO_LARGE_STRING_SIZE,
# 349 CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN)
_CONTENT_CODES = frozenset({6, 27, 38, 41, 53, 69, 70, 72, 117, 131, 349})
# 16 NO_SUCH_COLUMN_IN_TABLE, 60 UNKNOWN_TABLE, 81 UNKNOWN_DATABASE: the schema is missing a piece.
_SCHEMA_CODES = frozenset({16, 60, 81})
_CODE = re.compile(r"Code: (\d+)\.")
REMOTE_CONNECT_TIMEOUT_S = 5
REMOTE_SEND_RECEIVE_TIMEOUT_S = 30


class IngestDeferred(RuntimeError):
    """A transient fault stopped this ingest; the spool is intact and the next pass retries."""


def _error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = _CODE.search(str(exc))
    return int(found.group(1)) if found else None


def is_content_error(exc: BaseException) -> bool:
    """Whether the database refused the rows themselves (as opposed to its own state).

    clickhouse-connect serializes rows in this process before anything is sent, so a
    value that does not fit its column fails here, as ValueError/TypeError/OverflowError/
    struct.error or the driver's DataError/ProgrammingError (row shape); the server's own
    conversion errors carry one of the codes above.
    """
    if isinstance(exc, (ValueError, TypeError, OverflowError, struct.error, UnicodeError)):
        return True
    name = type(exc).__name__
    if name in ("DataError", "ProgrammingError"):
        return True
    return _error_code(exc) in _CONTENT_CODES


def is_schema_error(exc: BaseException) -> bool:
    return _error_code(exc) in _SCHEMA_CODES


# Schemas already migrated by this process, keyed by (dsn or path, database).
_migrated: set[tuple[str, str]] = set()
_migrated_lock = threading.Lock()


def _insert_settings(token: str) -> dict[str, Any]:
    return {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}


def ensure_schema(client: Any, key: str, database: str, ttl_days: int, *, again: bool = False) -> None:
    """Run the migrations once per process and schema (``again``: after a table went missing)."""
    with _migrated_lock:
        if again:
            _migrated.discard((key, database))
        if (key, database) in _migrated:
            return
        try:
            storage.migrate(client, database=database, ttl_days=ttl_days)
        except storage.ClusterLayout:
            pass  # laid out by `otel-llmcost migrate --cluster NAME`: the tables are there
        _migrated.add((key, database))


def insert_rows(client: Any, database: str, rows: Sequence[Sequence[Any]], token: str | None = None) -> None:
    settings = _insert_settings(token) if token else None
    client.insert(f"{database}.otel_traces", list(rows), column_names=list(COLUMNS), settings=settings)


# How chdb reads a spool line: the values span_to_row writes, in COLUMNS order. Timestamps
# are integers of nanoseconds, which ClickHouse would read as seconds for a DateTime64: they
# are read as Int64 and converted in the SELECT. Strings and maps arrive as JSON text.
_SPOOL_TYPES = {
    "Timestamp": "Int64",
    "ResourceAttributes": "Map(String, String)",
    "SpanAttributes": "Map(String, String)",
    "Duration": "UInt64",
    "Events.Timestamp": "Array(Int64)",
    "Events.Name": "Array(String)",
    "Events.Attributes": "Array(Map(String, String))",
    "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)",
    "Links.TraceState": "Array(String)",
    "Links.Attributes": "Array(Map(String, String))",
}
_SPOOL_STRUCTURE = ", ".join(f"`{c}` {_SPOOL_TYPES.get(c, 'String')}" for c in COLUMNS)
_SPOOL_SELECT = ", ".join(
    "fromUnixTimestamp64Nano(`Timestamp`)"
    if c == "Timestamp"
    else "arrayMap(t -> fromUnixTimestamp64Nano(t), `Events.Timestamp`)"
    if c == "Events.Timestamp"
    else f"`{c}`"
    for c in COLUMNS
)
# Characters ClickHouse reads as a glob in a file() path (a quote is escaped).
_GLOB_CHARS = frozenset("*?{}[]")
PAYLOAD_PREFIX = "llmcost-ingest-"


def insert_spool_bytes(client: Any, database: str, chunks: Sequence[bytes], token: str) -> None:
    """Insert spool files' bytes (JSON lines, each a ``JSONCompactEachRow`` row) into a chdb
    ``otel_traces`` as ONE insert, parsed by chdb itself.

    The bytes are staged in one file in the temp directory (where clickhouse-connect stages
    every chdb insert too) and read with ``file()``: chdb, an engine inside this process,
    has no request body to stream them in. A value that does not fit its column fails the
    whole insert with a parse error (a content error) before any block is written: a group
    stays below ``min_insert_block_size_rows``/``_bytes``, so the SELECT's rows are squashed
    into one block, stored or deduplicated by ``token`` as a whole (in every materialized
    view, too).
    """
    directory = tempfile.gettempdir()
    if _GLOB_CHARS.intersection(directory):
        # file() would read the path as a pattern and find no file: never "insert" nothing.
        raise IngestDeferred(f"the temp directory {directory!r} holds glob characters chdb cannot read through")
    fd, name = tempfile.mkstemp(prefix=PAYLOAD_PREFIX, suffix=".jsonl", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                if chunk and not chunk.endswith(b"\n"):
                    fh.write(b"\n")  # a hand-edited last line must not run into the next file
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        client.command(
            f"INSERT INTO {database}.otel_traces ({', '.join(f'`{c}`' for c in COLUMNS)}) "
            f"SELECT {_SPOOL_SELECT} FROM file('{quoted}', 'JSONCompactEachRow', '{_SPOOL_STRUCTURE}')",
            settings=_insert_settings(token),
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


class IngestStats:
    """What one ingest pass did: files/rows inserted, rows set aside as invalid by
    content, spans lost by processes found dead without a clean shutdown."""

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
    max_s: float | None = None,
    yield_to: Callable[[], bool] | None = None,
    client: Any = None,
) -> int:
    """Insert the spooled files into ClickHouse; return the number of rows inserted.

    Returns 0 without waiting beyond ``wait_s`` when another thread or process holds the
    spool's turn (it ingests them). Raises ``storage.StorageBusy`` when a chdb path stays
    held by a foreign process for ``wait_s``, and :class:`IngestDeferred` on a transient
    fault (the files stay for the next pass). The pass ends between two grouped inserts
    once ``max_s`` is spent or ``yield_to()`` says someone waits. ``client``: use this open
    client (its holder has the turn) instead of opening one.
    """
    dsn = dsn or storage.configured_dsn()
    database = database or storage.configured_database()
    storage.render("", database=database, cluster=None, ttl_days=ttl_days)  # validates
    stats = stats if stats is not None else IngestStats()
    stats.crashed_spans += recover_abandoned(dsn)
    if not pending_files(dsn) and not _manifest_path(dsn).exists():
        return 0
    deadline = time.monotonic() + max(wait_s, 0.0)
    with storage.turn(data_dir(dsn) / storage.connection.LOCK_NAME, wait_s=wait_s) as mine:
        if not mine:
            return 0
        if not pending_files(dsn) and not _manifest_path(dsn).exists():  # the previous holder took them
            return 0
        stop_at: float | None = None

        def spent() -> bool:
            return (stop_at is not None and time.monotonic() >= stop_at) or (yield_to is not None and yield_to())

        if storage.is_chdb(dsn):
            _check_free_space(dsn)
        own = client is None
        active = _open(dsn, deadline) if own else client
        try:
            try:
                ensure_schema(active, _schema_key(dsn), database, ttl_days)
            except Exception as exc:
                if storage.is_chdb(dsn):
                    raise IngestDeferred(f"migrations failed: {exc}") from exc
                # A collector may own the remote schema and we may lack DDL rights: insert anyway.
                logger.warning("otel-llmcost: migrations not applied on %s: %s", storage.redact_dsn(dsn), exc)
            # The clock starts after the migrations (seconds on a new database): a bounded
            # pass is for inserting.
            stop_at = None if max_s is None else time.monotonic() + max_s
            return _ingest_locked(active, dsn, database, ttl_days, stats, spent)
        finally:
            if own:
                with contextlib.suppress(Exception):
                    active.close()


def _check_free_space(dsn: str) -> None:
    """Defer while the disk is nearly full: ClickHouse can leave a table's metadata empty
    (and the database unopenable) when a write fails during DDL, and the migrations run
    DDL on every upgrade."""
    floor = Settings.load().min_free_mb << 20
    if floor <= 0:
        return
    try:
        free = shutil.disk_usage(data_dir(dsn)).free
    except OSError:
        return
    if free < floor:
        raise IngestDeferred(
            f"only {free / 2**20:.0f} MB free on the disk of {data_dir(dsn)} "
            f"(OTEL_EXPORTER_LLMCOST_MIN_FREE_MB={floor >> 20}): spans wait in the spool"
        )


def _schema_key(dsn: str) -> str:
    return str(storage.chdb_path(dsn)) if storage.is_chdb(dsn) else storage.redact_dsn(dsn)


def _open(dsn: str, deadline: float) -> Any:
    if storage.is_chdb(dsn):
        return storage.connect_waiting(dsn, deadline)
    try:
        return storage.connect(
            dsn, connect_timeout=REMOTE_CONNECT_TIMEOUT_S, send_receive_timeout=REMOTE_SEND_RECEIVE_TIMEOUT_S
        )
    except Exception as exc:
        raise IngestDeferred(str(exc)) from None


def _ingest_locked(
    client: Any, dsn: str, database: str, ttl_days: int, stats: IngestStats, spent: Callable[[], bool]
) -> int:
    inserted = _with_repair(
        client, dsn, database, ttl_days, functools.partial(_finish_interrupted_group, client, dsn, database, stats)
    )
    first = True
    while first or not spent():  # at least one group per pass: a pass must make progress
        first = False
        files = pending_files(dsn)
        if not files:
            break
        group = _Group(dsn)
        for path in files:
            try:
                group.add(path)
            except FileNotFoundError:
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                stats.quarantined_rows += reject(path, f"unreadable: {exc}")
                continue
            if group.rows >= MAX_GROUP_ROWS or group.size >= MAX_GROUP_BYTES:
                break
        if group.paths:
            inserted += _with_repair(
                client,
                dsn,
                database,
                ttl_days,
                functools.partial(_insert_group, client, dsn, database, group, stats),
            )
    return inserted


def _with_repair(client: Any, dsn: str, database: str, ttl_days: int, insert: Callable[[], int]) -> int:
    """Run ``insert``; if a table or database was missing, migrate again and retry once.
    A transient fault becomes :class:`IngestDeferred` (the spool and manifest stay)."""
    try:
        try:
            return int(insert())
        except Exception as exc:
            if not is_schema_error(exc):
                raise
            logger.warning("otel-llmcost: %s; re-running the migrations", _first_line(exc))
            ensure_schema(client, _schema_key(dsn), database, ttl_days, again=True)
            return int(insert())
    except (storage.StorageBusy, IngestDeferred):
        raise
    except Exception as exc:
        if storage.is_busy_error(exc):
            raise storage.StorageBusy(str(exc)) from None
        raise IngestDeferred(storage.redact_text(_first_line(exc), dsn)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _manifest_path(dsn: str) -> Path:
    return spool_dir(dsn) / MANIFEST_NAME


def _group_token(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]  # a lone file keeps its own name as token (as before groups existed)
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:32]
    return f"g-{len(names)}-{digest}"


class _Group:
    """Spool files headed for one insert: their bytes for chdb to parse, or their decoded
    rows for a remote server."""

    __slots__ = ("as_bytes", "paths", "chunks", "decoded", "rows", "size")

    def __init__(self, dsn: str) -> None:
        self.as_bytes = storage.is_chdb(dsn)
        self.paths: list[Path] = []
        self.chunks: list[bytes] = []
        self.decoded: list[list[Any]] = []
        self.rows = 0
        self.size = 0

    def add(self, path: Path) -> None:
        """Add a file; FileNotFoundError if it is gone, ValueError/UnicodeDecodeError if
        no insert could take it (chdb would store bytes that are not UTF-8 as they are)."""
        if not self.as_bytes:
            rows = read_rows(path)
            size = path.stat().st_size
            self.decoded.extend(rows)
            self.rows += len(rows)
        else:
            data = path.read_bytes()
            if not data.isascii():
                data.decode("utf-8")
            size = len(data)
            self.chunks.append(data)
            self.rows += spool_line_count(data)
        self.paths.append(path)
        self.size += size

    def insert(self, client: Any, database: str, token: str) -> None:
        if not self.rows:
            return
        if self.as_bytes:
            insert_spool_bytes(client, database, self.chunks, token)
        else:
            insert_rows(client, database, self.decoded, token=token)


def read_rows(path: Path) -> list[list[Any]]:
    """A spool file's rows; ValueError if any is not a row of ``otel_traces`` (a list of
    its columns): the driver would fail on it in ways that look transient (IndexError) or
    silently drop extra values."""
    rows = read_spool(path)
    width = len(COLUMNS)
    for number, row in enumerate(rows, 1):
        if not isinstance(row, list) or len(row) != width:
            size = len(row) if isinstance(row, list) else type(row).__name__
            raise ValueError(f"row {number} has {size} values, an otel_traces row has {width}")
    return rows


def _insert_group(client: Any, dsn: str, database: str, group: _Group, stats: IngestStats) -> int:
    """Insert many spool files as ONE insert (an insert costs ~100 ms on chdb, whatever its
    size), crash-safe: the group is first recorded in a manifest, so a restart (or the
    retry after a transient fault) sends exactly the same files with the same token."""
    names = [p.name for p in group.paths]
    token = _group_token(names)
    manifest = _manifest_path(dsn)
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(json.dumps({"token": token, "files": names}), encoding="utf-8")
    os.replace(tmp, manifest)
    try:
        group.insert(client, database, token)
    except Exception as exc:
        if not is_content_error(exc):
            raise  # transient or schema: the manifest stays, the retry uses the same token
        # Refused as a whole (a group stays within one block, so nothing of it was
        # stored): find the culprit file by file.
        manifest.unlink()
        return _insert_one_by_one(client, dsn, database, group.paths, stats, exc)
    return _group_stored(manifest, group.paths, group.rows, stats)


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


def _insert_one_by_one(
    client: Any, dsn: str, database: str, paths: list[Path], stats: IngestStats, cause: Exception
) -> int:
    inserted = 0
    for path in paths:
        single = _Group(dsn)
        try:
            read_rows(path)  # a file that is not rows of otel_traces is unreadable, whoever parses it
            single.add(path)
        except FileNotFoundError:
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            stats.quarantined_rows += reject(path, f"unreadable: {exc}")
            continue
        try:
            single.insert(client, database, path.name)
        except Exception as exc:
            if not is_content_error(exc):
                raise
            # A file the database refuses by content would block the queue forever: set
            # it aside (kept on disk, with the reason) and go on with the next one.
            logger.warning("otel-llmcost: spool file %s rejected: %s", path.name, _first_line(exc))
            stats.quarantined_rows += reject(path, _first_line(exc))
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        inserted += single.rows
        stats.files += 1
        stats.rows += single.rows
    logger.debug("otel-llmcost: grouped insert refused (%s); inserted file by file", cause)
    return inserted


def _finish_interrupted_group(client: Any, dsn: str, database: str, stats: IngestStats) -> int:
    """Complete a group insert that a crash or a transient fault left behind (its manifest exists)."""
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
    group = _Group(dsn)
    try:
        for path in paths:
            group.add(path)
    except (ValueError, UnicodeDecodeError):
        manifest.unlink()  # a file no insert could take was in the group: none of it was stored
        return 0
    # Same files, same token: if the earlier insert was stored, this one is dropped as a
    # duplicate (in otel_traces and in every materialized view).
    try:
        group.insert(client, database, token)
    except Exception as exc:
        if not is_content_error(exc):
            raise
        manifest.unlink()
        return _insert_one_by_one(client, dsn, database, paths, stats, exc)
    return _group_stored(manifest, paths, group.rows, stats)
