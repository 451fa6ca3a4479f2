"""A fake ``bedrock-runtime`` on 127.0.0.1 for the real boto3 client (``endpoint_url=``).

botocore sends over urllib3, not httpx, so the fake is a small HTTP server. It answers the
four LLM operations by the path's last segment (``/model/{modelId}/converse``,
``converse-stream``, ``invoke``, ``invoke-with-response-stream``) with recorded-shape
bodies, and streams in the ``application/vnd.amazon.eventstream`` binary framing that
botocore's ``EventStream`` parses: per message a prelude (total and headers length, CRC32),
the headers, the JSON payload and a CRC32 of the whole message. Replies can be queued
(status, headers, body, events; an error event mid-stream); every request is kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

EVENTSTREAM = "application/vnd.amazon.eventstream"
REPLY_TEXT = "Cached tokens cost a tenth."


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude + prelude CRC, headers, payload, message CRC."""
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload).encode())


def exception_event(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())


def chunk_event(payload: dict[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream ``chunk``: the family's JSON event, base64 in ``bytes``."""
    return event("chunk", {"bytes": base64.b64encode(json.dumps(payload).encode()).decode()})


def converse_reports_cache() -> bool:
    """Whether this botocore's Converse model has the cache token fields (older ones drop them)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return "cacheReadInputTokens" in model.shape_for("TokenUsage").members


def converse_usage(uncached: int, output: int, read: int = 0, write: int = 0) -> dict[str, int]:
    """Converse usage as Bedrock sends it: inputTokens EXCLUDES the cache reads and writes."""
    usage = {"inputTokens": uncached, "outputTokens": output, "totalTokens": uncached + output + read + write}
    if read or write:
        usage["cacheReadInputTokens"] = read
        usage["cacheWriteInputTokens"] = write
    return usage


def converse_body(usage: dict[str, int] | None = None, text: str = REPLY_TEXT) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": usage or converse_usage(25, 8),
        "metrics": {"latencyMs": 412},
    }


def converse_stream_events(usage: dict[str, int] | None = None, text: str = REPLY_TEXT) -> list[bytes]:
    pieces = [text[i : i + 8] for i in range(0, len(text), 8)]
    return [
        event("messageStart", {"role": "assistant"}),
        *(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}) for piece in pieces),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "end_turn"}),
        event("metadata", {"usage": usage or converse_usage(25, 8), "metrics": {"latencyMs": 380}}),
    ]


@dataclass
class BedrockReply:
    status: int = 200
    body: Any = None  # a dict (sent as JSON) or bytes; None: the operation's default
    events: list[bytes] | None = None  # for the stream operations
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    operation: str
    model: str
    body: dict[str, Any]


class FakeBedrock:
    """The server, its reply queue and the requests it saw; ``url`` is the endpoint_url."""

    def __init__(self) -> None:
        self.replies: deque[BedrockReply] = deque()
        self.requests: list[Seen] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = self.path.split("?")[0].strip("/").split("/")
                operation, model = parts[-1], unquote(parts[1]) if len(parts) > 2 else ""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                fake.requests.append(Seen(operation, model, body))
                fake.answer(self, operation, model)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def enqueue(self, *replies: BedrockReply) -> FakeBedrock:
        self.replies.extend(replies)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, operation: str, model: str) -> None:
        reply = self.replies.popleft() if self.replies else BedrockReply()
        headers = {"x-amzn-RequestId": "req-0001", **reply.headers}
        if reply.status == 429:  # as Bedrock names it (botocore reads the code from this header)
            headers.setdefault(
                "x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            )
        if reply.status >= 400:
            payload = json.dumps(reply.body or {"message": "Too many requests, please wait before trying again."})
            self._send(handler, reply.status, headers, payload.encode(), "application/json")
            return
        if operation in ("converse-stream", "invoke-with-response-stream"):
            events = reply.events if reply.events is not None else converse_stream_events()
            self._send(handler, 200, headers, b"".join(events), EVENTSTREAM)
            return
        body = reply.body if reply.body is not None else converse_body()
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._send(handler, 200, headers, raw, "application/json")

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        data: bytes,
        content_type: str,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()


def bedrock_client(fake: FakeBedrock, *, max_attempts: int = 1) -> Any:
    """A real boto3 bedrock-runtime client on the fake: fake credentials, standard retries."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="AKIDFAKEFAKEFAKE", aws_secret_access_key="fake-secret", region_name="us-east-1"
    )
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, connect_timeout=5, read_timeout=5)
    return session.client("bedrock-runtime", endpoint_url=fake.url, config=config)
