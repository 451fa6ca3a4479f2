"""Provider-reported numbers beyond belief: recorded as reported (within what OTLP carries),
flagged ``llmcost.usage.implausible``, never priced and never charged to a budget; rate-limit
header integers that OTLP cannot carry are left out. Real SDKs against the fake provider."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from otel_llmcost import semconv
from otel_llmcost.budgets import BudgetConfig, Budgets, MemoryStore
from otel_llmcost.demo.fakes import FakeLLMServer, Reply, anthropic_client, genai_client, openai_client
from otel_llmcost.pricing import Pricer, Usage
from otel_llmcost.pricing.usage import INT64_MAX
from otel_llmcost.providers import headers
from tests.helpers.providers import anthropic_usage, gemini_usage, openai_usage

MESSAGES = [{"role": "user", "content": "How many tokens is this?"}]
HUGE_PROMPT = 10**13  # $1.5M of gpt-4o-mini input before this change
HUGE_COMPLETION = 10**40  # beyond int64: OTLP dropped the attribute with an ERROR
FORTY_DIGITS = "9" * 40
COST_ATTRIBUTES = (
    semconv.COST_TOTAL,
    semconv.COST_INPUT,
    semconv.COST_OUTPUT,
    semconv.COST_CACHE_READ,
    semconv.COST_CACHE_WRITE,
    semconv.COST_SAVINGS,
    semconv.PRICE_SOURCE,
    semconv.GEN_AI_USAGE_COST_AMOUNT,
    semconv.UNPRICED,
)


def _openai(fake: FakeLLMServer) -> None:
    openai_client(fake, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def _anthropic(fake: FakeLLMServer) -> None:
    anthropic_client(fake, max_retries=0).messages.create(
        model="claude-sonnet-4-20250514", max_tokens=100, messages=MESSAGES
    )


def _google(fake: FakeLLMServer) -> None:
    genai_client(fake).models.generate_content(model="gemini-2.5-flash", contents="How many tokens is this?")


# (call, usage with a huge prompt, usage with a huge completion, the rate-limit header, its attribute)
SDKS = {
    "openai": (
        _openai,
        openai_usage(HUGE_PROMPT, 10),
        openai_usage(10, HUGE_COMPLETION),
        "x-ratelimit-remaining-requests",
    ),
    "anthropic": (
        _anthropic,
        anthropic_usage(HUGE_PROMPT, 10),
        anthropic_usage(10, HUGE_COMPLETION),
        "anthropic-ratelimit-requests-remaining",
    ),
    "google": (
        _google,
        gemini_usage(HUGE_PROMPT, 10),
        gemini_usage(10, HUGE_COMPLETION),
        None,  # the Gemini API sends no rate-limit headers
    ),
}


def _exported(span: Any, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The span's attributes as the OTLP protobuf encoder writes them; no attribute dropped."""
    with caplog.at_level(logging.ERROR):
        request = encode_spans([span])
    assert not [r for r in caplog.records if "Failed to encode" in r.getMessage()]
    (proto,) = request.resource_spans[0].scope_spans[0].spans
    out: dict[str, Any] = {}
    for kv in proto.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind)
    return out


def _without_cost(attrs: dict[str, Any]) -> None:
    assert attrs[semconv.USAGE_IMPLAUSIBLE] is True
    assert [name for name in COST_ATTRIBUTES if name in attrs] == []


