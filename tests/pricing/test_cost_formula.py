"""The one cost formula, in Python (otel_llmcost.pricing.formula) and in the SQL repricing
view (v_calls_repriced), against the same hand-computed table (tests/helpers/cost_cases.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from otel_llmcost.pricing import Pricer, catalogue
from tests.helpers.chdb import insert_spans
from tests.helpers.cost_cases import CASES, PRICES_YAML, CostCase
from tests.helpers.span_rows import priced_call_row

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
    # Recorded before a price existed (unpriced): only the catalogue prices it.
    when = datetime(2026, 11, 1, 12, index, tzinfo=timezone.utc)
    return priced_call_row(
        when, case.model, case.usage, None, provider_name="openai", price_provider="openai", service="cost-cases"
    )


@pytest.mark.chdb(ttl_days=3650)
def test_sql_repricing_view_matches_the_table(chdb_client, pricer: Pricer):
    insert_spans(chdb_client, [_row(case, i) for i, case in enumerate(CASES)])
    catalogue.sync(chdb_client, pricer, database=DB)
    got = chdb_client.query(
        f"SELECT RequestModel, CatalogueCost FROM {DB}.v_calls_repriced(target_provider = '', target_model = '')"
        " WHERE CataloguePriced ORDER BY Timestamp"
    ).result_rows
    # Rows come back in the table's order (one minute apart).
    assert [model for model, _ in got] == [case.model for case in CASES]
    for (_, cost), case in zip(got, CASES, strict=True):
        assert cost == pytest.approx(case.total, rel=1e-9), case.name
