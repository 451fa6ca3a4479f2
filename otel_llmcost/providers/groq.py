"""Groq, through the ``groq`` SDK (generated from the same base client as openai's).

Patched: Chat Completions ``create``, sync and async; ``with_raw_response`` and
``with_streaming_response`` go through the same methods, so they yield one span too. The
base-client hooks (retries, headers, 429s) and result classification are the shared
Stainless ones (:mod:`._stainless`).

The body is OpenAI's Chat Completions shape: ``usage.prompt_tokens`` INCLUDES
``prompt_tokens_details.cached_tokens`` and ``completion_tokens`` includes
``completion_tokens_details.reasoning_tokens`` (both where Groq reports them), so
:func:`.openai.parse_usage` reads it. A stream carries its usage in the last chunk's
``x_groq.usage``, sent whether or not the request set ``stream_options.include_usage``
(then a top-level ``usage`` too). Rate-limit headers are OpenAI's ``x-ratelimit-*`` table.
"""

from __future__ import annotations

from typing import Any

from .. import semconv
from ._stainless import StainlessProvider, base_client_hooks
from .base import Api, PromptView, Request, ResponseRecord
from .fields import field, fields_of
from .hosts import UNKNOWN_OPENAI_COMPATIBLE
from .openai import HEADERS, OpenAIProvider, parse_usage

_CHAT = "chat"


class GroqProvider(StainlessProvider):
    name = "groq"
    apis = (
        Api("groq.resources.chat.completions", "Completions.create", semconv.OPERATION_CHAT, False, _CHAT),
        Api("groq.resources.chat.completions", "AsyncCompletions.create", semconv.OPERATION_CHAT, True, _CHAT),
    )
    hooks = base_client_hooks("groq")
    header_specs = HEADERS
    raw_classes = ("groq._response:BaseAPIResponse",)
    stream_classes = ("groq:Stream",)
    async_stream_classes = ("groq:AsyncStream",)

    def __init__(self) -> None:
        super().__init__()
        # The body and chunk shapes are OpenAI's: read them with its provider.
        self._openai = OpenAIProvider()

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        messages = kwargs.get("messages")
        prompt = PromptView(
            tools=kwargs.get("tools") or kwargs.get("functions"),
            messages=messages if isinstance(messages, list) else list(messages or ()),
            temperature=kwargs.get("temperature"),
        )
        request = self.base_request(api, instance, kwargs, prompt)
        if request.provider_name == UNKNOWN_OPENAI_COMPATIBLE:
            request.provider_name = self.name  # a proxy in front of Groq: still Groq's API
        request.pricing_provider = self.name
        for value in (kwargs.get("max_completion_tokens"), kwargs.get("max_tokens")):
            if type(value) is int:
                request.max_tokens = value
                break
        if request.stream:  # usage arrives last: keep what is generated, to count it if it never does
            request.collect_output = request.estimate_usage = True
        tier = kwargs.get("service_tier")
        if isinstance(tier, str):
            request.attributes = {semconv.GEN_AI_REQUEST_SERVICE_TIER: tier}
        return request

    def read_response(self, record: ResponseRecord, response: Any) -> None:
        self._openai.read_response(record, response)

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        self._openai.read_chunk(record, chunk)
        usage = field(fields_of(chunk).get("x_groq"), "usage")
        if usage is not None:
            parsed = parse_usage(usage)
            if parsed is not None:
                record.usage = parsed
