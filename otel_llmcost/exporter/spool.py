"""The spool: batches the exporter has accepted, on disk until the ingester stores them.

``export`` writes each batch as one JSON-lines file, atomically (temp file, ``fsync``,
``os.replace``: a reader sees all of it or nothing, and a batch ``export`` accepted
survives a power cut); names sort in write order. Each exporter keeps a liveness marker
(``spool/.live-<owner>``, ``flock``-ed for its lifetime, holding the size of the batch
being written), so that whoever comes next can tell a crashed writer from a live one
and count what it lost (:func:`recover_abandoned`).

Where: next to the chdb path for an embedded DSN (``<data dir>/spool``); for a remote
DSN under ``<home>/remote/<hash of the DSN>/spool`` (the hash keeps credentials out of
the path). Files the database rejected by content are renamed ``*.jsonl.rejected``
with the reason beside them (``*.rejected.json``); spans that never made it into the
spool are counted in ``.drops.jsonl``. ``otel-llmcost spool`` lists, shows and replays.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import storage
from ..config import Settings

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
LIVE_PREFIX = ".live-"
CLAIM_PREFIX = ".claim-"
TMP_PREFIX = ".tmp-"
# A temp file with no live owner older than this was left by a process that died writing it.
STALE_TMP_S = 600.0

_spool_counter = 0
_spool_counter_lock = threading.Lock()


REJECTED_SUFFIX = ".rejected"
REASON_SUFFIX = ".rejected.json"
DROPS_NAME = ".drops.jsonl"


def data_dir(dsn: str) -> Path:
    """Directory holding the spool/, ingest.lock and the ingester's lock and log: next to
    the chdb path, or per remote DSN under the data directory."""
    if storage.is_chdb(dsn):
        return storage.chdb_path(dsn).parent
    digest = hashlib.sha256(dsn.encode("utf-8")).hexdigest()[:16]
    return Settings.load().home / "remote" / digest


def spool_dir(dsn: str) -> Path:
    return data_dir(dsn) / "spool"


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


def rejected_files(dsn: str) -> list[Path]:
    directory = spool_dir(dsn)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(SPOOL_SUFFIX + REJECTED_SUFFIX))


def spool_bytes(dsn: str) -> int:
    """Bytes of spans the spool holds: pending, half-written and rejected files."""
    total = 0
    with contextlib.suppress(OSError), os.scandir(spool_dir(dsn)) as entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(TMP_PREFIX) or name.endswith((SPOOL_SUFFIX, REJECTED_SUFFIX))):
                continue  # markers, the manifest and the drop log are not spans
            with contextlib.suppress(OSError):
                total += entry.stat(follow_symlinks=False).st_size
    return total


def reject(path: Path, error: str) -> int:
    """Set a file the database refuses by content aside, with the reason; return its rows."""
    count = count_lines(path)
    reason = {"error": error[:2000], "rows": count, "rejected_at": time.time()}
    with contextlib.suppress(OSError):
        path.with_name(path.name + REASON_SUFFIX).write_text(json.dumps(reason), encoding="utf-8")
        os.replace(path, path.with_name(path.name + REJECTED_SUFFIX))
    return count


def rejection_reason(path: Path) -> dict[str, Any]:
    """What :func:`reject` recorded for ``path`` (a ``.rejected`` file), or {}."""
    sidecar = path.with_name(path.name[: -len(REJECTED_SUFFIX)] + REASON_SUFFIX)
    try:
        loaded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def replay(path: Path) -> Path:
    """Put a rejected file back in line (after the cause was fixed): the next ingest retries it."""
    if not path.name.endswith(REJECTED_SUFFIX):
        raise ValueError(f"{path.name} is not a rejected spool file")
    target = path.with_name(path.name[: -len(REJECTED_SUFFIX)])
    os.replace(path, target)
    with contextlib.suppress(OSError):
        target.with_name(target.name + REASON_SUFFIX).unlink()
    return target


def record_drop(dsn: str, reason: str, spans: int) -> None:
    """Count spans that never reached the spool, where the CLI can report them.

    One short line per event, appended with O_APPEND (atomic for lines this size, so
    processes need no lock). Best effort: a full disk is often why spans are dropped.
    """
    line = json.dumps({"time": time.time(), "pid": os.getpid(), "reason": reason, "spans": spans}) + "\n"
    with contextlib.suppress(OSError):
        directory = spool_dir(dsn)
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / DROPS_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


def drop_totals(dsn: str) -> dict[str, int]:
    """Spans dropped before the spool, by reason, since the counts were last cleared."""
    totals: dict[str, int] = {}
    try:
        with open(spool_dir(dsn) / DROPS_NAME, encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                    event = json.loads(line)
                    totals[str(event["reason"])] = totals.get(str(event["reason"]), 0) + int(event["spans"])
    except OSError:
        pass
    return totals


def drops_detail(drops: dict[str, int]) -> str:
    """``reason: n, ...`` of :func:`drop_totals`, as the CLI and every read report them."""
    return ", ".join(f"{reason}: {count}" for reason, count in sorted(drops.items()))


def clear_drops(dsn: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (spool_dir(dsn) / DROPS_NAME).unlink()


@dataclass(frozen=True)
class SpoolSummary:
    """What a spool holds, for ``otel-llmcost spool``."""

    directory: Path
    pending_files: int
    pending_spans: int
    pending_bytes: int
    rejected: tuple[tuple[Path, int, str], ...]  # (file, spans, reason)
    drops: dict[str, int]


def summary(dsn: str) -> SpoolSummary:
    pending = pending_files(dsn)
    size = 0
    for path in pending:
        with contextlib.suppress(OSError):
            size += path.stat().st_size
    rejected = tuple(
        (path, count_lines(path), str(rejection_reason(path).get("error", "unknown"))) for path in rejected_files(dsn)
    )
    return SpoolSummary(
        directory=spool_dir(dsn),
        pending_files=len(pending),
        pending_spans=sum(count_lines(path) for path in pending),
        pending_bytes=size,
        rejected=rejected,
        drops=drop_totals(dsn),
    )


def read_spool(path: Path) -> list[list[Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def spool_line_count(data: bytes) -> int:
    """The rows in a spool file's bytes: its lines that are not blank, as :func:`read_spool` reads them."""
    return sum(1 for line in data.splitlines() if line.strip())


class Liveness:
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
        _live_markers.add(self)

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


_live_markers: weakref.WeakSet[Liveness] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child starts clean: no lock held by a thread that does not exist in it,
    and no copy of its parent's liveness ``flock`` (which would keep a dead parent
    looking alive for as long as the child lives)."""
    global _spool_counter_lock
    _spool_counter_lock = threading.Lock()
    for marker in list(_live_markers):
        fd, marker.fd = marker.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
            tmp_rows += count_lines(tmp)
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
                lost += count_lines(tmp)
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


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0
