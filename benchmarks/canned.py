"""Canned provider responses replayed by an in-process MockTransport.

The bodies, SSE streams and headers are recorded once from ``otel_llmcost.demo.fakes.FakeLLMServer``
(the project's recorded-shape fake provider) and then replayed as bytes, so the
transport costs the same tiny amount for every variant and the SDK, not the fake,
is what a call costs. The transport is built on the HTTP library the installed SDK
imports (httpx2 for openai 3.x / anthropic 1.x+, httpx for openai 2.x / anthropic 0.x).
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from otel_llmcost.demo.fakes import FakeLLMServer

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-20250514"
PIECE_CHARS = 8  # FakeLLMServer streams its reply text in 8-character pieces


def sdk_http(package: str) -> Any:
    """The httpx-like module that ``package``'s generated base client uses."""
    base_client = importlib.import_module(f"{package}._base_client")
    return getattr(base_client, "httpx2", None) or base_client.httpx


def prompt_messages(prompt_chars: int) -> list[dict[str, str]]:
    """A system + user prompt of about ``prompt_chars`` characters (deterministic)."""
    words = "the quick brown fox jumps over the lazy dog and pays for tokens "
    body = (words * (prompt_chars // len(words) + 1))[: max(prompt_chars - 40, 1)]
    return [
        {"role": "system", "content": "You are a terse assistant for benchmarks."},
        {"role": "user", "content": body},
    ]


def _reply_for_chunks(chunks: int, extra: int) -> str:
    """Reply text whose stream has exactly ``chunks`` events (``extra`` framing events besides text)."""
    pieces = max(chunks - extra, 1)
    return ("abcdefgh" * pieces)[: pieces * PIECE_CHARS]


class Canned:
    """Recorded (status, headers, body bytes or SSE frames) for one request shape."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes | None, frames: list[bytes] | None):
        self.status = status
        self.headers = headers
        self.body = body
        self.frames = frames

    def transport(self, http: Any) -> Any:
        status, headers, body, frames = self.status, self.headers, self.body, self.frames
        if frames is None:

            def handler(request: Any) -> Any:
                return http.Response(status, headers=headers, content=body)

        else:

            class Frames(http.SyncByteStream, http.AsyncByteStream):  # type: ignore[misc,name-defined]
                def __iter__(self) -> Any:
                    return iter(frames)

                async def __aiter__(self) -> Any:
                    for frame in frames:
                        yield frame

            def handler(request: Any) -> Any:
                return http.Response(status, headers=headers, stream=Frames())

        return http.MockTransport(handler)


def record(path: str, payload: dict[str, Any], reply_text: str) -> Canned:
    """Ask FakeLLMServer once and keep its answer as bytes."""
    import httpx2

    server = FakeLLMServer(httpx_module=httpx2, reply_text=reply_text)
    request = httpx2.Request("POST", f"https://api.example.invalid{path}", content=json.dumps(payload).encode())
    response = server(request)
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-length",)]
    if payload.get("stream"):
        frames = list(response.stream)
        return Canned(response.status_code, headers, None, frames)
    response.read()
    return Canned(response.status_code, headers, response.content, None)


def openai_canned(stream_chunks: int, prompt_chars: int) -> tuple[Canned, dict[str, Any]]:
    """(canned response, create() kwargs) for Chat Completions.

    Streams carry ``stream_chunks`` chunks: role chunk, text chunks, finish chunk and
    the usage chunk (``stream_options.include_usage``, so every variant gets usage).
    """
    kwargs: dict[str, Any] = {"model": OPENAI_MODEL, "messages": prompt_messages(prompt_chars), "max_tokens": 256}
    if stream_chunks:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        reply = _reply_for_chunks(stream_chunks, extra=3)
    else:
        reply = "Hello from the fake provider, a short answer."
    return record("/v1/chat/completions", kwargs, reply), kwargs


def anthropic_canned(stream_chunks: int, prompt_chars: int) -> tuple[Canned, dict[str, Any]]:
    """(canned response, messages.create() kwargs); streams have ``stream_chunks`` SSE events."""
    messages = prompt_messages(prompt_chars)
    kwargs: dict[str, Any] = {
        "model": ANTHROPIC_MODEL,
        "system": messages[0]["content"],
        "messages": messages[1:],
        "max_tokens": 256,
    }
    if stream_chunks:
        kwargs["stream"] = True
        # message_start, content_block_start, deltas, content_block_stop, message_delta, message_stop
        reply = _reply_for_chunks(stream_chunks, extra=5)
    else:
        reply = "Hello from the fake provider, a short answer."
    return record("/v1/messages", kwargs, reply), kwargs
