"""The real mistralai SDK against the fake provider: spans, usage, cost, rate limits, streams, errors."""

from __future__ import annotations

import asyncio
import importlib
import logging

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, mistral_client
from otel_llmcost.instrumentation import instrumentor as instrumentor_module
from otel_llmcost.instrumentation import package
from otel_llmcost.providers.mistral import MistralProvider
from tests.helpers.providers import (
    assert_not_raised_by_us,
    declared_range,
    mistral_event_stream,
    mistral_reports_cache,
    openai_usage,
)

# genai-prices (provider "mistral"; the same in 0.1.13, the oldest tested), USD per million tokens:
#   mistral-large-2512  input 0.50, cache read 0.05, output 1.50
#   codestral-2508      input 0.30, cache read 0.03, output 0.90
#   mistral-embed       input 0.10
LARGE = {"in": 0.50, "cached": 0.05, "out": 1.50}
CODESTRAL = {"in": 0.30, "cached": 0.03, "out": 0.90}
MESSAGES = [{"role": "user", "content": "What does a token cost at Mistral?"}]


def expected_cost(price: dict, prompt: int, completion: int, cached: int = 0) -> float:
    return ((prompt - cached) * price["in"] + cached * price["cached"] + completion * price["out"]) / 1e6


def mistral_usage(prompt: int, completion: int, cached: int = 0) -> dict:
    """Mistral's usage object: OpenAI's counts, prompt_tokens INCLUDES prompt_tokens_details.cached_tokens."""
    usage = openai_usage(prompt, completion, cached)
    del usage["completion_tokens_details"]
    return usage


def _chat_module():  # type: ignore[no-untyped-def]
    """Where the installed SDK keeps Chat: mistralai.client.chat (2.x on) or mistralai.chat (1.x)."""
    for name in ("mistralai.client.chat", "mistralai.chat"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("mistralai has no chat module")


@pytest.fixture
def mistral_only(instrument):  # type: ignore[no-untyped-def]
    return instrument(providers=("mistral",), limiters=())


def test_chat_complete_span_carries_contract_attributes(mistral_only, otel, fake):
    mistral_client(fake).chat.complete(model="mistral-large-2512", messages=MESSAGES, max_tokens=50, temperature=0.2)

    span = otel.only_span()
    attrs = span.attributes
    assert span.name == "chat mistral-large-2512"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "mistral_ai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "mistral-large-2512"
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "mistral-large-2512"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "cmpl-fakemistral"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.SERVER_ADDRESS] == "api.mistral.ai"
    assert attrs[semconv.SERVER_PORT] == 443
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert attrs[semconv.COST_TOTAL] > 0
    assert semconv.UNPRICED not in attrs
    assert span.status.status_code is StatusCode.UNSET


def test_rate_limit_headers_are_recorded(mistral_only, otel, fake):
    mistral_client(fake).chat.complete(model="mistral-large-2512", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.ratelimit_attribute("tokens", "limit")] == 5_000_000
    assert attrs[semconv.ratelimit_attribute("tokens", "remaining")] == 4_999_911
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 720
    assert attrs[semconv.ratelimit_attribute("requests", "remaining")] == 720


def test_older_ratelimitbysize_headers_are_read_too():
    report = MistralProvider().read_headers(
        {"x-ratelimitbysize-limit-minute": "500000", "x-ratelimitbysize-remaining-minute": "499920"}, 200
    )
    assert report is not None
    assert report.ratelimits == {
        semconv.ratelimit_attribute("tokens", "limit"): 500000,
        semconv.ratelimit_attribute("tokens", "remaining"): 499920,
    }


