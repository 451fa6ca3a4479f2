"""The ingester: the one process per spool that moves spooled spans into ClickHouse.

App processes never open chdb (it costs ~400 MB and is not fork-safe) and never wait
on a remote server: the exporter only appends to the spool. Moving the spool into
ClickHouse is this module's job, in a process of its own:

- started on demand by the exporter (:func:`ensure_running`, when
  ``OTEL_EXPORTER_LLMCOST_INGESTER=auto``, the default), so a single-machine user runs
  nothing extra; it exits after ``idle_exit_s`` with nothing to do and the next
  export starts another;
- or run as a sidecar / systemd unit: ``otel-llmcost ingest --follow``.

One per spool: the ingester holds ``<data dir>/ingester.lock`` for its lifetime and a
second one exits at once. People come first: a CLI command holds ``<data dir>/read.lock``
while it waits for and uses the path (:func:`otel_llmcost.storage.priority_turn`), and
the ingester starts no pass while that lock is held, so a command waits for at most one
pass (each pass stops after :data:`PASS_MAX_S`).
Transient faults (disk full, server down, the path busy) leave the spool intact and are
retried with a growing pause, logged once per new kind of fault, not once per try.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import storage
from ..config import Settings
from .ingest import IngestDeferred, IngestStats, ingest_pending
from .spool import data_dir, pending_files

logger = logging.getLogger(__name__)

INGESTER_LOCK = "ingester.lock"
LOG_NAME = "ingester.log"
LOG_MAX_BYTES = 1 << 20
PASS_MAX_S = 1.0
POLL_S = 0.25
MAX_BACKOFF_S = 30.0


def readers_waiting(dsn: str) -> bool:
    return storage.priority_waiting(data_dir(dsn))


def running(dsn: str) -> bool:
    """Whether an ingester holds this spool right now."""
    return storage.is_held(data_dir(dsn) / INGESTER_LOCK)


@contextlib.contextmanager
def _sole_ingester(dsn: str) -> Iterator[bool]:
    path = data_dir(dsn) / INGESTER_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        yield True
    finally:
        os.close(fd)


@dataclass
class FollowStats:
    passes: int = 0
    rows: int = 0
    deferred: int = 0
    rejected_rows: int = 0
    crashed_spans: int = 0


def follow(
    dsn: str,
    database: str,
    *,
    ttl_days: int,
    idle_exit_s: float | None = None,
    poll_s: float = POLL_S,
    stop: threading.Event | None = None,
) -> FollowStats | None:
    """Ingest as spans arrive until ``stop`` is set or, with ``idle_exit_s``, until
    nothing arrived for that long. Returns None at once if another ingester holds the spool."""
    stop = stop or threading.Event()
    with _sole_ingester(dsn) as sole:
        if not sole:
            logger.info("otel-llmcost: an ingester already runs for %s", storage.redact_dsn(dsn))
            return None
        logger.info("otel-llmcost: ingester %d following %s", os.getpid(), storage.redact_dsn(dsn))
        return _loop(dsn, database, ttl_days, idle_exit_s, poll_s, stop)


def _loop(
    dsn: str, database: str, ttl_days: int, idle_exit_s: float | None, poll_s: float, stop: threading.Event
) -> FollowStats:
    totals = FollowStats()
    fault: str | None = None
    backoff = 0.0
    idle_since = time.monotonic()
    while not stop.is_set():
        pause = poll_s
        if readers_waiting(dsn):
            stop.wait(poll_s)  # a reader asked for the path: it goes first
            continue
        stats = IngestStats()
        try:
            inserted = ingest_pending(
                dsn,
                database,
                wait_s=0.0,
                ttl_days=ttl_days,
                stats=stats,
                max_s=PASS_MAX_S,
                yield_to=lambda: readers_waiting(dsn),
            )
        except Exception as exc:  # never the end of the only ingester: log each new fault once, retry later
            totals.deferred += 1
            backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF_S)
            pause = backoff
            expected = isinstance(exc, (IngestDeferred, storage.StorageBusy, storage.EmbeddedStoreMissing))
            kind = f"{type(exc).__name__}: {exc}" if expected else "unexpected"
            if kind != fault:
                fault = kind
                if expected:
                    logger.warning(
                        "otel-llmcost: ingest deferred, retrying (every %.0f s at most): %s", MAX_BACKOFF_S, exc
                    )
                else:
                    logger.exception("otel-llmcost: unexpected ingest error, retrying")
        else:
            if fault is not None:
                logger.warning("otel-llmcost: ingest resumed after: %s", fault)
            fault, backoff = None, 0.0
            totals.passes += 1
            totals.rows += inserted
            if inserted:
                idle_since = time.monotonic()
                pause = 0.0 if pending_files(dsn) else poll_s
        totals.rejected_rows += stats.quarantined_rows
        totals.crashed_spans += stats.crashed_spans
        if idle_exit_s is not None and fault is None and time.monotonic() - idle_since >= idle_exit_s:
            if not pending_files(dsn):
                break
        if pause:
            stop.wait(pause)
    return totals


# --- starting one on demand ------------------------------------------------------------


def _child_environment(dsn: str, database: str, ttl_days: int) -> dict[str, str]:
    """The app's environment minus what would instrument the ingester itself (a span it
    exported would start another ingester): OpenTelemetry's auto-instrumentation enters
    through PYTHONPATH (its sitecustomize) and the OTEL_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") or k == "OTEL_LLMCOST_HOME"}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and "auto_instrumentation" not in p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    else:
        env.pop("PYTHONPATH", None)
    env["OTEL_SDK_DISABLED"] = "true"
    # The DSN travels in the environment, not argv: `ps` shows argv to every user.
    env["OTEL_EXPORTER_LLMCOST_DSN"] = dsn
    env["OTEL_EXPORTER_LLMCOST_DATABASE"] = database
    env["OTEL_EXPORTER_LLMCOST_TTL_DAYS"] = str(ttl_days)
    return env


