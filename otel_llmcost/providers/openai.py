"""OpenAI (and OpenAI-compatible endpoints reached through the ``openai`` SDK).

Wrapped: Chat Completions and Responses ``create``, sync and async. Everything
else in the SDK that produces a completion (``with_raw_response``,
``with_streaming_response``, ``chat.completions.stream``) goes through these same
``create`` methods, so it yields exactly one span too.

Usage lives in ``ChatCompletion.usage`` (stream: the last chunk, only when the
request set ``stream_options.include_usage``) and in ``Response.usage`` (stream:
the ``response.completed`` / ``.incomplete`` / ``.failed`` event).
"""

from __future__ import annotations

from typing import Any

from .. import reported_cost, semconv, tokens
from ..ratelimit import OPENAI_HEADERS, ratelimit_attributes
from ..usage import Usage, field
from ._stainless import StainlessProvider, base_client_hooks
from .base import (
    Api,
    append_finish_reason,
    apply_base_url,
    common_request_attributes,
    set_max_tokens,
)

_CHAT = "chat"
_RESPONSES = "responses"
_TERMINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class OpenAIProvider(StainlessProvider):
    name = "openai"
    package = "openai"
    apis = (
        Api("openai.resources.chat.completions", "Completions.create", semconv.OPERATION_CHAT, False, _CHAT),
        Api("openai.resources.chat.completions", "AsyncCompletions.create", semconv.OPERATION_CHAT, True, _CHAT),
        Api("openai.resources.responses", "Responses.create", semconv.OPERATION_CHAT, False, _RESPONSES),
        Api("openai.resources.responses", "AsyncResponses.create", semconv.OPERATION_CHAT, True, _RESPONSES),
    )
    hooks = base_client_hooks("openai")

    def __init__(self) -> None:
        import openai
        from openai import _legacy_response, _response

        self._stream_cls = openai.Stream
        self._async_stream_cls = openai.AsyncStream
        self._raw_cls = (_legacy_response.LegacyAPIResponse, _response.BaseAPIResponse)

    # --- request ------------------------------------------------------------------

    def read_request(self, call: Any, api: Api, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        attrs = common_request_attributes(call, api.operation, self.name, kwargs)
        apply_base_url(call, attrs, getattr(instance, "_client", None), self.name)
        if api.kind == _CHAT:
            set_max_tokens(attrs, kwargs.get("max_completion_tokens"), kwargs.get("max_tokens"))
            if call.stream and not _include_usage_requested(kwargs):
                if call.telemetry.inject_include_usage:
                    _inject_include_usage(kwargs)
                else:
                    # No usage will arrive: keep what is needed to count tokens locally.
                    call.request_kwargs = kwargs
                    call.output_parts = []
        else:
            set_max_tokens(attrs, kwargs.get("max_output_tokens"))
        tier = kwargs.get("service_tier")
        if isinstance(tier, str):
            attrs[semconv.GEN_AI_REQUEST_SERVICE_TIER] = tier
        if call.telemetry.capture_content and call.output_parts is None:
            call.output_parts = []
        return attrs

    def request_messages(self, kwargs: dict[str, Any]) -> Any:
        messages = kwargs.get("messages")
        if messages is None:
            messages = kwargs.get("input")
        return messages

    # --- response -----------------------------------------------------------------

    def read_response(self, call: Any, response: Any) -> None:
        raw_usage = field(response, "usage")
        usage = Usage.from_openai(raw_usage)
        if usage is not None:
            call.usage = usage
            _read_reported_cost(call, raw_usage)
        model = field(response, "model")
        if isinstance(model, str):
            call.response_model = model
        response_id = field(response, "id")
        if isinstance(response_id, str):
            call.response_id = response_id
        _read_service_tier(call, response)
        choices = field(response, "choices")
        if isinstance(choices, list):
            for choice in choices:
                append_finish_reason(call, field(choice, "finish_reason"))
                if call.output_parts is not None:
                    content = field(field(choice, "message"), "content")
                    if isinstance(content, str):
                        call.output_parts.append(content)
        else:
            status = field(response, "status")  # Responses API
            if isinstance(status, str):
                append_finish_reason(call, status)
            if call.output_parts is not None:
                text = field(response, "output_text")
                if isinstance(text, str):
                    call.output_parts.append(text)

    def read_chunk(self, call: Any, chunk: Any) -> None:
        # Per-chunk hot path: read the model's field dict directly. getattr() of a field a
        # pydantic model does not declare (``type`` on a chat chunk) goes through
        # BaseModel.__getattr__ and an AttributeError, several microseconds per chunk.
        fields = _fields(chunk)
        event_type = fields.get("type")
        if isinstance(event_type, str):  # Responses API event
            if event_type in _TERMINAL_RESPONSE_EVENTS:
                self.read_response(call, fields.get("response"))
            elif event_type == "response.output_text.delta" and call.output_parts is not None:
                delta = fields.get("delta")
                if isinstance(delta, str):
                    call.output_parts.append(delta)
            return
        usage = fields.get("usage")
        if usage is not None:
            parsed = Usage.from_openai(usage)
            if parsed is not None:
                call.usage = parsed
                _read_reported_cost(call, usage)
        if call.response_model is None:
            model = fields.get("model")
            if isinstance(model, str):
                call.response_model = model
            chunk_id = fields.get("id")
            if isinstance(chunk_id, str):
                call.response_id = chunk_id
            _read_service_tier(call, chunk)
        choices = fields.get("choices")
        if choices and isinstance(choices, list):
            for choice in choices:
                choice_fields = _fields(choice)
                reason = choice_fields.get("finish_reason")
                if reason is not None:
                    append_finish_reason(call, reason)
                if call.output_parts is not None:
                    content = _fields(choice_fields.get("delta")).get("content")
                    if isinstance(content, str) and content:
                        call.output_parts.append(content)

    def read_headers(self, headers: Any) -> dict[str, Any] | None:
        return ratelimit_attributes(headers, OPENAI_HEADERS)

    def estimate_usage(self, call: Any) -> Usage | None:
        kwargs = call.request_kwargs
        if kwargs is None or call.output_parts is None:
            return None
        model = call.response_model or call.model
        messages = kwargs.get("messages")
        input_tokens = tokens.count_messages(messages, model) if isinstance(messages, (list, tuple)) else 0
        output_tokens = tokens.count_text("".join(call.output_parts), model)
        return Usage(input_tokens=input_tokens, output_tokens=output_tokens, estimated=True)

    # --- result classification ------------------------------------------------------


_NO_FIELDS: dict[str, Any] = {}


def _fields(obj: Any) -> dict[str, Any]:
    """The declared fields of an SDK model (its ``__dict__``), a dict as is, else nothing."""
    if isinstance(obj, dict):
        return obj
    fields = getattr(obj, "__dict__", None)
    return fields if isinstance(fields, dict) else _NO_FIELDS


def _include_usage_requested(kwargs: dict[str, Any]) -> bool:
    options = kwargs.get("stream_options")
    return bool(field(options, "include_usage"))


def _inject_include_usage(kwargs: dict[str, Any]) -> None:
    # Opt-in (OTEL_LLMCOST_OPENAI_INCLUDE_USAGE=true): the extra final chunk has an
    # empty ``choices`` list, which breaks callers that index choices[0] blindly.
    options = kwargs.get("stream_options")
    if options is None or isinstance(options, dict):
        kwargs["stream_options"] = {**(options or {}), "include_usage": True}


def _read_service_tier(call: Any, response: Any) -> None:
    tier = field(response, "service_tier")
    # "auto"/None say nothing about the price; "default", "flex", "priority" select a
    # genai-prices price variant.
    if isinstance(tier, str) and tier and tier != "auto":
        call.price_context = {"service_tier": tier}
        call.span.set_attribute(semconv.GEN_AI_RESPONSE_SERVICE_TIER, tier)


def _read_reported_cost(call: Any, usage: Any) -> None:
    """A gateway's billed cost in the usage block (OpenRouter's ``usage.cost``)."""
    amount = reported_cost.from_usage(usage)
    if amount is not None:
        call.reported_cost = (amount, reported_cost.SOURCE_BODY)
