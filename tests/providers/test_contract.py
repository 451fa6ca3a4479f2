"""The contract every provider keeps: one test per shared behaviour, run against each real SDK
(openai, anthropic, google-genai, groq, mistralai, cohere, ollama, boto3's bedrock-runtime, and litellm
through the openai SDK) talking to the fake provider (for boto3, which speaks urllib3 rather than
httpx, a local fake Bedrock).

A stream ends its span exactly once however it ends (exhausted, closed early, abandoned,
broken); async calls and streams are one span each; the user's exception reaches them
unchanged; ``uninstrument()`` puts back exactly what was patched; an unknown model is
recorded as unpriced, never as a cost of 0; and a known model costs what genai-prices
says for the span's own token counts (Ollama's local models have no published price). The
per-provider suites beside this one cover what is particular to each SDK.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from typing import Any

import genai_prices
import pytest
from opentelemetry.trace import StatusCode

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import (
    FakeLLMServer,
    Reply,
    anthropic_client,
    cohere_client,
    genai_client,
    groq_client,
    mistral_client,
    ollama_client,
    openai_client,
)
from otel_llmcost.providers import PROVIDERS
from tests.helpers.bedrock import (
    BedrockReply,
    FakeBedrock,
    bedrock_client,
    converse_body,
    converse_reports_cache,
    converse_stream_events,
    converse_usage,
    exception_event,
)
from tests.helpers.providers import (
    anthropic_usage,
    assert_not_raised_by_us,
    cohere_streams_close,
    gemini_usage,
    mistral_event_stream,
    mistral_reports_cache,
    openai_usage,
)

PROMPT = "What does a cached token cost?"
MESSAGES = [{"role": "user", "content": PROMPT}]


class ContractSdk:
    """What a provider's run does the same way for most SDKs (the fake provider's replies)."""

    is_async = True  # the SDK has an async client
    priced = True  # genai-prices lists the provider's models (not so for models run locally)

    def usage_reply(self) -> Reply:
        raise NotImplementedError

    def stream(self, fake: FakeLLMServer) -> Any:
        raise NotImplementedError

    def enqueue_usage(self, fake: FakeLLMServer) -> None:
        fake.enqueue(self.usage_reply())

    def streams_close(self) -> bool:
        """The SDK's stream has a ``close()``."""
        return True

    def broken_stream(self, fake: FakeLLMServer) -> Any:
        """A stream that the provider cuts after two events."""
        fake.enqueue(Reply(break_after=2))
        return self.stream(fake)


class OpenAI(ContractSdk):
    """Chat Completions through the openai SDK."""

    key = "openai"
    prices_provider = "openai"
    model = "gpt-4o-mini"
    unknown_model = "my-private-model"

    def usage_reply(self) -> Reply:
        return Reply(usage=openai_usage(2048, 300, cached=1024))

    def call(self, fake: FakeLLMServer, model: str) -> None:
        openai_client(fake).chat.completions.create(model=model, messages=MESSAGES)

    async def acall(self, fake: FakeLLMServer) -> None:
        await openai_client(fake, is_async=True).chat.completions.create(model=self.model, messages=MESSAGES)

    def stream(self, fake: FakeLLMServer) -> Any:
        client = openai_client(fake, max_retries=0)
        return client.chat.completions.create(model=self.model, messages=MESSAGES, stream=True)

    async def astream(self, fake: FakeLLMServer) -> Any:
        client = openai_client(fake, is_async=True)
        return await client.chat.completions.create(model=self.model, messages=MESSAGES, stream=True)


