"""A fake ClickHouse HTTP endpoint on 127.0.0.1 (http.server in a thread) that can fail.

It answers just enough of the HTTP interface for clickhouse-connect: the handshake
(``SELECT version(), timezone()``, ``system.settings``), DDL (accepted, ignored),
``DESCRIBE TABLE`` (the real otel_traces description, produced once by chdb in a
subprocess) and ``INSERT ... FORMAT Native`` (the block header is decoded to count
rows). Modes: ``ok``; ``500`` (every request answers HTTP 500, nothing is stored);
``stall`` (every request is accepted and never answered, until released);
``stall_insert`` (everything is answered but an INSERT into ``otel_traces``, which is
stored, then never answered: a server that committed the batch and lost the reply);
``close`` (every response starts and the connection closes mid-body);
``close_insert`` (everything is answered but an INSERT into ``otel_traces``, which is
stored, then its response breaks off mid-body); ``fail_first=N`` answers 500 to the first N
requests, then ok. ``mode`` can be changed while the server runs (:meth:`recover`).
A refusing endpoint is just a port nothing listens on (:func:`refused_port`); a server
can be started on it later (``port=``).

Spans are counted as stored in ``otel_traces`` (``rows``, ``inserts``; other inserts,
e.g. the migrations' bookkeeping, are answered and not counted), with deduplication as
ClickHouse does it: an insert whose ``insert_deduplication_token`` was already stored
is acknowledged and not stored again (counted in ``duplicates``).
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_GEN = """
import base64, chdb
from chdb import session
from otel_llmcost.storage import migrations
s = session.Session()
for st in migrations.rendered_statements(database="otel"):
    s.query(st)
print(base64.b64encode(s.query("DESCRIBE TABLE otel.otel_traces", "Native").bytes()).decode())
names = "('insert_deduplication_token', 'deduplicate_blocks_in_dependent_materialized_views')"
settings = s.query("SELECT name, value, readonly FROM system.settings WHERE name IN " + names, "Native")
print(base64.b64encode(settings.bytes()).decode())
"""

_canned: dict[str, bytes] = {}


def canned() -> dict[str, bytes]:
    """Native-format answers for DESCRIBE otel_traces and system.settings (from chdb)."""
    if not _canned:
        out = subprocess.run([sys.executable, "-c", _GEN], capture_output=True, text=True, check=True, timeout=120)
        describe, settings = out.stdout.split()
        _canned["describe"] = base64.b64decode(describe)
        _canned["settings"] = base64.b64decode(settings)
    return _canned


def refused_port() -> int:
    """A local port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "lz4":
        import lz4.frame

        body = lz4.frame.decompress(body)
    elif encoding == "zstd":
        import zstandard

        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    elif encoding == "gzip":
        import gzip

        body = gzip.decompress(body)
    elif encoding not in (None, "", "identity"):
        raise ValueError(f"unknown encoding {encoding}")
    return body


def native_rows(body: bytes) -> int:
    """Rows in the first block of a Native body (clickhouse-connect sends one per insert here)."""
    if not body:
        return 0
    _columns, pos = _varint(body, 0)
    rows, _ = _varint(body, pos)
    return rows


class FakeClickHouse:
    def __init__(self, mode: str = "ok", port: int = 0) -> None:
        self.mode = mode
        self.requests: list[tuple[float, str]] = []  # (monotonic time, first words of the query)
        self.rows = 0  # rows stored in otel_traces (deduplicated inserts not counted)
        self.inserts = 0  # inserts into otel_traces stored
        self.duplicates = 0  # inserts acknowledged as duplicates of a stored token, not stored
        self.tokens: list[str | None] = []  # the deduplication token of every otel_traces INSERT received
        self._stored_tokens: set[str] = set()
        self.auth_headers: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._canned = canned()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # ping
                self._answer(b"Ok.\n")

            def do_POST(self) -> None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if not size:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                body = decompress(body, self.headers.get("Content-Encoding"))
                params = parse_qs(urlsplit(self.path).query)
                query = (params.get("query") or [""])[0]
                data = body
                if not query:
                    if body[:6].upper() == b"INSERT":  # uncompressed insert: statement, newline, data
                        head, _, data = body.partition(b"\n")
                        query = head.decode("utf-8", "replace")
                    else:
                        query, data = body.decode("utf-8", "replace"), b""
                token = (params.get("insert_deduplication_token") or [None])[0]
                fake.handle(self, query, data, token)

            def _answer(self, payload: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Content-Type", "text/plain; charset=UTF-8")
                self.end_headers()
                self.wfile.write(payload)

        self._handler = Handler
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def dsn(self, password: str = "pw") -> str:
        return f"http://default:{password}@127.0.0.1:{self.port}"

    def handle(self, handler: BaseHTTPRequestHandler, query: str, data: bytes, token: str | None = None) -> None:
        words = " ".join(query.split()[:3])
        upper = query.upper()
        is_insert = upper.startswith("INSERT") and "OTEL_TRACES" in " ".join(upper.split()[:3])
        with self._lock:
            self.requests.append((time.monotonic(), words))
            self.auth_headers.append(handler.headers.get("Authorization") or "")
            if is_insert:
                self.tokens.append(token)
            index = len(self.requests)
        mode = self.mode
        if mode.startswith("fail_first="):
            mode = "500" if index <= int(mode.split("=", 1)[1]) else "ok"
        if mode == "500":
            handler._answer(b"Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)\n", 500)
            return
        if mode == "stall" or (mode == "stall_insert" and is_insert):
            if is_insert and mode == "stall_insert":
                self._store(data, token)
            self.release.wait(60)
            handler.close_connection = True
            return
        if mode == "close" or (mode == "close_insert" and is_insert):
            if is_insert and mode == "close_insert":
                self._store(data, token)
            handler.send_response(200)
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            handler.wfile.write(b"partial")
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if "VERSION()" in upper:
            handler._answer(b"24.8.1.1\tUTC\n")
        elif "SYSTEM.SETTINGS" in upper:
            handler._answer(self._canned["settings"])
        elif upper.startswith("DESCRIBE"):
            handler._answer(self._canned["describe"])
        elif is_insert:
            self._store(data, token)
            handler._answer(b"")
        elif upper.startswith("INSERT"):
            handler._answer(b"")
        else:
            handler._answer(b"")

    def _store(self, data: bytes, token: str | None) -> None:
        """Store an insert's rows, unless its deduplication token was stored before."""
        rows = native_rows(data)
        with self._lock:
            if token is not None and token in self._stored_tokens:
                self.duplicates += 1
                return
            if token is not None:
                self._stored_tokens.add(token)
            self.rows += rows
            self.inserts += 1

    def recover(self) -> None:
        """From now on answer like a healthy server; stalled requests are let go (unanswered)."""
        self.mode = "ok"
        self.release.set()

    def insert_times(self) -> list[float]:
        """When each INSERT into otel_traces arrived (monotonic)."""
        return [t for t, words in self.requests if words.upper().startswith("INSERT INTO OTEL.OTEL_TRACES")]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
