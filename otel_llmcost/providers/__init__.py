"""Providers: the only code that knows an SDK's request, response, header and stream shapes.

One module per SDK; :data:`PROVIDERS` lists them. A provider module is imported when
``instrument()`` runs but imports its SDK only when the application does (the patches
are applied by post-import hooks), so an app that uses openai never loads anthropic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """Where a provider's module is, and which distribution and extra install its SDK."""

    target: str  # "module:Class" of the provider
    sdk: str  # the SDK's distribution name
    extra: str  # the otel-llmcost extra that installs it


PROVIDERS: dict[str, ProviderInfo] = {
    "openai": ProviderInfo("otel_llmcost.providers.openai:OpenAIProvider", "openai", "openai"),
    "anthropic": ProviderInfo("otel_llmcost.providers.anthropic:AnthropicProvider", "anthropic", "anthropic"),
    "google_genai": ProviderInfo("otel_llmcost.providers.google_genai:GoogleGenAIProvider", "google-genai", "google"),
    "groq": ProviderInfo("otel_llmcost.providers.groq:GroqProvider", "groq", "groq"),
    "cohere": ProviderInfo("otel_llmcost.providers.cohere:CohereProvider", "cohere", "cohere"),
    "mistral": ProviderInfo("otel_llmcost.providers.mistral:MistralProvider", "mistralai", "mistral"),
    "ollama": ProviderInfo("otel_llmcost.providers.ollama:OllamaProvider", "ollama", "ollama"),
    # boto3 calls through botocore, which is what is patched: its range is the guard.
    "bedrock": ProviderInfo("otel_llmcost.providers.bedrock:BedrockProvider", "botocore", "bedrock"),
    # A gateway library: its calls through an SDK above are one span, LiteLLM's.
    "litellm": ProviderInfo("otel_llmcost.providers.litellm:LiteLLMProvider", "litellm", "litellm"),
}

__all__ = ["PROVIDERS", "ProviderInfo"]
