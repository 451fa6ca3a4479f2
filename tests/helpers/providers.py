"""Each provider's usage object as its API returns it, and the check that an error is the SDK's own.

The shapes differ on purpose (that is what the providers' ``parse_usage`` normalizes):
OpenAI's prompt_tokens INCLUDE cached tokens, Anthropic's input_tokens EXCLUDE cache
reads and writes, Gemini's promptTokenCount INCLUDES the cached part and reports
thoughts beside the candidates.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement


def openai_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """Chat Completions usage: prompt_tokens includes cached_tokens, completion_tokens includes reasoning."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def anthropic_usage(uncached: int, output: int, read: int = 0, write_5m: int = 0, write_1h: int = 0) -> dict[str, Any]:
    """The Messages API usage object: input_tokens EXCLUDES cache reads and writes."""
    return {
        "input_tokens": uncached,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        "output_tokens": output,
        "service_tier": "standard",
    }


def gemini_usage(prompt: int, candidates: int, thoughts: int = 0, cached: int = 0) -> dict[str, Any]:
    """Gemini usageMetadata: promptTokenCount INCLUDES cachedContentTokenCount; thoughts are separate."""
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    return usage


def assert_not_raised_by_us(error: BaseException) -> None:
    """The frame that raised is the SDK's or the fake server's, never instrumentation code."""
    origin = traceback.extract_tb(error.__traceback__)[-1].filename
    assert "otel_llmcost" not in origin or origin.endswith("fakes.py"), origin


def declared_range(key: str) -> str:
    """The provider's supported range: from the installed metadata, else (an editable install of
    another checkout, whose extras may lack the provider) as this checkout's pyproject.toml declares it."""
    from otel_llmcost.instrumentation.package import PROVIDER_REQUIREMENTS
    from otel_llmcost.providers import PROVIDERS

    requirement = PROVIDER_REQUIREMENTS[key]
    if Requirement(requirement).specifier:
        return requirement
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    info = PROVIDERS[key]
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    [line] = [line for line in extras[info.extra] if Requirement(line).name == info.sdk]
    return str(Requirement(line))


def mistral_reports_cache() -> bool:
    """Whether the installed mistralai keeps the usage fields it does not declare, among them
    ``prompt_tokens_details.cached_tokens`` (1.9.x on; older ones drop them: no cache count)."""
    import importlib

    for name in ("mistralai.client.models", "mistralai.models"):
        try:
            usage_info = importlib.import_module(name).UsageInfo
        except (ImportError, AttributeError):
            continue
        return usage_info.model_config.get("extra") == "allow"
    return False


def mistral_event_stream() -> type:
    """The installed mistralai's EventStream class (2.x on: under mistralai.client)."""
    import importlib

    for name in ("mistralai.client.utils.eventstreaming", "mistralai.utils.eventstreaming"):
        try:
            stream_class: type = importlib.import_module(name).EventStream
        except (ImportError, AttributeError):
            continue
        return stream_class
    raise ImportError("mistralai has no EventStream")


def cohere_streams_close() -> bool:
    """Whether the installed cohere's chat_stream generator can be closed: before 5.16 a bare
    ``except: pass`` around each event swallows GeneratorExit, and close() raises RuntimeError."""
    from importlib import metadata

    from packaging.version import Version

    return Version(metadata.version("cohere")) >= Version("5.16")
