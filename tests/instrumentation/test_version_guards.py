"""Version guards: an SDK outside the supported range is left alone with one warning,
and a callable that an SDK version lacks is skipped quietly while the rest is patched."""

from __future__ import annotations

import importlib
import logging
from importlib import metadata

import pytest
import wrapt
from packaging.requirements import Requirement

from otel_llmcost.demo.fakes import openai_client
from otel_llmcost.instrumentation import instrumentor as instrumentor_module
from otel_llmcost.instrumentation import package
from otel_llmcost.instrumentation.package import PROVIDER_REQUIREMENTS, PROVIDER_SDKS
from otel_llmcost.providers.base import Api
from otel_llmcost.providers.openai import OpenAIProvider

MESSAGES = [{"role": "user", "content": "hi"}]


def _is_patched(owner: type, name: str = "create") -> bool:
    return isinstance(vars(owner)[name], wrapt.FunctionWrapper)


def _reporting(monkeypatch: pytest.MonkeyPatch, sdk: str, fake_version: str) -> None:
    real = package.version
    monkeypatch.setattr(package, "version", lambda name: fake_version if name == sdk else real(name))


def test_ranges_are_read_from_the_distributions_extras():
    requires = [Requirement(line) for line in metadata.requires("otel-llmcost") or []]
    for key, (sdk, extra) in PROVIDER_SDKS.items():
        declared = [r for r in requires if r.name == sdk and r.marker and r.marker.evaluate({"extra": extra})]
        assert len(declared) == 1, (key, declared)
        assert Requirement(PROVIDER_REQUIREMENTS[key]).specifier == declared[0].specifier
        assert str(declared[0].specifier), f"{sdk} must declare a range"


def test_installed_sdks_are_within_the_supported_range():
    # Each compat session pins SDKs inside the declared ranges; a pin outside one would
    # silently test nothing, because that provider would not be instrumented.
    for key in PROVIDER_SDKS:
        ok, installed = package.supported_version(PROVIDER_REQUIREMENTS[key])
        assert ok or installed is None, f"{key} {installed} is outside {PROVIDER_REQUIREMENTS[key]}"


def test_unsupported_openai_version_is_skipped_with_one_warning(monkeypatch, caplog, otel, fake):
    from openai.resources.chat.completions import Completions

    _reporting(monkeypatch, "openai", "0.28.1")
    caplog.set_level(logging.DEBUG, logger="otel_llmcost")
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        message = warnings[0].getMessage()
        assert "openai 0.28.1" in message and "outside the supported range" in message
        assert PROVIDER_REQUIREMENTS["openai"] in message
        assert not _is_patched(Completions)
        assert not any(module.startswith("openai") for module, _ in instrumentor.patched)
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert otel.spans() == ()
    finally:
        instrumentor.uninstrument()


@pytest.mark.skipif(
    not Requirement(PROVIDER_REQUIREMENTS["groq"]).specifier,
    reason="run from a source tree installed without the groq extra: its range is unknown",
)
def test_groq_before_0_13_is_skipped_with_one_warning(monkeypatch, caplog, otel):
    # groq 0.12 builds its default client with httpx's removed ``proxies=`` (httpx 0.28).
    _reporting(monkeypatch, "groq", "0.12.0")
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        assert [r.getMessage() for r in caplog.records if "groq 0.12.0" in r.getMessage()]
        assert not any(module.startswith("groq") for module, _ in instrumentor.patched)
    finally:
        instrumentor.uninstrument()


@pytest.mark.skipif(
    not Requirement(PROVIDER_REQUIREMENTS["bedrock"]).specifier,
    reason="run from a source tree installed without the bedrock extra: its range is unknown",
)
def test_botocore_before_converse_is_skipped_with_one_warning(monkeypatch, caplog, otel):
    # botocore 1.34.115 has no Converse / ConverseStream: nothing to instrument on Bedrock.
    _reporting(monkeypatch, "botocore", "1.34.115")
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        assert [r.getMessage() for r in caplog.records if "bedrock 1.34.115" in r.getMessage()]
        assert not any(module.startswith("botocore") for module, _ in instrumentor.patched)
    finally:
        instrumentor.uninstrument()


def test_too_new_major_is_skipped_too(monkeypatch, caplog, otel):
    _reporting(monkeypatch, "openai", "99.0.0")
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        assert [r.getMessage() for r in caplog.records if "openai 99.0.0" in r.getMessage()]
        assert not any(module.startswith("openai") for module, _ in instrumentor.patched)
    finally:
        instrumentor.uninstrument()


def test_sdk_that_is_not_installed_is_skipped_without_a_warning(monkeypatch, caplog, otel):
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(package, "version", missing)
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert instrumentor.patched == []
    finally:
        instrumentor.uninstrument()