@pytest.mark.parametrize(
    ("model", "price", "prompt", "completion", "cached"),
    [
        # (3000 - 2048) * 0.50 + 2048 * 0.05 + 400 * 1.50 = 476 + 102.4 + 600 -> $0.0011784
        ("mistral-large-2512", LARGE, 3000, 400, 2048),
        # 1200 * 0.30 + 300 * 0.90 = 360 + 270 -> $0.00063
        ("codestral-2508", CODESTRAL, 1200, 300, 0),
    ],
)
def test_cost_matches_genai_prices(mistral_only, otel, fake, model, price, prompt, completion, cached):
    if cached and not mistral_reports_cache():
        pytest.skip("this mistralai drops prompt_tokens_details: no cached count reaches us")
    fake.enqueue(Reply(usage=mistral_usage(prompt, completion, cached)))
    mistral_client(fake).chat.complete(model=model, messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == prompt  # includes cached tokens
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == cached
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(price, prompt, completion, cached), rel=1e-9)
    assert attrs[semconv.COST_CACHE_READ] == pytest.approx(cached * price["cached"] / 1e6, rel=1e-9)


def test_hand_computed_costs_of_the_recorded_shapes():
    assert expected_cost(LARGE, 3000, 400, 2048) == pytest.approx(0.0011784)
    assert expected_cost(CODESTRAL, 1200, 300) == pytest.approx(0.00063)


def test_unpriced_model_is_marked_never_zero(mistral_only, otel, fake):
    mistral_client(fake).chat.complete(model="ft:open-mistral-7b:acme:private", messages=MESSAGES)

    attrs = otel.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert [name for name in attrs if name.startswith("llmcost.cost.")] == []


def test_embeddings_are_priced_on_their_input(mistral_only, otel, fake):
    fake.enqueue(Reply(usage={"prompt_tokens": 5000, "completion_tokens": 0, "total_tokens": 5000}))
    mistral_client(fake).embeddings.create(model="mistral-embed", inputs=["first text", "second text"])

    span = otel.only_span()
    attrs = span.attributes
    assert span.name == "embeddings mistral-embed"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5000
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    assert attrs[semconv.COST_TOTAL] == pytest.approx(5000 * 0.10 / 1e6, rel=1e-9)


def test_stream_reads_usage_from_the_last_chunk(mistral_only, otel, fake):
    fake.enqueue(Reply(usage=mistral_usage(100, 20)))
    stream = mistral_client(fake).chat.stream(model="mistral-large-2512", messages=MESSAGES)
    text = "".join(event.data.choices[0].delta.content or "" for event in stream)

    assert text == fake.reply_text
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    assert semconv.USAGE_ESTIMATED not in attrs
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(LARGE, 100, 20), rel=1e-9)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.ratelimit_attribute("tokens", "limit")] == 5_000_000
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs
    assert list(otel.ends.ends.values()) == [1]


def test_stream_used_as_context_manager_ends_span_once(mistral_only, otel, fake):
    if not hasattr(mistral_event_stream(), "__enter__"):
        pytest.skip("this mistralai's EventStream is no context manager")
    with mistral_client(fake).chat.stream(model="mistral-large-2512", messages=MESSAGES) as stream:
        next(iter(stream))

    assert otel.only_span().status.status_code is StatusCode.UNSET
    assert list(otel.ends.ends.values()) == [1]


def test_stream_closed_early_ends_span_once(mistral_only, otel, fake):
    if not hasattr(mistral_event_stream(), "close"):
        pytest.skip("this mistralai's EventStream has no close()")
    stream = mistral_client(fake).chat.stream(model="mistral-large-2512", messages=MESSAGES)
    next(iter(stream))
    stream.close()
    stream.close()

    assert otel.only_span().status.status_code is StatusCode.UNSET
    assert list(otel.ends.ends.values()) == [1]


def test_stream_broken_mid_way_ends_span_once_and_reraises(mistral_only, otel, fake):
    fake.enqueue(Reply(break_after=2))
    stream = mistral_client(fake).chat.stream(model="mistral-large-2512", messages=MESSAGES)
    with pytest.raises(Exception) as raised:
        for _ in stream:
            pass

    assert_not_raised_by_us(raised.value)
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert list(otel.ends.ends.values()) == [1]


