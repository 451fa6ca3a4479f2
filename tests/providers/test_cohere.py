"""The real cohere SDK (v2 API) against the fake provider: spans, usage, cost, rate limits,
streams, retries and errors."""

from __future__ import annotations

import asyncio
import importlib.util
import logging

import cohere
import pytest
from cohere.v2.client import AsyncV2Client, V2Client
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, cohere_client
from otel_llmcost.instrumentation import instrumentor as instrumentor_module
from otel_llmcost.instrumentation import package
from tests.helpers.providers import assert_not_raised_by_us, cohere_streams_close, declared_range

# genai-prices (provider "cohere"), USD per million tokens (no cache-read price: cached
# tokens cost the input price):
#   command-r   input 0.15, output 0.60
#   command-a   input 2.50, output 10.00
#   embed-v4.0  input 0.12
COMMAND_R = {"in": 0.15, "out": 0.60}
COMMAND_A = {"in": 2.50, "out": 10.00}
MESSAGES = [{"role": "user", "content": "What does a token cost at Cohere?"}]
VENDORED_SSE = importlib.util.find_spec("cohere.core.http_sse") is not None
STREAMS_CLOSE = cohere_streams_close()


def expected_cost(price: dict, billed_in: int, billed_out: int) -> float:
    return (billed_in * price["in"] + billed_out * price["out"]) / 1e6


def cohere_usage(billed_in: int, billed_out: int, cached: int = 0, template: int = 66) -> dict:
    """v2 usage: ``billed_units`` are billed; ``tokens`` add the prompt template Cohere does not bill."""
    return {
        "billed_units": {"input_tokens": billed_in, "output_tokens": billed_out},
        "tokens": {"input_tokens": billed_in + template, "output_tokens": billed_out + 1},
        "cached_tokens": cached,
    }


@pytest.fixture
def cohere_only(instrument):  # type: ignore[no-untyped-def]
    return instrument(providers=("cohere",), limiters=())


def test_chat_span_carries_contract_attributes(cohere_only, otel, fake):
    cohere_client(fake).chat(model="command-r", messages=MESSAGES, max_tokens=50, temperature=0.2, p=0.9)

    span = otel.only_span()
    attrs = span.attributes
    assert span.name == "chat command-r"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "cohere"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "command-r"
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chat-fakecohere"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("COMPLETE",)
    assert attrs[semconv.SERVER_ADDRESS] == "api.cohere.com"
    assert attrs[semconv.SERVER_PORT] == 443
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert attrs[semconv.COST_TOTAL] > 0
    assert semconv.UNPRICED not in attrs
    assert span.status.status_code is StatusCode.UNSET