def test_callable_missing_from_this_sdk_version_is_skipped_quietly(monkeypatch, caplog, otel, fake):
    from openai.resources.chat.completions import Completions

    # As if this SDK version had no such method (e.g. client.responses before openai 1.66).
    missing = (
        Api("openai.resources.chat.completions", "Completions.create_in_a_future_version", "chat", False, "chat"),
        Api("openai.resources.no_such_module", "Thing.create", "chat", False, "chat"),
    )
    monkeypatch.setattr(OpenAIProvider, "apis", OpenAIProvider.apis + missing)
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert _is_patched(Completions)
        patched = {attribute for _, attribute in instrumentor.patched}
        assert "Completions.create_in_a_future_version" not in patched
        assert "Thing.create" not in patched
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(otel.spans()) == 1
    finally:
        instrumentor.uninstrument()
    assert not _is_patched(Completions)


def _stainless_hooks(package: str) -> set[tuple[str, str]]:
    module = f"{package}._base_client"
    return {
        (module, "BaseClient._build_request"),
        (module, "BaseClient._should_retry"),
        (module, "SyncAPIClient._process_response"),
        (module, "AsyncAPIClient._process_response"),
    }


def _mistral_package() -> str:
    """Where the installed mistralai keeps its SDK: mistralai.client (2.x on) or mistralai (1.x)."""
    try:
        return "mistralai.client" if hasattr(importlib.import_module("mistralai.client"), "Mistral") else "mistralai"
    except ImportError:
        return "mistralai"


def _mistral_core() -> set[tuple[str, str]]:
    package = _mistral_package()
    return {
        (f"{package}.chat", "Chat.complete"),
        (f"{package}.chat", "Chat.complete_async"),
        (f"{package}.chat", "Chat.stream"),
        (f"{package}.chat", "Chat.stream_async"),
        (f"{package}.embeddings", "Embeddings.create"),
        (f"{package}._hooks.sdkhooks", "SDKHooks.before_request"),
        (f"{package}._hooks.sdkhooks", "SDKHooks.after_success"),
        (f"{package}.utils.retries", "TemporaryError.__init__"),
    }


# What every SDK version inside a supported range must have patched. Skipping a missing
# callable quietly is right for optional surfaces (client.responses, messages.parse), but
# a core method that moved (anthropic < 0.41 kept Messages in resources/messages.py) would
# otherwise turn the provider off without a word; the compat sessions run this per version.
CORE_PATCHES = {
    "openai": {
        ("openai.resources.chat.completions", "Completions.create"),
        ("openai.resources.chat.completions", "AsyncCompletions.create"),
        *_stainless_hooks("openai"),
    },
    "anthropic": {
        ("anthropic.resources.messages.messages", "Messages.create"),
        ("anthropic.resources.messages.messages", "AsyncMessages.create"),
        ("anthropic.resources.messages.messages", "Messages.stream"),
        ("anthropic.resources.messages.messages", "AsyncMessages.stream"),
        *_stainless_hooks("anthropic"),
    },
    "google_genai": {
        ("google.genai.models", "Models.generate_content"),
        ("google.genai.models", "Models.generate_content_stream"),
        ("google.genai.models", "AsyncModels.generate_content"),
        ("google.genai.models", "AsyncModels.generate_content_stream"),
        ("google.genai._api_client", "BaseApiClient._request_once"),
        ("google.genai._api_client", "BaseApiClient._async_request_once"),
    },
    "groq": {
        ("groq.resources.chat.completions", "Completions.create"),
        ("groq.resources.chat.completions", "AsyncCompletions.create"),
        *_stainless_hooks("groq"),
    },
    "mistral": _mistral_core(),
    "cohere": {
        ("cohere.v2.client", "V2Client.chat"),
        ("cohere.v2.client", "AsyncV2Client.chat"),
        ("cohere.v2.client", "V2Client.chat_stream"),
        ("cohere.v2.client", "AsyncV2Client.chat_stream"),
        ("cohere.v2.client", "V2Client.embed"),
        ("cohere.v2.client", "AsyncV2Client.embed"),
        ("cohere.core.http_client", "HttpClient.request"),
        ("cohere.core.http_client", "AsyncHttpClient.request"),
        ("cohere.core.http_client", "_should_retry"),
    },
    "ollama": {
        ("ollama._client", "Client._request"),
        ("ollama._client", "AsyncClient._request"),
    },
    "bedrock": {
        ("botocore.client", "BaseClient._make_api_call"),
        ("botocore.endpoint", "Endpoint._needs_retry"),
    },
    "litellm": {("litellm", "completion"), ("litellm", "acompletion")},
}


@pytest.mark.parametrize("provider", sorted(CORE_PATCHES))
def test_core_callables_are_patched_in_every_supported_version(provider, instrument):
    ok, installed = package.supported_version(PROVIDER_REQUIREMENTS[provider])
    if installed is None:
        pytest.skip(f"{PROVIDER_SDKS[provider][0]} is not installed")
    assert ok
    # Patches wait for their module's import: import them, or this depends on what ran before.
    for module in {module for module, _attribute in CORE_PATCHES[provider]}:
        importlib.import_module(module)
    patched = set(instrument().patched)
    assert CORE_PATCHES[provider] - patched == set(), f"{provider} {installed}"