class Anthropic(ContractSdk):
    """The Messages API through the anthropic SDK."""

    key = "anthropic"
    prices_provider = "anthropic"
    model = "claude-sonnet-4-20250514"
    unknown_model = "claude-private-9"

    def usage_reply(self) -> Reply:
        return Reply(usage=anthropic_usage(200, 300, read=2048, write_5m=1024, write_1h=512))

    def call(self, fake: FakeLLMServer, model: str) -> None:
        anthropic_client(fake).messages.create(model=model, max_tokens=500, messages=MESSAGES)

    async def acall(self, fake: FakeLLMServer) -> None:
        client = anthropic_client(fake, is_async=True)
        await client.messages.create(model=self.model, max_tokens=500, messages=MESSAGES)

    def stream(self, fake: FakeLLMServer) -> Any:
        client = anthropic_client(fake, max_retries=0)
        return client.messages.create(model=self.model, max_tokens=500, messages=MESSAGES, stream=True)

    async def astream(self, fake: FakeLLMServer) -> Any:
        client = anthropic_client(fake, is_async=True)
        return await client.messages.create(model=self.model, max_tokens=500, messages=MESSAGES, stream=True)


class GoogleGenAI(ContractSdk):
    """generate_content through the google-genai SDK (no retries unless asked)."""

    key = "google_genai"
    prices_provider = "google"
    model = "gemini-2.5-flash"
    unknown_model = "tunedModels/private-7"

    def usage_reply(self) -> Reply:
        return Reply(usage=gemini_usage(3000, 200, thoughts=400, cached=1024))

    def call(self, fake: FakeLLMServer, model: str) -> None:
        genai_client(fake).models.generate_content(model=model, contents=PROMPT)

    async def acall(self, fake: FakeLLMServer) -> None:
        await genai_client(fake).aio.models.generate_content(model=self.model, contents=PROMPT)

    def stream(self, fake: FakeLLMServer) -> Any:
        return genai_client(fake).models.generate_content_stream(model=self.model, contents=PROMPT)

    async def astream(self, fake: FakeLLMServer) -> Any:
        return await genai_client(fake).aio.models.generate_content_stream(model=self.model, contents=PROMPT)


class Groq(ContractSdk):
    """Chat Completions through the groq SDK (usage of a stream in the last chunk's x_groq)."""

    key = "groq"
    prices_provider = "groq"
    model = "openai/gpt-oss-120b"
    unknown_model = "groq-private-model"

    def usage_reply(self) -> Reply:
        return Reply(usage=openai_usage(2048, 300, cached=1024, reasoning=100))

    def call(self, fake: FakeLLMServer, model: str) -> None:
        groq_client(fake).chat.completions.create(model=model, messages=MESSAGES)

    async def acall(self, fake: FakeLLMServer) -> None:
        await groq_client(fake, is_async=True).chat.completions.create(model=self.model, messages=MESSAGES)

    def stream(self, fake: FakeLLMServer) -> Any:
        client = groq_client(fake, max_retries=0)
        return client.chat.completions.create(model=self.model, messages=MESSAGES, stream=True)

    async def astream(self, fake: FakeLLMServer) -> Any:
        client = groq_client(fake, is_async=True)
        return await client.chat.completions.create(model=self.model, messages=MESSAGES, stream=True)


class Mistral(ContractSdk):
    """Chat completions through the mistralai SDK (usage of a stream in its last chunk, always)."""

    key = "mistral"
    prices_provider = "mistral"
    model = "mistral-large-2512"
    unknown_model = "ft:open-mistral-7b:acme:private"

    def usage_reply(self) -> Reply:
        return Reply(usage=openai_usage(2048, 300, cached=1024))

    def enqueue_usage(self, fake: FakeLLMServer) -> None:
        if not mistral_reports_cache():
            pytest.skip("this mistralai drops prompt_tokens_details: no cached count reaches us")
        super().enqueue_usage(fake)

    def call(self, fake: FakeLLMServer, model: str) -> None:
        mistral_client(fake).chat.complete(model=model, messages=MESSAGES)

    async def acall(self, fake: FakeLLMServer) -> None:
        await mistral_client(fake).chat.complete_async(model=self.model, messages=MESSAGES)

    def stream(self, fake: FakeLLMServer) -> Any:
        return mistral_client(fake).chat.stream(model=self.model, messages=MESSAGES)

    def streams_close(self) -> bool:
        return hasattr(mistral_event_stream(), "close")  # 1.5 has no close()

    async def astream(self, fake: FakeLLMServer) -> Any:
        return await mistral_client(fake).chat.stream_async(model=self.model, messages=MESSAGES)


