"""Foreign calls in the spend people read (sql/024_foreign_spend.sql): the summary, spend by
endpoint and model, the unpriced report and the overview's panels count each call once,
whichever instrumentation traced it, priced from the catalogue at read time.

Spans are the fixtures of test_foreign_calls.py (shaped as contrib openai-v2, OpenLLMetry and
OpenLIT emit them), moved to the last hour so that the windowed reports see them.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

import pytest

from otel_llmcost.exporter.rows import COLUMNS
from otel_llmcost.pricing import Pricer
from otel_llmcost.pricing import catalogue as price_catalogue
from otel_llmcost.reporting import reports
from tests.helpers.chdb import insert_spans, q
from tests.storage.test_foreign_calls import (
    DB,
    contrib_openai_v2,
    openlit_openai,
    openllmetry_anthropic,
    openllmetry_openai,
    ours,
    sid,
    span,
    sync,
)

pytestmark = pytest.mark.chdb(ttl_days=3650)

# Half an hour ago, so a 24-hour window holds it whatever the minute.
NOW_NS = (int(time.time()) - 1800) * 10**9

# Costs by hand at the fixture prices (test_foreign_calls.PRICES), USD
CONTRIB = 0.003  # 600 uncached * 2 + 400 read * 0.5 + 200 out * 8 per million
LLMETRY = 0.0033  # 1000 * 2 + 1000 * 0.5 + 100 * 8
LLMETRY_ANTHROPIC = 0.003825  # 100 * 3 + 3000 * 0.3 + 500 * 3.75 + 50 * 15
OPENLIT = 0.0014  # 500 * 2 + 50 * 8
OURS = 0.0036


def at(row: list[Any], ts_ns: int = NOW_NS) -> list[Any]:
    row[COLUMNS.index("Timestamp")] = ts_ns
    return row


def unpriced_contrib() -> list[Any]:
    return at(
        span(
            ("opentelemetry.instrumentation.openai_v2", "2.2b0"),
            "chat acme-local-7b",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "acme-local-7b",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 5,
            },
        )
    )


@pytest.fixture
def mixed(chdb_client, tmp_path):  # type: ignore[no-untyped-def]
    """One call of each instrumentation, one call of ours, the same call traced by us and by
    contrib (a duplicate), and a foreign call of a model the catalogue does not know."""
    trace_id = secrets.token_hex(16)
    our = ours(trace_id, ts_ns=NOW_NS)
    duplicate = contrib_openai_v2(trace_id=trace_id, parent=sid(our), ts_ns=NOW_NS + 1000)
    rows = [
        at(contrib_openai_v2()),
        at(openllmetry_openai()),
        at(openllmetry_anthropic()),
        at(openlit_openai()),
        unpriced_contrib(),
    ]
    insert_spans(chdb_client, rows)
    insert_spans(chdb_client, [our])  # the duplicate's two spans in separate inserts
    insert_spans(chdb_client, [duplicate])
    sync(chdb_client, tmp_path)
    return chdb_client


def test_the_summary_counts_every_call_once_and_the_unpriced_one_as_unpriced(mixed):
    got = reports.summary(mixed, database=DB, since_hours=24)
    # 5 foreign calls + ours; the duplicate is ours only
    assert got["Calls"] == 6
    assert got["CostUsd"] == pytest.approx(OURS + CONTRIB + LLMETRY + LLMETRY_ANTHROPIC + OPENLIT)
    assert got["UnpricedCalls"] == 1


def test_spend_by_model_includes_foreign_calls_and_shows_an_unknown_model_as_unpriced(mixed):
    report = reports.run(mixed, "spend_by_model", database=DB, since_hours=24)
    rows = {(r[0], r[1]): dict(zip(report.columns, r, strict=True)) for r in report.rows}
    gpt = rows[("openai", "gpt-4o")]
    assert gpt["Calls"] == 4  # ours, contrib, OpenLLMetry, OpenLIT: the duplicate not again
    assert gpt["CostUsd"] == pytest.approx(OURS + CONTRIB + LLMETRY + OPENLIT)
    assert gpt["Sources"] == "contrib-openai-v2, openlit, openllmetry, otel-llmcost"
    claude = rows[("Anthropic", "claude-sonnet-4-5")]
    assert (claude["Calls"], claude["CostUsd"]) == (1, pytest.approx(LLMETRY_ANTHROPIC))
    unknown = rows[("openai", "acme-local-7b")]
    assert (unknown["Calls"], unknown["UnpricedCalls"], unknown["CostUsd"]) == (1, 1, None)


def test_spend_by_endpoint_puts_foreign_calls_on_the_unattributed_row(mixed):
    report = reports.run(mixed, "spend_by_endpoint", database=DB, since_hours=24)
    rows = {r[1]: dict(zip(report.columns, r, strict=True)) for r in report.rows}
    # ours has no endpoint in the fixture either: one '' row holds all six calls
    assert list(rows) == [""]
    assert rows[""]["Calls"] == 6
    assert rows[""]["UnpricedCalls"] == 1
    assert rows[""]["CostUsd"] == pytest.approx(OURS + CONTRIB + LLMETRY + LLMETRY_ANTHROPIC + OPENLIT)


def test_the_unpriced_report_lists_the_foreign_model(mixed):
    report = reports.run(mixed, "unpriced", database=DB, since_hours=24)
    assert [(r[1], r[2], r[4]) for r in report.rows] == [("openai", "acme-local-7b", 1)]


def test_v_spend_hourly_agrees_with_v_calls_all_call_by_call(mixed):
    """The rollup path (tokens per hour and tier, priced at read time, duplicates subtracted)
    gives what the per-call view gives."""
    rollup = q(
        mixed,
        f"SELECT Source, sum(Calls), sum(UnpricedCalls), round(sum(CostUsd), 9) "
        f"FROM {DB}.v_spend_hourly(since_hours = 24) GROUP BY Source ORDER BY Source",
    )
    per_call = q(
        mixed,
        f"SELECT Source, count(), countIf(Unpriced = 1), round(sum(ifNull(CostUsd, 0)), 9) "
        f"FROM {DB}.v_calls_all(since_hours = 720) GROUP BY Source ORDER BY Source",
    )
    assert rollup == per_call


def test_a_duplicate_outside_the_window_is_not_subtracted_inside_it(chdb_client, tmp_path):
    """The anti-join reads the window only: a call 3 days old is neither counted nor subtracted."""
    old_ns = NOW_NS - 3 * 86400 * 10**9
    trace_id = secrets.token_hex(16)
    our = ours(trace_id, ts_ns=old_ns)
    insert_spans(chdb_client, [our, contrib_openai_v2(trace_id=trace_id, parent=sid(our), ts_ns=old_ns + 1000)])
    insert_spans(chdb_client, [at(contrib_openai_v2())])
    sync(chdb_client, tmp_path)
    # 24 hours: the old call and its duplicate are both outside; 96 hours: the old foreign span
    # is in the rollup and subtracted again, its (hour, model) row nets to no call and is dropped
    for since_hours in (24, 96):
        got = q(chdb_client, f"SELECT sum(Calls) FROM {DB}.v_foreign_spend_hourly(since_hours = {since_hours})")
        assert got == [(1,)], since_hours
    assert q(chdb_client, f"SELECT count(), countIf(Duplicate) FROM {DB}.v_foreign_calls(since_hours = 720)") == [
        (2, 1)
    ]


def test_calls_either_side_of_a_price_tier_are_priced_at_their_tier(chdb_client):
    """Gemini 2.5 Pro costs more per input token above 200k (genai-prices' own tiers): the rollup,
    summed per band and priced at read time, gives what pricing each call gives."""
    attrs = {"gen_ai.system": "gcp.gemini", "gen_ai.request.model": "gemini-2.5-pro", "gen_ai.usage.output_tokens": 0}
    small = at(span(("openlit.otel.tracing", ""), "chat", {**attrs, "gen_ai.usage.input_tokens": 100_000}))
    large = at(span(("openlit.otel.tracing", ""), "chat", {**attrs, "gen_ai.usage.input_tokens": 300_000}))
    insert_spans(chdb_client, [small, large])
    price_catalogue.sync(chdb_client, Pricer(), database=DB)
    per_call = dict(q(chdb_client, f"SELECT InputTokens, CostUsd FROM {DB}.v_foreign_calls(since_hours = 720)"))
    assert per_call[300_000] / 300_000 > per_call[100_000] / 100_000  # the upper tier, dearer
    rollup = q(chdb_client, f"SELECT sum(CostUsd) FROM {DB}.v_foreign_spend_hourly(since_hours = 24)")
    assert rollup == [(pytest.approx(per_call[100_000] + per_call[300_000]),)]


def test_every_tier_start_in_genai_prices_is_an_input_band():
    """A new tier start in genai-prices must be added to 023's band list (else calls in it would
    be priced at the tier below)."""
    from otel_llmcost.storage.migrations import MIGRATIONS_DIR

    text = (MIGRATIONS_DIR / "024_foreign_spend.sql").read_text(encoding="utf-8")
    bands = {int(b) for b in text.split("CAST([", 1)[1].split("]", 1)[0].split(",")}
    starts = {
        row[price_catalogue.PRICE_COLUMNS.index("InputTokensFrom")]
        for row in price_catalogue.database_rows(datetime(2026, 1, 1), price_catalogue.genai_prices_version())
    }
    assert starts <= bands, sorted(starts - bands)
    listed = "CAST([" + text.split("CAST([", 1)[1].split("]", 1)[0] + "]"
    assert text.count(listed) == text.count("CAST([") == 3  # MV, backfill and view alike
