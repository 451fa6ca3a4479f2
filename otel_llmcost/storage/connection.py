"""Where spans are stored and how to reach it: embedded chdb by default, any ClickHouse by DSN.

chdb lets ONE process at a time open a data path (a second process gets "Unable to open
the chdb engine"), and a process can only use one chdb path while it has it open. So
nothing here keeps a client: ``open_client`` opens, yields and closes, and callers treat
"busy" as retryable, which lets an instrumented app and ``otel-llmcost report`` take turns.

Taking turns is arbitrated by one lock, :func:`chdb_turn`: an exclusive ``flock`` on
``<data dir>/ingest.lock`` (released by the kernel if its holder dies, even by SIGKILL)
plus a per-path thread lock (``flock`` is per open file, so two threads of one process
would not exclude each other). Everything in otel-llmcost that opens a chdb path holds
it: the exporter's ingest (without waiting: a busy turn just leaves spans in the spool)
and ``open_client`` (waiting up to ``wait_s``), so the app and the CLI never race for the
path. A foreign process that opens the path without the lock is still handled: opening
then fails with :class:`StorageBusy` and is retried until the deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..config import CHDB_SCHEME, Settings

# How to install the embedded store: the extra, from a checkout while the package is not on an index.
EMBEDDED_INSTALL = "pip install -e '.[embedded]' in an otel-llmcost checkout (the 'embedded' extra: chdb)"

_BUSY_MARKERS = ("already initialized with path", "Cannot lock file")
# chdb words every failure to open a path the same way, whether another process holds it or
# the path is damaged (its own ClickHouse error goes to stderr only), so which one it was is
# read from ClickHouse's lock on the path's status file.
_OPEN_FAILED = "Unable to open the chdb engine"
LOCK_NAME = "ingest.lock"
# Held by a CLI command while it waits for and uses an embedded path; the ingester starts
# no pass while it is held, so people come before the background work.
PRIORITY_LOCK_NAME = "read.lock"
DEFAULT_OPEN_WAIT_S = 15.0


class StorageBusy(RuntimeError):
    """The chdb path is held by another process (or this process holds another path)."""


class DatabaseMissing(LookupError):
    """A read found no database where it looked: nothing was created, nothing to show."""

    def __init__(self, where: str, database: str) -> None:
        self.where = where
        self.database = database
        super().__init__(
            f"no otel-llmcost database {database!r} at {where}: run `otel-llmcost demo`, or your app under "
            "`opentelemetry-instrument --traces_exporter llmcost` (or pass --dsn/--database where it writes)"
        )


def configured_dsn() -> str:
    """The DSN from the settings (``OTEL_EXPORTER_LLMCOST_DSN``), else the embedded default."""
    return Settings.load().resolved_dsn


def configured_database() -> str:
    return Settings.load().database


def embedded_available() -> bool:
    """Whether chdb (the ``embedded`` extra) is installed; checked without importing it."""
    try:
        return importlib.util.find_spec("chdb") is not None
    except (ImportError, ValueError):  # a broken install, or an import blocked on purpose
        return False


class EmbeddedStoreMissing(RuntimeError):
    """A chdb:// DSN was used without the embedded store installed."""

    def __init__(self) -> None:
        super().__init__(f"the embedded ClickHouse store needs chdb: {EMBEDDED_INSTALL}")


def is_chdb(dsn: str) -> bool:
    return dsn.startswith(CHDB_SCHEME)


def chdb_path(dsn: str) -> Path:
    """Absolute data path of a chdb:// DSN (chdb:///abs/path or chdb://relative/path)."""
    if not is_chdb(dsn):
        raise ValueError("not a chdb:// DSN")
    raw = dsn[len(CHDB_SCHEME) :].split("?", 1)[0]
    if not raw:
        raise ValueError("chdb:// DSN without a path")
    return Path(raw).expanduser().absolute()


DSN_SCHEMES = ("chdb", "http", "https", "clickhouse", "clickhouses")


def check_dsn(dsn: str) -> str:
    """``dsn`` when its scheme is one :func:`connect` takes, else ValueError (one line, redacted)."""
    if not is_chdb(dsn) and urlsplit(dsn).scheme not in DSN_SCHEMES:
        raise ValueError(f"unsupported DSN {redact_dsn(dsn)!r}: use chdb:///path, http:// or https://")
    return dsn


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***, safe for logs and error messages."""
    if is_chdb(dsn):
        return dsn  # a local path: no credentials
    try:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        query = re.sub(r"(?i)(password|passwd|pwd|token|secret)=[^&]*", r"\1=***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except Exception:
        return "<unparseable dsn>"


def redact_text(text: str, dsn: str) -> str:
    """Remove the DSN's password from free text (driver error messages may echo it)."""
    try:
        password = urlsplit(dsn).password
    except Exception:
        password = None
    if password:
        text = text.replace(password, "***")
    return text.replace(dsn, redact_dsn(dsn))


def is_busy_error(exc: BaseException) -> bool:
    return isinstance(exc, StorageBusy) or any(m in str(exc) for m in _BUSY_MARKERS)


