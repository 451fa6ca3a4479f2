"""LiteLLM: ``litellm.completion`` and ``litellm.acompletion``, streaming or not.

One span per logical call. LiteLLM reaches many providers through their own SDKs (openai,
anthropic, ...) and the rest over plain HTTP; a call it makes through an SDK we also patch
runs inside the LiteLLM call, so that SDK's wrapper sees a call already current and sends
it untraced (``Telemetry._prepare``), while that SDK's base-client hooks report their
retries and rate-limit headers into the LiteLLM call (both header tables are read here).

The model string names the route: ``anthropic/claude-...``, ``bedrock/...``, ``gemini/...``;
an unprefixed model is looked up in LiteLLM's own model map (``gpt-4o`` -> openai), and the
``custom_llm_provider`` keyword wins over both. The span carries the model without its
prefix, the provider as ``gen_ai.provider.name`` (:data:`PROVIDER_NAMES`), and is priced by
us from genai-prices against that provider (:data:`PRICING_PROVIDERS`). The provider LiteLLM
reports having used (``_hidden_params["custom_llm_provider"]``) replaces the name on the span.

Responses are OpenAI-shaped whatever the provider (``ModelResponse``, ``ModelResponseStream``
chunks): ``usage.prompt_tokens`` INCLUDES ``prompt_tokens_details.cached_tokens`` and, for
Anthropic-style caching, ``cache_creation_input_tokens`` (split by TTL in
``prompt_tokens_details.cache_creation_token_details``); LiteLLM adds both to the prompt
count. A stream's usage comes in its last chunk only when the request set
``stream_options.include_usage``; otherwise the stream is counted locally, as for openai.

LiteLLM's own price of the call, ``_hidden_params["response_cost"]`` (also stamped on a
stream's usage chunk), is recorded as ``llmcost.cost.reported`` with source ``litellm``:
beside our price, never added to it.
"""

from __future__ import annotations

import sys
from typing import Any

from .. import semconv
from ..pricing.usage import Usage
from . import anthropic, openai
from ._stainless import _resolve
from .base import Api, PromptView, Provider, Request, ResponseRecord, ResultKind
from .fields import as_float, as_int, field
from .headers import cost_amount
from .hosts import describe_base_url

SOURCE_LITELLM = "litellm"  # llmcost.cost.reported_source of LiteLLM's response_cost
_CHAT = "chat"

# LiteLLM provider id -> gen_ai.provider.name (semconv well-known values where there is one;
# any other id is used as it is).
PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "sagemaker": "aws.sagemaker",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "watsonx": "ibm.watsonx.ai",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks",
    "cerebras": "cerebras",
    "openrouter": "openrouter",
}

# LiteLLM provider id -> genai-prices provider id (None: let genai-prices match the model).
PRICING_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_text": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "gemini": "google",
    "groq": "groq",
    "mistral": "mistral",
    "codestral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "perplexity": "perplexity",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cerebras": "cerebras",
    "openrouter": "openrouter",
    "databricks": "databricks",
    "novita": "novita",
    "moonshot": "moonshotai",
}

# Bedrock routes in LiteLLM's model string that are not part of the model id.
_BEDROCK_ROUTES = ("converse/", "invoke/")


def parse_usage(usage: Any) -> Usage | None:
    """A LiteLLM ``Usage``: OpenAI's fields, plus the cache writes LiteLLM reports for
    Anthropic-style caching (already counted in ``prompt_tokens``)."""
    parsed = openai.parse_usage(usage)
    if parsed is None:
        return None
    details = field(usage, "prompt_tokens_details")
    write = max(as_int(field(details, "cache_creation_tokens")), as_int(field(usage, "cache_creation_input_tokens")))
    if write:
        write_1h = as_int(field(field(details, "cache_creation_token_details"), "ephemeral_1h_input_tokens"))
        parsed.cache_write_tokens = write
        parsed.cache_write_1h_tokens = min(write_1h, write)
        # Never less than what it is made of, whatever a route reported as the prompt.
        parsed.input_tokens = max(parsed.input_tokens, parsed.cache_read_tokens + write)
    return parsed


def route(model: str, custom_llm_provider: Any) -> tuple[str | None, str]:
    """(LiteLLM provider id or None, model without the route prefix) of a model string."""
    provider = custom_llm_provider if isinstance(custom_llm_provider, str) and custom_llm_provider else None
    litellm = sys.modules.get("litellm")
    prefix, slash, rest = model.partition("/")
    if slash and (prefix == provider or (provider is None and _known_provider(litellm, prefix))):
        provider, model = prefix, rest
    if provider is None:
        provider = _mapped_provider(litellm, model)
    if provider == "bedrock" and model.startswith(_BEDROCK_ROUTES):
        model = model.partition("/")[2]
    return provider, model


def _known_provider(litellm: Any, prefix: str) -> bool:
    if prefix in PROVIDER_NAMES:
        return True
    known = getattr(litellm, "provider_list", None)
    if not isinstance(known, (list, tuple, set, frozenset)):
        return False
    return prefix in known


def _mapped_provider(litellm: Any, model: str) -> str | None:
    """The provider LiteLLM's model map names for an unprefixed model (a dict lookup, quiet:
    ``litellm.get_llm_provider`` prints to stdout when it cannot tell)."""
    model_cost = getattr(litellm, "model_cost", None)
    entry = model_cost.get(model) if isinstance(model_cost, dict) else None
    provider = entry.get("litellm_provider") if isinstance(entry, dict) else None
    return provider if isinstance(provider, str) and provider else None


