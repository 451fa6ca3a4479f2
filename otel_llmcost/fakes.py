"""A local fake of the OpenAI and Anthropic HTTP APIs, for the demo and the tests.

It is an httpx/httpx2 ``MockTransport`` handler: the real SDKs build, send, retry
and parse exactly as in production, but nothing leaves the process and no key is
needed. Bodies, SSE streams and headers follow the shapes the real APIs return
(recorded field names and nesting); token counts are derived deterministically
from the request so that tests can assert exact costs.

Prompt caching is simulated the way the providers bill it: a request whose
prompt prefix (>= 1024 tokens' worth of text) was seen before reports that
prefix as cached (OpenAI ``cached_tokens``, Anthropic ``cache_read_input_tokens``).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# One "token" of fake text is 4 characters, like OpenAI's rule of thumb.
CHARS_PER_TOKEN = 4
CACHE_MIN_TOKENS = 1024


@dataclass
class Reply:
    """A scripted reply; ``body`` None means: answer normally, with these overrides."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    usage: dict[str, Any] | None = None  # replaces the computed usage object
    sse: list[Any] | None = None  # explicit SSE events (dicts, or raw str lines)
    break_after: int | None = None  # raise mid-stream after this many events
    raw: bytes | None = None  # raw body bytes (malformed responses)


def _tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN) if text else 0


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        return "".join(_text_of(v) for k, v in value.items() if k in ("content", "text", "input"))
    return ""


