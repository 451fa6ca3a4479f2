"""Which provider a client's base URL reaches: ``gen_ai.provider.name``, ``server.address``, port.

The openai SDK reaches many OpenAI-compatible hosts and the anthropic SDK reaches
Claude through cloud platforms; the host names the provider on the span (a local model
server by its default port: Ollama's OpenAI-compatible ``http://localhost:11434/v1``). Pricing does
its own matching on the full URL (genai-prices' ``api_pattern``); this table only names
the provider.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

HOST_PROVIDERS: tuple[tuple[str, str], ...] = (
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
# Servers known by their default port on any host not named above (``http://localhost:11434/v1``,
# ``http://gpu-box:11434``): the provider that listens there.
PORT_PROVIDERS: dict[int, str] = {11434: "ollama"}
# Providers that run models on the user's own hardware: no price list applies, so their calls
# are priced under their own name, which genai-prices does not list (unpriced, never $0),
# unless the price override file prices them (``provider: ollama``, or no provider).
LOCAL_PROVIDERS = frozenset({"ollama"})


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
    for suffix, provider_name in HOST_PROVIDERS:
        if host == suffix or host.endswith("." + suffix):
            name = provider_name
            break
    else:
        if port is not None:
            name = PORT_PROVIDERS.get(port, name)
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return name, host, port


# id(base_url object) -> (the object, its string): str(httpx.URL) re-serializes the URL on
# every call; a client keeps the same URL object, so one conversion per client suffices.
# Holding the object keeps its id from being reused while the entry lives.
_URL_STRINGS: dict[int, tuple[Any, str]] = {}


def url_string(base_url: Any) -> str:
    if isinstance(base_url, str):
        return base_url
    entry = _URL_STRINGS.get(id(base_url))
    if entry is not None and entry[0] is base_url:
        return entry[1]
    url = str(base_url)
    if len(_URL_STRINGS) > 256:
        _URL_STRINGS.clear()
    _URL_STRINGS[id(base_url)] = (base_url, url)
    return url