def test_async_complete_and_async_stream_are_one_span_each(mistral_only, otel, fake):
    fake.enqueue(Reply(usage=mistral_usage(300, 40)), Reply(usage=mistral_usage(50, 10)))

    async def run() -> str:
        client = mistral_client(fake)
        await client.chat.complete_async(model="mistral-large-2512", messages=MESSAGES)
        stream = await client.chat.stream_async(model="mistral-large-2512", messages=MESSAGES)
        return "".join([event.data.choices[0].delta.content or "" async for event in stream])

    assert asyncio.run(run()) == fake.reply_text
    plain, streamed = sorted(otel.spans(), key=lambda span: span.start_time)
    assert plain.attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert plain.attributes[semconv.COST_TOTAL] == pytest.approx(expected_cost(LARGE, 300, 40), rel=1e-9)
    assert streamed.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert streamed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert list(otel.ends.ends.values()) == [1, 1]


def test_async_embeddings_are_one_span(mistral_only, otel, fake):
    asyncio.run(mistral_client(fake).embeddings.create_async(model="mistral-embed", inputs=["some text"]))

    assert otel.only_span().attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"


def test_429_then_success_counts_retry_and_throttle_on_one_span(mistral_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "0.005", "x-ratelimit-remaining-tokens-minute": "0"}))
    mistral_client(fake, retries=2).chat.complete(model="mistral-large-2512", messages=MESSAGES)

    span = otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == pytest.approx(0.005)
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[semconv.ratelimit_attribute("tokens", "remaining")] == 4_999_911  # the final response's
    assert span.status.status_code is StatusCode.UNSET
    assert len(fake.requests) == 2


def test_async_429_then_success_counts_the_retry(mistral_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "0.005"}))
    asyncio.run(mistral_client(fake, retries=2).chat.complete_async(model="mistral-large-2512", messages=MESSAGES))

    attrs = otel.only_span().attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True


def test_final_429_reraises_the_users_exception_unchanged(mistral_only, otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "7"}))
    with pytest.raises(Exception) as raised:
        mistral_client(fake).chat.complete(model="mistral-large-2512", messages=MESSAGES)

    assert_not_raised_by_us(raised.value)
    assert raised.value.status_code == 429
    span = otel.only_span()
    attrs = span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == 7.0
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert semconv.RETRY_COUNT not in attrs or attrs[semconv.RETRY_COUNT] == 0


def test_server_error_is_reraised_unchanged(mistral_only, otel, fake, instrument):
    fake.enqueue(Reply(status=500))
    with pytest.raises(Exception) as raised:
        mistral_client(fake).chat.complete(model="mistral-large-2512", messages=MESSAGES)

    assert_not_raised_by_us(raised.value)
    attrs = otel.only_span().attributes
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 500
    assert semconv.THROTTLED not in attrs or attrs[semconv.THROTTLED] is False


def test_uninstrument_restores_the_originals(instrument, otel, fake):
    instrument(providers=("mistral",), limiters=()).uninstrument()
    chat = _chat_module().Chat
    originals = {name: vars(chat)[name] for name in ("complete", "complete_async", "stream", "stream_async")}
    instrumentor = instrument(providers=("mistral",), limiters=())
    assert (chat.__module__, "Chat.complete") in instrumentor.patched
    assert vars(chat)["complete"] is not originals["complete"]

    instrumentor.uninstrument()

    assert all(vars(chat)[name] is original for name, original in originals.items())
    mistral_client(fake).chat.complete(model="mistral-large-2512", messages=MESSAGES)
    assert otel.spans() == ()


def test_version_outside_the_range_is_not_patched_and_warns_once(monkeypatch, caplog, otel):
    chat = _chat_module().Chat
    monkeypatch.setitem(package.PROVIDER_REQUIREMENTS, "mistral", declared_range("mistral"))
    real = package.version
    monkeypatch.setattr(package, "version", lambda name: "1.1.0" if name == "mistralai" else real(name))
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(
            tracer_provider=otel.tracer_provider,
            meter_provider=otel.meter_provider,
            providers=("mistral",),
            limiters=(),
        )
    try:
        warnings = [r.getMessage() for r in caplog.records if "mistral" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "mistral 1.1.0 is outside the supported range" in warnings[0]
        assert not any(module.startswith("mistralai") for module, _ in instrumentor.patched)
        assert not hasattr(vars(chat)["complete"], "__wrapped__")
    finally:
        instrumentor.uninstrument()
