"""The one cost formula, in Python (otel_llmcost.pricing.formula) and in the SQL repricing
view (v_calls_repriced), against the same hand-computed table (tests/cost_cases.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import clickhouse_connect
import pytest
from cost_cases import CASES, PRICES_YAML, CostCase
from span_rows import trace_row

from otel_llmcost import semconv as sc
from otel_llmcost.exporter.rows import COLUMNS
from otel_llmcost.pricing import Pricer, catalogue
from otel_llmcost.storage import migrations

DB = "otel"


@pytest.fixture
def pricer(tmp_path) -> Pricer:
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES_YAML)
    return Pricer(overrides_path=path)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_python_formula_matches_the_table(case: CostCase, pricer: Pricer):
    cost = pricer.price(case.usage, case.model, provider_id="openai")
    assert cost is not None
    assert cost.total == pytest.approx(case.total, rel=1e-12)
    for part, expected in case.parts.items():
        assert getattr(cost, part) == pytest.approx(expected, rel=1e-12, abs=1e-15), part


def _row(case: CostCase, index: int) -> list:
    usage = case.usage
    attrs = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: case.model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_tokens,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: usage.cache_write_tokens,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: usage.reasoning_tokens,
        sc.USAGE_UNCACHED_INPUT_TOKENS: usage.uncached_input_tokens,
        sc.USAGE_CACHE_WRITE_1H_TOKENS: usage.cache_write_1h_tokens,
        sc.USAGE_INPUT_AUDIO_TOKENS: usage.input_audio_tokens,
        sc.USAGE_CACHE_AUDIO_READ_TOKENS: usage.cache_audio_read_tokens,
        sc.USAGE_OUTPUT_AUDIO_TOKENS: usage.output_audio_tokens,
        sc.PRICE_PROVIDER: "openai",
        sc.UNPRICED: "true",  # recorded before a price existed: only the catalogue prices it
    }
    when = datetime(2026, 11, 1, 12, index, tzinfo=timezone.utc)
    return trace_row(int(when.timestamp() * 1e9), attrs, service="cost-cases", name=f"chat {case.model}")


def test_sql_repricing_view_matches_the_table(tmp_path, pricer: Pricer):
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'chdb'}")
    try:
        migrations.migrate(client, database=DB, ttl_days=3650)
        rows = [_row(case, i) for i, case in enumerate(CASES)]
        client.insert(f"{DB}.otel_traces", rows, column_names=list(COLUMNS))
        catalogue.sync(client, pricer, database=DB)
        got = client.query(
            f"SELECT RequestModel, CatalogueCost FROM {DB}.v_calls_repriced(target_provider = '', target_model = '')"
            " WHERE CataloguePriced ORDER BY Timestamp"
        ).result_rows
    finally:
        client.close()
    # Rows come back in the table's order (one minute apart).
    assert [model for model, _ in got] == [case.model for case in CASES]
    for (_, cost), case in zip(got, CASES, strict=True):
        assert cost == pytest.approx(case.total, rel=1e-9), case.name
