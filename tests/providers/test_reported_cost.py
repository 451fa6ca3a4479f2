"""Provider-reported cost beside ours, and the draft gen_ai.usage.cost.* attributes, through
the real openai SDK against the local fake provider."""

from __future__ import annotations

import pytest

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, openai_client
from otel_llmcost.providers.headers import reported_cost_from_headers
from otel_llmcost.providers.openai import reported_cost as reported_cost_from_usage

MESSAGES = [{"role": "user", "content": "hi"}]
OPENROUTER = "https://openrouter.ai/api/v1"


def usage(prompt: int, completion: int, **extra: object) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, **extra}


def test_usage_cost_in_the_body_is_recorded_beside_our_price(instrument, otel, fake):
    fake.enqueue(Reply(usage=usage(1000, 100, cost=0.0042)))
    openai_client(fake, base_url=OPENROUTER).chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.COST_REPORTED] == pytest.approx(0.0042)
    assert attrs[semconv.COST_REPORTED_SOURCE] == "usage.cost"
    # Our own price stays ours: gpt-4o at $2.50 / $10 per million.
    assert attrs[semconv.COST_TOTAL] == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6)
    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in attrs  # draft names are opt-in


def test_usage_cost_in_the_last_stream_chunk(instrument, otel, fake):
    fake.enqueue(Reply(usage=usage(10, 5, cost=0.5)))
    stream = openai_client(fake, base_url=OPENROUTER).chat.completions.create(
        model="openai/gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    assert otel.only_span().attributes[semconv.COST_REPORTED] == pytest.approx(0.5)


def test_litellm_cost_header(instrument, otel, fake):
    fake.enqueue(Reply(usage=usage(10, 5), headers={"x-litellm-response-cost": "0.000123"}))
    openai_client(fake, base_url="http://localhost:4000").chat.completions.create(model="gpt-4o", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.COST_REPORTED] == pytest.approx(0.000123)
    assert attrs[semconv.COST_REPORTED_SOURCE] == "header x-litellm-response-cost"


def test_reported_cost_on_a_model_we_cannot_price(instrument, otel, fake):
    fake.enqueue(Reply(usage=usage(10, 5, cost=0.25)))
    openai_client(fake, base_url=OPENROUTER).chat.completions.create(model="acme/secret-1", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.UNPRICED] is True
    assert attrs[semconv.COST_REPORTED] == pytest.approx(0.25)
    assert attrs[semconv.PRICE_PROVIDER] == "openrouter"  # so a later price can be matched by `prices sync`
    assert semconv.COST_TOTAL not in attrs


@pytest.mark.parametrize("value", ["abc", -1, float("inf"), True, None, [1], "1e400"])
def test_junk_reported_costs_are_ignored(value):
    assert reported_cost_from_usage({"cost": value}) is None
    assert reported_cost_from_headers({"x-litellm-response-cost": str(value)}.get) is None


@pytest.mark.parametrize(
    ("reply_usage", "source", "amount"),
    [(usage(1000, 0, cost=0.01), "provider", 0.01), (usage(1000, 0), "local", 0.0025)],
)
def test_draft_semconv_cost_attributes_are_opt_in(instrument, otel, fake, monkeypatch, reply_usage, source, amount):
    monkeypatch.setenv("OTEL_LLMCOST_EMIT_DRAFT_COST_ATTRIBUTES", "true")
    instrument()
    fake.enqueue(Reply(usage=reply_usage))
    openai_client(fake, base_url=OPENROUTER).chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(amount)
    assert attrs[semconv.GEN_AI_USAGE_COST_CURRENCY] == "USD"
    assert attrs[semconv.GEN_AI_USAGE_COST_SOURCE] == source


def test_price_attributes_name_entry_version_and_date(instrument, otel, fake):
    fake.enqueue(Reply(usage=usage(1000, 100)))
    openai_client(fake).chat.completions.create(model="o3", messages=MESSAGES, service_tier="priority")
    attrs = otel.only_span().attributes
    assert attrs[semconv.PRICE_SOURCE] == "genai-prices"
    assert attrs[semconv.PRICE_PROVIDER] == "openai"
    assert attrs[semconv.PRICE_MODEL] == "o3"
    assert attrs[semconv.PRICE_VARIANT] == "service_tier=priority"
    import genai_prices

    assert attrs[semconv.PRICE_VERSION] == genai_prices.__version__
    assert attrs[semconv.PRICE_EFFECTIVE_FROM] >= "2025-06-10"  # o3's price cut; priority since later
