"""A local fake of the OpenAI, Anthropic, Gemini, Groq, Mistral, Cohere and Ollama HTTP APIs, for the
demo and the tests.

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

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# One "token" of fake text is 4 characters, like OpenAI's rule of thumb.
CHARS_PER_TOKEN = 4
CACHE_MIN_TOKENS = 1024
MISTRAL_HOST = "api.mistral.ai"
COHERE_HOST = "api.cohere.com"


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
    first_event_delay_s: float = 0.0  # the provider "thinks" this long before the first SSE event


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
        self._prefixes: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.ratelimit_remaining = 10_000
        self.anthropic_reset = "2030-01-01T00:00:00Z"
        # OpenAI Batch API: file id -> content (GET /files/{id}/content), batch id -> batch.
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.clients: list[Any] = []  # SDK clients that must live as long as the server (mistral_client)

    # --- scripting ------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> FakeLLMServer:
        with self._lock:
            self.script.extend(replies)
        return self

    def transport(self) -> Any:
        """A MockTransport of the server's library; httpx/httpx2 clients use it sync and async."""
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
        if path.startswith("/api/") and path.rsplit("/", 1)[-1] in ("chat", "generate", "embed", "embeddings"):
            return self._ollama(path, payload, reply)
        if request.url.host == COHERE_HOST:
            return self._cohere(path, payload, reply)
        if request.url.host == MISTRAL_HOST:
            if path.endswith("/embeddings"):
                return self._mistral_embeddings(payload, reply)
            return self._mistral_chat(payload, reply)
        if ":generateContent" in path or ":streamGenerateContent" in path:
            return self._gemini(path, payload, reply)
        if path.endswith((":batchEmbedContents", ":embedContent", ":predict")):
            return self._gemini_embed(path, payload, reply)
        if path.endswith("/embeddings"):
            return self._openai_embeddings(payload, reply)
        if path.endswith(("/images/generations", "/images/edits")):
            return self._openai_images(path, payload or _form_fields(request.content), reply)
        if path.endswith(("/audio/transcriptions", "/audio/translations")):
            return self._openai_transcription(_form_fields(request.content), reply)
        if path.endswith("/audio/speech"):
            audio = reply.raw if reply.raw is not None else b"ID3\x04fake-mp3-audio"
            return self.httpx.Response(reply.status, content=audio, headers={**self._openai_headers(), **reply.headers})
        if "/batches" in path or "/files/" in path:
            return self._openai_batches(request.method, path, payload, reply)
        if path.endswith("/messages"):
            return self._anthropic(payload, reply)
        if path.endswith("/responses"):
            return self._openai_responses(payload, reply)
        if path.startswith("/openai/v1/"):  # Groq's OpenAI-compatible API
            return self._groq_chat(payload, reply)
        return self._openai_chat(payload, reply)

    def _respond(
        self, reply: Reply, body: Any, headers: dict[str, str], events: list[Any] | None, *, ndjson: bool = False
    ) -> Any:
        headers = {**headers, **reply.headers}
        if reply.raw is not None:
            return self.httpx.Response(reply.status, content=reply.raw, headers=headers)
        if reply.status >= 400:
            error = reply.body if reply.body is not None else {"error": {"message": "fake error", "type": "error"}}
            return self.httpx.Response(reply.status, json=error, headers=headers)
        if events is not None:
            stream = _sse_stream(self.httpx, events, reply.break_after, reply.first_event_delay_s, ndjson=ndjson)
            headers["content-type"] = "application/x-ndjson" if ndjson else "text/event-stream"
            return self.httpx.Response(200, headers=headers, stream=stream)
        return self.httpx.Response(200, json=reply.body if reply.body is not None else body, headers=headers)

    def _cached_prefix_tokens(self, prefix: str, provider: str = "openai") -> int:
        """Tokens of ``prefix`` that hit the simulated cache; records the prefix."""
        tokens = _tokens(prefix)
        if tokens < CACHE_MIN_TOKENS:
            return 0
        with self._lock:
            # Each provider has its own cache: a prefix OpenAI saw is not cached at Anthropic.
            hit = (provider, prefix) in self._prefixes
            self._prefixes.add((provider, prefix))
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

    def _openai_embeddings(self, payload: dict[str, Any], reply: Reply) -> Any:
        """``POST /embeddings``: one vector per input; usage counts the input (no output)."""
        inputs = payload.get("input")
        items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
        tokens = sum(len(item) if isinstance(item, list) else _tokens(str(item or "")) for item in items)
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0]} for i in range(len(items))],
            "model": str(payload.get("model", "")),
            "usage": reply.usage or {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return self._respond(reply, body, self._openai_headers(), None)

    def _openai_images(self, path: str, payload: dict[str, Any], reply: Reply) -> Any:
        """``POST /images/generations`` and ``/images/edits`` (form fields): GPT Image models
        report token usage (output tokens by quality, as for 1024x1024), DALL-E none."""
        model = str(payload.get("model") or "dall-e-2")
        n = int(payload.get("n") or 1)
        body: dict[str, Any] = {"created": 1763900000, "data": [{"b64_json": "ZmFrZQ=="} for _ in range(n)]}
        usage = reply.usage
        if usage is None and model.startswith("gpt-image"):
            text = _tokens(str(payload.get("prompt") or ""))
            output = {"low": 272, "medium": 1056, "high": 4160}.get(str(payload.get("quality")), 1056) * n
            usage = {
                "input_tokens": text,
                "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
                "output_tokens": output,
                "total_tokens": text + output,
            }
        if usage is not None:
            body["usage"] = usage
        if str(payload.get("stream")).lower() != "true":
            return self._respond(reply, body, self._openai_headers(), None)
        kind = "image_edit" if path.endswith("/edits") else "image_generation"
        events = reply.sse or [
            {"type": f"{kind}.partial_image", "b64_json": "ZmFr", "partial_image_index": 0},
            {"type": f"{kind}.completed", "b64_json": "ZmFrZQ==", "usage": usage},
        ]
        return self._respond(reply, None, self._openai_headers(), events)

    def _openai_transcription(self, form: dict[str, str], reply: Reply) -> Any:
        """``POST /audio/transcriptions`` and ``/audio/translations`` (multipart): gpt-4o
        transcribe models report token usage, whisper-1 the audio's duration; a text format
        answers with bare text."""
        model = form.get("model", "whisper-1")
        text = self.reply_text
        if model == "whisper-1":
            usage = reply.usage or {"type": "duration", "seconds": 12.5}
        else:
            output = _tokens(text)
            usage = reply.usage or {
                "type": "tokens",
                "input_tokens": 120,
                "input_token_details": {"text_tokens": 0, "audio_tokens": 120},
                "output_tokens": output,
                "total_tokens": 120 + output,
            }
        if form.get("response_format") in ("text", "srt", "vtt"):
            headers = {**self._openai_headers(), "content-type": "text/plain", **reply.headers}
            return self.httpx.Response(reply.status, text=text, headers=headers)
        if form.get("stream") == "true":
            events = reply.sse or [
                *({"type": "transcript.text.delta", "delta": piece} for piece in _pieces(text)),
                {"type": "transcript.text.done", "text": text, "usage": usage},
            ]
            return self._respond(reply, None, self._openai_headers(), events)
        return self._respond(reply, {"text": text, "usage": usage}, self._openai_headers(), None)

    def _openai_batches(self, method: str, path: str, payload: dict[str, Any], reply: Reply) -> Any:
        """``POST /batches``, ``GET /batches/{id}`` (completed, with its output file), and
        ``GET /files/{id}/content`` (the bytes of ``self.files[id]``)."""
        if "/files/" in path:
            file_id = path.split("/files/", 1)[1].split("/", 1)[0]
            content = self.files.get(file_id, b"")
            headers = {**self._openai_headers(), "content-type": "application/octet-stream"}
            return self._respond(Reply(status=reply.status, headers=reply.headers, raw=content), None, headers, None)
        if method == "POST":
            batch_id = f"batch_fake{len(self.batches) + 1}"
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": payload.get("endpoint", "/v1/chat/completions"),
                "input_file_id": payload.get("input_file_id", ""),
                "completion_window": payload.get("completion_window", "24h"),
                "status": "validating",
                "created_at": 1714508499,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
            }
            self.batches[batch_id] = batch
        else:
            batch_id = path.rsplit("/", 1)[-1]
            known = self.batches.get(batch_id)
            batch = known or {"id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions"}
            batch = {
                **batch,
                "status": "completed",
                "output_file_id": f"file-out-{batch_id}",
                "request_counts": {"total": 2, "completed": 2, "failed": 0},
            }
        return self._respond(reply, batch, self._openai_headers(), None)

    # --- Groq (api.groq.com/openai/v1) ----------------------------------------------------

    def _groq_headers(self) -> dict[str, str]:
        # Groq's requests limit is per day, its tokens limit per minute; resets are Go durations.
        return {
            "x-request-id": "req_01jfakegroq",
            "x-ratelimit-limit-requests": "14400",
            "x-ratelimit-remaining-requests": str(min(self.ratelimit_remaining, 14400)),
            "x-ratelimit-reset-requests": "2m59.56s",
            "x-ratelimit-limit-tokens": "6000",
            "x-ratelimit-remaining-tokens": "5880",
            "x-ratelimit-reset-tokens": "1.2s",
        }

    def _groq_chat(self, payload: dict[str, Any], reply: Reply) -> Any:
        """Chat Completions as Groq answers: timings in ``usage``, ``x_groq`` with the request id,
        and in a stream the usage in the last chunk's ``x_groq.usage``."""
        counts, text = self._openai_usage(payload, "messages")
        usage = reply.usage or {
            "queue_time": 0.0375,
            "prompt_tokens": counts["prompt_tokens"],
            "prompt_time": 0.0007,
            "completion_tokens": counts["completion_tokens"],
            "completion_time": 0.0463,
            "total_tokens": counts["prompt_tokens"] + counts["completion_tokens"],
            "total_time": 0.047,
        }
        model = str(payload.get("model", "llama-3.3-70b-versatile"))
        base = {
            "id": "chatcmpl-fakegroq",
            "created": 1763900000,
            "model": model,
            "system_fingerprint": "fp_fakegroq",
            "service_tier": "on_demand",
        }
        x_groq = {"id": "req_01jfakegroq"}
        if not payload.get("stream"):
            body = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
                "usage_breakdown": None,
                "x_groq": x_groq,
            }
            return self._respond(reply, body, self._groq_headers(), None)
        events = reply.sse
        if events is None:
            chunk = {**base, "object": "chat.completion.chunk"}
            first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
            events = [{**chunk, "choices": [first], "x_groq": x_groq}]
            for piece in _pieces(text):
                events.append(
                    {
                        **chunk,
                        "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}],
                    }
                )
            last: dict[str, Any] = {
                **chunk,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
                "x_groq": {**x_groq, "usage": usage},
            }
            if (payload.get("stream_options") or {}).get("include_usage"):
                last["usage"] = usage
            events.append(last)
            events.append("[DONE]")
        return self._respond(reply, None, self._groq_headers(), events)

    # --- Mistral (api.mistral.ai/v1) ---------------------------------------------------

    def _mistral_headers(self) -> dict[str, str]:
        # Per-minute token and request budgets; Mistral sends no reset header.
        return {
            "mistral-correlation-id": "0199fake-mistral",
            "x-ratelimit-limit-tokens-minute": "5000000",
            "x-ratelimit-remaining-tokens-minute": "4999911",
            "x-ratelimit-tokens-query-cost": "52",
            "x-ratelimit-limit-req-minute": "720",
            "x-ratelimit-remaining-req-minute": str(min(self.ratelimit_remaining, 720)),
        }

    def _mistral_chat(self, payload: dict[str, Any], reply: Reply) -> Any:
        """Chat Completions as Mistral answers: ``prompt_tokens`` includes
        ``prompt_tokens_details.cached_tokens``; a stream's last chunk carries the usage, always."""
        messages = payload.get("messages") or []
        texts = [_text_of(m) for m in messages] if isinstance(messages, list) else []
        prompt_tokens = sum(_tokens(t) for t in texts) + 3 * len(texts) + 3
        prefix = "".join(texts[:-1]) if len(texts) > 1 else ""
        cached = min(self._cached_prefix_tokens(prefix, "mistral"), prompt_tokens)
        text = self.reply_text
        usage = reply.usage or {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _tokens(text),
            "total_tokens": prompt_tokens + _tokens(text),
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        base = {"id": "cmpl-fakemistral", "created": 1763900000, "model": str(payload.get("model", ""))}
        if not payload.get("stream"):
            body = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "tool_calls": None},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            return self._respond(reply, body, self._mistral_headers(), None)
        events = reply.sse
        if events is None:
            chunk = {**base, "object": "chat.completion.chunk"}
            first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            events = [{**chunk, "choices": [first]}]
            for piece in _pieces(text):
                events.append({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            events.append(
                {**chunk, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}], "usage": usage}
            )
            events.append("[DONE]")
        return self._respond(reply, None, self._mistral_headers(), events)

    def _mistral_embeddings(self, payload: dict[str, Any], reply: Reply) -> Any:
        inputs = payload.get("inputs", payload.get("input"))
        items = inputs if isinstance(inputs, list) else [inputs]
        tokens = sum(_tokens(str(item or "")) for item in items)
        body = {
            "id": "embd-fakemistral",
            "object": "list",
            "model": str(payload.get("model", "")),
            "data": [{"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0]} for i in range(len(items))],
            "usage": reply.usage or {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }
        return self._respond(reply, body, self._mistral_headers(), None)

    # --- Ollama (localhost:11434/api) --------------------------------------------------------

    def _ollama(self, path: str, payload: dict[str, Any], reply: Reply) -> Any:
        """``/api/chat``, ``/api/generate`` (a stream: one JSON object a line, the counts on the
        last, ``done: true``), ``/api/embed`` (``prompt_eval_count``) and ``/api/embeddings``
        (a vector, no count). No rate-limit headers."""
        model = str(payload.get("model", ""))
        base = {"model": model, "created_at": "2026-11-23T12:00:00.000000Z"}
        kind = path.rsplit("/", 1)[-1]
        if kind == "embeddings":
            return self._respond(reply, {"embedding": [0.0, 0.5, 1.0]}, {}, None)
        if kind == "embed":
            inputs = payload.get("input")
            items = inputs if isinstance(inputs, list) else [inputs]
            counts = reply.usage or {"prompt_eval_count": sum(_tokens(str(item or "")) for item in items)}
            body = {
                **base,
                "embeddings": [[0.0, 0.5, 1.0] for _ in items],
                "total_duration": 14143917,
                "load_duration": 1019500,
                **counts,
            }
            return self._respond(reply, body, {}, None)
        if kind == "chat":
            texts = [_text_of(m) for m in payload.get("messages") or []]
        else:
            texts = [str(payload.get("system") or ""), str(payload.get("prompt") or "")]
        text = self.reply_text
        counts = reply.usage or {
            "prompt_eval_count": sum(_tokens(t) for t in texts) + 4 * len(texts),
            "eval_count": _tokens(text),
        }
        final = {
            **base,
            "done": True,
            "done_reason": "stop",
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_duration": 342546000,
            "eval_duration": 4535599000,
            **counts,
        }

        def piece_of(content: str) -> dict[str, Any]:
            if kind == "chat":
                return {"message": {"role": "assistant", "content": content}}
            return {"response": content}

        if not payload.get("stream"):
            return self._respond(reply, {**final, **piece_of(text)}, {}, None)
        events = reply.sse
        if events is None:
            events = [{**base, **piece_of(piece), "done": False} for piece in _pieces(text)]
            events.append({**final, **piece_of("")})
        return self._respond(reply, None, {}, events, ndjson=True)

    # --- Cohere (api.cohere.com/v2) -------------------------------------------------------

    def _cohere_headers(self) -> dict[str, str]:
        # A trial key's per-minute calls on this endpoint (production keys get none of these).
        return {
            "x-trial-endpoint-call-limit": "20",
            "x-trial-endpoint-call-remaining": str(min(self.ratelimit_remaining, 20) - 1),
            "x-endpoint-monthly-call-limit": "1000",
        }

    def _cohere(self, path: str, payload: dict[str, Any], reply: Reply) -> Any:
        """``/v2/chat`` (usage: ``billed_units`` and ``tokens``, which add the prompt template
        Cohere does not bill; a stream's in its ``message-end`` event) and ``/v2/embed`` (``meta``)."""
        if path.endswith("/embed"):
            texts = payload.get("texts") or []
            billed = reply.usage or {"input_tokens": sum(_tokens(str(t)) for t in texts)}
            body = {
                "id": "embed-fakecohere",
                "embeddings": {"float": [[0.0, 0.5, 1.0] for _ in texts]},
                "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": billed},
                "response_type": "embeddings_by_type",
            }
            return self._respond(reply, body, self._cohere_headers(), None)
        texts = [_text_of(m) for m in payload.get("messages") or []]
        prompt = sum(_tokens(t) for t in texts)
        text = self.reply_text
        usage = reply.usage or {
            "billed_units": {"input_tokens": prompt, "output_tokens": _tokens(text)},
            "tokens": {"input_tokens": prompt + 66, "output_tokens": _tokens(text) + 1},
            "cached_tokens": 0,
        }
        if not payload.get("stream"):
            body = {
                "id": "chat-fakecohere",
                "finish_reason": "COMPLETE",
                "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
                "usage": usage,
            }
            return self._respond(reply, body, self._cohere_headers(), None)
        events = reply.sse
        if events is None:
            start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
            events = [
                {"id": "chat-fakecohere", "type": "message-start", "delta": {"message": start}},
                {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
            ]
            for piece in _pieces(text):
                events.append({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}})
            events.append({"type": "content-end", "index": 0})
            events.append({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}})
        return self._respond(reply, None, self._cohere_headers(), events)

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
        cache_read = self._cached_prefix_tokens(system, "anthropic") if wants_cache else 0
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

    # --- Google Gemini (generativelanguage.googleapis.com / Vertex AI) -------------------

    def _gemini_embed(self, path: str, payload: dict[str, Any], reply: Reply) -> Any:
        """``:batchEmbedContents`` (Gemini API: vectors only, no token count), Vertex
        ``:embedContent`` (``usageMetadata``) and ``:predict`` (per-embedding ``statistics``)."""
        texts = _gemini_embed_texts(payload)
        vector = [0.0, 0.5, 1.0]
        if path.endswith(":batchEmbedContents"):
            body: dict[str, Any] = {"embeddings": [{"values": vector} for _ in texts]}
        elif path.endswith(":embedContent"):
            tokens = sum(_tokens(text) for text in texts)
            body = {
                "embedding": {"values": vector},
                "usageMetadata": reply.usage or {"promptTokenCount": tokens, "totalTokenCount": tokens},
            }
        else:
            body = {
                "predictions": [
                    {"embeddings": {"values": vector, "statistics": {"token_count": _tokens(t), "truncated": False}}}
                    for t in texts
                ],
                "metadata": {"billableCharacterCount": sum(len(t) for t in texts)},
            }
        return self._respond(reply, body, {}, None)

    def _gemini(self, path: str, payload: dict[str, Any], reply: Reply) -> Any:
        """``models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``."""
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        config = payload.get("generationConfig") or {}
        system = _text_of((payload.get("systemInstruction") or {}).get("parts") or [])
        texts = [_text_of(part) for content in payload.get("contents") or [] for part in content.get("parts") or []]
        prompt = _tokens(system) + sum(_tokens(t) for t in texts)
        text = self.reply_text
        candidates_tokens = _tokens(text)
        budget = (config.get("thinkingConfig") or {}).get("thinkingBudget")
        thoughts = 0 if budget == 0 or not model.startswith("gemini-2.5") else 3 * candidates_tokens
        usage = reply.usage or {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": prompt + candidates_tokens + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            **({"thoughtsTokenCount": thoughts} if thoughts else {}),
        }
        base = {"modelVersion": model, "responseId": "gemini-fake-response-1"}
        if ":streamGenerateContent" not in path:
            body = {
                "candidates": [
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                **base,
            }
            return self._respond(reply, body, {}, None)
        events = reply.sse
        if events is None:
            pieces = _pieces(text, 12)
            events = []
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
                if last:
                    candidate["finishReason"] = "STOP"
                # Every chunk carries the running usage; the prompt side is complete from the first.
                running = {
                    "promptTokenCount": usage.get("promptTokenCount", 0),
                    "candidatesTokenCount": _tokens("".join(pieces[: i + 1])),
                    "totalTokenCount": usage.get("promptTokenCount", 0) + _tokens("".join(pieces[: i + 1])),
                }
                events.append({"candidates": [candidate], "usageMetadata": usage if last else running, **base})
        return self._respond(reply, None, {}, events)


def _form_fields(content: bytes) -> dict[str, str]:
    """The text fields of a multipart form body (the file parts are skipped)."""
    fields: dict[str, str] = {}
    for part in (content or b"").split(b"\r\n--"):
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep or b"filename=" in head or b'name="' not in head:
            continue
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode(errors="replace")
        fields[name] = value.split(b"\r\n--", 1)[0].rstrip(b"\r\n").decode(errors="replace")
    return fields


def _gemini_embed_texts(payload: dict[str, Any]) -> list[str]:
    """The texts of an embed request: Gemini API ``requests[].content``, Vertex ``content``
    (embedContent) or ``instances[].content`` (predict)."""
    if "requests" in payload:
        return [_text_of((item.get("content") or {}).get("parts") or []) for item in payload["requests"]]
    if "content" in payload:
        return [_text_of((payload.get("content") or {}).get("parts") or [])]
    return [str(item.get("content", "")) for item in payload.get("instances") or []]


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _dated(model: str) -> str:
    """The dated id the API answers with, as OpenAI does for aliases."""
    dated = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06", "o3-mini": "o3-mini-2025-01-31"}
    return dated.get(model, model)


def _sse_stream(
    httpx: Any, events: list[Any], break_after: int | None, delay_s: float = 0.0, *, ndjson: bool = False
) -> Any:
    """A byte stream of SSE events (``ndjson``: one JSON object a line, Ollama's streams);
    subclasses the client library's stream bases, which httpx/httpx2 transports assert on.
    ``delay_s`` passes before the first event."""
    frames = _lines if ndjson else _frames

    class SSEStream(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            if delay_s:
                time.sleep(delay_s)
            yield from frames(events, break_after)

        async def __aiter__(self) -> Any:
            if delay_s:
                await asyncio.sleep(delay_s)
            for frame in frames(events, break_after):
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


def _lines(events: list[Any], break_after: int | None) -> Any:
    for index, event in enumerate(events):
        if break_after is not None and index >= break_after:
            raise ConnectionResetError("fake provider closed the stream mid-way")
        yield (event if isinstance(event, str) else json.dumps(event)).encode() + b"\n"


def openai_client(server: FakeLLMServer, *, is_async: bool = False, **kwargs: Any) -> Any:
    """A real ``openai`` client whose HTTP goes to ``server`` (base URL api.openai.com).

    Its HTTP client comes from the library the installed SDK is built on: httpx2 for
    openai 3.x, httpx for 1.x and 2.x (see :func:`_sdk_http_client`).
    """
    import openai

    kwargs.setdefault("base_url", "https://api.openai.com/v1")
    kwargs.setdefault("api_key", "sk-fake")
    http_client = _sdk_http_client(server, "openai._base_client", is_async)
    if is_async:
        return openai.AsyncOpenAI(http_client=http_client, **kwargs)
    return openai.OpenAI(http_client=http_client, **kwargs)


def anthropic_client(server: FakeLLMServer, *, is_async: bool = False, **kwargs: Any) -> Any:
    """A real ``anthropic`` client whose HTTP goes to ``server`` (httpx2 for 1.x+, httpx for 0.x)."""
    import anthropic

    kwargs.setdefault("api_key", "sk-ant-fake")
    http_client = _sdk_http_client(server, "anthropic._base_client", is_async)
    if is_async:
        return anthropic.AsyncAnthropic(http_client=http_client, **kwargs)
    return anthropic.Anthropic(http_client=http_client, **kwargs)


def groq_client(server: FakeLLMServer, *, is_async: bool = False, **kwargs: Any) -> Any:
    """A real ``groq`` client whose HTTP goes to ``server`` (base URL api.groq.com; the SDK uses httpx)."""
    import groq

    kwargs.setdefault("api_key", "gsk_fake")
    http_client = _sdk_http_client(server, "groq._base_client", is_async)
    if is_async:
        return groq.AsyncGroq(http_client=http_client, **kwargs)
    return groq.Groq(http_client=http_client, **kwargs)


def mistral_client(server: FakeLLMServer, *, retries: int = 0, **kwargs: Any) -> Any:
    """A real ``mistralai`` client whose HTTP (sync and async) goes to ``server`` (base URL
    api.mistral.ai). ``retries`` > 0 turns on the SDK's own retries (off by default), with
    millisecond backoffs; a ``retry-after`` header still sets the wait."""
    import importlib

    package = importlib.import_module("mistralai.client")  # 2.x and later (1.x: a stub module)
    if not hasattr(package, "Mistral"):
        package = importlib.import_module("mistralai")  # 1.x
    utils = importlib.import_module(f"{package.__name__}.utils")
    Mistral, BackoffStrategy, RetryConfig = package.Mistral, utils.BackoffStrategy, utils.RetryConfig
    sdk_module = f"{package.__name__}.httpclient"
    kwargs.setdefault("api_key", "fake-mistral-key")
    kwargs.setdefault("server_url", f"https://{MISTRAL_HOST}")
    if retries:
        try:
            backoff = BackoffStrategy(1, 20, 1.5, 10_000, jitter_ms=0)
        except TypeError:  # before jitter_ms
            backoff = BackoffStrategy(1, 20, 1.5, 10_000)
        kwargs["retry_config"] = RetryConfig("backoff", backoff, False)
    client = Mistral(
        client=_sdk_http_client(server, sdk_module, False),
        async_client=_sdk_http_client(server, sdk_module, True),
        **kwargs,
    )
    # mistralai 1.x closes (and drops) its HTTP clients when the Mistral object is collected,
    # even while ``client.chat`` is still in use: the fake keeps it alive as long as itself.
    server.clients.append(client)
    return client


def ollama_client(server: FakeLLMServer, *, is_async: bool = False, **kwargs: Any) -> Any:
    """A real ``ollama`` client whose HTTP goes to ``server`` (host localhost:11434; the library uses httpx)."""
    import ollama

    kwargs.setdefault("host", "http://localhost:11434")
    transport = _sdk_transport(server, "ollama._client")
    return (
        ollama.AsyncClient(transport=transport, **kwargs) if is_async else ollama.Client(transport=transport, **kwargs)
    )


def cohere_client(server: FakeLLMServer, *, is_async: bool = False, **kwargs: Any) -> Any:
    """A real ``cohere`` v2 client (``ClientV2`` / ``AsyncClientV2``) whose HTTP goes to ``server``
    (base URL api.cohere.com; the SDK uses httpx). Its retries are the SDK's default (7.x: 2,
    5.x: none); ``request_options={"max_retries": N}`` on a call sets them in every version."""
    import cohere

    kwargs.setdefault("api_key", "fake-cohere-key")
    http_client = _sdk_http_client(server, "cohere.core.http_client", is_async)
    if is_async:
        return cohere.AsyncClientV2(httpx_client=http_client, **kwargs)
    return cohere.ClientV2(httpx_client=http_client, **kwargs)


def genai_client(server: FakeLLMServer, *, vertexai: bool = False, **kwargs: Any) -> Any:
    """A real ``google.genai`` client whose HTTP goes to ``server``; ``client.aio`` shares it.

    google-genai 2.x+ takes an httpx or httpx2 client (``HttpOptions.httpx_client`` /
    ``httpx_async_client``) and picks its backend from it; the server's library is used.
    Retries stay off unless ``retry_options`` is given (the SDK's own default).
    """
    from google import genai
    from google.genai import types

    options: dict[str, Any] = {
        # google-genai 1.x accepts only httpx clients, 3.x imports httpx2: use whichever it imports.
        "httpx_client": _sdk_http_client(server, "google.genai._api_client", False),
        "httpx_async_client": _sdk_http_client(server, "google.genai._api_client", True),
    }
    retry_options = kwargs.pop("retry_options", None)
    if retry_options is not None:
        options["retry_options"] = retry_options
    if vertexai:
        kwargs.setdefault("project", "fake-project")
        kwargs.setdefault("location", "us-central1")
        kwargs.setdefault("credentials", _FakeCredentials())
        return genai.Client(vertexai=True, http_options=types.HttpOptions(**options), **kwargs)
    kwargs.setdefault("api_key", "fake-gemini-key")
    return genai.Client(http_options=types.HttpOptions(**options), **kwargs)


class _FakeCredentials:
    """Just enough of google.auth Credentials for the Vertex AI client to send a request."""

    token = "fake-token"
    valid = True
    expired = False
    quota_project_id = None

    def refresh(self, request: Any) -> None:  # pragma: no cover - valid never expires
        pass

    def before_request(self, request: Any, method: Any, url: Any, headers: dict[str, str]) -> None:
        headers["authorization"] = "Bearer fake-token"


def _sdk_http_client(server: FakeLLMServer, sdk_module: str, is_async: bool) -> Any:
    """An httpx2 or httpx client (whichever ``sdk_module``, the SDK's HTTP layer, imports) routed to ``server``.

    A server built for the other library (the fixtures default to httpx2) is reached
    through a handler that re-wraps each response, status, headers and body stream, in
    the SDK's own classes, so one server can serve an httpx SDK and an httpx2 SDK at once.
    """
    import importlib

    module = importlib.import_module(sdk_module)
    http = getattr(module, "httpx2", None) or module.httpx
    transport = _sdk_transport(server, sdk_module)
    return http.AsyncClient(transport=transport) if is_async else http.Client(transport=transport)


def _sdk_transport(server: FakeLLMServer, sdk_module: str) -> Any:
    """A MockTransport of the httpx2 or httpx library ``sdk_module`` imports, routed to ``server``
    (for SDKs that take a transport rather than a client)."""
    import importlib

    module = importlib.import_module(sdk_module)
    http = getattr(module, "httpx2", None) or module.httpx
    if server.httpx is http:
        transport = server.transport()
    else:

        def handler(request: Any) -> Any:
            response = server(request)
            body = response.stream

            class Body(http.SyncByteStream, http.AsyncByteStream):  # type: ignore[name-defined,misc]
                def __iter__(self) -> Any:
                    yield from body

                async def __aiter__(self) -> Any:
                    async for chunk in body:
                        yield chunk

            return http.Response(response.status_code, headers=response.headers.multi_items(), stream=Body())

        transport = http.MockTransport(handler)
    return transport