class Cohere(ContractSdk):
    """The v2 chat API through the cohere SDK (a stream is a generator that sends on its first step;
    the async one is an async generator, never awaited)."""

    key = "cohere"
    prices_provider = "cohere"
    model = "command-a"
    unknown_model = "acme-finetune-7b"

    def usage_reply(self) -> Reply:
        usage = {"input_tokens": 2048, "output_tokens": 300}
        return Reply(usage={"billed_units": usage, "tokens": usage, "cached_tokens": 1024})

    def call(self, fake: FakeLLMServer, model: str) -> None:
        cohere_client(fake).chat(model=model, messages=MESSAGES)

    async def acall(self, fake: FakeLLMServer) -> None:
        await cohere_client(fake, is_async=True).chat(model=self.model, messages=MESSAGES)

    def stream(self, fake: FakeLLMServer) -> Any:
        return cohere_client(fake).chat_stream(model=self.model, messages=MESSAGES)

    def streams_close(self) -> bool:
        return cohere_streams_close()

    async def astream(self, fake: FakeLLMServer) -> Any:
        return cohere_client(fake, is_async=True).chat_stream(model=self.model, messages=MESSAGES)


class Ollama(ContractSdk):
    """chat through the ollama library: local models, unpriced unless the override file prices them
    (tests/providers/test_ollama.py); a stream is a generator that sends on its first step."""

    key = "ollama"
    prices_provider = "ollama"
    model = "llama3.2"
    unknown_model = "acme/private-model:7b"
    priced = False

    def call(self, fake: FakeLLMServer, model: str) -> None:
        ollama_client(fake).chat(model, messages=MESSAGES)

    async def acall(self, fake: FakeLLMServer) -> None:
        await ollama_client(fake, is_async=True).chat(self.model, messages=MESSAGES)

    def stream(self, fake: FakeLLMServer) -> Any:
        return ollama_client(fake).chat(self.model, messages=MESSAGES, stream=True)

    async def astream(self, fake: FakeLLMServer) -> Any:
        return await ollama_client(fake, is_async=True).chat(self.model, messages=MESSAGES, stream=True)


_FAKE_BEDROCK: list[FakeBedrock] = []
BEDROCK_MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]


def _fake_bedrock() -> FakeBedrock:
    """One fake Bedrock for the module's runs (a daemon thread; it goes with the process)."""
    if not _FAKE_BEDROCK:
        _FAKE_BEDROCK.append(FakeBedrock())
    fake = _FAKE_BEDROCK[0]
    fake.requests.clear()
    return fake


class Bedrock(ContractSdk):
    """Converse through boto3's bedrock-runtime client; botocore has no async client."""

    key = "bedrock"
    prices_provider = "aws"
    model = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
    unknown_model = "acme.private-model-v1:0"
    is_async = False

    def enqueue_usage(self, fake: FakeLLMServer) -> None:
        if not converse_reports_cache():  # an older botocore drops the cache counts it has no field for
            pytest.skip("this botocore's Converse model has no cache token fields")
        _fake_bedrock().enqueue(BedrockReply(body=converse_body(converse_usage(200, 300, read=2048, write=1024))))

    def call(self, fake: FakeLLMServer, model: str) -> None:
        bedrock_client(_fake_bedrock()).converse(modelId=model, messages=BEDROCK_MESSAGES)

    def stream(self, fake: FakeLLMServer) -> Any:
        return bedrock_client(_fake_bedrock()).converse_stream(modelId=self.model, messages=BEDROCK_MESSAGES)["stream"]

    def broken_stream(self, fake: FakeLLMServer) -> Any:
        """Bedrock ends a failing stream with an error event (botocore's EventStreamError)."""
        events = [*converse_stream_events()[:2], exception_event("modelStreamErrorException", "model stream error")]
        _fake_bedrock().enqueue(BedrockReply(events=events))
        return self.stream(fake)