def _log_file(dsn: str) -> Path:
    path = data_dir(dsn) / LOG_NAME
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_MAX_BYTES:
            os.replace(path, path.with_name(LOG_NAME + ".1"))
    return path


def spawn(dsn: str, database: str, ttl_days: int, idle_exit_s: float) -> subprocess.Popen[bytes]:
    """Start a detached ingester for ``dsn`` (its output goes to ``<data dir>/ingester.log``)."""
    directory = data_dir(dsn)
    directory.mkdir(parents=True, exist_ok=True)
    with open(_log_file(dsn), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "otel_llmcost.exporter", "--follow", "--idle-exit", str(idle_exit_s)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=_child_environment(dsn, database, ttl_days),
            cwd=directory,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C or SIGTERM meant for the app's group is not for it
        )
    # Reap it when it exits, so the app never collects zombies.
    threading.Thread(target=process.wait, name="otel-llmcost-ingester-reaper", daemon=True).start()
    return process


class Starter:
    """Starts an ingester for a spool when none runs, at most every ``check_interval_s``.

    Cheap on the export path: a ``flock`` probe per interval. If started ingesters keep
    failing (their log says why), starts are spaced out, up to every five minutes.
    """

    def __init__(
        self, dsn: str, database: str, ttl_days: int, idle_exit_s: float, check_interval_s: float = 1.0
    ) -> None:
        self._dsn, self._database, self._ttl_days = dsn, database, ttl_days
        self._check_interval_s = check_interval_s
        self._next_check = 0.0
        self._not_before = 0.0
        self._spacing = 5.0
        self._last: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._warned = False
        self._spawn: Callable[[], subprocess.Popen[bytes]] = lambda: spawn(dsn, database, ttl_days, idle_exit_s)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._last = None
        self._next_check = self._not_before = 0.0

    def poke(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._next_check = now + self._check_interval_s
            if now < self._not_before or running(self._dsn):
                return
            self._start(now)
        finally:
            self._lock.release()

    def _start(self, now: float) -> None:
        last = self._last
        if last is not None and last.poll() not in (None, 0):
            self._spacing = min(self._spacing * 2, 300.0)  # it failed: say so once, try less often
            if not self._warned:
                self._warned = True
                logger.warning(
                    "otel-llmcost: the ingester exited with status %s; spans stay in the spool. See %s",
                    last.returncode,
                    data_dir(self._dsn) / LOG_NAME,
                )
        self._not_before = now + self._spacing
        try:
            self._last = self._spawn()
        except Exception as exc:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "otel-llmcost: cannot start the ingester (%s); spans stay in the spool until "
                    "`otel-llmcost ingest --follow` or the next `otel-llmcost` read",
                    exc,
                )


# --- python -m otel_llmcost.exporter (see __main__.py) -----------------------------------


def stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT end the ingester now, even inside an insert a silent server never
    answers (Python would retry the interrupted read until its timeout): the exception
    unwinds the pass, the group's manifest stays, and the next ingester sends the same
    group with the same token (stored once)."""
    stop = threading.Event()

    def leave(signum: int, frame: object) -> None:
        stop.set()
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)
    return stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otel_llmcost.exporter")
    parser.add_argument("--follow", action="store_true", help="keep ingesting as spans arrive")
    parser.add_argument(
        "--idle-exit", type=float, default=None, help="with --follow: exit after this many idle seconds"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(message)s")
    settings = Settings.load()
    stop = stop_on_signals()
    dsn, database = settings.resolved_dsn, settings.database
    if args.follow:
        follow(dsn, database, ttl_days=settings.ttl_days, idle_exit_s=args.idle_exit, stop=stop)
        return 0
    ingest_pending(dsn, database, wait_s=30.0, ttl_days=settings.ttl_days)
    return 0
