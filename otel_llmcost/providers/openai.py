"""OpenAI (and OpenAI-compatible endpoints reached through the ``openai`` SDK).

Patched: Chat Completions, Responses and Embeddings ``create``, sync and async, and the
image and audio endpoints (:mod:`.openai_media`: priced from the tokens they report). Everything
else in the SDK that produces a completion or embeddings (``with_raw_response``,
``with_streaming_response``, ``chat.completions.stream``) goes through these same
``create`` methods, so it yields exactly one span too. Embeddings report
``usage.prompt_tokens`` only (no output); the input is hashed like a prompt (one
"message", so there is no prefix) and has no prompt anatomy.

The Batch API (:mod:`.openai_batch`): ``batches.create`` / ``retrieve`` and the file reads
that may return a batch's output file, whose usage is priced at the batch price.

Usage lives in ``ChatCompletion.usage`` (stream: the last chunk, only when the request
set ``stream_options.include_usage``) and in ``Response.usage`` (stream: the
``response.completed`` / ``.incomplete`` / ``.failed`` event). ``prompt_tokens`` /
``input_tokens`` INCLUDE ``cached_tokens``; reasoning tokens are part of
``completion_tokens``. A stream keeps what it generated (text, refusals, reasoning, and
tool calls: chat ``delta.tool_calls[].function.name/arguments``, Responses function-call
names and argument deltas), so a stream that ends without usage is counted locally.

Some OpenAI-compatible gateways return what they billed: OpenRouter puts ``usage.cost``
(USD) in the body and in the last stream chunk; it is recorded beside our price.
"""

from __future__ import annotations

from typing import Any

from .. import semconv
from ..pricing.usage import Usage
from . import openai_batch, openai_media
from ._stainless import StainlessProvider, base_client_hooks
from .base import Api, BatchJob, BatchOutput, PromptView, Request, ResponseRecord
from .fields import as_int, field, fields_of
from .headers import cost_amount, parse_go_duration, parse_int, ratelimit_specs

_CHAT = "chat"
_RESPONSES = "responses"
_EMBEDDINGS = "embeddings"
_TERMINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
# Responses API stream events whose ``delta`` is text the model generated, by where a stream
# keeps it for a local estimate: the answer's text (also captured as content), other
# generated text (tool-call arguments and input, code, refusals), and reasoning.
_OUTPUT, _GENERATED, _REASONING = range(3)
_RESPONSE_DELTAS = {
    "response.output_text.delta": _OUTPUT,
    "response.refusal.delta": _GENERATED,
    "response.function_call_arguments.delta": _GENERATED,
    "response.custom_tool_call_input.delta": _GENERATED,
    "response.mcp_call_arguments.delta": _GENERATED,
    "response.code_interpreter_call_code.delta": _GENERATED,
    "response.shell_call_command.delta": _GENERATED,
    "response.reasoning_text.delta": _REASONING,
    "response.reasoning_summary_text.delta": _REASONING,
}
_ITEM_ADDED = "response.output_item.added"
# Output items whose ``name`` the model generated (announced by _ITEM_ADDED; arguments follow as deltas).
_NAMED_ITEMS = frozenset({"function_call", "custom_tool_call", "mcp_call"})
SOURCE_USAGE_COST = "usage.cost"

# x-ratelimit-{limit,remaining,reset}-{requests,tokens}; resets are Go durations.
HEADERS = ratelimit_specs(
    tuple(
        row
        for kind in ("requests", "tokens")
        for row in (
            (f"x-ratelimit-limit-{kind}", kind, "limit", parse_int),
            (f"x-ratelimit-remaining-{kind}", kind, "remaining", parse_int),
            (f"x-ratelimit-reset-{kind}", kind, "reset_s", parse_go_duration),
        )
    )
)


def parse_usage(usage: Any) -> Usage | None:
    """Chat Completions (prompt_/completion_tokens) and Responses API (input_/output_tokens)."""
    if usage is None:
        return None
    prompt = field(usage, "prompt_tokens")
    if prompt is not None:
        input_details = field(usage, "prompt_tokens_details")
        output_details = field(usage, "completion_tokens_details")
        completion = field(usage, "completion_tokens")
    else:
        prompt = field(usage, "input_tokens")
        if prompt is None:
            return None
        input_details = field(usage, "input_tokens_details")
        output_details = field(usage, "output_tokens_details")
        completion = field(usage, "output_tokens")
    cache_read = as_int(field(input_details, "cached_tokens"))
    input_tokens = max(as_int(prompt), cache_read)
    output_tokens = as_int(completion)
    input_audio = min(as_int(field(input_details, "audio_tokens")), input_tokens)
    input_image = min(as_int(field(input_details, "image_tokens")), input_tokens - input_audio)
    output_audio = min(as_int(field(output_details, "audio_tokens")), output_tokens)
    output_image = min(as_int(field(output_details, "image_tokens")), output_tokens - output_audio)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        reasoning_tokens=as_int(field(output_details, "reasoning_tokens")),
        input_audio_tokens=input_audio,
        output_audio_tokens=output_audio,
        input_image_tokens=input_image,
        output_image_tokens=output_image,
    )