class LiteLLM(ContractSdk):
    """litellm.completion / acompletion, routed through the openai SDK to the fake provider.
    LiteLLM is optional: its runs are skipped where it is not installed."""

    key = "litellm"
    requires = "litellm"
    prices_provider = "openai"
    model = "gpt-4o-mini"
    unknown_model = "my-private-model"

    def usage_reply(self) -> Reply:
        return Reply(usage=openai_usage(2048, 300, cached=1024))

    def call(self, fake: FakeLLMServer, model: str) -> None:
        import litellm

        litellm.completion(model=f"openai/{model}", messages=MESSAGES, client=openai_client(fake))

    async def acall(self, fake: FakeLLMServer) -> None:
        import litellm

        client = openai_client(fake, is_async=True)
        await litellm.acompletion(model=f"openai/{self.model}", messages=MESSAGES, client=client)

    def stream(self, fake: FakeLLMServer) -> Any:
        import litellm

        client = openai_client(fake, max_retries=0)
        return litellm.completion(model=f"openai/{self.model}", messages=MESSAGES, client=client, stream=True)

    def streams_close(self) -> bool:
        from litellm import CustomStreamWrapper

        return hasattr(CustomStreamWrapper, "close")  # 1.60 has no close()

    async def astream(self, fake: FakeLLMServer) -> Any:
        import litellm

        client = openai_client(fake, is_async=True)
        return await litellm.acompletion(model=f"openai/{self.model}", messages=MESSAGES, client=client, stream=True)


SDKS = (OpenAI(), Anthropic(), GoogleGenAI(), Groq(), Mistral(), Cohere(), Ollama(), Bedrock(), LiteLLM())
assert sorted(sdk.key for sdk in SDKS) == sorted(PROVIDERS), "a provider without a contract run"


# --- what is patched, as the SDKs were before any test instrumented them ----------------------

_MISSING = object()


def _owner_and_name(module: str, attribute: str) -> tuple[Any, str]:
    *path, name = attribute.split(".")
    owner: Any = importlib.import_module(module)
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _own_attribute(module: str, attribute: str) -> Any:
    """What the owning class itself holds under the name (not what it inherits): ``vars(cls)[name]``."""
    owner, name = _owner_and_name(module, attribute)
    return vars(owner).get(name, _MISSING)


def _declared_patches(key: str) -> list[tuple[str, str]]:
    """(module, attribute) of every callable, SDK-internal hook and batch method the provider declares."""
    module, _, name = PROVIDERS[key].target.partition(":")
    provider = getattr(importlib.import_module(module), name)
    return [(patch.module, patch.attribute) for patch in (*provider.apis, *provider.hooks, *provider.batch_apis)]


def _snapshot(key: str) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for target in _declared_patches(key):
        try:
            found[target] = _own_attribute(*target)
        except (ImportError, AttributeError):
            pass  # not in this SDK version: never patched either
    return found


# Taken when pytest imports this module, before any test has instrumented anything.
ORIGINALS = {sdk.key: _snapshot(sdk.key) for sdk in SDKS}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(params=SDKS, ids=[sdk.key for sdk in SDKS])
def sdk(request: pytest.FixtureRequest, instrument: Any) -> Any:
    """One provider's real SDK, with that provider alone instrumented (and no limiter adapters)."""
    requires = getattr(request.param, "requires", None)
    if requires:
        pytest.importorskip(requires)
    instrument(providers=(request.param.key,), limiters=())
    return request.param


def _broken_stream_error(sdk: Any, fake: FakeLLMServer) -> BaseException:
    """What iterating a stream that the provider cuts after two events raises."""
    stream = sdk.broken_stream(fake)
    with pytest.raises(Exception) as raised:
        for _ in stream:
            pass
    return raised.value


