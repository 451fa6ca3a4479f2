"""Anthropic (the ``anthropic`` SDK: Messages API, GA and beta).

Patched: ``messages.create`` (plain and ``stream=True``), ``messages.parse`` and the
``messages.stream(...)`` helper, sync and async, for ``client.messages`` and
``client.beta.messages``. ``with_raw_response`` / ``with_streaming_response`` go
through the same ``create``, so they yield one span too.

``messages.stream()`` does not call ``create``: it builds the request itself and
returns a ``MessageStreamManager`` that sends it on ``__enter__``. So ``stream`` is
patched on its own and its result classified as a stream manager: the request is sent
with the call current (the base-client hooks see headers, retries and 429s), and the
raw event stream under the ``MessageStream`` is swapped for an observed one before the
first event is read (:meth:`AnthropicProvider.observe_stream`).

Usage: ``Message.usage.input_tokens`` EXCLUDES cache reads and writes (the writes may
be split by TTL into 5-minute and 1-hour); ``output_tokens`` includes thinking.
Streams: ``message_start`` carries the input side and a provisional output count;
``message_delta`` carries cumulative totals (always output_tokens, sometimes input and
cache counts), which replace the earlier ones. A stream whose usage ends with no output
count, or only message_start's provisional one (a gateway that drops it, a stream closed
early), has its output counted locally from what it generated: text, thinking, and each
``tool_use`` block's name and ``input_json_delta`` fragments. A stream never answered (an
un-entered stream manager) was not billed and gets no estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .. import semconv
from ..pricing.usage import Usage
from ._stainless import StainlessProvider, base_client_hooks
from .base import Api, PromptView, Request, ResponseRecord
from .fields import as_int, field, fields_of
from .headers import parse_int, parse_rfc3339_delta, ratelimit_specs
from .hosts import UNKNOWN_OPENAI_COMPATIBLE

logger = logging.getLogger(__name__)

_CREATE = "create"
_STREAM = "stream"  # the messages.stream() helper
_GA = "anthropic.resources.messages.messages"
_BETA = "anthropic.resources.beta.messages.messages"
_CHAT = semconv.OPERATION_CHAT
# Content blocks that call a tool: the model generates the name, then the input as JSON deltas.
_TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use"})

# Clients that reach Claude through a cloud platform: gen_ai.provider.name by client class name.
_PLATFORM_CLIENTS = (("Bedrock", "aws.bedrock"), ("Vertex", "gcp.vertex_ai"), ("Foundry", "azure.ai.inference"))

# anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset};
# resets are RFC 3339 times.
HEADERS = ratelimit_specs(
    tuple(
        row
        for kind, header_kind in (
            ("requests", "requests"),
            ("tokens", "tokens"),
            ("input_tokens", "input-tokens"),
            ("output_tokens", "output-tokens"),
        )
        for row in (
            (f"anthropic-ratelimit-{header_kind}-limit", kind, "limit", parse_int),
            (f"anthropic-ratelimit-{header_kind}-remaining", kind, "remaining", parse_int),
            (f"anthropic-ratelimit-{header_kind}-reset", kind, "reset_s", parse_rfc3339_delta),
        )
    )
)


def parse_usage(usage: Any) -> Usage | None:
    """Messages API usage; input_tokens there excludes cache reads and writes."""
    if usage is None:
        return None
    uncached = as_int(field(usage, "input_tokens"))
    cache_read = as_int(field(usage, "cache_read_input_tokens"))
    cache_write = as_int(field(usage, "cache_creation_input_tokens"))
    split = field(usage, "cache_creation")
    write_5m = as_int(field(split, "ephemeral_5m_input_tokens"))
    write_1h = as_int(field(split, "ephemeral_1h_input_tokens"))
    # The TTL split, when present, is authoritative; the total is kept if it is larger.
    cache_write = max(cache_write, write_5m + write_1h)
    output = as_int(field(usage, "output_tokens"))
    # output_tokens includes thinking; output_tokens_details.thinking_tokens (newer
    # APIs) only says how much of it was reasoning.
    thinking = as_int(field(field(usage, "output_tokens_details"), "thinking_tokens"))
    return Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=min(thinking, output),
    )


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
    return parse_usage(merged)


class AnthropicProvider(StainlessProvider):
    name = "anthropic"
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
    header_specs = HEADERS
    # 529: Anthropic's "overloaded", retried by the SDK like a 429.
    throttle_statuses = frozenset({429, 529})
    # 0.x and 1.x: with_raw_response returns a LegacyAPIResponse; 2.x dropped it.
    raw_classes = ("anthropic._response:BaseAPIResponse", "anthropic._legacy_response:LegacyAPIResponse")
    stream_classes = ("anthropic:Stream",)
    async_stream_classes = ("anthropic:AsyncStream",)
    manager_classes = (
        "anthropic.lib.streaming:MessageStreamManager",
        "anthropic.lib.streaming:BetaMessageStreamManager",
    )
    async_manager_classes = (
        "anthropic.lib.streaming:AsyncMessageStreamManager",
        "anthropic.lib.streaming:BetaAsyncMessageStreamManager",
    )

    # --- request ------------------------------------------------------------------

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        messages = kwargs.get("messages")
        prompt = PromptView(
            system=kwargs.get("system"),
            tools=kwargs.get("tools"),
            messages=messages if isinstance(messages, list) else list(messages or ()),
            temperature=kwargs.get("temperature"),
        )
        request = self.base_request(api, instance, kwargs, prompt)
        if api.kind == _STREAM:
            request.stream = True
        if request.provider_name == UNKNOWN_OPENAI_COMPATIBLE:
            request.provider_name = _platform_name(getattr(instance, "_client", None))
        if request.provider_name == self.name:
            request.pricing_provider = self.name
        max_tokens = kwargs.get("max_tokens")
        request.max_tokens = max_tokens if type(max_tokens) is int else None
        if request.stream:  # keep what is generated, to count it if the usage lacks the output
            request.collect_output = request.estimate_usage = True
        return request

    # --- response -----------------------------------------------------------------

    def read_response(self, record: ResponseRecord, response: Any) -> None:
        usage = parse_usage(field(response, "usage"))
        if usage is not None:
            record.usage = usage
        model = field(response, "model")
        if isinstance(model, str) and model:
            record.model = model
        response_id = field(response, "id")
        if isinstance(response_id, str) and response_id:
            record.id = response_id
        record.add_finish_reason(field(response, "stop_reason"))
        if record.output_parts is not None:
            content = field(response, "content")
            if isinstance(content, list):
                for block in content:
                    record.add_output(field(block, "text"))

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        event_type = field(chunk, "type")
        if event_type == "message_start":
            self.read_response(record, field(chunk, "message"))
            record.output_partial = True  # a provisional output count, until message_delta's total
        elif event_type == "message_delta":
            delta_usage = field(chunk, "usage")
            record.usage = merge_delta_usage(record.usage, delta_usage)
            if as_int(field(delta_usage, "output_tokens")):
                record.output_partial = False
            record.add_finish_reason(field(field(chunk, "delta"), "stop_reason"))
        elif event_type == "content_block_delta" and record.output_parts is not None:
            delta = fields_of(field(chunk, "delta"))
            delta_type = delta.get("type")
            if delta_type == "input_json_delta":
                record.add_generated(delta.get("partial_json"))
            elif delta_type == "thinking_delta":
                record.add_reasoning(delta.get("thinking"))
            else:
                record.add_output(delta.get("text"))
        elif event_type == "content_block_start" and record.generated_parts is not None:
            block = fields_of(field(chunk, "content_block"))
            if block.get("type") in _TOOL_BLOCKS:
                record.add_generated(block.get("name"))  # its input follows as input_json_delta

    # --- the messages.stream() helper ------------------------------------------------

    def observe_stream(self, entered: Any, wrap: Callable[[Any], Any]) -> None:
        """Swap the (Beta)MessageStream's raw event stream before its lazy iterator starts."""
        raw = getattr(entered, "_raw_stream", None)
        if raw is not None:
            entered._raw_stream = wrap(raw)

    def stream_snapshot(self, entered: Any) -> Any:
        snapshot = getattr(entered, "_current_snapshot_or_none", None)
        return snapshot() if callable(snapshot) else None


def _platform_name(client: Any) -> str:
    class_name = type(client).__name__
    for marker, provider_name in _PLATFORM_CLIENTS:
        if marker in class_name:
            return provider_name
    return AnthropicProvider.name
