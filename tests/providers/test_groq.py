"""The real groq SDK against the fake provider: spans, usage, cost, rate limits, streams, errors."""

from __future__ import annotations

import asyncio

import groq
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, groq_client
from tests.helpers.providers import assert_not_raised_by_us, openai_usage

# genai-prices (provider "groq"), USD per million tokens:
#   llama-3.3-70b-versatile  input 0.59, output 0.79 (no cache-read price)
#   openai/gpt-oss-120b      input 0.15, output 0.60, cache read 0.075
LLAMA_70B = {"in": 0.59, "cached": 0.0, "out": 0.79}  # never cached in these tests
GPT_OSS_120B = {"in": 0.15, "cached": 0.075, "out": 0.60}
MESSAGES = [{"role": "user", "content": "What does a token cost at Groq?"}]


def expected_cost(price: dict, prompt: int, completion: int, cached: int = 0) -> float:
    return ((prompt - cached) * price["in"] + cached * price["cached"] + completion * price["out"]) / 1e6


def groq_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict:
    """Groq's usage object: OpenAI's counts (prompt_tokens INCLUDES cached_tokens) plus timings."""
    usage = openai_usage(prompt, completion, cached, reasoning)
    if not cached:
        del usage["prompt_tokens_details"]
    if not reasoning:
        del usage["completion_tokens_details"]
    return {**usage, "queue_time": 0.02, "prompt_time": 0.001, "completion_time": 0.05, "total_time": 0.051}


@pytest.fixture
def groq_only(instrument):  # type: ignore[no-untyped-def]
    return instrument(providers=("groq",), limiters=())


def test_chat_completion_span_carries_contract_attributes(groq_only, otel, fake):
    groq_client(fake).chat.completions.create(
        model="llama-3.3-70b-versatile", messages=MESSAGES, max_tokens=50, temperature=0.2
    )

    span = otel.only_span()
    attrs = span.attributes
    assert span.name == "chat llama-3.3-70b-versatile"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "groq"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "llama-3.3-70b-versatile"
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "llama-3.3-70b-versatile"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-fakegroq"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.SERVER_ADDRESS] == "api.groq.com"
    assert attrs[semconv.SERVER_PORT] == 443
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert attrs[semconv.COST_TOTAL] > 0
    assert semconv.UNPRICED not in attrs
    assert span.status.status_code is StatusCode.UNSET


def test_rate_limit_headers_are_recorded(groq_only, otel, fake):
    groq_client(fake).chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 14400
    assert attrs[semconv.ratelimit_attribute("requests", "remaining")] == 9999
    assert attrs[semconv.ratelimit_attribute("requests", "reset_s")] == pytest.approx(179.56)
    assert attrs[semconv.ratelimit_attribute("tokens", "limit")] == 6000
    assert attrs[semconv.ratelimit_attribute("tokens", "remaining")] == 5880
    assert attrs[semconv.ratelimit_attribute("tokens", "reset_s")] == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("model", "price", "prompt", "completion", "cached", "reasoning"),
    [
        # 1200 * 0.59 + 300 * 0.79 = 708 + 237 = $945 per million -> $0.000945
        ("llama-3.3-70b-versatile", LLAMA_70B, 1200, 300, 0, 0),
        # (4000 - 3072) * 0.15 + 3072 * 0.075 + 900 * 0.60 = 139.2 + 230.4 + 540 -> $0.0009096
        ("openai/gpt-oss-120b", GPT_OSS_120B, 4000, 900, 3072, 600),
    ],
)
def test_cost_matches_genai_prices(groq_only, otel, fake, model, price, prompt, completion, cached, reasoning):
    fake.enqueue(Reply(usage=groq_usage(prompt, completion, cached, reasoning)))
    groq_client(fake).chat.completions.create(model=model, messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == prompt  # includes cached tokens
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == cached
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion  # includes reasoning
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == reasoning
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(price, prompt, completion, cached), rel=1e-9)
    assert attrs[semconv.COST_CACHE_READ] == pytest.approx(cached * price["cached"] / 1e6, rel=1e-9)


def test_hand_computed_costs_of_the_recorded_shapes():
    assert expected_cost(LLAMA_70B, 1200, 300) == pytest.approx(0.000945)
    assert expected_cost(GPT_OSS_120B, 4000, 900, 3072) == pytest.approx(0.0009096)