def test_trial_key_rate_limit_headers_are_recorded(cohere_only, otel, fake):
    cohere_client(fake).chat(model="command-r", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 20
    assert attrs[semconv.ratelimit_attribute("requests", "remaining")] == 19


@pytest.mark.parametrize(
    ("model", "price", "billed_in", "billed_out", "cached"),
    [
        # 1200 * 0.15 + 300 * 0.60 = 180 + 180 -> $0.00036
        ("command-r", COMMAND_R, 1200, 300, 0),
        # 4000 * 2.50 + 900 * 10 = 10000 + 9000 -> $0.019 (cached tokens at the input price)
        ("command-a", COMMAND_A, 4000, 900, 1024),
    ],
)
def test_cost_is_the_billed_units_at_genai_prices(cohere_only, otel, fake, model, price, billed_in, billed_out, cached):
    fake.enqueue(Reply(usage=cohere_usage(billed_in, billed_out, cached)))
    cohere_client(fake).chat(model=model, messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == billed_in  # billed, not the template-inflated tokens
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == billed_out
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == cached
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(price, billed_in, billed_out), rel=1e-9)


def test_hand_computed_costs_of_the_recorded_shapes():
    assert expected_cost(COMMAND_R, 1200, 300) == pytest.approx(0.00036)
    assert expected_cost(COMMAND_A, 4000, 900) == pytest.approx(0.019)


def test_token_counts_are_used_when_no_billed_units_are_sent(cohere_only, otel, fake):
    fake.enqueue(Reply(usage={"tokens": {"input_tokens": 80, "output_tokens": 9}}))
    cohere_client(fake).chat(model="command-r", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 80
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9


def test_unpriced_model_is_marked_never_zero(cohere_only, otel, fake):
    cohere_client(fake).chat(model="acme-finetune-7b", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


def test_embed_is_priced_from_meta_billed_units(cohere_only, otel, fake):
    fake.enqueue(Reply(usage={"input_tokens": 5000}))
    cohere_client(fake).embed(
        model="embed-v4.0", texts=["first text", "second text"], input_type="search_document", embedding_types=["float"]
    )

    span = otel.only_span()
    attrs = span.attributes
    assert span.name == "embeddings embed-v4.0"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5000
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    assert attrs[semconv.COST_TOTAL] == pytest.approx(5000 * 0.12 / 1e6, rel=1e-9)


def test_stream_reads_usage_from_message_end(cohere_only, otel, fake):
    fake.enqueue(Reply(usage=cohere_usage(100, 20)))
    stream = cohere_client(fake).chat_stream(model="command-r", messages=MESSAGES)
    assert otel.spans() == ()  # the generator sends on its first step
    text = "".join(event.delta.message.content.text for event in stream if event.type == "content-delta")

    assert text == fake.reply_text
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    assert semconv.USAGE_ESTIMATED not in attrs
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(COMMAND_R, 100, 20), rel=1e-9)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("COMPLETE",)
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chat-fakecohere"
    if VENDORED_SSE:  # read where the stream's EventSource is built (older SDKs use httpx-sse: not read)
        assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 20
    assert list(otel.ends.ends.values()) == [1]


@pytest.mark.skipif(not STREAMS_CLOSE, reason="before 5.16 the SDK's stream swallows GeneratorExit: close() raises")
def test_stream_closed_early_ends_span_once(cohere_only, otel, fake):
    stream = cohere_client(fake).chat_stream(model="command-r", messages=MESSAGES)
    next(stream)
    stream.close()
    stream.close()

    assert otel.only_span().status.status_code is StatusCode.UNSET
    assert list(otel.ends.ends.values()) == [1]


def test_stream_broken_mid_way_ends_span_once_and_reraises(cohere_only, otel, fake):
    fake.enqueue(Reply(break_after=2))
    with pytest.raises(Exception) as raised:
        for _ in cohere_client(fake).chat_stream(model="command-r", messages=MESSAGES):
            pass

    assert_not_raised_by_us(raised.value)
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert list(otel.ends.ends.values()) == [1]


def test_async_chat_async_stream_and_async_embed_are_one_span_each(cohere_only, otel, fake):
    fake.enqueue(Reply(usage=cohere_usage(300, 40)), Reply(usage=cohere_usage(50, 10)))

    async def run() -> str:
        client = cohere_client(fake, is_async=True)
        await client.chat(model="command-r", messages=MESSAGES)
        stream = client.chat_stream(model="command-r", messages=MESSAGES)
        text = "".join([event.delta.message.content.text async for event in stream if event.type == "content-delta"])
        await client.embed(model="embed-v4.0", texts=["t"], input_type="search_query", embedding_types=["float"])
        return text

    assert asyncio.run(run()) == fake.reply_text
    plain, streamed, embedded = sorted(otel.spans(), key=lambda span: span.start_time)
    assert plain.attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert plain.attributes[semconv.COST_TOTAL] == pytest.approx(expected_cost(COMMAND_R, 300, 40), rel=1e-9)
    assert streamed.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert streamed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert embedded.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert list(otel.ends.ends.values()) == [1, 1, 1]


def test_v2_of_the_v1_client_is_instrumented_too(cohere_only, otel, fake):
    from otel_llmcost.demo.fakes import _sdk_http_client

    client = cohere.Client(api_key="fake", httpx_client=_sdk_http_client(fake, "cohere.core.http_client", False))
    client.v2.chat(model="command-r", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "cohere"
    assert attrs[semconv.SERVER_ADDRESS] == "api.cohere.com"


def test_429_then_success_counts_retry_and_throttle_on_one_span(cohere_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "0.005"}, body={"message": "too many requests"}))
    cohere_client(fake).chat(model="command-r", messages=MESSAGES, request_options={"max_retries": 2})

    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == pytest.approx(0.005)
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert span.status.status_code is StatusCode.UNSET
    assert len(fake.requests) == 2


def test_async_429_then_success_counts_the_retry(cohere_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "0.005"}, body={"message": "too many requests"}))
    client = cohere_client(fake, is_async=True)
    asyncio.run(client.chat(model="command-r", messages=MESSAGES, request_options={"max_retries": 2}))

    attrs = otel.only_span().attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True


