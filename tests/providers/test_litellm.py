"""LiteLLM through the real ``litellm`` package: one span per ``completion`` / ``acompletion``
(streams too), never a second one when LiteLLM calls an SDK we also wrap, tokens from its
OpenAI-shaped usage, priced by us, and its ``response_cost`` recorded beside our price
(issue 23). Calls use LiteLLM's own ``mock_response`` or the real openai SDK against the
fake provider: nothing leaves the process.

LiteLLM is optional (its dependencies are heavy): without it these tests are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

# LiteLLM fetches its model price map from GitHub at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

import wrapt  # noqa: E402

from otel_llmcost import semconv  # noqa: E402
from otel_llmcost.demo.fakes import FakeLLMServer, openai_client  # noqa: E402
from otel_llmcost.instrumentation import instrumentor as instrumentor_module  # noqa: E402
from otel_llmcost.instrumentation import package  # noqa: E402
from otel_llmcost.pricing.usage import Usage  # noqa: E402
from otel_llmcost.providers import litellm as litellm_provider  # noqa: E402

MESSAGES = [{"role": "user", "content": "hi"}]
# genai-prices, USD per million tokens: openai gpt-4o 2.5 in / 10 out, gpt-4o-mini 0.15 / 0.6;
# anthropic claude-3-5-haiku 0.8 / 4.
GPT_4O = (2.5, 10.0)
GPT_4O_MINI = (0.15, 0.6)
# litellm's mock_response reports 10 prompt and 20 completion tokens.
MOCK_IN, MOCK_OUT = 10, 20


@pytest.fixture
def litellm_only(instrument, otel):  # type: ignore[no-untyped-def]
    instrument(providers=("litellm",), limiters=())
    return otel


@pytest.fixture
def with_openai(instrument, otel):  # type: ignore[no-untyped-def]
    # Both wrapped: LiteLLM's calls through the openai SDK must still be one span.
    instrument(providers=("litellm", "openai"), limiters=())
    return otel


def _cost(tokens_in: int, tokens_out: int, prices: tuple[float, float]) -> float:
    return (tokens_in * prices[0] + tokens_out * prices[1]) / 1e6


def test_completion_is_one_priced_span_with_litellms_cost_reported(litellm_only):
    response = litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="hello", temperature=0.2)

    assert response.choices[0].message.content == "hello"
    span = litellm_only.only_span()
    assert span.name == "chat gpt-4o"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == MOCK_IN
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == MOCK_OUT
    # 10 * 2.5e-6 + 20 * 10e-6 = $0.000225, from genai-prices ...
    assert attrs[semconv.COST_TOTAL] == pytest.approx(_cost(MOCK_IN, MOCK_OUT, GPT_4O))
    assert attrs[semconv.PRICE_PROVIDER] == "openai"
    # ... and LiteLLM's own figure beside it, never summed into it.
    assert attrs[semconv.COST_REPORTED] == pytest.approx(response._hidden_params["response_cost"])
    assert attrs[semconv.COST_REPORTED_SOURCE] == "litellm"


def test_provider_prefix_names_the_provider_and_prices_the_bare_model(litellm_only):
    litellm.completion(model="anthropic/claude-3-5-haiku-20241022", messages=MESSAGES, mock_response="hi")

    span = litellm_only.only_span()
    assert span.name == "chat claude-3-5-haiku-20241022"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "claude-3-5-haiku-20241022"
    assert attrs[semconv.PRICE_PROVIDER] == "anthropic"
    assert attrs[semconv.COST_TOTAL] == pytest.approx(_cost(MOCK_IN, MOCK_OUT, (0.8, 4.0)))
    assert semconv.UNPRICED not in attrs


def test_unknown_model_is_unpriced_never_zero(litellm_only):
    litellm.completion(model="openai/my-private-finetune", messages=MESSAGES, mock_response="hi")

    attrs = litellm_only.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert semconv.COST_TOTAL not in attrs
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == MOCK_IN


def test_acompletion_is_one_span(litellm_only):
    response = asyncio.run(litellm.acompletion(model="gpt-4o", messages=MESSAGES, mock_response="hello"))

    assert response.choices[0].message.content == "hello"
    attrs = litellm_only.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == MOCK_OUT
    assert attrs[semconv.COST_TOTAL] == pytest.approx(_cost(MOCK_IN, MOCK_OUT, GPT_4O))
    assert attrs[semconv.COST_REPORTED_SOURCE] == "litellm"


def test_stream_consumed_ends_one_span_with_usage_and_reported_cost(litellm_only):
    stream = litellm.completion(
        model="gpt-4o",
        messages=MESSAGES,
        mock_response="hello there world",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert litellm_only.spans() == ()  # the call lasts as long as its stream
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == "hello there world"
    attrs = litellm_only.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs
    assert semconv.USAGE_ESTIMATED not in attrs
    tokens_in, tokens_out = attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]
    assert tokens_in > 0 and tokens_out > 0
    assert attrs[semconv.COST_TOTAL] == pytest.approx(_cost(tokens_in, tokens_out, GPT_4O))
    assert attrs[semconv.COST_REPORTED_SOURCE] == "litellm"


def test_stream_without_usage_is_counted_locally(litellm_only):
    stream = litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="hello there world", stream=True)
    for _chunk in stream:
        pass

    attrs = litellm_only.only_span().attributes
    assert attrs[semconv.USAGE_ESTIMATED] is True
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert semconv.COST_TOTAL in attrs


# LiteLLM's stream got close() / aclose() after 1.60 (the oldest tested has neither).
streams_close = pytest.mark.skipif(
    not hasattr(litellm.CustomStreamWrapper, "close"), reason="this LiteLLM's stream has no close()"
)


@streams_close
def test_stream_closed_early_ends_span_once(litellm_only):
    stream = litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="hello there world", stream=True)
    next(iter(stream))
    stream.close()

    span = litellm_only.only_span()  # exactly one span, ended exactly once
    assert semconv.ERROR_TYPE not in span.attributes


def test_async_stream_consumed_and_closed_early(litellm_only):
    async def consume() -> str:
        stream = await litellm.acompletion(
            model="gpt-4o", messages=MESSAGES, mock_response="hello there world", stream=True
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    async def close_early() -> None:
        stream = await litellm.acompletion(
            model="gpt-4o", messages=MESSAGES, mock_response="hello there world", stream=True
        )
        await stream.__anext__()
        await stream.aclose()

    assert asyncio.run(consume()) == "hello there world"
    attrs = litellm_only.only_span().attributes
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    litellm_only.clear()

    if hasattr(litellm.CustomStreamWrapper, "aclose"):  # not in 1.60
        asyncio.run(close_early())
        litellm_only.only_span()


def test_error_is_reraised_unchanged_and_ends_the_span_as_failed(litellm_only):
    with pytest.raises(litellm.RateLimitError) as raised:
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="litellm.RateLimitError")

    span = litellm_only.only_span()
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert span.attributes[semconv.THROTTLED] is True
    assert not span.status.is_ok


def test_call_through_the_openai_sdk_is_one_span_with_its_headers(with_openai):
    fake = FakeLLMServer()
    response = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, client=openai_client(fake))

    assert len(fake.requests) == 1  # LiteLLM did call the SDK, which reached the fake
    span = with_openai.only_span()  # LiteLLM's: the SDK's call inside it made none
    assert span.name == "chat gpt-4o-mini"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    # The SDK's base-client hooks reported into LiteLLM's call.
    assert attrs[semconv.ratelimit_attribute("requests", "limit")] == 10000
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    expected = _cost(response.usage.prompt_tokens, response.usage.completion_tokens, GPT_4O_MINI)
    assert attrs[semconv.COST_TOTAL] == pytest.approx(expected)
    assert attrs[semconv.COST_REPORTED_SOURCE] == "litellm"


def test_async_stream_through_the_openai_sdk_is_one_span(with_openai):
    fake = FakeLLMServer()

    async def consume() -> None:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            client=openai_client(fake, is_async=True),
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _chunk in stream:
            pass

    asyncio.run(consume())
    attrs = with_openai.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert semconv.USAGE_ESTIMATED not in attrs


def test_anthropic_cache_writes_are_read_from_litellms_usage():
    # The usage LiteLLM builds from an Anthropic response (its own transformation): prompt_tokens
    # includes the cache reads and writes, the writes split by TTL.
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig

    if not hasattr(AnthropicConfig, "calculate_usage"):
        pytest.skip("this LiteLLM builds Anthropic's usage inline (no AnthropicConfig.calculate_usage)")

    usage = AnthropicConfig().calculate_usage(
        {
            "input_tokens": 100,
            "output_tokens": 50,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100},
        },
        reasoning_content=None,
    )

    assert litellm_provider.parse_usage(usage) == Usage(
        input_tokens=2400, output_tokens=50, cache_read_tokens=2000, cache_write_tokens=300, cache_write_1h_tokens=100
    )


@pytest.mark.parametrize(
    ("model", "custom", "expected"),
    [
        ("gpt-4o", None, ("openai", "gpt-4o")),
        ("anthropic/claude-3-5-haiku-20241022", None, ("anthropic", "claude-3-5-haiku-20241022")),
        (
            "bedrock/converse/us.anthropic.claude-3-5-haiku-20241022-v1:0",
            None,
            ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0"),
        ),
        ("my-deployment", "azure", ("azure", "my-deployment")),
        (
            "fireworks_ai/accounts/fireworks/models/llama-v3",
            None,
            ("fireworks_ai", "accounts/fireworks/models/llama-v3"),
        ),
        ("not-a-provider/some-model", None, (None, "not-a-provider/some-model")),
    ],
)
def test_route_splits_the_provider_from_the_model(model, custom, expected):
    assert litellm_provider.route(model, custom) == expected


def test_budget_downgrade_keeps_the_route_prefix():
    provider = litellm_provider.LiteLLMProvider()
    kwargs = {"model": "anthropic/claude-sonnet-4-5"}
    provider.replace_model(kwargs, "claude-haiku-4-5")
    assert kwargs["model"] == "anthropic/claude-haiku-4-5"


def test_uninstrument_restores_litellm(instrument, otel):
    instrumentor = instrument(providers=("litellm",), limiters=())
    wrappers = {name: vars(litellm)[name] for name in ("completion", "acompletion")}
    assert all(isinstance(wrapper, wrapt.FunctionWrapper) for wrapper in wrappers.values())
    instrumentor.uninstrument()

    for name, wrapper in wrappers.items():
        assert vars(litellm)[name] is wrapper.__wrapped__
    litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="hi")
    assert otel.spans() == ()


def test_litellm_outside_the_supported_range_is_skipped_with_one_warning(monkeypatch, caplog, otel):
    monkeypatch.setitem(package.PROVIDER_REQUIREMENTS, "litellm", "litellm>=1.60.4,<2")
    real = package.version
    monkeypatch.setattr(package, "version", lambda name: "1.2.0" if name == "litellm" else real(name))
    instrumentor = instrumentor_module.LLMCostInstrumentor()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor.instrument(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, providers=("litellm",)
        )
    try:
        assert [r.getMessage() for r in caplog.records if "litellm 1.2.0" in r.getMessage()]
        assert not any(module.startswith("litellm") for module, _ in instrumentor.patched)
        litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="hi")
        assert otel.spans() == ()
    finally:
        instrumentor.uninstrument()