def test_unpriced_model_is_marked_never_zero(groq_only, otel, fake):
    groq_client(fake).chat.completions.create(model="groq/private-model-9", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


def test_stream_reads_usage_from_the_last_chunks_x_groq(groq_only, otel, fake):
    fake.enqueue(Reply(usage=groq_usage(100, 20)))
    stream = groq_client(fake).chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == fake.reply_text
    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    assert semconv.USAGE_ESTIMATED not in attrs
    # 100 * 0.05 + 20 * 0.08 = 6.6 per million (llama-3.1-8b-instant)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(6.6e-6, rel=1e-9)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.ratelimit_attribute("tokens", "limit")] == 6000
    assert list(otel.ends.ends.values()) == [1]


def test_stream_closed_early_ends_span_once(groq_only, otel, fake):
    stream = groq_client(fake, max_retries=0).chat.completions.create(
        model="llama-3.1-8b-instant", messages=MESSAGES, stream=True
    )
    next(iter(stream))
    stream.close()
    stream.close()

    span = otel.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert list(otel.ends.ends.values()) == [1]


def test_stream_broken_mid_way_ends_span_once_and_reraises(groq_only, otel, fake):
    fake.enqueue(Reply(break_after=2))
    stream = groq_client(fake, max_retries=0).chat.completions.create(
        model="llama-3.1-8b-instant", messages=MESSAGES, stream=True
    )
    with pytest.raises(Exception) as raised:
        for _ in stream:
            pass

    assert_not_raised_by_us(raised.value)
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert list(otel.ends.ends.values()) == [1]


def test_async_call_and_async_stream_are_one_span_each(groq_only, otel, fake):
    fake.enqueue(Reply(usage=groq_usage(300, 40)), Reply(usage=groq_usage(50, 10)))

    async def run() -> str:
        client = groq_client(fake, is_async=True)
        await client.chat.completions.create(model="llama-3.3-70b-versatile", messages=MESSAGES)
        stream = await client.chat.completions.create(model="llama-3.3-70b-versatile", messages=MESSAGES, stream=True)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    assert asyncio.run(run()) == fake.reply_text
    plain, streamed = sorted(otel.spans(), key=lambda span: span.start_time)
    assert plain.attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert plain.attributes[semconv.COST_TOTAL] == pytest.approx(expected_cost(LLAMA_70B, 300, 40), rel=1e-9)
    assert streamed.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert streamed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert list(otel.ends.ends.values()) == [1, 1]


def test_with_raw_response_produces_one_span_with_usage(groq_only, otel, fake):
    fake.enqueue(Reply(usage=groq_usage(40, 10)))
    raw = groq_client(fake).chat.completions.with_raw_response.create(model="llama-3.1-8b-instant", messages=MESSAGES)
    assert raw.parse().usage.prompt_tokens == 40
    assert otel.only_span().attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40


def test_429_then_success_counts_retry_and_throttle_on_one_span(groq_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "0.005", "x-ratelimit-remaining-tokens": "0"}))
    groq_client(fake).chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)

    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == pytest.approx(0.005)
    assert span.status.status_code is StatusCode.UNSET
    assert len(fake.requests) == 2


def test_final_429_reraises_the_users_exception_unchanged(groq_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "7"}))
    with pytest.raises(groq.RateLimitError) as raised:
        groq_client(fake, max_retries=0).chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)

    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert span.attributes[semconv.THROTTLED] is True
    assert span.attributes[semconv.RETRY_AFTER_S] == 7.0
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert raised.value.status_code == 429


def test_uninstrument_restores_the_originals(instrument, otel, fake):
    instrument(providers=("groq",), limiters=()).uninstrument()
    create = vars(groq.resources.chat.completions.Completions)["create"]
    acreate = vars(groq.resources.chat.completions.AsyncCompletions)["create"]
    instrumentor = instrument(providers=("groq",), limiters=())
    assert ("groq.resources.chat.completions", "Completions.create") in instrumentor.patched
    assert vars(groq.resources.chat.completions.Completions)["create"] is not create

    instrumentor.uninstrument()

    assert vars(groq.resources.chat.completions.Completions)["create"] is create
    assert vars(groq.resources.chat.completions.AsyncCompletions)["create"] is acreate
    groq_client(fake).chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)
    assert otel.spans() == ()


def test_with_streaming_response_produces_one_span(groq_only, otel, fake):
    client = groq_client(fake)
    with client.chat.completions.with_streaming_response.create(
        model="llama-3.1-8b-instant", messages=MESSAGES
    ) as response:
        completion = response.parse()
    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
    assert list(otel.ends.ends.values()) == [1]
