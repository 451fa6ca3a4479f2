"""pricing.py against genai-prices itself: our per-part arithmetic must add up to its total."""

from __future__ import annotations

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llmcost.pricing import Pricer, Usage

MODELS = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("o3-mini", "openai"),
    ("claude-sonnet-4-20250514", "anthropic"),
    ("claude-3-5-haiku-latest", "anthropic"),
    ("gemini-2.5-flash", "google"),
    ("gemini-2.5-pro", "google"),  # tiered above 200k prompt tokens
    ("deepseek-chat", "deepseek"),
]


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    uncached=st.integers(0, 400_000),
    read=st.integers(0, 100_000),
    write_5m=st.integers(0, 50_000),
    write_1h=st.integers(0, 50_000),
    output=st.integers(0, 50_000),
)
def test_total_equals_genai_prices_calc_price(model, uncached, read, write_5m, write_1h, output):
    name, provider = model
    usage = Usage(
        input_tokens=uncached + read + write_5m + write_1h,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write_5m + write_1h,
        cache_write_1h_tokens=write_1h,
    )
    reference = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=output,
            cache_read_tokens=read,
            cache_write_tokens=write_5m + write_1h,
            cache_write_5m_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
        ),
        name,
        provider_id=provider,
    )
    cost = Pricer(overrides_path="").price(usage, name, provider_id=provider)
    assert cost is not None
    assert cost.total == pytest.approx(float(reference.total_price), rel=1e-9, abs=1e-12)


def test_cache_savings_and_breakeven_for_anthropic_5m_write():
    # claude-sonnet-4: $3 input, $3.75 5-minute write, $0.30 read per million.
    pricer = Pricer(overrides_path="")
    usage = Usage(input_tokens=10_000, cache_write_tokens=10_000, output_tokens=0)
    cost = pricer.price(usage, "claude-sonnet-4-20250514", provider_id="anthropic")
    assert cost.cache_write == pytest.approx(10_000 * 3.75 / 1e6)
    assert cost.write_premium == pytest.approx(10_000 * 0.75 / 1e6)
    assert cost.savings == pytest.approx(-10_000 * 0.75 / 1e6)
    assert cost.breakeven_reads == pytest.approx(0.75 / 2.70)


def test_unknown_model_is_none_not_zero():
    assert Pricer(overrides_path="").price(Usage(input_tokens=10), "no-such-model", provider_id="openai") is None


def test_broken_override_file_is_ignored(tmp_path, caplog):
    bad = tmp_path / "prices.yaml"
    bad.write_text("models: [ {match: x, input_mtok: -1} ]")
    pricer = Pricer(overrides_path=bad)
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "ERROR",
            "otel-llmcost: ignoring the price override file, prices come from genai-prices alone: "
            f"{bad}:1: models[0].input_mtok: must not be negative, got -1",
            None,
        )
    ]
    assert pricer.price(Usage(input_tokens=1_000_000), "gpt-4o", provider_id="openai").total == pytest.approx(2.5)


def test_yaml_override_wins_over_database(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - match: gpt-4o\n    input_mtok: 1.0\n    output_mtok: 2.0\n")
    cost = Pricer(overrides_path=prices).price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "gpt-4o")
    assert cost.total == pytest.approx(3.0)
    assert cost.source == "override prices.yaml:2"
    assert cost.version.startswith("sha256:")