@pytest.mark.parametrize("sdk", SDKS)
def test_a_huge_prompt_is_recorded_flagged_and_never_priced(sdk, instrument, otel, fake, caplog):
    call, huge_prompt, _, _ = SDKS[sdk]
    instrument(emit_draft_cost=True)
    fake.enqueue(Reply(usage=huge_prompt))
    call(fake)
    span = otel.only_span()
    attrs = dict(span.attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == HUGE_PROMPT
    _without_cost(attrs)
    assert _exported(span, caplog)[semconv.GEN_AI_USAGE_INPUT_TOKENS] == HUGE_PROMPT


@pytest.mark.parametrize("sdk", SDKS)
def test_a_completion_beyond_int64_is_capped_so_it_exports(sdk, instrument, otel, fake, caplog):
    call, _, huge_completion, _ = SDKS[sdk]
    fake.enqueue(Reply(usage=huge_completion))
    call(fake)
    span = otel.only_span()
    attrs = dict(span.attributes)
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == INT64_MAX
    _without_cost(attrs)
    assert _exported(span, caplog)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == INT64_MAX


@pytest.mark.parametrize("sdk", [name for name, spec in SDKS.items() if spec[3]])
def test_a_forty_digit_rate_limit_header_is_left_out(sdk, instrument, otel, fake, caplog):
    call, _, _, header = SDKS[sdk]
    fake.enqueue(Reply(headers={header: FORTY_DIGITS}))
    call(fake)
    span = otel.only_span()
    assert semconv.ratelimit_attribute("requests", "remaining") not in span.attributes
    assert semconv.ratelimit_attribute("requests", "limit") in span.attributes  # the other headers still count
    exported = _exported(span, caplog)
    assert semconv.COST_TOTAL in exported and semconv.USAGE_IMPLAUSIBLE not in exported


def test_a_plausible_call_is_priced_as_before(instrument, otel, fake):
    fake.enqueue(Reply(usage=openai_usage(1_900_000, 1000)))  # below the 2M floor (gpt-4o-mini: 128k window)
    _openai(fake)
    attrs = otel.only_span().attributes
    assert semconv.USAGE_IMPLAUSIBLE not in attrs
    assert attrs[semconv.COST_TOTAL] == pytest.approx(1_900_000 * 0.15e-6 + 1000 * 0.6e-6)


def test_an_implausible_call_charges_the_budget_nothing(instrument, otel, fake):
    pricer = Pricer(overrides_path="")
    budgets = Budgets(BudgetConfig.from_dict({"budgets": [{"name": "month", "limit_usd": 0.01}]}), store=MemoryStore())
    instrument(budgets=budgets, pricer=pricer)
    fake.enqueue(Reply(usage=openai_usage(HUGE_PROMPT, 10)))
    _openai(fake)
    (status,) = budgets.status()
    assert (status.used_usd, status.reserved_usd) == (0, 0)
    fake.enqueue(Reply(usage=openai_usage(1000, 10)))
    _openai(fake)  # and the next call is not refused for a month
    (status,) = budgets.status()
    assert status.used_usd == pytest.approx(1000 * 0.15e-6 + 10 * 0.6e-6)


def test_the_bound_is_ten_context_windows_at_least_2m_else_10m_else_the_setting(monkeypatch):
    monkeypatch.delenv("OTEL_LLMCOST_MAX_PLAUSIBLE_TOKENS", raising=False)
    pricer = Pricer(overrides_path="")
    assert pricer.plausible_tokens("gemini-2.5-flash", None, "google", None) == 10_485_760  # 1M window
    assert pricer.plausible_tokens("gpt-4o-mini", None, "openai", None) == 2_000_000  # 128k window: the floor
    assert pricer.plausible_tokens("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", None) == 2_000_000
    assert pricer.plausible_tokens("my-private-model", None, None, None) == 10_000_000
    monkeypatch.setenv("OTEL_LLMCOST_MAX_PLAUSIBLE_TOKENS", "5000")
    configured = Pricer(overrides_path="")
    assert configured.plausible_tokens("gpt-4o-mini", None, "openai", None) == 5000
    assert configured.price_call(Usage(input_tokens=4000, output_tokens=1000), "gpt-4o-mini", None).total > 0
    over = configured.price_call(Usage(input_tokens=4000, output_tokens=1001), "gpt-4o-mini", None)
    assert over is not None and over.implausible and over.total == 0


def test_an_unpriced_model_with_implausible_usage_is_implausible_not_unpriced(instrument, otel, fake):
    fake.enqueue(Reply(usage=openai_usage(HUGE_PROMPT, 10)))
    openai_client(fake, max_retries=0).chat.completions.create(model="my-private-model", messages=MESSAGES)
    _without_cost(dict(otel.only_span().attributes))


def test_the_pre_call_estimate_is_not_subject_to_the_bound():
    # Budgets price their estimate with Pricer.price: a request asking for a huge max_tokens
    # must be priced (and refused), never waved through as implausible.
    cost = Pricer(overrides_path="").price(Usage(input_tokens=HUGE_PROMPT), "gpt-4o-mini", provider_id="openai")
    assert cost is not None and cost.total == pytest.approx(1_500_000)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("9223372036854775807", INT64_MAX), ("9223372036854775808", None), (FORTY_DIGITS, None), ("-1", None)],
)
def test_header_counts_are_bounded_to_int64(value, parsed):
    assert headers.parse_int(value) == parsed


def test_non_finite_durations_and_values_are_not_exported():
    assert headers.parse_go_duration("1e999") is None
    specs = (("x-a", "llmcost.ratelimit.requests.limit", lambda raw: 10**40),)
    assert headers.ratelimit_values({"x-a": "1"}.get, specs) == {}
    specs = (("x-a", "llmcost.ratelimit.requests.reset_s", lambda raw: float("inf")),)
    assert headers.ratelimit_values({"x-a": "1"}.get, specs) == {}