def _genai_prices_usage(attrs: Any) -> genai_prices.Usage:
    """The span's token counts as genai-prices counts them (input includes cache reads and writes)."""
    written = attrs.get(semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, 0)
    written_1h = attrs.get(semconv.USAGE_CACHE_WRITE_1H_TOKENS, 0)
    return genai_prices.Usage(
        input_tokens=attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS],
        output_tokens=attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS],
        cache_read_tokens=attrs.get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0),
        cache_write_tokens=written,
        cache_write_5m_tokens=written - written_1h,
        cache_write_1h_tokens=written_1h,
    )


# --- streams -------------------------------------------------------------------------------------


def test_stream_closed_early_ends_span_once(sdk, otel, fake):
    if not sdk.streams_close():
        pytest.skip(f"this {sdk.key} SDK's stream cannot be closed early")
    stream = sdk.stream(fake)
    next(iter(stream))
    stream.close()
    stream.close()

    span = otel.only_span()  # one span, ended exactly once
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True


def test_stream_abandoned_half_way_ends_span_once_when_collected(sdk, otel, fake):
    stream = sdk.stream(fake)
    next(iter(stream))
    assert otel.spans() == ()  # still open while the stream may be read
    del stream
    gc.collect()

    otel.only_span()


def test_stream_broken_mid_way_ends_span_once_with_error_type_and_reraises_unchanged(sdk, instrument, otel, fake):
    instrument(providers=(sdk.key,), limiters=()).uninstrument()
    bare = _broken_stream_error(sdk, fake)  # what the SDK raises on its own
    instrument(providers=(sdk.key,), limiters=())

    error = _broken_stream_error(sdk, fake)

    assert (type(error), error.args) == (type(bare), bare.args)
    assert_not_raised_by_us(error)
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(error).__qualname__


# --- async ---------------------------------------------------------------------------------------


def test_async_call_produces_one_span(sdk, otel, fake):
    if not sdk.is_async:
        pytest.skip(f"{sdk.key} has no async client")
    asyncio.run(sdk.acall(fake))

    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == sdk.model
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is False


def test_async_stream_produces_one_span(sdk, otel, fake):
    if not sdk.is_async:
        pytest.skip(f"{sdk.key} has no async client")

    async def consume() -> list[Any]:
        stream = await sdk.astream(fake)
        return [event async for event in stream]

    events = asyncio.run(consume())

    assert len(events) > 1
    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


# --- uninstrument --------------------------------------------------------------------------------


def test_uninstrument_restores_every_patched_attribute_exactly(sdk, instrument, otel, fake):
    instrumentor = instrument(providers=(sdk.key,), limiters=())
    patched = list(instrumentor.patched)
    originals = ORIGINALS[sdk.key]
    assert patched, "nothing was patched"
    assert set(patched) <= set(originals), "patched beyond what the provider declares"
    assert [target for target in patched if _own_attribute(*target) is originals[target]] == []

    instrumentor.uninstrument()

    # `is`, not ==: a wrapt wrapper compares equal to the function it wraps.
    assert [target for target in patched if _own_attribute(*target) is not originals[target]] == []
    sdk.call(fake, sdk.model)
    assert otel.spans() == ()


# --- prices --------------------------------------------------------------------------------------


def test_unknown_model_is_recorded_unpriced_never_zero(sdk, otel, fake):
    sdk.call(fake, sdk.unknown_model)

    attrs = otel.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0  # the tokens are known; only the price is not
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


def test_cost_matches_published_prices_for_the_spans_own_tokens(sdk, otel, fake):
    if not sdk.priced:
        pytest.skip(f"{sdk.key} runs models locally: no published prices")
    sdk.enqueue_usage(fake)
    sdk.call(fake, sdk.model)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] > 0  # the cache-read price is in play
    reference = genai_prices.calc_price(_genai_prices_usage(attrs), sdk.model, provider_id=sdk.prices_provider)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(float(reference.total_price), rel=1e-9)
    assert semconv.UNPRICED not in attrs