def reported_cost(usage: Any) -> float | None:
    """``usage.cost`` of an OpenAI-shaped usage object or dict, when the host sent one.

    SDK models (pydantic, ``extra="allow"``) keep fields they do not declare in
    ``__pydantic_extra__``; reading that dict avoids a failing ``__getattr__`` (several
    microseconds) on every call to a host that sends no cost.
    """
    if usage is None:
        return None
    if isinstance(usage, dict):
        return cost_amount(usage.get("cost"))
    extra = getattr(usage, "__pydantic_extra__", None)
    if isinstance(extra, dict):
        return cost_amount(extra.get("cost"))
    return cost_amount(field(usage, "cost"))


class OpenAIProvider(StainlessProvider):
    name = "openai"
    apis = (
        Api("openai.resources.chat.completions", "Completions.create", semconv.OPERATION_CHAT, False, _CHAT),
        Api("openai.resources.chat.completions", "AsyncCompletions.create", semconv.OPERATION_CHAT, True, _CHAT),
        Api("openai.resources.responses", "Responses.create", semconv.OPERATION_CHAT, False, _RESPONSES),
        Api("openai.resources.responses", "AsyncResponses.create", semconv.OPERATION_CHAT, True, _RESPONSES),
        Api("openai.resources.embeddings", "Embeddings.create", semconv.OPERATION_EMBEDDINGS, False, _EMBEDDINGS),
        Api("openai.resources.embeddings", "AsyncEmbeddings.create", semconv.OPERATION_EMBEDDINGS, True, _EMBEDDINGS),
        *openai_media.APIS,
    )
    batch_apis = openai_batch.APIS
    hooks = base_client_hooks("openai")
    header_specs = HEADERS
    raw_classes = ("openai._legacy_response:LegacyAPIResponse", "openai._response:BaseAPIResponse")
    stream_classes = ("openai:Stream",)
    async_stream_classes = ("openai:AsyncStream",)

    # --- request ------------------------------------------------------------------

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        if api.kind == _EMBEDDINGS:
            return self._embeddings_request(api, instance, kwargs)
        if api.kind in openai_media.KINDS:
            request = self.base_request(api, instance, kwargs, openai_media.prompt(api.kind, kwargs))
            request.attributes = openai_media.request_attributes(api.kind, kwargs)
            request.billed_usage = openai_media.billed_usage(api.kind, kwargs)
            request.unpriced_without_usage = True
            return request
        chat = api.kind == _CHAT
        messages = kwargs.get("messages") if chat else kwargs.get("input")
        prompt = PromptView(
            system=None if chat else kwargs.get("instructions"),
            tools=kwargs.get("tools") or kwargs.get("functions"),
            messages=_as_list(messages),
            temperature=kwargs.get("temperature"),
        )
        request = self.base_request(api, instance, kwargs, prompt)
        if chat:
            request.max_tokens = _first_int(kwargs.get("max_completion_tokens"), kwargs.get("max_tokens"))
            if request.stream and inject_include_usage and not _include_usage_requested(kwargs):
                _inject_include_usage(kwargs)
        else:
            request.max_tokens = _first_int(kwargs.get("max_output_tokens"))
        if request.stream:
            # Usage arrives last, if at all (a chat stream without include_usage, a stream closed
            # early, a compatible server that sends none): keep what is generated, to count it then.
            request.collect_output = request.estimate_usage = True
        tier = kwargs.get("service_tier")
        if isinstance(tier, str):
            request.attributes = {semconv.GEN_AI_REQUEST_SERVICE_TIER: tier}
        return request

    def _embeddings_request(self, api: Api, instance: Any, kwargs: dict[str, Any]) -> Request:
        # The whole input (a string, strings, token ids or lists of them) is one message:
        # the request hash finds repeated inputs, and no prefix is claimed to be cacheable.
        request = self.base_request(api, instance, kwargs, PromptView(messages=[kwargs.get("input")]))
        dimensions = kwargs.get("dimensions")
        if type(dimensions) is int:
            request.attributes = {semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: dimensions}
        return request

    # --- batch jobs ------------------------------------------------------------------

    def read_batch(self, batch: Any) -> BatchJob | None:
        if hasattr(batch, "http_response"):  # with_raw_response
            batch = self.raw_body(batch)
        return openai_batch.read_batch(batch)

    def file_content(self, result: Any) -> bytes | str | None:
        return openai_batch.file_content(result)

    def read_batch_output(self, content: bytes | str) -> BatchOutput | None:
        return openai_batch.read_output(content, parse_usage)

    # --- response -----------------------------------------------------------------

    def read_response(self, record: ResponseRecord, response: Any, *, with_output: bool = True) -> None:
        """A ChatCompletion or Response; ``with_output=False`` for a stream's terminal event,
        whose text repeats what its deltas said (and the stream kept)."""
        media = openai_media.OPERATION_KINDS.get(record.operation)
        if media is not None:
            openai_media.read_response(record, response, media, parse_usage)
            return
        raw_usage = field(response, "usage")
        usage = parse_usage(raw_usage)
        if usage is not None:
            record.usage = usage
            _read_reported_cost(record, raw_usage)
        model = field(response, "model")
        if isinstance(model, str):
            record.model = model
        response_id = field(response, "id")
        if isinstance(response_id, str):
            record.id = response_id
        _read_service_tier(record, response)
        output = with_output and record.output_parts is not None
        choices = field(response, "choices")
        if isinstance(choices, list):
            for choice in choices:
                record.add_finish_reason(field(choice, "finish_reason"))
                if output:
                    record.add_output(field(field(choice, "message"), "content"))
        else:
            record.add_finish_reason(field(response, "status"))  # Responses API
            if output:
                record.add_output(field(response, "output_text"))

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        fields = fields_of(chunk)
        event_type = fields.get("type")
        if isinstance(event_type, str):  # Responses API, image or transcription event
            if event_type in openai_media.EVENTS:
                openai_media.read_event(record, event_type, fields, parse_usage)
            elif event_type in _TERMINAL_RESPONSE_EVENTS:
                self.read_response(record, fields.get("response"), with_output=False)
            elif record.output_parts is not None:
                _read_response_event(record, event_type, fields)
            return
        usage = fields.get("usage")
        if usage is not None:
            parsed = parse_usage(usage)
            if parsed is not None:
                record.usage = parsed
                _read_reported_cost(record, usage)
        if record.model is None:
            model = fields.get("model")
            if isinstance(model, str):
                record.model = model
            chunk_id = fields.get("id")
            if isinstance(chunk_id, str):
                record.id = chunk_id
            _read_service_tier(record, chunk)
        choices = fields.get("choices")
        if choices and isinstance(choices, list):
            for choice in choices:
                choice_fields = fields_of(choice)
                reason = choice_fields.get("finish_reason")
                if reason is not None:
                    record.add_finish_reason(reason)
                if record.output_parts is not None:
                    delta = fields_of(choice_fields.get("delta"))
                    record.add_output(delta.get("content"))
                    if delta.get("tool_calls") or delta.get("refusal") or delta.get("function_call"):
                        _read_generated_delta(record, delta)


