"""The real google-genai SDK against the fake provider: spans, normalized usage (cached
prompt and thoughts), exact cost incl. the >200k tier, streams, 429s, fuzzed shapes."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
from google.genai import errors, types
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import LLMCostInstrumentor, semconv
from otel_llmcost.demo.fakes import Reply, genai_client
from otel_llmcost.providers.google_genai import normalize_model
from tests.helpers.fuzz_values import PROVIDER_FUZZ, json_values
from tests.helpers.providers import assert_not_raised_by_us, gemini_usage

# Published Gemini API prices, USD per million tokens (ai.google.dev/gemini-api/docs/pricing, paid tier):
# gemini-2.5-flash: input $0.30 (text), output $2.50 INCLUDING thinking tokens, context caching $0.03.
GEMINI_25_FLASH = {"in": 0.30, "out": 2.50, "cached": 0.03}
# gemini-2.5-pro: prompts <= 200k tokens: input $1.25, output $10.00, cached $0.125;
#                 prompts  > 200k tokens: input $2.50, output $15.00, cached $0.25 (the whole call).
GEMINI_25_PRO_LOW = {"in": 1.25, "out": 10.00, "cached": 0.125}
GEMINI_25_PRO_HIGH = {"in": 2.50, "out": 15.00, "cached": 0.25}
FLASH = "gemini-2.5-flash"
PROMPT = "How much does a thought cost?"


# --- fixtures (tests/conftest.py gives `otel`, `instrument` and the fake provider `fake`) ---


@pytest.fixture
def gem_otel(instrument, otel):  # type: ignore[no-untyped-def]
    """The shared in-memory telemetry (tests/conftest.py), instrumenting google_genai only."""
    instrument(providers=("google_genai",))
    return otel


def expected_cost(price: dict, prompt: int, candidates: int, thoughts: int = 0, cached: int = 0) -> float:
    return ((prompt - cached) * price["in"] + cached * price["cached"] + (candidates + thoughts) * price["out"]) / 1e6


# --- generate_content ----------------------------------------------------------------------


def test_generate_content_span_carries_the_contract_attributes(gem_otel, fake):
    config = types.GenerateContentConfig(max_output_tokens=256, temperature=0.4, top_p=0.9)
    response = genai_client(fake).models.generate_content(model=FLASH, contents=PROMPT, config=config)
    assert response.text == fake.reply_text

    span = gem_otel.only_span()
    attrs = span.attributes
    assert span.name == f"generate_content {FLASH}"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "generate_content"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "gcp.gemini"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == FLASH
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.4
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == FLASH
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "gemini-fake-response-1"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.SERVER_ADDRESS] == "generativelanguage.googleapis.com"
    assert attrs[semconv.SERVER_PORT] == 443
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] > 0  # the fake thinks on 2.5 models
    assert semconv.UNPRICED not in attrs
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("model", "price", "prompt", "candidates", "thoughts", "cached"),
    [
        (FLASH, GEMINI_25_FLASH, 1200, 300, 0, 0),
        (FLASH, GEMINI_25_FLASH, 1200, 300, 2000, 0),  # thoughts billed as output
        (FLASH, GEMINI_25_FLASH, 10000, 500, 1500, 4000),  # cached prompt part
        ("models/gemini-2.5-flash", GEMINI_25_FLASH, 800, 80, 0, 0),
        ("gemini-2.5-pro", GEMINI_25_PRO_LOW, 100_000, 1000, 3000, 20_000),
        ("gemini-2.5-pro", GEMINI_25_PRO_HIGH, 250_000, 1000, 3000, 0),  # > 200k: the whole call at tier 2
        ("gemini-2.5-pro", GEMINI_25_PRO_HIGH, 250_000, 1000, 0, 100_000),
    ],
)
def test_cost_matches_published_prices(gem_otel, fake, model, price, prompt, candidates, thoughts, cached):
    fake.enqueue(Reply(usage=gemini_usage(prompt, candidates, thoughts, cached)))
    genai_client(fake).models.generate_content(model=model, contents=PROMPT)

    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == prompt  # already includes the cached part
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == candidates + thoughts
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == thoughts
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == cached
    assert attrs[semconv.USAGE_UNCACHED_INPUT_TOKENS] == prompt - cached
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(price, prompt, candidates, thoughts, cached))
    assert attrs[semconv.COST_SAVINGS] == pytest.approx(cached * (price["in"] - price["cached"]) / 1e6)
    assert attrs[semconv.PRICE_MODEL] == normalize_model(model)


def test_model_names_are_normalized():
    assert normalize_model("models/gemini-2.5-flash") == FLASH
    assert normalize_model("publishers/google/models/gemini-2.5-flash") == FLASH
    assert normalize_model("projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash") == FLASH
    assert normalize_model("google/gemini-2.5-flash") == FLASH
    assert normalize_model("tunedModels/my-model-123") == "tunedModels/my-model-123"
    assert normalize_model(None) == ""


def test_async_generate_content_is_traced(gem_otel, fake):
    fake.enqueue(Reply(usage=gemini_usage(500, 50, 100)))

    async def run() -> str:
        response = await genai_client(fake).aio.models.generate_content(model=FLASH, contents=PROMPT)
        return response.text

    assert asyncio.run(run()) == fake.reply_text
    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(GEMINI_25_FLASH, 500, 50, 100))


def test_vertex_client_is_named_vertex_and_priced_as_google(gem_otel, fake):
    fake.enqueue(Reply(usage=gemini_usage(1000, 100)))
    genai_client(fake, vertexai=True).models.generate_content(model=FLASH, contents=PROMPT)
    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[semconv.SERVER_ADDRESS] == "us-central1-aiplatform.googleapis.com"
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(GEMINI_25_FLASH, 1000, 100))


def test_chat_session_goes_through_generate_content(gem_otel, fake):
    chat = genai_client(fake).chats.create(model=FLASH)
    chat.send_message("hello")
    chat.send_message("again")
    assert len(gem_otel.spans()) == 2


# --- generate_content_stream ----------------------------------------------------------------


def test_stream_reads_complete_usage_from_the_last_chunk(gem_otel, fake):
    fake.enqueue(Reply(usage=gemini_usage(3000, 40, 600, 1024)))
    stream = genai_client(fake).models.generate_content_stream(model=FLASH, contents=PROMPT)
    assert fake.requests == []  # a generator: nothing is sent until it is iterated
    text = "".join(chunk.text for chunk in stream)
    assert text == fake.reply_text

    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3000
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 640
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(GEMINI_25_FLASH, 3000, 40, 600, 1024))


def test_stream_closed_early_ends_span_once(gem_otel, fake):
    stream = genai_client(fake).models.generate_content_stream(model=FLASH, contents=PROMPT)
    next(stream)
    stream.close()
    stream.close()
    span = gem_otel.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0  # the running usage of the first chunk


def test_never_iterated_stream_sends_nothing_and_ends_once(gem_otel, fake):
    stream = genai_client(fake).models.generate_content_stream(model=FLASH, contents=PROMPT)
    del stream
    gc.collect()
    gem_otel.only_span()
    assert fake.requests == []


def test_async_stream_is_traced_once(gem_otel, fake):
    fake.enqueue(Reply(usage=gemini_usage(700, 30, 90)))

    async def run() -> str:
        stream = await genai_client(fake).aio.models.generate_content_stream(model=FLASH, contents=PROMPT)
        return "".join([chunk.text async for chunk in stream])

    assert asyncio.run(run()) == fake.reply_text
    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(GEMINI_25_FLASH, 700, 30, 90))


def test_async_stream_closed_early_ends_span_once(gem_otel, fake):
    async def run() -> None:
        stream = await genai_client(fake).aio.models.generate_content_stream(model=FLASH, contents=PROMPT)
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(run())
    assert gem_otel.only_span().status.status_code is StatusCode.UNSET


# --- 429 RESOURCE_EXHAUSTED ------------------------------------------------------------------

EXHAUSTED = {
    "error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}
}


def test_final_429_is_throttled_and_reraised_unchanged(gem_otel, fake):
    fake.enqueue(Reply(status=429, body=EXHAUSTED, headers={"retry-after": "2"}))
    with pytest.raises(errors.ClientError) as raised:
        genai_client(fake).models.generate_content(model=FLASH, contents=PROMPT)
    assert raised.value.code == 429
    span = gem_otel.only_span()
    attrs = span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[semconv.ERROR_TYPE] == "ClientError"
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.THROTTLED_ATTEMPTS] == 1
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert attrs[semconv.RETRY_AFTER_S] == 2.0
    assert semconv.RETRY_COUNT not in attrs


def test_429_then_success_with_sdk_retries_counts_retry_and_throttle(gem_otel, fake):
    fake.enqueue(Reply(status=429, body=EXHAUSTED), Reply(usage=gemini_usage(100, 10)))
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.001, max_delay=0.002, jitter=0)
    genai_client(fake, retry_options=retry).models.generate_content(model=FLASH, contents=PROMPT)
    span = gem_otel.only_span()
    attrs = span.attributes
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.THROTTLED_ATTEMPTS] == 1
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(GEMINI_25_FLASH, 100, 10))
    assert len(fake.requests) == 2


def test_429_then_success_in_a_stream_counts_retry(gem_otel, fake):
    fake.enqueue(Reply(status=429, body=EXHAUSTED))
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0.001, max_delay=0.002, jitter=0)
    client = genai_client(fake, retry_options=retry)
    for _ in client.models.generate_content_stream(model=FLASH, contents=PROMPT):
        pass
    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED_ATTEMPTS] == 1


def test_async_final_429_is_throttled(gem_otel, fake):
    fake.enqueue(Reply(status=429, body=EXHAUSTED))

    async def run() -> None:
        await genai_client(fake).aio.models.generate_content(model=FLASH, contents=PROMPT)

    with pytest.raises(errors.ClientError):
        asyncio.run(run())
    assert gem_otel.only_span().attributes[semconv.THROTTLED] is True


# --- uninstrument ------------------------------------------------------------------------------


def test_uninstrumented_sdk_records_nothing_through_generate_content_or_its_stream(gem_otel, fake):
    # That every patched attribute is put back exactly: tests/providers/test_contract.py.
    LLMCostInstrumentor().uninstrument()
    client = genai_client(fake)
    client.models.generate_content(model=FLASH, contents=PROMPT)
    for _ in client.models.generate_content_stream(model=FLASH, contents=PROMPT):
        pass
    assert gem_otel.spans() == ()


# --- fuzz: nothing the provider sends back may break the caller ---------------------------

values = json_values()
usage_keys = st.sampled_from(
    [
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
    ]
)
usages = st.one_of(values, st.dictionaries(usage_keys, st.one_of(st.integers(-5, 2**40), values), max_size=6))


@PROVIDER_FUZZ
@given(
    usages_per_chunk=st.lists(usages, min_size=1, max_size=3),
    extra=st.dictionaries(st.sampled_from(["modelVersion", "responseId", "candidates", "promptFeedback"]), values),
    status=st.sampled_from([200, 200, 200, 429, 500]),
    stream=st.booleans(),
)
def test_any_response_shape_is_survived(gem_otel, fake, usages_per_chunk, extra, status, stream):
    gem_otel.clear()
    chunks = [{"candidates": [], "usageMetadata": usage, "modelVersion": FLASH, **extra} for usage in usages_per_chunk]
    if status != 200:
        fake.enqueue(Reply(status=status, body=EXHAUSTED))
    elif stream:
        fake.enqueue(Reply(sse=chunks))
    else:
        fake.enqueue(Reply(raw=json.dumps(chunks[-1]).encode(), headers={"content-type": "application/json"}))
    client = genai_client(fake)
    try:
        if stream:
            for _ in client.models.generate_content_stream(model=FLASH, contents=PROMPT):
                pass
        else:
            client.models.generate_content(model=FLASH, contents=PROMPT)
    except Exception as error:  # the SDK may reject a shape or a status; never because of us
        assert_not_raised_by_us(error)
    gem_otel.only_span()


def _function_call_reply(prompt: int, candidates: int) -> Reply:
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    return Reply(
        body={
            "candidates": [{"content": {"role": "model", "parts": [call]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": gemini_usage(prompt, candidates),
            "modelVersion": FLASH,
        }
    )


def _text_reply(prompt: int, candidates: int) -> Reply:
    return Reply(
        body={
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Sunny."}]}, "finishReason": "STOP"}],
            "usageMetadata": gemini_usage(prompt, candidates),
            "modelVersion": FLASH,
        }
    )


def test_automatic_function_calling_bills_every_round(gem_otel, fake):
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    fake.enqueue(_function_call_reply(100, 10), _text_reply(150, 5))
    config = types.GenerateContentConfig(tools=[get_weather])
    response = genai_client(fake).models.generate_content(model=FLASH, contents=PROMPT, config=config)

    assert response.text == "Sunny."
    assert len(fake.requests) == 2
    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 250
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 15


def test_async_automatic_function_calling_bills_every_round(gem_otel, fake):
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    fake.enqueue(_function_call_reply(100, 10), _text_reply(150, 5))
    config = types.GenerateContentConfig(tools=[get_weather])

    async def run() -> None:
        await genai_client(fake).aio.models.generate_content(model=FLASH, contents=PROMPT, config=config)

    asyncio.run(run())
    attrs = gem_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 250
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 15
