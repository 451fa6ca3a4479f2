"""Anthropic (the ``anthropic`` SDK: Messages API, GA and beta).

Wrapped: ``messages.create`` (plain and ``stream=True``), ``messages.parse`` and the
``messages.stream(...)`` helper, sync and async, for ``client.messages`` and
``client.beta.messages``. ``with_raw_response`` / ``with_streaming_response`` go
through the same ``create``, so they yield one span too.

``messages.stream()`` does not call ``create``: it builds the request itself and
returns a ``MessageStreamManager`` that sends it on ``__enter__``. So ``stream`` is
wrapped on its own, and its manager is proxied: the request is sent with the call
current (the base-client hooks see headers, retries and 429s), and the raw event
stream under the ``MessageStream`` is swapped for our stream proxy before the first
event is read, so the span ends when the stream is exhausted, closed, or the
``with`` block exits, whichever comes first.

Usage: ``Message.usage`` (input_tokens EXCLUDES cache reads and writes; see
``Usage.from_anthropic``). Streams: ``message_start`` carries the input side and a
provisional output count; ``message_delta`` carries cumulative totals (always
output_tokens, sometimes input and cache counts), which replace the earlier ones.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import semconv
from ..ratelimit import ANTHROPIC_HEADERS, ratelimit_attributes
from ..streams import AsyncStreamProxy, CallProxy, SyncStreamProxy
from ..usage import Usage, as_int, field
from ._stainless import StainlessProvider, base_client_hooks
from .base import (
    UNKNOWN_OPENAI_COMPATIBLE,
    Api,
    append_finish_reason,
    apply_base_url,
    common_request_attributes,
    set_max_tokens,
)

logger = logging.getLogger(__name__)

_CREATE = "create"
_STREAM = "stream"  # the messages.stream() helper
_GA = "anthropic.resources.messages.messages"
_BETA = "anthropic.resources.beta.messages.messages"
_CHAT = semconv.OPERATION_CHAT

# Clients that reach Claude through a cloud platform: gen_ai.provider.name by client class name.
_PLATFORM_CLIENTS = (("Bedrock", "aws.bedrock"), ("Vertex", "gcp.vertex_ai"), ("Foundry", "azure.ai.inference"))


class AnthropicProvider(StainlessProvider):
    name = "anthropic"
    package = "anthropic"
    apis = (
        Api(_GA, "Messages.create", _CHAT, False, _CREATE),
        Api(_GA, "AsyncMessages.create", _CHAT, True, _CREATE),
        Api(_GA, "Messages.parse", _CHAT, False, _CREATE),
        Api(_GA, "AsyncMessages.parse", _CHAT, True, _CREATE),
        # stream() is a plain method in both clients: it returns a manager, sending nothing.
        Api(_GA, "Messages.stream", _CHAT, False, _STREAM),
        Api(_GA, "AsyncMessages.stream", _CHAT, False, _STREAM),
        Api(_BETA, "Messages.create", _CHAT, False, _CREATE),
        Api(_BETA, "AsyncMessages.create", _CHAT, True, _CREATE),
        Api(_BETA, "Messages.parse", _CHAT, False, _CREATE),
        Api(_BETA, "AsyncMessages.parse", _CHAT, True, _CREATE),
        Api(_BETA, "Messages.stream", _CHAT, False, _STREAM),
        Api(_BETA, "AsyncMessages.stream", _CHAT, False, _STREAM),
    )
    hooks = base_client_hooks("anthropic")

    def __init__(self) -> None:
        import importlib

        import anthropic
        from anthropic import _response

        self._stream_cls = anthropic.Stream
        self._async_stream_cls = anthropic.AsyncStream
        raw: list[type] = [_response.BaseAPIResponse]
        try:  # 0.x and 1.x: with_raw_response returns a LegacyAPIResponse; 2.x dropped it
            raw.append(importlib.import_module("anthropic._legacy_response").LegacyAPIResponse)
        except (ImportError, AttributeError):
            pass
        self._raw_cls = tuple(raw)
        sync_managers: list[type] = []
        async_managers: list[type] = []
        try:
            from anthropic.lib import streaming

            for name in ("MessageStreamManager", "BetaMessageStreamManager"):
                cls = getattr(streaming, name, None)
                if isinstance(cls, type):
                    sync_managers.append(cls)
            for name in ("AsyncMessageStreamManager", "BetaAsyncMessageStreamManager"):
                cls = getattr(streaming, name, None)
                if isinstance(cls, type):
                    async_managers.append(cls)
        except ImportError:  # pragma: no cover - every supported SDK has the helpers
            pass
        self._sync_managers = tuple(sync_managers)
        self._async_managers = tuple(async_managers)

    # --- request ------------------------------------------------------------------

    def read_request(self, call: Any, api: Api, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        attrs = common_request_attributes(call, api.operation, self.name, kwargs)
        if api.kind == _STREAM:
            call.stream = True
            attrs[semconv.GEN_AI_REQUEST_STREAM] = True
        client = getattr(instance, "_client", None)
        apply_base_url(call, attrs, client, self.name)
        if call.provider_name == UNKNOWN_OPENAI_COMPATIBLE:
            call.provider_name = _platform_name(client)
            attrs[semconv.GEN_AI_PROVIDER_NAME] = call.provider_name
        if call.provider_name == self.name:
            call.pricing_provider = self.name
        set_max_tokens(attrs, kwargs.get("max_tokens"))
        if call.telemetry.capture_content:
            call.output_parts = []
        return attrs

    def request_messages(self, kwargs: dict[str, Any]) -> Any:
        messages = kwargs.get("messages")
        system = kwargs.get("system")
        if system is None or not isinstance(system, (str, list, tuple)):
            return messages
        listed = list(messages) if isinstance(messages, (list, tuple)) else []
        return [{"role": "system", "content": system}, *listed]

    # --- response -----------------------------------------------------------------

    def read_response(self, call: Any, response: Any) -> None:
        usage = Usage.from_anthropic(field(response, "usage"))
        if usage is not None:
            call.usage = usage
        model = field(response, "model")
        if isinstance(model, str) and model:
            call.response_model = model
        response_id = field(response, "id")
        if isinstance(response_id, str) and response_id:
            call.response_id = response_id
        append_finish_reason(call, field(response, "stop_reason"))
        if call.output_parts is not None:
            content = field(response, "content")
            if isinstance(content, list):
                for block in content:
                    text = field(block, "text")
                    if isinstance(text, str):
                        call.output_parts.append(text)

    def read_chunk(self, call: Any, chunk: Any) -> None:
        event_type = field(chunk, "type")
        if event_type == "message_start":
            self.read_response(call, field(chunk, "message"))
        elif event_type == "message_delta":
            call.usage = merge_delta_usage(call.usage, field(chunk, "usage"))
            append_finish_reason(call, field(field(chunk, "delta"), "stop_reason"))
        elif event_type == "content_block_delta" and call.output_parts is not None:
            text = field(field(chunk, "delta"), "text")
            if isinstance(text, str):
                call.output_parts.append(text)

    def read_headers(self, headers: Any) -> dict[str, Any] | None:
        return ratelimit_attributes(headers, ANTHROPIC_HEADERS)

    # estimate_usage stays None: a stream that never reached message_start was either
    # never sent (an un-entered stream manager: nothing was billed) or failed.

    # --- result classification ------------------------------------------------------

    def wrap_other(self, call: Any, result: Any) -> Any:
        if self._sync_managers and isinstance(result, self._sync_managers):
            return StreamManagerProxy(result, call)
        if self._async_managers and isinstance(result, self._async_managers):
            return AsyncStreamManagerProxy(result, call)
        return None


def _platform_name(client: Any) -> str:
    class_name = type(client).__name__
    for marker, provider_name in _PLATFORM_CLIENTS:
        if marker in class_name:
            return provider_name
    return AnthropicProvider.name


def merge_delta_usage(previous: Usage | None, delta: Any) -> Usage | None:
    """Fold a ``message_delta`` usage into what ``message_start`` reported.

    Counts on a delta are cumulative totals, so a present one replaces the earlier
    value and an absent (null) one keeps it: the same rule the SDK's own
    accumulator applies.
    """
    if delta is None:
        return previous
    merged: dict[str, Any] = {}
    if previous is not None:
        merged = {
            "input_tokens": previous.uncached_input_tokens,
            "cache_read_input_tokens": previous.cache_read_tokens,
            "cache_creation_input_tokens": previous.cache_write_tokens,
            # The 5m part is implied (total - 1h), so a new total alone cannot double count it.
            "cache_creation": {"ephemeral_1h_input_tokens": previous.cache_write_1h_tokens},
            "output_tokens": previous.output_tokens,
        }
    for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens"):
        value = field(delta, name)
        if value is not None and (type(value) is int or isinstance(value, float)):
            merged[name] = as_int(value)
    split = field(delta, "cache_creation")
    if split is not None:
        merged["cache_creation"] = split
    details = field(delta, "output_tokens_details")
    if details is not None:
        merged["output_tokens_details"] = details
    elif previous is not None and previous.reasoning_tokens:
        merged["output_tokens_details"] = {"thinking_tokens": previous.reasoning_tokens}
    if previous is None and "input_tokens" not in merged and "output_tokens" not in merged:
        return None
    return Usage.from_anthropic(merged)


# --- the messages.stream() helper ------------------------------------------------------


def _swap_raw_stream(message_stream: Any, proxy_cls: type, call: Any) -> None:
    """Put our proxy under a (Beta)MessageStream before its lazy iterator starts."""
    raw = getattr(message_stream, "_raw_stream", None)
    if raw is None or isinstance(raw, (SyncStreamProxy, AsyncStreamProxy)):
        return
    message_stream._raw_stream = proxy_cls(raw, call)


def _read_snapshot(call: Any, message_stream: Any) -> None:
    """If no event reached us (an SDK whose helper we could not see into), read what it accumulated."""
    if call.ended or call.usage is not None or message_stream is None:
        return
    try:
        snapshot = message_stream._current_snapshot_or_none()
        if snapshot is not None:
            call.provider.read_response(call, snapshot)
    except Exception:
        logger.debug("otel-llmcost: could not read the message stream snapshot", exc_info=True)


class StreamManagerProxy(CallProxy):
    """``MessageStreamManager``: one span from ``stream()`` to the end of the ``with`` block or stream."""

    def __init__(self, wrapped: Any, call: Any) -> None:
        super().__init__(wrapped, call)
        self._self_stream: Any = None

    def __enter__(self) -> Any:
        call = self._self_call
        token = call.attach()
        try:
            message_stream = self.__wrapped__.__enter__()
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        self._self_stream = message_stream
        try:
            _swap_raw_stream(message_stream, SyncStreamProxy, call)
        except Exception:
            logger.debug("otel-llmcost: could not observe the message stream", exc_info=True)
        return message_stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        call = self._self_call
        # Before the SDK closes the stream (which ends the span as a success through our stream proxy).
        _read_snapshot(call, self._self_stream)
        if exc is not None and not isinstance(exc, GeneratorExit):
            call.fail(exc)
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            call.finish()


class AsyncStreamManagerProxy(CallProxy):
    """``AsyncMessageStreamManager``: the request is sent (and observed) in ``__aenter__``."""

    def __init__(self, wrapped: Any, call: Any) -> None:
        super().__init__(wrapped, call)
        self._self_stream: Any = None

    async def __aenter__(self) -> Any:
        call = self._self_call
        token = call.attach()
        try:
            message_stream = await self.__wrapped__.__aenter__()
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        self._self_stream = message_stream
        try:
            _swap_raw_stream(message_stream, AsyncStreamProxy, call)
        except Exception:
            logger.debug("otel-llmcost: could not observe the message stream", exc_info=True)
        return message_stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        call = self._self_call
        # Before the SDK closes the stream (which ends the span as a success through our stream proxy).
        _read_snapshot(call, self._self_stream)
        if exc is not None and not isinstance(exc, GeneratorExit):
            call.fail(exc)
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            call.finish()
