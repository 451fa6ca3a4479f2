"""What a provider module declares, and the defaults it inherits.

A provider answers four questions and nothing else: which callables to wrap
(``apis``), what the request says (``read_request``), what the response and its
headers say (``read_response``, ``read_headers``), and how stream events carry
usage (``read_chunk``). Span lifecycle, pricing, metrics and attribution live
outside ``providers/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from .. import semconv
from ..usage import as_int, field


@dataclass(frozen=True, slots=True)
class Api:
    """One patched callable: ``module`` / ``attribute`` as wrapt's wrap_function_wrapper takes them."""

    module: str
    attribute: str
    operation: str
    is_async: bool
    kind: str = ""  # provider-specific flavour, e.g. "chat" or "responses"


@dataclass(frozen=True, slots=True)
class Hook:
    """A patched SDK-internal callable that reports into the current call (headers, retries)."""

    module: str
    attribute: str
    factory: Any  # (telemetry) -> wrapt wrapper


# Hosts of OpenAI-compatible APIs -> gen_ai.provider.name. Pricing does its own
# matching on the full URL (genai-prices' api_pattern); this table only names the
# provider on the span.
_HOST_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.together.xyz", "together_ai"),
    ("openrouter.ai", "openrouter"),
    ("api.x.ai", "x_ai"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.fireworks.ai", "fireworks"),
    ("api.cerebras.ai", "cerebras"),
)
UNKNOWN_OPENAI_COMPATIBLE = "openai_compatible"


@lru_cache(maxsize=256)
def describe_base_url(base_url: str, default_provider: str) -> tuple[str, str | None, int | None]:
    """(gen_ai.provider.name, server.address, server.port) for a client's base URL."""
    try:
        parts = urlsplit(base_url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return default_provider, None, None
    if not host:
        return default_provider, None, None
    name = UNKNOWN_OPENAI_COMPATIBLE
    for suffix, provider_name in _HOST_PROVIDERS:
        if host == suffix or host.endswith("." + suffix):
            name = provider_name
            break
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return name, host, port


class Provider:
    """Defaults shared by the stainless-generated SDKs (openai, anthropic)."""

    name = ""
    apis: tuple[Api, ...] = ()
    hooks: tuple[Hook, ...] = ()

    def read_request(self, call: Any, api: Api, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def read_response(self, call: Any, response: Any) -> None:
        raise NotImplementedError

    def read_chunk(self, call: Any, chunk: Any) -> None:
        raise NotImplementedError

    def read_headers(self, headers: Any) -> dict[str, Any] | None:
        return None

    def request_messages(self, kwargs: dict[str, Any]) -> Any:
        return kwargs.get("messages")

    def estimate_usage(self, call: Any) -> Any:
        return None

    def prompt_hashes(self, kwargs: dict[str, Any]) -> tuple[str | None, str | None]:
        """(prefix hash, request hash) of the prompt: hashes only, never content.

        The prefix is what providers cache: system prompt, tools and every message
        but the last. Equal prefixes with no cache reads are missed caching; equal
        request hashes are duplicate spend.
        """
        messages = self.request_messages(kwargs)
        if not isinstance(messages, (list, tuple)):
            messages = [messages] if messages is not None else []
        prefix = [kwargs.get("system"), kwargs.get("tools"), kwargs.get("instructions"), list(messages[:-1])]
        prefix_hash = _digest(prefix) if len(messages) > 1 or prefix[0] or prefix[1] or prefix[2] else None
        request = [kwargs.get("model"), prefix, list(messages[-1:]), kwargs.get("temperature")]
        return prefix_hash, _digest(request)

    # Result classification: overridden per SDK with isinstance checks on its classes.
    def is_raw_response(self, result: Any) -> bool:
        return False

    def is_sync_stream(self, result: Any) -> bool:
        return False

    def is_async_stream(self, result: Any) -> bool:
        return False

    def wrap_other(self, call: Any, result: Any) -> Any:
        """A proxy for SDK-specific results (e.g. a stream helper), or None."""
        return None


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def common_request_attributes(call: Any, operation: str, provider_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    model = kwargs.get("model")
    call.model = model if isinstance(model, str) else ""
    attrs: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: operation,
        semconv.GEN_AI_PROVIDER_NAME: provider_name,
    }
    if call.model:
        attrs[semconv.GEN_AI_REQUEST_MODEL] = call.model
    temperature = kwargs.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] = float(temperature)
    top_p = kwargs.get("top_p")
    if isinstance(top_p, (int, float)) and not isinstance(top_p, bool):
        attrs[semconv.GEN_AI_REQUEST_TOP_P] = float(top_p)
    stream = kwargs.get("stream") is True
    call.stream = stream
    attrs[semconv.GEN_AI_REQUEST_STREAM] = stream
    return attrs


def set_max_tokens(attrs: dict[str, Any], *values: Any) -> None:
    for value in values:
        if type(value) is int:
            attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] = value
            return


# id(base_url object) -> (the object, its string): str(httpx.URL) re-serializes the URL on
# every call; a client keeps the same URL object, so one conversion per client suffices.
# Holding the object keeps its id from being reused while the entry lives.
_URL_STRINGS: dict[int, tuple[Any, str]] = {}


def _url_string(base_url: Any) -> str:
    entry = _URL_STRINGS.get(id(base_url))
    if entry is not None and entry[0] is base_url:
        return entry[1]
    url = str(base_url)
    if len(_URL_STRINGS) > 256:
        _URL_STRINGS.clear()
    _URL_STRINGS[id(base_url)] = (base_url, url)
    return url


def apply_base_url(call: Any, attrs: dict[str, Any], client: Any, default_provider: str) -> None:
    base_url = getattr(client, "base_url", None)
    if base_url is None:
        return
    url = base_url if isinstance(base_url, str) else _url_string(base_url)
    name, host, port = describe_base_url(url, default_provider)
    call.api_url = url
    call.provider_name = name
    attrs[semconv.GEN_AI_PROVIDER_NAME] = name
    if host:
        call.server_address = host
        attrs[semconv.SERVER_ADDRESS] = host
        if port:
            attrs[semconv.SERVER_PORT] = port


def append_finish_reason(call: Any, reason: Any) -> None:
    if isinstance(reason, str) and reason:
        if call.finish_reasons is None:
            call.finish_reasons = [reason]
        elif reason not in call.finish_reasons:
            call.finish_reasons.append(reason)


__all__ = [
    "Api",
    "Hook",
    "Provider",
    "as_int",
    "field",
    "common_request_attributes",
    "set_max_tokens",
    "apply_base_url",
    "append_finish_reason",
    "describe_base_url",
]