def _read_generated_delta(record: ResponseRecord, delta: dict[str, Any]) -> None:
    """A chat delta's other generated text: its refusal and tool calls (``function.name`` once,
    then ``function.arguments`` in fragments), and the deprecated ``function_call``."""
    tool_calls = delta.get("tool_calls")
    if tool_calls and isinstance(tool_calls, list):
        for tool_call in tool_calls:
            function = field(tool_call, "function")
            record.add_generated(field(function, "name"))
            record.add_generated(field(function, "arguments"))
    record.add_generated(delta.get("refusal"))
    function_call = delta.get("function_call")
    if function_call is not None:
        record.add_generated(field(function_call, "name"))
        record.add_generated(field(function_call, "arguments"))


def _read_response_event(record: ResponseRecord, event_type: str, fields: dict[str, Any]) -> None:
    """A Responses API stream event that carries generated text (see _RESPONSE_DELTAS)."""
    kind = _RESPONSE_DELTAS.get(event_type)
    if kind == _OUTPUT:
        record.add_output(fields.get("delta"))
    elif kind == _GENERATED:
        record.add_generated(fields.get("delta"))
    elif kind == _REASONING:
        record.add_reasoning(fields.get("delta"))
    elif event_type == _ITEM_ADDED:
        item = fields_of(fields.get("item"))
        if item.get("type") in _NAMED_ITEMS:
            record.add_generated(item.get("name"))


def _as_list(messages: Any) -> list[Any]:
    if isinstance(messages, list):
        return messages
    if isinstance(messages, tuple):
        return list(messages)
    return [] if messages is None else [messages]


def _first_int(*values: Any) -> int | None:
    for value in values:
        if type(value) is int:
            return value
    return None


def _include_usage_requested(kwargs: dict[str, Any]) -> bool:
    return bool(field(kwargs.get("stream_options"), "include_usage"))


def _inject_include_usage(kwargs: dict[str, Any]) -> None:
    # Opt-in (OTEL_LLMCOST_OPENAI_INCLUDE_USAGE=true): the extra final chunk has an
    # empty ``choices`` list, which breaks callers that index choices[0] blindly.
    options = kwargs.get("stream_options")
    if options is None or isinstance(options, dict):
        kwargs["stream_options"] = {**(options or {}), "include_usage": True}


def _read_service_tier(record: ResponseRecord, response: Any) -> None:
    tier = field(response, "service_tier")
    # "auto"/None say nothing about the price; "default", "flex", "priority" select a
    # genai-prices price variant.
    if isinstance(tier, str) and tier and tier != "auto":
        record.price_context = {"service_tier": tier}
        record.set_attribute(semconv.GEN_AI_RESPONSE_SERVICE_TIER, tier)


def _read_reported_cost(record: ResponseRecord, usage: Any) -> None:
    amount = reported_cost(usage)
    if amount is not None:
        record.reported_cost = (amount, SOURCE_USAGE_COST)
