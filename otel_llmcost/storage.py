"""Where spans are stored and how to reach it: embedded chdb by default, any ClickHouse by DSN.

chdb lets ONE process at a time open a data path (a second process gets "Unable to open
the chdb engine"), and a process can only use one chdb path while it has it open. So
nothing here keeps a client: ``open_client`` opens, yields and closes, and callers treat
"busy" as retryable, which lets an instrumented app and ``otel-llmcost report`` take turns.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DSN_ENV = "OTEL_EXPORTER_LLMCOST_DSN"
DATABASE_ENV = "OTEL_EXPORTER_LLMCOST_DATABASE"
HOME_ENV = "OTEL_LLMCOST_HOME"
DEFAULT_DATABASE = "otel"

CHDB_SCHEME = "chdb://"

_BUSY_MARKERS = ("Unable to open the chdb engine", "already initialized with path", "Cannot lock file")


class StorageBusy(RuntimeError):
    """The chdb path is held by another process (or this process holds another path)."""


def default_data_dir() -> Path:
    """$OTEL_LLMCOST_HOME, else $XDG_DATA_HOME/otel-llmcost, else ~/.local/share/otel-llmcost."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "otel-llmcost"


def default_dsn() -> str:
    return f"{CHDB_SCHEME}{default_data_dir() / 'chdb'}"


def configured_dsn() -> str:
    """The DSN from $OTEL_EXPORTER_LLMCOST_DSN, else the embedded default."""
    return os.environ.get(DSN_ENV) or default_dsn()


def configured_database() -> str:
    return os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE


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
        path = chdb_path(dsn)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return clickhouse_connect.get_client(dsn=f"{CHDB_SCHEME}{path}", **kwargs)
        except Exception as exc:
            if is_busy_error(exc):
                raise StorageBusy(f"chdb path {path} is in use by another process") from None
            raise RuntimeError(f"cannot open {path}: {exc}") from None
    scheme = urlsplit(dsn).scheme
    if scheme not in ("http", "https", "clickhouse", "clickhouses"):
        raise ValueError(f"unsupported DSN scheme in {redact_dsn(dsn)}: use chdb://, http:// or https://")
    try:
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except Exception as exc:
        # `from None`: the chained driver exception may carry the DSN with its password.
        raise ConnectionError(f"cannot connect to {redact_dsn(dsn)}: {redact_text(str(exc), dsn)}") from None


@contextlib.contextmanager
def open_client(dsn: str | None = None, **kwargs: Any) -> Iterator[Any]:
    """Open a client, yield it, and always close it, so a chdb path is never held idle."""
    client = connect(dsn or configured_dsn(), **kwargs)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