def connect(dsn: str, **kwargs: Any) -> Any:
    """A clickhouse-connect client for a chdb:// or http(s):// DSN.

    Raises StorageBusy when the chdb path is held elsewhere, and errors whose message
    never contains the DSN's password.
    """
    import clickhouse_connect

    if is_chdb(dsn):
        if not embedded_available():
            raise EmbeddedStoreMissing()
        path = chdb_path(dsn)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return clickhouse_connect.get_client(dsn=f"{CHDB_SCHEME}{path}", **kwargs)
        except Exception as exc:
            if is_busy_error(exc) or (_OPEN_FAILED in str(exc) and is_held(path / "status")):
                raise StorageBusy(f"chdb path {path} is in use by another process") from None
            raise RuntimeError(
                f"cannot open the embedded database at {path} (not held by another process: damaged, "
                f"unreadable or out of disk space; chdb's own error is on stderr): {exc}"
            ) from None
    scheme = urlsplit(dsn).scheme
    if scheme not in ("http", "https", "clickhouse", "clickhouses"):
        raise ValueError(f"unsupported DSN scheme in {redact_dsn(dsn)}: use chdb://, http:// or https://")
    try:
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except Exception as exc:
        # `from None`: the chained driver exception may carry the DSN with its password.
        reason = unreachable_reason(str(exc))
        if reason is not None:
            raise ConnectionError(f"cannot reach ClickHouse at {server_address(dsn)} ({reason})") from None
        raise ConnectionError(f"cannot connect to {redact_dsn(dsn)}: {redact_text(str(exc), dsn)}") from None


# What the HTTP driver's (urllib3's) message says when no server answered, as a short reason.
_UNREACHABLE = (
    ("Connection refused", "connection refused"),
    ("Name or service not known", "unknown host"),
    ("nodename nor servname", "unknown host"),
    ("Temporary failure in name resolution", "unknown host"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network unreachable"),
    ("timed out", "timed out"),
    ("Failed to establish a new connection", "no connection"),
)


def unreachable_reason(message: str) -> str | None:
    """A short reason when ``message`` (a driver error) says no server answered, else None."""
    for marker, reason in _UNREACHABLE:
        if marker in message:
            return reason
    return None


def server_address(dsn: str) -> str:
    """``scheme://host:port`` of an http(s) DSN: no user, password, path or query."""
    parts = urlsplit(dsn)
    scheme = {"clickhouse": "http", "clickhouses": "https"}.get(parts.scheme, parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (8443 if scheme == "https" else 8123)
    host = parts.hostname or "localhost"
    return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"


class _Turn:
    """Per-path state of :func:`chdb_turn` inside this process (re-entrant per thread)."""

    __slots__ = ("lock", "owner", "depth")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None
        self.depth = 0


_turns: dict[str, _Turn] = {}
_turns_lock = threading.Lock()


def _turn_for(lock_path: Path) -> _Turn:
    with _turns_lock:
        return _turns.setdefault(str(lock_path), _Turn())


def _reset_turns_after_fork() -> None:  # a forked child inherits no lock holder
    global _turns_lock
    _turns_lock = threading.Lock()
    _turns.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_turns_after_fork)


@contextlib.contextmanager
def turn(lock_path: Path, wait_s: float = 0.0) -> Iterator[bool]:
    """Hold the exclusive turn guarded by ``lock_path`` (a ``flock``, released by the kernel
    if the holder dies); yields False if it is not free within ``wait_s`` (0: do not wait).
    Re-entrant within one thread."""
    state = _turn_for(lock_path)
    me = threading.get_ident()
    if state.owner == me:
        state.depth += 1
        try:
            yield True
        finally:
            state.depth -= 1
        return
    deadline = time.monotonic() + max(wait_s, 0.0)
    if not (state.lock.acquire(timeout=wait_s) if wait_s > 0 else state.lock.acquire(False)):
        yield False
        return
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as fh:
            delay = 0.01
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() + delay > deadline:
                        yield False
                        return
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
            state.owner, state.depth = me, 1
            try:
                yield True
            finally:
                state.owner, state.depth = None, 0
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        state.lock.release()


def chdb_turn(dsn: str, wait_s: float = 0.0) -> contextlib.AbstractContextManager[bool]:
    """:func:`turn` at the chdb path of ``dsn`` (``<data dir>/ingest.lock``)."""
    return turn(chdb_path(dsn).parent / LOCK_NAME, wait_s)


def priority_turn(dsn: str, wait_s: float = 0.0) -> contextlib.AbstractContextManager[bool]:
    """Announce a foreground user of the chdb path of ``dsn`` (``<data dir>/read.lock``)."""
    return turn(chdb_path(dsn).parent / PRIORITY_LOCK_NAME, wait_s)


def priority_waiting(directory: Path) -> bool:
    """Whether a foreground user announced itself for the path in ``directory``."""
    return is_held(directory / PRIORITY_LOCK_NAME)


def is_held(lock_path: Path) -> bool:
    """Whether another process holds ``lock_path``'s ``flock`` right now (a snapshot)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return False


def connect_waiting(dsn: str, deadline: float, **kwargs: Any) -> Any:
    """``connect``, retrying while a foreign process holds the chdb path, until ``deadline``."""
    delay = 0.05
    while True:
        try:
            return connect(dsn, **kwargs)
        except StorageBusy:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextlib.contextmanager
def open_client(dsn: str | None = None, *, wait_s: float = DEFAULT_OPEN_WAIT_S, **kwargs: Any) -> Iterator[Any]:
    """Open a client, yield it, and always close it, so a chdb path is never held idle.

    For chdb, announces itself (:func:`priority_turn`: the ingester gives way), waits up
    to ``wait_s`` for the path (an ingest pass, or any process holding it) and raises
    :class:`StorageBusy` after that.
    """
    dsn = dsn or configured_dsn()
    if not is_chdb(dsn):
        client = connect(dsn, **kwargs)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()
        return
    deadline = time.monotonic() + max(wait_s, 0.0)
    with priority_turn(dsn, wait_s=wait_s) as announced, chdb_turn(dsn, wait_s=wait_s) as mine:
        if not (announced and mine):
            raise StorageBusy(f"chdb path {chdb_path(dsn)} stayed in use by another process for {wait_s:.0f} s")
        client = connect_waiting(dsn, deadline, **kwargs)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()