class FakeLLMServer:
    """Callable as an httpx2/httpx MockTransport handler; thread-safe."""

    def __init__(self, *, httpx_module: Any = None, reply_text: str = "Hello from the fake provider.") -> None:
        if httpx_module is None:
            import httpx2 as httpx_module
        self.httpx = httpx_module
        self.reply_text = reply_text
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self._prefixes: set[str] = set()
        self._lock = threading.Lock()
        self.ratelimit_remaining = 10_000
        self.anthropic_reset = "2030-01-01T00:00:00Z"

    # --- scripting ------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> FakeLLMServer:
        with self._lock:
            self.script.extend(replies)
        return self

    def transport(self) -> Any:
        return self.httpx.MockTransport(self)

    def async_transport(self) -> Any:
        return self.httpx.MockTransport(self)

    # --- handler ----------------------------------------------------------------------

    def __call__(self, request: Any) -> Any:
        try:
            payload = json.loads(request.content or b"{}")
        except ValueError:
            payload = {}
        with self._lock:
            self.requests.append({"path": request.url.path, "json": payload, "headers": dict(request.headers)})
            scripted = self.script.popleft() if self.script else None
            self.ratelimit_remaining = max(self.ratelimit_remaining - 1, 0)
        reply = scripted or Reply()
        path = request.url.path
        if path.endswith("/messages"):
            return self._anthropic(payload, reply)
        if path.endswith("/responses"):
            return self._openai_responses(payload, reply)
        return self._openai_chat(payload, reply)

    def _respond(self, reply: Reply, body: Any, headers: dict[str, str], events: list[Any] | None) -> Any:
        headers = {**headers, **reply.headers}
        if reply.raw is not None:
            return self.httpx.Response(reply.status, content=reply.raw, headers=headers)
        if reply.status >= 400:
            error = reply.body if reply.body is not None else {"error": {"message": "fake error", "type": "error"}}
            return self.httpx.Response(reply.status, json=error, headers=headers)
        if events is not None:
            stream = _sse_stream(self.httpx, events, reply.break_after)
            headers["content-type"] = "text/event-stream"
            return self.httpx.Response(200, headers=headers, stream=stream)
        return self.httpx.Response(200, json=reply.body if reply.body is not None else body, headers=headers)

    def _cached_prefix_tokens(self, prefix: str) -> int:
        """Tokens of ``prefix`` that hit the simulated cache; records the prefix."""
        tokens = _tokens(prefix)
        if tokens < CACHE_MIN_TOKENS:
            return 0
        with self._lock:
            hit = prefix in self._prefixes
            self._prefixes.add(prefix)
        # Providers cache in 128-token blocks.
        return (tokens // 128) * 128 if hit else 0

    # --- OpenAI -------------------------------------------------------------------------

    def _openai_headers(self) -> dict[str, str]:
        return {
            "x-request-id": "req_fake",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": str(self.ratelimit_remaining),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "1m30s",
        }

    def _openai_usage(self, payload: dict[str, Any], prompt_key: str) -> tuple[dict[str, Any], str]:
        messages = payload.get(prompt_key) or []
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        texts = [_text_of(m) for m in messages] if isinstance(messages, list) else []
        prompt_tokens = sum(_tokens(t) for t in texts) + 3 * len(texts) + 3
        prefix = "".join(texts[:-1]) if len(texts) > 1 else ""
        cached = min(self._cached_prefix_tokens(prefix), prompt_tokens)
        reply = self.reply_text
        completion = _tokens(reply)
        model = str(payload.get("model", ""))
        reasoning = 4 * completion if model.startswith(("o1", "o3", "o4", "gpt-5")) else 0
        return {
            "prompt_tokens": prompt_tokens,
            "cached_tokens": cached,
            "completion_tokens": completion + reasoning,
            "reasoning_tokens": reasoning,
        }, reply

    def _openai_chat(self, payload: dict[str, Any], reply: Reply) -> Any:
        counts, text = self._openai_usage(payload, "messages")
        model = _dated(str(payload.get("model", "gpt-4o-mini")))
        usage = reply.usage or {
            "prompt_tokens": counts["prompt_tokens"],
            "completion_tokens": counts["completion_tokens"],
            "total_tokens": counts["prompt_tokens"] + counts["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": counts["cached_tokens"], "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": counts["reasoning_tokens"],
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        tier = payload.get("service_tier") if payload.get("service_tier") in ("flex", "priority") else "default"
        base = {"id": "chatcmpl-fake123", "created": 1763900000, "model": model, "system_fingerprint": "fp_fake"}
        if not payload.get("stream"):
            body = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
                "service_tier": tier,
            }
            return self._respond(reply, body, self._openai_headers(), None)
        events = reply.sse
        if events is None:
            chunk = {**base, "object": "chat.completion.chunk", "service_tier": tier}
            events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
            for piece in _pieces(text):
                events.append({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (payload.get("stream_options") or {}).get("include_usage"):
                events.append({**chunk, "choices": [], "usage": usage})
            events.append("[DONE]")
        return self._respond(reply, None, self._openai_headers(), events)

    def _openai_responses(self, payload: dict[str, Any], reply: Reply) -> Any:
        counts, text = self._openai_usage(payload, "input")
        model = _dated(str(payload.get("model", "gpt-4o-mini")))
        usage = reply.usage or {
            "input_tokens": counts["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": counts["cached_tokens"]},
            "output_tokens": counts["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": counts["reasoning_tokens"]},
            "total_tokens": counts["prompt_tokens"] + counts["completion_tokens"],
        }
        response = {
            "id": "resp_fake123",
            "object": "response",
            "created_at": 1763900000,
            "status": "completed",
            "model": model,
            "output": [
                {
                    "type": "message",
                    "id": "msg_fake",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
            "service_tier": "default",
        }
        if not payload.get("stream"):
            return self._respond(reply, response, self._openai_headers(), None)
        events = reply.sse
        if events is None:
            created = {**response, "status": "in_progress", "usage": None, "output": []}
            events = [{"type": "response.created", "sequence_number": 0, "response": created}]
            for i, piece in enumerate(_pieces(text)):
                events.append(
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": i + 1,
                        "item_id": "msg_fake",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": [],
                    }
                )
            events.append({"type": "response.completed", "sequence_number": 99, "response": response})
        return self._respond(reply, None, self._openai_headers(), events)

    # --- Anthropic ----------------------------------------------------------------------

    def _anthropic_headers(self) -> dict[str, str]:
        reset = self.anthropic_reset
        return {
            "request-id": "req_fake",
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": str(min(self.ratelimit_remaining, 4000)),
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-input-tokens-limit": "2000000",
            "anthropic-ratelimit-input-tokens-remaining": "1999000",
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-limit": "400000",
            "anthropic-ratelimit-output-tokens-remaining": "399000",
            "anthropic-ratelimit-output-tokens-reset": reset,
            "anthropic-ratelimit-tokens-limit": "2400000",
            "anthropic-ratelimit-tokens-remaining": "2398000",
            "anthropic-ratelimit-tokens-reset": reset,
        }

    def _anthropic(self, payload: dict[str, Any], reply: Reply) -> Any:
        system = _text_of(payload.get("system") or "")
        messages = payload.get("messages") or []
        texts = [_text_of(m) for m in messages]
        total = _tokens(system) + sum(_tokens(t) for t in texts) + 4 * len(texts)
        wants_cache = "cache_control" in json.dumps(payload.get("system") or "")
        cache_read = self._cached_prefix_tokens(system) if wants_cache else 0
        cache_write = _tokens(system) if wants_cache and not cache_read and _tokens(system) >= CACHE_MIN_TOKENS else 0
        cache_read = min(cache_read, total)
        text = self.reply_text
        usage = reply.usage or {
            "input_tokens": max(total - cache_read - cache_write, 0),
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": _tokens(text),
            "service_tier": "standard",
        }
        model = str(payload.get("model", "claude-sonnet-4-20250514"))
        message = {
            "id": "msg_fake123",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not payload.get("stream"):
            return self._respond(reply, message, self._anthropic_headers(), None)
        events = reply.sse
        if events is None:
            start_usage = {**usage, "output_tokens": 1}
            events = [
                {
                    "type": "message_start",
                    "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
                },
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ]
            for piece in _pieces(text):
                events.append(
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
                )
            events.append({"type": "content_block_stop", "index": 0})
            events.append(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                }
            )
            events.append({"type": "message_stop"})
        return self._respond(reply, None, self._anthropic_headers(), events)


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _dated(model: str) -> str:
    """The dated id the API answers with, as OpenAI does for aliases."""
    dated = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06", "o3-mini": "o3-mini-2025-01-31"}
    return dated.get(model, model)


def _sse_stream(httpx: Any, events: list[Any], break_after: int | None) -> Any:
    """A byte stream of SSE events; subclasses the client library's stream bases,
    which httpx/httpx2 transports assert on."""

    class SSEStream(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            yield from _frames(events, break_after)

        async def __aiter__(self) -> Any:
            for frame in _frames(events, break_after):
                yield frame

    return SSEStream()


def _frames(events: list[Any], break_after: int | None) -> Any:
    for index, event in enumerate(events):
        if break_after is not None and index >= break_after:
            raise ConnectionResetError("fake provider closed the stream mid-way")
        if isinstance(event, str):
            yield f"data: {event}\n\n".encode()
        else:
            kind = event.get("type")  # Responses and Anthropic events are named; chat chunks are not
            prefix = f"event: {kind}\n" if kind else ""
            yield f"{prefix}data: {json.dumps(event)}\n\n".encode()


def openai_client(server: FakeLLMServer, *, is_async: bool = False, **kwargs: Any) -> Any:
    """A real ``openai`` client whose HTTP goes to ``server`` (base URL api.openai.com)."""
    import httpx2
    import openai

    kwargs.setdefault("base_url", "https://api.openai.com/v1")
    kwargs.setdefault("api_key", "sk-fake")
    if is_async:
        return openai.AsyncOpenAI(http_client=httpx2.AsyncClient(transport=server.transport()), **kwargs)
    return openai.OpenAI(http_client=httpx2.Client(transport=server.transport()), **kwargs)


def anthropic_client(server: FakeLLMServer, *, is_async: bool = False, **kwargs: Any) -> Any:
    """A real ``anthropic`` client whose HTTP goes to ``server``."""
    import httpx2
    import anthropic

    kwargs.setdefault("api_key", "sk-ant-fake")
    if is_async:
        return anthropic.AsyncAnthropic(http_client=httpx2.AsyncClient(transport=server.transport()), **kwargs)
    return anthropic.Anthropic(http_client=httpx2.Client(transport=server.transport()), **kwargs)
