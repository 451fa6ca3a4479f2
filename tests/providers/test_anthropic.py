"""The real anthropic SDK against the fake provider: spans, normalized usage, exact cost,
streams (stream=True and the messages.stream helper), retries, 429/529, fuzzed shapes."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings

import anthropic
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import LLMCostInstrumentor, semconv
from otel_llmcost.demo.fakes import Reply, anthropic_client
from otel_llmcost.pricing import Usage
from otel_llmcost.providers.anthropic import merge_delta_usage
from otel_llmcost.providers.anthropic import parse_usage as anthropic_usage_of
from tests.helpers.fuzz_values import PROVIDER_FUZZ, json_values
from tests.helpers.providers import anthropic_usage, assert_not_raised_by_us

# Published Anthropic prices, USD per million tokens (anthropic.com/pricing, "Prompt caching"):
# 5-minute cache writes cost 1.25x base input, 1-hour writes 2x, cache reads 0.1x.
CLAUDE_SONNET_4 = {"in": 3.00, "out": 15.00, "read": 0.30, "write_5m": 3.75, "write_1h": 6.00}
CLAUDE_3_5_HAIKU = {"in": 0.80, "out": 4.00, "read": 0.08, "write_5m": 1.00, "write_1h": 1.60}
SONNET = "claude-sonnet-4-20250514"
HAIKU = "claude-3-5-haiku-20241022"
MESSAGES = [{"role": "user", "content": "What does a cached token cost?"}]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# --- fixtures (tests/conftest.py gives `otel`, `instrument` and the fake provider `fake`) ---


@pytest.fixture
def anth_otel(instrument, otel):  # type: ignore[no-untyped-def]
    """The shared in-memory telemetry (tests/conftest.py), instrumenting anthropic only."""
    instrument(providers=("anthropic",))
    return otel


def expected_cost(price: dict, uncached: int, output: int, read: int = 0, write_5m: int = 0, write_1h: int = 0):
    return (
        uncached * price["in"]
        + read * price["read"]
        + write_5m * price["write_5m"]
        + write_1h * price["write_1h"]
        + output * price["out"]
    ) / 1e6


def stream_events(start_usage: dict, delta_usage: dict, text: str = "Hi there, friend.") -> list:
    message = {
        "id": "msg_stream1",
        "type": "message",
        "role": "assistant",
        "model": SONNET,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    return [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": None}, "usage": delta_usage},
        {"type": "message_stop"},
    ]


# --- plain calls -----------------------------------------------------------------------


def test_create_span_carries_the_contract_attributes(anth_otel, fake):
    anthropic_client(fake).messages.create(model=SONNET, max_tokens=64, messages=MESSAGES)

    span = anth_otel.only_span()
    attrs = span.attributes
    assert span.name == f"chat {SONNET}"
    assert span.kind is SpanKind.CLIENT
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == SONNET
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == SONNET
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "msg_fake123"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[semconv.SERVER_ADDRESS] == "api.anthropic.com"
    assert attrs[semconv.SERVER_PORT] == 443
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 4000
    assert attrs[semconv.ratelimit_attribute("input_tokens", "remaining")] == 1999000
    assert attrs[semconv.ratelimit_attribute("output_tokens", "limit")] == 400000
    assert attrs[semconv.ratelimit_attribute("tokens", "reset_s")] > 0
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert semconv.UNPRICED not in attrs
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("model", "price", "uncached", "output", "read", "write_5m", "write_1h"),
    [
        (SONNET, CLAUDE_SONNET_4, 1200, 300, 0, 0, 0),
        (SONNET, CLAUDE_SONNET_4, 50, 400, 0, 4096, 0),  # 5-minute cache write
        (SONNET, CLAUDE_SONNET_4, 50, 400, 0, 0, 4096),  # 1-hour cache write
        (SONNET, CLAUDE_SONNET_4, 80, 250, 8000, 0, 0),  # cache read
        (SONNET, CLAUDE_SONNET_4, 10, 90, 3000, 1500, 2500),  # all at once
        (HAIKU, CLAUDE_3_5_HAIKU, 900, 120, 0, 2048, 0),
        (HAIKU, CLAUDE_3_5_HAIKU, 900, 120, 0, 0, 2048),
        (HAIKU, CLAUDE_3_5_HAIKU, 30, 60, 6000, 700, 300),
    ],
)
def test_cost_matches_published_prices(anth_otel, fake, model, price, uncached, output, read, write_5m, write_1h):
    fake.enqueue(Reply(usage=anthropic_usage(uncached, output, read, write_5m, write_1h)))
    anthropic_client(fake).messages.create(model=model, max_tokens=500, messages=MESSAGES)

    attrs = anth_otel.only_span().attributes
    # input_tokens on the span INCLUDES cache reads and writes (Anthropic's own field excludes them).
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == uncached + read + write_5m + write_1h
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == output
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == read
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == write_5m + write_1h
    assert attrs[semconv.USAGE_UNCACHED_INPUT_TOKENS] == uncached
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(price, uncached, output, read, write_5m, write_1h))
    assert attrs[semconv.COST_CACHE_READ] == pytest.approx(read * price["read"] / 1e6)
    assert attrs[semconv.COST_CACHE_WRITE] == pytest.approx(
        (write_5m * price["write_5m"] + write_1h * price["write_1h"]) / 1e6
    )
    savings = (read + write_5m + write_1h) * price["in"] - (
        read * price["read"] + write_5m * price["write_5m"] + write_1h * price["write_1h"]
    )
    assert attrs[semconv.COST_SAVINGS] == pytest.approx(savings / 1e6)
    if write_5m or write_1h:
        expected_ttl = "mixed" if write_5m and write_1h else ("5m" if write_5m else "1h")
        assert attrs[semconv.CACHE_WRITE_TTL] == expected_ttl
        premium = write_5m * (price["write_5m"] - price["in"]) + write_1h * (price["write_1h"] - price["in"])
        assert attrs[semconv.COST_CACHE_WRITE_PREMIUM] == pytest.approx(premium / 1e6)
        # Each later read of the written tokens saves (in - read) per token.
        breakeven = premium / ((write_5m + write_1h) * (price["in"] - price["read"]))
        assert attrs[semconv.CACHE_BREAKEVEN_READS] == pytest.approx(breakeven)
    else:
        assert semconv.CACHE_WRITE_TTL not in attrs
        assert semconv.CACHE_BREAKEVEN_READS not in attrs


def test_simulated_prompt_cache_writes_then_reads(anth_otel, fake):
    system = [{"type": "text", "text": "policy " * 800, "cache_control": {"type": "ephemeral"}}]
    client = anthropic_client(fake)
    client.messages.create(model=SONNET, max_tokens=50, system=system, messages=MESSAGES)
    client.messages.create(model=SONNET, max_tokens=50, system=system, messages=MESSAGES)
    first, second = (s.attributes for s in anth_otel.spans())
    assert first[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] > 0
    assert first[semconv.CACHE_WRITE_TTL] == "5m"
    assert second[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] > 0
    assert second[semconv.COST_SAVINGS] > 0
    assert first[semconv.PROMPT_PREFIX_HASH] == second[semconv.PROMPT_PREFIX_HASH]


def test_async_create_is_traced(anth_otel, fake):
    fake.enqueue(Reply(usage=anthropic_usage(100, 20)))

    async def run() -> str:
        message = await anthropic_client(fake, is_async=True).messages.create(
            model=HAIKU, max_tokens=50, messages=MESSAGES
        )
        return message.content[0].text

    assert asyncio.run(run()) == fake.reply_text
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(CLAUDE_3_5_HAIKU, 100, 20))
    assert attrs[semconv.ratelimit_attribute("requests", "remaining")] >= 0


def test_with_raw_response_is_one_span_with_usage(anth_otel, fake):
    fake.enqueue(Reply(usage=anthropic_usage(100, 20)))
    raw = anthropic_client(fake).messages.with_raw_response.create(model=SONNET, max_tokens=9, messages=MESSAGES)
    assert raw.parse().id == "msg_fake123"
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(CLAUDE_SONNET_4, 100, 20))


def test_beta_messages_create_is_traced(anth_otel, fake):
    fake.enqueue(Reply(usage=anthropic_usage(10, 5, write_1h=2000)))
    anthropic_client(fake).beta.messages.create(model=SONNET, max_tokens=9, messages=MESSAGES)
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.CACHE_WRITE_TTL] == "1h"
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(CLAUDE_SONNET_4, 10, 5, write_1h=2000))


def test_thinking_tokens_are_reported_as_reasoning(anth_otel, fake):
    usage = {**anthropic_usage(100, 900), "output_tokens_details": {"thinking_tokens": 700}}
    fake.enqueue(Reply(usage=usage))
    anthropic_client(fake).messages.create(model=SONNET, max_tokens=1000, messages=MESSAGES)
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 700
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 900  # thinking is part of output, billed once
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(CLAUDE_SONNET_4, 100, 900))


# --- stream=True -----------------------------------------------------------------------


def test_stream_combines_message_start_and_message_delta_usage(anth_otel, fake):
    start = anthropic_usage(40, 1, read=3000, write_5m=1000)
    # Newer APIs repeat cumulative input/cache counts on message_delta; absent ones keep message_start's.
    delta = {"output_tokens": 350, "input_tokens": 40, "cache_read_input_tokens": 3000}
    fake.enqueue(Reply(sse=stream_events(start, delta)))
    stream = anthropic_client(fake).messages.create(model=SONNET, max_tokens=400, messages=MESSAGES, stream=True)
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"

    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40 + 3000 + 1000
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 350
    assert attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 1000
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "msg_stream1"
    assert attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(CLAUDE_SONNET_4, 40, 350, 3000, 1000))


def test_message_delta_usage_replaces_only_the_counts_it_carries():
    start = anthropic_usage_of(anthropic_usage(40, 1, read=300, write_5m=100, write_1h=50))
    only_output = merge_delta_usage(start, {"output_tokens": 77})
    assert only_output == Usage(
        input_tokens=490, output_tokens=77, cache_read_tokens=300, cache_write_tokens=150, cache_write_1h_tokens=50
    )
    updated = merge_delta_usage(start, {"output_tokens": 5, "input_tokens": 60, "cache_creation_input_tokens": 400})
    assert updated.uncached_input_tokens == 60
    assert updated.cache_write_tokens == 400 and updated.cache_write_1h_tokens == 50
    assert updated.input_tokens == 60 + 300 + 400
    assert merge_delta_usage(None, {"output_tokens": 5}).output_tokens == 5
    assert merge_delta_usage(start, None) is start
    assert merge_delta_usage(start, {"output_tokens": "many", "input_tokens": None}) == start


def test_async_stream_is_traced_once(anth_otel, fake):
    async def run() -> None:
        client = anthropic_client(fake, is_async=True)
        stream = await client.messages.create(model=SONNET, max_tokens=50, messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    asyncio.run(run())
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 1  # message_delta's final count, not message_start's 1


def test_stream_closed_early_ends_span_once(anth_otel, fake):
    stream = anthropic_client(fake).messages.create(model=SONNET, max_tokens=50, messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    stream.close()
    span = anth_otel.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0  # message_start arrived


# --- the messages.stream() helper --------------------------------------------------------


def test_stream_helper_text_stream_and_final_message_make_one_span(anth_otel, fake):
    fake.enqueue(Reply(usage=anthropic_usage(200, 30, read=1000)))
    client = anthropic_client(fake)
    with client.messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES) as stream:
        assert "".join(stream.text_stream) == fake.reply_text
        final = stream.get_final_message()
        # The span ended when the stream was exhausted, inside the with block.
        assert len(anth_otel.spans()) == 1
    assert final.usage.output_tokens == 30
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1200
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 30
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(CLAUDE_SONNET_4, 200, 30, read=1000))
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 4000  # headers seen via the base client
    assert attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert len(fake.requests) == 1


def test_stream_helper_get_final_message_alone(anth_otel, fake):
    with anthropic_client(fake).messages.stream(model=HAIKU, max_tokens=50, messages=MESSAGES) as stream:
        message = stream.get_final_message()
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_stream_helper_left_early_ends_span_at_with_exit(anth_otel, fake):
    with anthropic_client(fake).messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES) as stream:
        for _ in stream.text_stream:
            break
        assert anth_otel.spans() == ()
    span = anth_otel.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0


def test_stream_helper_user_exception_fails_span_and_propagates(anth_otel, fake):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with anthropic_client(fake).messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES) as stream:
            next(iter(stream))
            raise Boom
    span = anth_otel.only_span()
    assert span.attributes[semconv.ERROR_TYPE].endswith("Boom")


def test_stream_helper_request_error_fails_span(anth_otel, fake):
    fake.enqueue(Reply(status=400, body={"type": "error", "error": {"type": "invalid_request_error"}}))
    with pytest.raises(anthropic.BadRequestError):
        with anthropic_client(fake).messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES):
            pass
    span = anth_otel.only_span()
    assert span.attributes[semconv.ERROR_TYPE] == "BadRequestError"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 400


def test_stream_helper_never_entered_still_ends_once(anth_otel, fake):
    manager = anthropic_client(fake).messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES)
    del manager
    gc.collect()
    anth_otel.only_span()
    assert fake.requests == []


def test_async_stream_helper_is_one_span(anth_otel, fake):
    fake.enqueue(Reply(usage=anthropic_usage(10, 7, write_5m=1500)))

    async def run() -> str:
        client = anthropic_client(fake, is_async=True)
        async with client.messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES) as stream:
            text = "".join([t async for t in stream.text_stream])
            await stream.get_final_message()
        return text

    assert asyncio.run(run()) == fake.reply_text
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected_cost(CLAUDE_SONNET_4, 10, 7, write_5m=1500))
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 4000


def test_async_stream_helper_left_early(anth_otel, fake):
    async def run() -> None:
        client = anthropic_client(fake, is_async=True)
        async with client.messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES) as stream:
            async for _ in stream:
                break

    asyncio.run(run())
    assert anth_otel.only_span().status.status_code is StatusCode.UNSET


def test_beta_stream_helper_is_one_span(anth_otel, fake):
    with anthropic_client(fake).beta.messages.stream(model=SONNET, max_tokens=50, messages=MESSAGES) as stream:
        stream.get_final_message()
    assert anth_otel.only_span().attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


# --- retries, 429, 529 -----------------------------------------------------------------


def test_429_then_success_counts_retry_and_throttle_on_one_span(anth_otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after-ms": "5", "anthropic-ratelimit-requests-remaining": "0"}))
    anthropic_client(fake).messages.create(model=SONNET, max_tokens=50, messages=MESSAGES)
    span = anth_otel.only_span()
    attrs = span.attributes
    assert attrs[semconv.RETRY_COUNT] == 1
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.THROTTLED_ATTEMPTS] == 1
    assert attrs[semconv.RETRY_AFTER_S] == pytest.approx(0.005)
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert span.status.status_code is StatusCode.UNSET
    assert len(fake.requests) == 2


def test_529_overloaded_then_success_is_throttled(anth_otel, fake):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.enqueue(Reply(status=529, body=overloaded, headers={"retry-after-ms": "1"}))
    anthropic_client(fake).messages.create(model=SONNET, max_tokens=50, messages=MESSAGES)
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_COUNT] == 1


def test_final_529_reraises_unchanged_and_is_throttled(anth_otel, fake):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.enqueue(Reply(status=529, body=overloaded))
    with pytest.raises(anthropic.APIStatusError) as raised:
        anthropic_client(fake, max_retries=0).messages.create(model=SONNET, max_tokens=50, messages=MESSAGES)
    assert raised.value.status_code == 529
    span = anth_otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert span.attributes[semconv.THROTTLED] is True
    assert span.attributes[semconv.THROTTLED_ATTEMPTS] == 1
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 529


def test_final_429_in_stream_helper_is_throttled(anth_otel, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after": "3"}))
    with pytest.raises(anthropic.RateLimitError):
        with anthropic_client(fake, max_retries=0).messages.stream(model=SONNET, max_tokens=5, messages=MESSAGES):
            pass
    attrs = anth_otel.only_span().attributes
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == 3.0


# --- unpriced, content, uninstrument -------------------------------------------------------


def test_uninstrumented_sdk_records_nothing_through_create_or_the_stream_helper(anth_otel, fake):
    # That every patched attribute is put back exactly: tests/providers/test_contract.py.
    LLMCostInstrumentor().uninstrument()
    client = anthropic_client(fake)
    client.messages.create(model=SONNET, max_tokens=5, messages=MESSAGES)
    with client.messages.stream(model=SONNET, max_tokens=5, messages=MESSAGES) as stream:
        stream.get_final_message()
    assert anth_otel.spans() == ()


# --- fuzz: nothing the provider sends back may break the caller ---------------------------

values = json_values()
usage_keys = st.sampled_from(
    [
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation",
        "output_tokens_details",
        "service_tier",
    ]
)
header_names = st.sampled_from(
    [
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-limit",
        "retry-after",
        "retry-after-ms",
    ]
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
usages = st.one_of(values, st.dictionaries(usage_keys, values, max_size=6))


@PROVIDER_FUZZ
@given(
    start_usage=usages,
    delta_usage=usages,
    extra=st.dictionaries(st.sampled_from(["model", "id", "stop_reason", "content"]), values, max_size=3),
    headers=st.dictionaries(header_names, header_values, max_size=4),
    mode=st.sampled_from(["create", "stream", "helper"]),
)
def test_any_response_shape_is_survived(anth_otel, fake, start_usage, delta_usage, extra, headers, mode):
    anth_otel.clear()
    client = anthropic_client(fake, max_retries=0)
    if mode == "create":
        body = {
            "id": "msg_x",
            "type": "message",
            "role": "assistant",
            "model": SONNET,
            "content": [],
            "stop_reason": "end_turn",
            "usage": start_usage,
            **extra,
        }
        fake.enqueue(Reply(raw=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}))
    else:
        events = stream_events(start_usage, delta_usage)  # type: ignore[arg-type]
        events[0]["message"].update(extra)
        fake.enqueue(Reply(sse=events, headers=headers))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if mode == "create":
                client.messages.create(model=SONNET, max_tokens=5, messages=MESSAGES)
            elif mode == "stream":
                for _ in client.messages.create(model=SONNET, max_tokens=5, messages=MESSAGES, stream=True):
                    pass
            else:
                with client.messages.stream(model=SONNET, max_tokens=5, messages=MESSAGES) as stream:
                    stream.until_done()
        except Exception as error:  # the SDK may reject a shape; never because of us
            assert_not_raised_by_us(error)
    span = anth_otel.only_span()
    for value in span.attributes.values():
        assert value is not None
