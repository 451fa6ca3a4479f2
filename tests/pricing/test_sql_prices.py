"""The price catalogue on chdb: `prices sync`, repricing, what-if and reported cost.

Calls are written to otel_traces with the attributes the instrumentation sets, costed
by the real Pricer at each call's own timestamp; the SQL views must then reproduce
those costs from the stored token counts alone, across a price change in the middle
of the data, tiers, cache TTLs, audio and image tokens and price variants.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from otel_llmcost.exporter.rows import COLUMNS
from otel_llmcost.pricing import Pricer, Usage
from otel_llmcost.pricing import catalogue as price_catalogue
from tests.helpers.chdb import insert_spans
from tests.helpers.span_rows import priced_call_row

DB = "otel"
UTC = timezone.utc
# Calls here are dated up to 1.5 years back: keep them past the default 180-day TTL.
pytestmark = pytest.mark.chdb(ttl_days=3650)


def insert(client: Any, rows: list[list[Any]]) -> None:
    # One partition per day, and the test data spans more than the default 100 per insert.
    insert_spans(client, rows, max_partitions_per_insert_block=1000)


def repriced(client: Any, target_provider: str = "", target_model: str = "") -> dict[str, tuple]:
    rows = client.query(
        f"SELECT SpanId, CataloguePriced, CatalogueCost, RecordedCost, CatalogueSource "
        f"FROM {DB}.v_calls_repriced(target_provider = %(p)s, target_model = %(m)s)",
        parameters={"p": target_provider, "m": target_model},
    ).result_rows
    return {r[0]: r[1:] for r in rows}


def span_id(row: list[Any]) -> str:
    return row[COLUMNS.index("SpanId")]


# (request model, provider name on the span, genai-prices provider, token shape)
SHAPES = [
    ("gpt-4o", "openai", "openai", "text"),
    ("gpt-4o-mini", "openai", "openai", "text"),
    ("o3-mini", "openai", "openai", "reasoning"),
    ("claude-sonnet-4-20250514", "anthropic", "anthropic", "cache_ttl"),
    ("gemini-2.5-pro", "gcp.gemini", "google", "tiered"),
    ("gemini-2.5-flash", "gcp.gemini", "google", "audio"),
    ("gpt-4o-realtime-preview", "openai", "openai", "audio"),
    ("gpt-audio", "openai", "openai", "audio"),  # no cache-read price at all
    ("gpt-image-1.5", "openai", "openai", "image"),
]


def random_usage(rng: random.Random, shape: str) -> Usage:
    uncached = rng.randint(0, 300_000 if shape == "tiered" else 20_000)
    read = rng.randint(0, 50_000)
    write = rng.randint(0, 20_000) if shape == "cache_ttl" else 0
    write_1h = rng.randint(0, write)
    output = rng.randint(0, 8_000)
    usage = Usage(
        input_tokens=uncached + read + write,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=rng.randint(0, output) if shape == "reasoning" else 0,
    )
    if shape in ("audio", "image"):
        modal_in = rng.randint(0, usage.input_tokens)
        modal_read = rng.randint(0, min(modal_in, read))
        modal_out = rng.randint(0, output)
        setattr(usage, f"input_{shape}_tokens", modal_in)
        setattr(usage, f"cache_{shape}_read_tokens", modal_read)
        setattr(usage, f"output_{shape}_tokens", modal_out)
    return usage


def test_catalogue_reprices_every_call_exactly_as_the_pricer(chdb_client):
    rng = random.Random(20261123)
    pricer = Pricer(overrides_path="")
    start = datetime(2025, 5, 1, tzinfo=UTC)  # o3-mini and friends change price in mid-2025
    rows, expected = [], {}
    for _ in range(300):
        model, name, provider, shape = rng.choice(SHAPES)
        when = start + timedelta(seconds=rng.randint(0, 400 * 86400))
        usage = random_usage(rng, shape)
        cost = pricer.price_call(usage, model, None, provider_id=provider, when=when)
        assert cost is not None, model
        row = priced_call_row(when, model, usage, cost, provider_name=name, price_provider=provider)
        rows.append(row)
        expected[span_id(row)] = cost.total
    insert(chdb_client, rows)
    result = price_catalogue.sync(chdb_client, pricer, database=DB)
    assert result.refs == len({(s[0], s[2]) for s in SHAPES})
    got = repriced(chdb_client)
    assert set(got) == set(expected)
    for sid, total in expected.items():
        priced, catalogue_cost, recorded, source = got[sid]
        assert priced and source == "genai-prices"
        assert catalogue_cost == pytest.approx(total, rel=1e-9, abs=1e-12), sid
    daily = chdb_client.query(
        f"SELECT sum(Calls), sum(RepricedCalls), sum(NewlyPricedCalls), sum(StillUnpricedCalls) "
        f"FROM {DB}.v_cost_repriced_daily"
    ).result_rows[0]
    assert daily == (300, 0, 0, 0)


def test_price_change_in_the_middle_of_the_data(chdb_client, tmp_path):
    """Calls recorded at the database price; an override lowers gpt-4o from July 1st on."""
    recorded_by = Pricer(overrides_path="")
    days = [datetime(2026, 6, 25, 12, tzinfo=UTC) + timedelta(days=i) for i in range(10)]
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)
    rows = [
        priced_call_row(
            d,
            "gpt-4o",
            usage,
            recorded_by.price_call(usage, "gpt-4o", None, provider_id="openai", when=d),
            provider_name="openai",
            price_provider="openai",
        )
        for d in days
    ]
    insert(chdb_client, rows)
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n  - model: gpt-4o\n    effective_from: 2026-07-01\n    input_mtok: 1.0\n    output_mtok: 4.0\n"
    )
    price_catalogue.sync(chdb_client, Pricer(overrides_path=prices), database=DB)
    got = repriced(chdb_client)
    for d, row in zip(days, rows, strict=True):
        priced, catalogue_cost, recorded, source = got[span_id(row)]
        assert recorded == pytest.approx(2.5 + 0.1 * 10.0)
        if d < datetime(2026, 7, 1, tzinfo=UTC):
            assert (catalogue_cost, source) == (pytest.approx(recorded), "genai-prices")
        else:
            assert (catalogue_cost, source) == (pytest.approx(1.0 + 0.1 * 4.0), "override prices.yaml:2")
    changed, delta = chdb_client.query(
        f"SELECT sum(RepricedCalls), sum(RepricingDeltaUsd) FROM {DB}.v_cost_repriced_daily"
    ).result_rows[0]
    assert changed == 4  # July 1st to 4th
    assert delta == pytest.approx(4 * ((1.0 + 0.4) - (2.5 + 1.0)))


def test_spend_recorded_unpriced_gets_a_price_once_one_is_added(chdb_client, tmp_path):
    usage = Usage(input_tokens=2_000_000, output_tokens=1_000_000)
    days = [datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=i) for i in range(6)]
    rows = [priced_call_row(d, "acme-llama-70b", usage, None, provider_name="vllm", price_provider="") for d in days]
    insert(chdb_client, rows)
    price_catalogue.sync(chdb_client, Pricer(overrides_path=""), database=DB)
    assert chdb_client.query(
        f"SELECT sum(StillUnpricedCalls), sum(NewlyPricedCalls) FROM {DB}.v_cost_repriced_daily"
    ).result_rows[0] == (6, 0)

    # The negotiated price starts on March 4th: earlier calls stay unpriced, never $0.
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n  - prefix: acme-\n    effective_from: 2026-03-04\n    input_mtok: 0.5\n    output_mtok: 1.5\n"
    )
    price_catalogue.sync(chdb_client, Pricer(overrides_path=prices), database=DB)
    newly, cost, still = chdb_client.query(
        f"SELECT sum(NewlyPricedCalls), sum(NewlyPricedCostUsd), sum(StillUnpricedCalls) "
        f"FROM {DB}.v_cost_repriced_daily"
    ).result_rows[0]
    assert (newly, still) == (3, 3)
    assert cost == pytest.approx(3 * (2 * 0.5 + 1 * 1.5))


def test_what_if_prices_every_call_on_another_model(chdb_client):
    rng = random.Random(7)
    pricer = Pricer(overrides_path="")
    rows, usages = [], {}
    for _ in range(60):
        model, name, provider, shape = rng.choice(SHAPES[:4])
        when = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(hours=rng.randint(0, 24 * 60))
        usage = random_usage(rng, shape)
        row = priced_call_row(
            when,
            model,
            usage,
            pricer.price_call(usage, model, None, provider_id=provider, when=when),
            provider_name=name,
            price_provider=provider,
        )
        rows.append(row)
        usages[span_id(row)] = (usage, when)
    insert(chdb_client, rows)
    price_catalogue.sync(chdb_client, pricer, database=DB)
    got = repriced(chdb_client, "openai", "gpt-4o-mini")
    for sid, (usage, when) in usages.items():
        expected = pricer.price(usage, "gpt-4o-mini", provider_id="openai", when=when).total
        assert got[sid][1] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_price_variant_is_repriced_at_its_own_price(chdb_client):
    pricer = Pricer(overrides_path="")
    when = datetime(2026, 11, 1, tzinfo=UTC)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    rows = []
    for tier in ("flex", "priority", "default"):
        context = {"service_tier": tier}
        cost = pricer.price_call(usage, "o3", None, provider_id="openai", price_context=context, when=when)
        rows.append(
            priced_call_row(when, "o3", usage, cost, provider_name="openai", price_provider="openai", context=context)
        )
    insert(chdb_client, rows)
    price_catalogue.sync(chdb_client, pricer, database=DB)
    got = repriced(chdb_client)
    costs = [got[span_id(r)][1] for r in rows]
    recorded = [got[span_id(r)][2] for r in rows]
    assert costs == pytest.approx(recorded)
    assert costs[0] < costs[2] < costs[1]  # flex < standard < priority


def test_reported_cost_disagreements(chdb_client):
    pricer = Pricer(overrides_path="")
    when = datetime(2026, 10, 1, tzinfo=UTC)
    usage = Usage(input_tokens=100_000, output_tokens=10_000)
    cost = pricer.price_call(usage, "gpt-4o", None, provider_id="openai", when=when)
    rows = [
        priced_call_row(
            when, "gpt-4o", usage, cost, provider_name="openrouter", price_provider="openai", reported=cost.total * 1.01
        ),
        priced_call_row(
            when, "gpt-4o", usage, cost, provider_name="openrouter", price_provider="openai", reported=cost.total * 0.8
        ),
        priced_call_row(when, "gpt-4o", usage, cost, provider_name="openrouter", price_provider="openai"),
        priced_call_row(
            when, "mystery-1", usage, None, provider_name="openrouter", price_provider="openrouter", reported=0.5
        ),
    ]
    insert(chdb_client, rows)
    per_model = {
        r[0]: r[1:]
        for r in chdb_client.query(
            f"SELECT RequestModel, Calls, DisagreeingCalls, UnpricedCalls, UnpricedReportedUsd, TotalDifferenceUsd, "
            f"ComputedCostUsd FROM {DB}.v_cost_reported_disagreements"
        ).result_rows
    }
    # The call with no reported cost is not in the comparison; neither sum double counts.
    assert per_model["gpt-4o"][:3] == (2, 1, 0)
    assert per_model["gpt-4o"][4] == pytest.approx(cost.total * (0.01 - 0.2))
    assert per_model["gpt-4o"][5] == pytest.approx(2 * cost.total)
    assert per_model["mystery-1"][:4] == (1, 0, 1, pytest.approx(0.5))
    total = chdb_client.query(f"SELECT sum(CostTotal) FROM {DB}.llm_calls").result_rows[0][0]
    assert total == pytest.approx(3 * cost.total)  # recorded cost never includes reported amounts


def test_sync_keeps_the_newest_syncs_and_views_read_the_last_complete_one(chdb_client):
    pricer = Pricer(overrides_path="")
    for _ in range(3):
        price_catalogue.sync(chdb_client, pricer, database=DB, keep=2)
    syncs = chdb_client.query(f"SELECT count() FROM {DB}.llm_price_syncs").result_rows[0][0]
    kept = chdb_client.query(f"SELECT uniqExact(SyncId) FROM {DB}.llm_prices").result_rows[0][0]
    assert (syncs, kept) == (2, 2)
    # A sync cut short (prices written, no llm_price_syncs row) is never read.
    newest = chdb_client.query(f"SELECT max(SyncId) FROM {DB}.llm_price_syncs").result_rows[0][0]
    rows = list(price_catalogue.database_rows(datetime(2100, 1, 1), "half-written"))[:5]
    chdb_client.insert(f"{DB}.llm_prices", rows, column_names=list(price_catalogue.PRICE_COLUMNS))
    current = chdb_client.query(f"SELECT DISTINCT SyncId, Version FROM {DB}.v_prices_current").result_rows
    assert [r[0] for r in current] == [newest]
    with pytest.raises(ValueError):
        price_catalogue.prune(chdb_client, database=DB, keep=0)
