"""The real openai SDK against the fake provider: spans, usage, cost, streams, errors."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from packaging.version import Version

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, openai_client
from otel_llmcost.pricing import Pricer
from tests.helpers.providers import openai_usage

# Published OpenAI prices, USD per million tokens (openai.com/api/pricing):
GPT_4O_MINI = {"in": 0.15, "cached": 0.075, "out": 0.60}
GPT_4O = {"in": 2.50, "cached": 1.25, "out": 10.00}
O3_MINI = {"in": 1.10, "cached": 0.55, "out": 4.40}
MESSAGES = [{"role": "user", "content": "What does a token cost?"}]

# Older SDK majors in the compatibility matrix (noxfile.py) lack some surfaces.
OPENAI_VERSION = Version(openai.__version__)
needs_responses_api = pytest.mark.skipif(
    OPENAI_VERSION < Version("1.66.0"),
    reason=f"the Responses API (client.responses) arrived in openai 1.66.0; installed: {openai.__version__}",
)


def expected_cost(price: dict, prompt: int, completion: int, cached: int = 0) -> float:
    return ((prompt - cached) * price["in"] + cached * price["cached"] + completion * price["out"]) / 1e6


def test_chat_completion_span_carries_contract_attributes(instrument, otel, fake):
    client = openai_client(fake)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50, temperature=0.2)

    span = otel.only_span()
    attrs = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-fake123"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.SERVER_ADDRESS] == "api.openai.com"
    assert attrs[semconv.SERVER_PORT] == 443
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 10000
    assert attrs[semconv.ratelimit_attribute("tokens", "reset_s")] == 90.0
    assert attrs[semconv.ratelimit_attribute("requests", "reset_s")] == pytest.approx(0.006)
    assert semconv.UNPRICED not in attrs
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("model", "price", "prompt", "completion", "cached", "reasoning"),
    [
        ("gpt-4o-mini", GPT_4O_MINI, 1200, 300, 0, 0),
        ("gpt-4o", GPT_4O, 5000, 800, 0, 0),
        ("gpt-4o", GPT_4O, 5000, 800, 4096, 0),
        ("o3-mini", O3_MINI, 900, 2500, 0, 2000),
        ("gpt-4o-mini-2024-07-18", GPT_4O_MINI, 2048, 10, 1024, 0),
    ],
)
def test_cost_matches_published_prices(instrument, otel, fake, model, price, prompt, completion, cached, reasoning):
    fake.enqueue(Reply(usage=openai_usage(prompt, completion, cached, reasoning)))
    openai_client(fake).chat.completions.create(model=model, messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == prompt  # includes cached tokens
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == cached
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion  # includes reasoning
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == reasoning
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(price, prompt, completion, cached), rel=1e-9)
    assert attrs[semconv.COST_CACHE_READ] == pytest.approx(cached * price["cached"] / 1e6, rel=1e-9)
    assert attrs[semconv.COST_SAVINGS] == pytest.approx(cached * (price["in"] - price["cached"]) / 1e6, rel=1e-9)
    parts = sum(attrs[k] for k in (semconv.COST_INPUT, semconv.COST_OUTPUT, semconv.COST_CACHE_READ))
    assert parts + attrs[semconv.COST_CACHE_WRITE] == pytest.approx(attrs[semconv.COST_TOTAL], rel=1e-12)


@needs_responses_api
def test_responses_api_usage_details_are_normalized(instrument, otel, fake):
    fake.enqueue(
        Reply(
            usage={
                "input_tokens": 3000,
                "input_tokens_details": {"cached_tokens": 2048},
                "output_tokens": 700,
                "output_tokens_details": {"reasoning_tokens": 500},
                "total_tokens": 3700,
            }
        )
    )
    openai_client(fake).responses.create(model="o3-mini", input="Summarise the bill")

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3000
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2048
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 500
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(O3_MINI, 3000, 700, 2048), rel=1e-9)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)


def test_async_chat_completion_is_traced(instrument, otel, fake):
    async def run() -> None:
        client = openai_client(fake, is_async=True)
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    asyncio.run(run())
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert attrs[semconv.COST_TOTAL] > 0


def test_stream_with_include_usage_reports_exact_usage_and_ttfc(instrument, otel, fake):
    fake.enqueue(Reply(usage=openai_usage(100, 20)))
    stream = openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert text == fake.reply_text
    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert semconv.USAGE_ESTIMATED not in span.attributes
    assert span.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True


def test_stream_without_usage_is_estimated_with_tiktoken(instrument, otel, fake):
    stream = openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for _ in stream:
        pass

    attrs = otel.only_span().attributes
    assert attrs[semconv.USAGE_ESTIMATED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 3
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert attrs[semconv.COST_TOTAL] > 0


def test_include_usage_injection_is_opt_in(instrument, otel, fake):
    instrument(inject_include_usage=True)
    stream = openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for _ in stream:
        pass

    assert fake.requests[-1]["json"]["stream_options"] == {"include_usage": True}
    assert semconv.USAGE_ESTIMATED not in otel.only_span().attributes


def test_stream_used_as_context_manager_ends_span_once(instrument, otel, fake):
    with openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        for _ in stream:
            pass
    assert list(otel.ends.ends.values()) == [1]


def test_async_stream_is_traced_once(instrument, otel, fake):
    async def run() -> str:
        client = openai_client(fake, is_async=True)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return "".join(parts)

    assert asyncio.run(run()) == fake.reply_text
    assert otel.only_span().attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert list(otel.ends.ends.values()) == [1]


def test_async_stream_closed_early_ends_span_once(instrument, otel, fake):
    async def run() -> None:
        client = openai_client(fake, is_async=True)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for _ in stream:
            break
        await stream.close()

    asyncio.run(run())
    assert list(otel.ends.ends.values()) == [1]


@needs_responses_api
def test_responses_stream_reads_usage_from_completed_event(instrument, otel, fake):
    stream = openai_client(fake).responses.create(model="gpt-4o-mini", input="hello", stream=True)
    for _ in stream:
        pass
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)
    assert semconv.USAGE_ESTIMATED not in attrs


def test_chat_stream_helper_produces_one_span(instrument, otel, fake):
    client = openai_client(fake)
    # The helper moved out of beta in openai 1.92.0; before that it was client.beta.chat.completions.stream.
    completions = client.chat.completions if OPENAI_VERSION >= Version("1.92.0") else client.beta.chat.completions
    with completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            pass
    assert len(otel.spans()) == 1


def test_with_raw_response_produces_one_span_with_usage(instrument, otel, fake):
    fake.enqueue(Reply(usage=openai_usage(40, 10)))
    raw = openai_client(fake).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["x-request-id"] == "req_fake"
    assert raw.parse().usage.prompt_tokens == 40

    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40


def test_with_raw_response_stream_produces_one_span(instrument, otel, fake):
    raw = openai_client(fake).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in raw.parse():
        pass
    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert list(otel.ends.ends.values()) == [1]


def test_with_streaming_response_produces_one_span(instrument, otel, fake):
    client = openai_client(fake)
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as response:
        completion = response.parse()
    assert completion.usage.prompt_tokens > 0
    span = otel.only_span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens


def test_429_then_success_counts_retry_and_throttle_on_one_span(instrument, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after-ms": "5", "x-ratelimit-remaining-requests": "0"}))
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.THROTTLED_ATTEMPTS] == 1
    assert attrs[semconv.RETRY_AFTER_S] == pytest.approx(0.005)
    assert span.status.status_code is StatusCode.UNSET
    assert len(fake.requests) == 2


def test_final_429_reraises_the_users_exception_unchanged(instrument, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "7"}))
    client = openai_client(fake, max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert span.attributes[semconv.THROTTLED] is True
    assert span.attributes[semconv.RETRY_AFTER_S] == 7.0
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert raised.value.status_code == 429


def test_500_after_retries_records_error_type_and_retry_count(instrument, otel, fake):
    fake.enqueue(*(Reply(status=500, headers={"retry-after-ms": "1"}) for _ in range(3)))
    with pytest.raises(openai.InternalServerError):
        openai_client(fake, max_retries=2).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.ERROR_TYPE] == "InternalServerError"
    assert attrs[semconv.RETRY_COUNT] == 2
    assert semconv.THROTTLED not in attrs


def test_malformed_body_never_raises_from_instrumentation(instrument, otel, fake):
    fake.enqueue(
        Reply(raw=b'{"id": 5, "usage": "lots", "choices": "none"}', headers={"content-type": "application/json"})
    )
    result = openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.id == 5
    span = otel.only_span()
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_override_file_prices_fine_tuned_models(instrument, otel, fake, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": [{"match": "ft:gpt-4o-mini:acme:*", "input_mtok": 1, "output_mtok": 4}]}))
    instrument(pricer=Pricer(overrides_path=prices))
    fake.enqueue(Reply(usage=openai_usage(1000, 500)))
    openai_client(fake).chat.completions.create(model="ft:gpt-4o-mini:acme:v1", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.COST_TOTAL] == pytest.approx((1000 * 1 + 500 * 4) / 1e6)
    assert attrs[semconv.PRICE_SOURCE] == "override prices.json:1"
    assert attrs[semconv.PRICE_VERSION].startswith("sha256:")


# o3 per million tokens: standard $2 / $8, flex $1 / $4, priority $3.50 / $14.
@pytest.mark.parametrize(("tier", "in_price", "out_price"), [("default", 2, 8), ("flex", 1, 4), ("priority", 3.5, 14)])
def test_service_tier_in_response_selects_price_variant(instrument, otel, fake, tier, in_price, out_price):
    fake.enqueue(Reply(usage=openai_usage(1000, 100)))
    openai_client(fake).chat.completions.create(model="o3", messages=MESSAGES, service_tier=tier)
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_RESPONSE_SERVICE_TIER] == tier
    assert attrs[semconv.COST_TOTAL] == pytest.approx((1000 * in_price + 100 * out_price) / 1e6, rel=1e-9)


def test_openai_compatible_host_sets_provider_and_its_prices(instrument, otel, fake):
    fake.enqueue(Reply(usage=openai_usage(1_000_000, 0)))
    client = openai_client(fake, base_url="https://api.deepseek.com/v1")
    client.chat.completions.create(model="deepseek-chat", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "deepseek"
    assert attrs[semconv.SERVER_ADDRESS] == "api.deepseek.com"
    assert attrs[semconv.PRICE_MODEL] == "deepseek-chat"
    assert semconv.UNPRICED not in attrs


def test_unknown_host_with_ambiguous_model_is_unpriced(instrument, otel, fake):
    # Listed by eight providers at six different prices: any one would be a guess.
    client = openai_client(fake, base_url="http://llm-gateway.internal:8000/v1")
    client.chat.completions.create(model="meta-llama/llama-3.1-8b-instruct", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai_compatible"
    assert attrs[semconv.SERVER_PORT] == 8000
    assert attrs[semconv.UNPRICED] is True


def test_unknown_host_prices_a_model_whose_origin_is_unambiguous(instrument, otel, fake):
    fake.enqueue(Reply(usage=openai_usage(1000, 100)))
    client = openai_client(fake, base_url="http://llm-gateway.internal:8000/v1")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai_compatible"
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(GPT_4O_MINI, 1000, 100), rel=1e-9)


def test_metrics_record_tokens_duration_and_cost(instrument, otel, fake):
    fake.enqueue(Reply(usage=openai_usage(1000, 100)))
    openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    metrics = otel.metrics()
    token_points = metrics[semconv.METRIC_TOKEN_USAGE]
    by_type = {p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum for p in token_points}
    assert by_type == {"input": 1000, "output": 100}
    assert metrics[semconv.METRIC_OPERATION_DURATION][0].count == 1
    assert metrics[semconv.METRIC_COST][0].value == pytest.approx(expected_cost(GPT_4O, 1000, 100))
    assert token_points[0].explicit_bounds[:3] == (1, 4, 16)


def test_content_is_not_captured_by_default(instrument, otel, fake):
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = otel.only_span()
    assert not span.events
    assert "What does a token cost" not in json.dumps(dict(span.attributes))


def test_content_capture_records_messages_as_events(instrument, otel, fake):
    instrument(capture_content=True)
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    events = {e.name: e.attributes for e in otel.only_span().events}
    assert "What does a token cost" in events[semconv.EVENT_GEN_AI_INPUT_MESSAGES][semconv.GEN_AI_INPUT_MESSAGES]
    assert fake.reply_text in events[semconv.EVENT_GEN_AI_OUTPUT_MESSAGES][semconv.GEN_AI_OUTPUT_MESSAGES]


@needs_responses_api
def test_responses_stream_captures_its_text_once(instrument, otel, fake):
    # response.completed repeats the text its deltas streamed; only the deltas are kept.
    instrument(capture_content=True)
    for _ in openai_client(fake).responses.create(model="gpt-4o-mini", input="hello", stream=True):
        pass
    events = {e.name: e.attributes for e in otel.only_span().events}
    assert json.loads(events[semconv.EVENT_GEN_AI_OUTPUT_MESSAGES][semconv.GEN_AI_OUTPUT_MESSAGES]) == [fake.reply_text]


def test_error_message_that_echoes_the_prompt_is_not_recorded(instrument, otel, fake):
    echo = {"error": {"message": "Invalid input: 'What does a token cost?'", "type": "invalid_request_error"}}
    fake.enqueue(Reply(status=400, body=echo))
    with pytest.raises(openai.BadRequestError):
        openai_client(fake, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = otel.only_span()
    assert span.status.description == "BadRequestError"
    assert "token cost" not in json.dumps(dict(span.attributes)) + (span.status.description or "")