class _LiteLLMRequest(Request):
    """A request of ``acompletion``: its stream is iterated with ``async for``."""

    __slots__ = ("is_async",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_async = False


class LiteLLMProvider(Provider):
    name = "litellm"
    apis = (
        Api("litellm", "completion", semconv.OPERATION_CHAT, False, _CHAT),
        Api("litellm", "acompletion", semconv.OPERATION_CHAT, True, _CHAT),
    )
    # Read from the hooks of the SDK LiteLLM called (openai's or anthropic's base client).
    header_specs = openai.HEADERS + anthropic.HEADERS
    stream_classes = (
        "litellm.litellm_core_utils.streaming_handler:CustomStreamWrapper",
        "litellm.utils:CustomStreamWrapper",
    )

    def __init__(self) -> None:
        self._stream_types: tuple[type, ...] | None = None
        self._openai = openai.OpenAIProvider()

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        model = kwargs.get("model")
        model = model if isinstance(model, str) else ""
        provider, bare = route(model, kwargs.get("custom_llm_provider"))
        messages = kwargs.get("messages")
        prompt = PromptView(
            tools=kwargs.get("tools") or kwargs.get("functions"),
            messages=messages if isinstance(messages, list) else list(messages or ()),
            temperature=kwargs.get("temperature"),
        )
        request = _LiteLLMRequest(
            operation=api.operation,
            provider_name=PROVIDER_NAMES.get(provider, provider) if provider else self.name,
            model=bare,
            prompt=prompt,
            stream=kwargs.get("stream") is True,
            temperature=as_float(kwargs.get("temperature")),
            top_p=as_float(kwargs.get("top_p")),
        )
        request.is_async = api.is_async
        request.pricing_provider = PRICING_PROVIDERS.get(provider) if provider else None
        base = kwargs.get("api_base") or kwargs.get("base_url")
        if isinstance(base, str) and base:
            _name, host, port = describe_base_url(base, request.provider_name)
            request.server_address = host
            request.server_port = port if host else None
        for value in (kwargs.get("max_completion_tokens"), kwargs.get("max_tokens")):
            if type(value) is int:
                request.max_tokens = value
                break
        if request.stream:
            if inject_include_usage and not field(kwargs.get("stream_options"), "include_usage"):
                options = kwargs.get("stream_options")
                if options is None or isinstance(options, dict):
                    kwargs["stream_options"] = {**(options or {}), "include_usage": True}
            # Usage arrives last, if at all: keep what is generated, to count it if it never does.
            request.collect_output = request.estimate_usage = True
        return request

    def replace_model(self, kwargs: dict[str, Any], model: str) -> None:
        """A budget downgrade keeps the route: ``anthropic/`` + the cheaper model."""
        current = kwargs.get("model")
        prefix, slash, _ = current.partition("/") if isinstance(current, str) else ("", "", "")
        kwargs["model"] = f"{prefix}/{model}" if slash and "/" not in model else model

    def classify(self, result: Any, request: Request) -> ResultKind:
        types = self._stream_types
        if types is None:
            types = self._stream_types = _resolve(self.stream_classes)
        if types and isinstance(result, types):
            return ResultKind.ASYNC_ITERATOR if getattr(request, "is_async", False) else ResultKind.STREAM
        return ResultKind.PLAIN

    def read_response(self, record: ResponseRecord, response: Any) -> None:
        self._openai.read_response(record, response)
        usage = parse_usage(field(response, "usage"))
        if usage is not None:
            record.usage = usage
        _read_hidden_params(record, response)

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        # LiteLLM's StreamingChoices and Delta keep their fields outside ``__dict__``, so the
        # chunk is read with getattr, not with openai's ``fields_of`` fast path.
        raw_usage = field(chunk, "usage")
        if raw_usage is not None:
            usage = parse_usage(raw_usage)
            if usage is not None:
                record.usage = usage
            _read_hidden_params(record, chunk)
        if record.model is None:
            model = field(chunk, "model")
            if isinstance(model, str) and model:
                record.model = model
            chunk_id = field(chunk, "id")
            if isinstance(chunk_id, str):
                record.id = chunk_id
        choices = field(chunk, "choices")
        if not choices or not isinstance(choices, list):
            return
        for choice in choices:
            record.add_finish_reason(field(choice, "finish_reason"))
            if record.output_parts is not None:
                delta = field(choice, "delta")
                record.add_output(field(delta, "content"))
                record.add_reasoning(field(delta, "reasoning_content"))
                tool_calls = field(delta, "tool_calls")
                if tool_calls and isinstance(tool_calls, list):
                    for tool_call in tool_calls:
                        function = field(tool_call, "function")
                        record.add_generated(field(function, "name"))
                        record.add_generated(field(function, "arguments"))


def _read_hidden_params(record: ResponseRecord, response: Any) -> None:
    """LiteLLM's price of the call and the provider and host it says it used."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        return
    amount = cost_amount(hidden.get("response_cost"))
    if amount is not None:
        record.reported_cost = (amount, SOURCE_LITELLM)
    provider = hidden.get("custom_llm_provider")
    if isinstance(provider, str) and provider:
        record.set_attribute(semconv.GEN_AI_PROVIDER_NAME, PROVIDER_NAMES.get(provider, provider))
    api_base = hidden.get("api_base")
    if isinstance(api_base, str) and api_base:
        _name, host, port = describe_base_url(api_base, "")
        if host:
            record.set_attribute(semconv.SERVER_ADDRESS, host)
            if port:
                record.set_attribute(semconv.SERVER_PORT, port)