def test_final_429_reraises_the_users_exception_unchanged(cohere_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "7"}, body={"message": "too many requests"}))
    with pytest.raises(cohere.TooManyRequestsError) as raised:
        cohere_client(fake).chat(model="command-r", messages=MESSAGES, request_options={"max_retries": 0})

    assert_not_raised_by_us(raised.value)
    span = otel.only_span()
    attrs = span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[semconv.ERROR_TYPE] == "TooManyRequestsError"
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == 7.0
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert raised.value.status_code == 429


def test_429_after_the_last_retry_counts_each_retry_once(cohere_only, otel, fake):
    throttled = Reply(status=429, headers={"retry-after": "0.002"}, body={"message": "too many requests"})
    fake.enqueue(throttled, throttled, throttled)
    with pytest.raises(cohere.TooManyRequestsError):
        cohere_client(fake).chat(model="command-r", messages=MESSAGES, request_options={"max_retries": 2})

    attrs = otel.only_span().attributes
    assert attrs[semconv.RETRY_COUNT] == 2
    assert attrs[semconv.THROTTLED] is True
    assert len(fake.requests) == 3


def test_bad_request_is_reraised_unchanged(cohere_only, otel, fake):
    fake.enqueue(Reply(status=400, body={"message": "invalid request: model 'x' not found"}))
    with pytest.raises(cohere.BadRequestError) as raised:
        cohere_client(fake).chat(model="x", messages=MESSAGES)

    assert raised.value.status_code == 400
    attrs = otel.only_span().attributes
    assert attrs[semconv.ERROR_TYPE] == "BadRequestError"
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 400
    assert semconv.RETRY_COUNT not in attrs or attrs[semconv.RETRY_COUNT] == 0


def test_uninstrument_restores_the_originals(instrument, otel, fake):
    instrument(providers=("cohere",), limiters=()).uninstrument()
    names = ("chat", "chat_stream", "embed")
    originals = {(cls, name): vars(cls)[name] for cls in (V2Client, AsyncV2Client) for name in names}
    instrumentor = instrument(providers=("cohere",), limiters=())
    assert ("cohere.v2.client", "V2Client.chat") in instrumentor.patched
    assert vars(V2Client)["chat"] is not originals[(V2Client, "chat")]

    instrumentor.uninstrument()

    assert all(vars(cls)[name] is original for (cls, name), original in originals.items())
    cohere_client(fake).chat(model="command-r", messages=MESSAGES)
    assert otel.spans() == ()


def test_version_outside_the_range_is_not_patched_and_warns_once(monkeypatch, caplog, otel):
    monkeypatch.setitem(package.PROVIDER_REQUIREMENTS, "cohere", declared_range("cohere"))
    real = package.version
    monkeypatch.setattr(package, "version", lambda name: "4.57" if name == "cohere" else real(name))
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, providers=("cohere",), limiters=()
        )
    try:
        warnings = [r.getMessage() for r in caplog.records if "cohere" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "cohere 4.57 is outside the supported range" in warnings[0]
        assert not any(module.startswith("cohere") for module, _ in instrumentor.patched)
    finally:
        instrumentor.uninstrument()


def test_final_429_whose_error_has_no_headers_reads_them_from_the_last_attempt(cohere_only, otel, fake, monkeypatch):
    # cohere 5.x's ApiError carries no headers: the response it came from is the last failed attempt.
    from otel_llmcost.providers.base import ErrorReport
    from otel_llmcost.providers.cohere import CohereProvider

    monkeypatch.setattr(CohereProvider, "read_error", lambda self, error: ErrorReport(error.status_code, None))
    body = {"message": "too many requests"}
    fake.enqueue(
        Reply(status=429, headers={"retry-after": "0.003"}, body=body),
        Reply(status=429, headers={"retry-after": "9"}, body=body),  # the last: not retried
    )
    with pytest.raises(cohere.TooManyRequestsError):
        cohere_client(fake).chat(model="command-r", messages=MESSAGES, request_options={"max_retries": 1})

    attrs = otel.only_span().attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.RETRY_AFTER_S] == 9.0
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
