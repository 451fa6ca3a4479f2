"""GenAI spans of other instrumentations: typed, priced from the catalogue, never counted twice.

Each span below is shaped as the instrumentation emits it (scope name, span name and kind,
attribute names and value types as strings, as otel_traces stores them); the sources are
cited in otel_llmcost/semconv.py and sql/015_foreign_calls.sql. Prices come from a fixed
override file synced into llm_prices, so every cost is computed by hand.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.exporter.rows import COLUMNS
from otel_llmcost.pricing import Pricer
from otel_llmcost.pricing import catalogue as price_catalogue
from tests.helpers.chdb import insert_spans, q, reads_only_the_window
from tests.helpers.span_rows import trace_row

DB = "otel"
pytestmark = pytest.mark.chdb(ttl_days=3650)

WHEN = datetime(2026, 10, 1, 12, tzinfo=timezone.utc)
WHEN_NS = int(WHEN.timestamp() * 1e9)

# USD per million tokens, in force from 2026-01-01 (before WHEN).
PRICES = """\
models:
  - match: "gpt-4o*"
    provider: openai
    effective_from: 2026-01-01
    input_mtok: 2.0
    output_mtok: 8.0
    cache_read_mtok: 0.5
  - match: "claude-sonnet-4-5*"
    provider: anthropic
    effective_from: 2026-01-01
    input_mtok: 3.0
    output_mtok: 15.0
    cache_read_mtok: 0.3
    cache_write_mtok: 3.75
"""


def span(
    scope: tuple[str, str],
    name: str,
    attributes: dict[str, Any],
    *,
    trace_id: str | None = None,
    parent: str = "",
    ts_ns: int = WHEN_NS,
    kind: str = "Client",
) -> list[Any]:
    row = trace_row(ts_ns, attributes, service="svc", name=name, trace_id=trace_id, scope=scope, kind=kind)
    row[COLUMNS.index("ParentSpanId")] = parent
    return row


def contrib_openai_v2(**extra: Any) -> list[Any]:
    """opentelemetry-instrumentation-openai-v2, chat completion with a cached prompt."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": "('stop',)",
        "server.address": "api.openai.com",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_read.input_tokens": 400,
    }
    return span((sc.SCOPE_CONTRIB_OPENAI_V2, "2.2b0"), "chat gpt-4o", attributes, **extra)


def openllmetry_openai() -> list[Any]:
    """OpenLLMetry opentelemetry-instrumentation-openai (older semconv_ai names)."""
    attributes = {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "llm.is_streaming": False,
        "gen_ai.usage.prompt_tokens": 2000,
        "gen_ai.usage.completion_tokens": 100,
        "llm.usage.total_tokens": 2100,
        "gen_ai.usage.cache_read_input_tokens": 1000,
    }
    return span((sc.SCOPE_OPENLLMETRY_OPENAI_V1, "0.38.7"), "openai.chat", attributes)


def openllmetry_anthropic() -> list[Any]:
    """OpenLLMetry opentelemetry-instrumentation-anthropic: prompt_tokens is Anthropic's
    input_tokens + cache_read + cache_creation (its _set_token_usage)."""
    attributes = {
        "llm.request.type": "chat",
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.usage.prompt_tokens": 100 + 3000 + 500,
        "gen_ai.usage.completion_tokens": 50,
        "llm.usage.total_tokens": 3650,
        "gen_ai.usage.cache_read_input_tokens": 3000,
        "gen_ai.usage.cache_creation_input_tokens": 500,
    }
    return span(("opentelemetry.instrumentation.anthropic", "0.38.7"), "anthropic.chat", attributes)


def openlit_openai() -> list[Any]:
    """OpenLIT's openai instrumentation, with its own price in gen_ai.usage.cost."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 500,
        "gen_ai.usage.output_tokens": 50,
        "gen_ai.usage.total_tokens": 550,
        "gen_ai.usage.cost": 0.00175,
        "gen_ai.environment": "default",
        "gen_ai.application_name": "default",
    }
    return span((sc.SCOPE_OPENLIT, ""), "chat gpt-4o", attributes)


def ours(trace_id: str, *, cost: float = 0.0036, ts_ns: int = WHEN_NS) -> list[Any]:
    attributes = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 200,
        sc.USAGE_UNCACHED_INPUT_TOKENS: 1000,
        sc.PRICE_PROVIDER: "openai",
        sc.COST_TOTAL: repr(cost),
    }
    return trace_row(ts_ns, attributes, service="svc", name="chat gpt-4o", trace_id=trace_id)


def sid(row: list[Any]) -> str:
    return str(row[COLUMNS.index("SpanId")])


def sync(client: Any, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    price_catalogue.sync(client, Pricer(overrides_path=prices), database=DB)


def foreign(client: Any) -> dict[str, tuple]:
    rows = q(
        client,
        f"SELECT SpanId, Source, InputTokens, UncachedInputTokens, CacheReadTokens, CacheWriteTokens, "
        f"OutputTokens, Unpriced, CostUsd, CostReported, Duplicate FROM {DB}.v_foreign_calls(since_hours = 87600)",
    )
    return {r[0]: r[1:] for r in rows}


def test_each_instrumentation_is_typed_normalized_and_priced_at_the_call_time(chdb_client, tmp_path):
    contrib, llmetry, llmetry_anthropic, openlit = (
        contrib_openai_v2(),
        openllmetry_openai(),
        openllmetry_anthropic(),
        openlit_openai(),
    )
    insert_spans(chdb_client, [contrib, llmetry, llmetry_anthropic, openlit])
    sync(chdb_client, tmp_path)
    got = foreign(chdb_client)
    # contrib: 600 uncached * 2 + 400 read * 0.5 + 200 out * 8 = 3000 per million
    assert got[sid(contrib)] == ("contrib-openai-v2", 1000, 600, 400, 0, 200, False, pytest.approx(0.003), None, False)
    # OpenLLMetry, old names: 1000 * 2 + 1000 * 0.5 + 100 * 8 = 3300 per million
    assert got[sid(llmetry)] == ("openllmetry", 2000, 1000, 1000, 0, 100, False, pytest.approx(0.0033), None, False)
    # OpenLLMetry anthropic: 100 * 3 + 3000 * 0.3 + 500 * 3.75 + 50 * 15 = 3825 per million
    assert got[sid(llmetry_anthropic)] == (
        "opentelemetry.instrumentation.anthropic",
        3600,
        100,
        3000,
        500,
        50,
        False,
        pytest.approx(0.003825),
        None,
        False,
    )
    # OpenLIT: 500 * 2 + 50 * 8 = 1400 per million; its own 0.00175 is kept beside it
    assert got[sid(openlit)] == ("openlit", 500, 500, 0, 0, 50, False, pytest.approx(0.0014), 0.00175, False)


def test_anthropic_raw_input_below_the_cache_counts_gets_the_cache_added(chdb_client, tmp_path):
    row = span(
        ("some.other.instrumentation", "1"),
        "chat claude-sonnet-4-5",
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 100,  # Anthropic's own input_tokens: cache excluded
            "gen_ai.usage.output_tokens": 50,
            "gen_ai.usage.cache_read.input_tokens": 3000,
        },
    )
    insert_spans(chdb_client, [row])
    sync(chdb_client, tmp_path)
    got = foreign(chdb_client)[sid(row)]
    # 100 * 3 + 3000 * 0.3 + 50 * 15 = 1950 per million
    assert got[1:4] == (3100, 100, 3000)
    assert got[7] == pytest.approx(0.00195)


def test_a_model_without_a_price_is_unpriced_never_zero(chdb_client, tmp_path):
    row = span(
        ("opentelemetry.instrumentation.openai_v2", "2.2b0"),
        "chat acme-local-7b",
        {"gen_ai.system": "openai", "gen_ai.request.model": "acme-local-7b", "gen_ai.usage.input_tokens": 10},
    )
    insert_spans(chdb_client, [row])
    sync(chdb_client, tmp_path)
    assert foreign(chdb_client)[sid(row)][6:8] == (True, None)
    assert q(chdb_client, f"SELECT Unpriced, CostUsd FROM {DB}.v_calls_all(since_hours = 87600)") == [(1, None)]


def test_before_any_sync_foreign_calls_are_unpriced(chdb_client):
    insert_spans(chdb_client, [contrib_openai_v2()])
    assert q(chdb_client, f"SELECT Unpriced, CostUsd FROM {DB}.v_foreign_calls(since_hours = 87600)") == [(True, None)]


@pytest.mark.parametrize("view", ["v_foreign_duplicates", "v_foreign_calls", "v_calls_all", "v_cost_by_source_daily"])
def test_every_call_view_reads_only_its_window(chdb_client, tmp_path, view):
    # The calls are from WHEN (weeks ago): a day's window holds none of them, and no table
    # (ours, the foreign calls, the duplicate lookup's) may be read beyond its window.
    trace_id = secrets.token_hex(16)
    our = ours(trace_id)
    insert_spans(chdb_client, [our, contrib_openai_v2(trace_id=trace_id, parent=sid(our), ts_ns=WHEN_NS + 1000)])
    sync(chdb_client, tmp_path)
    assert q(chdb_client, f"SELECT count() FROM {DB}.{view}(since_hours = 24)") == [(0,)]
    assert q(chdb_client, f"SELECT count() FROM {DB}.{view}(since_hours = 87600)") != [(0,)]
    assert reads_only_the_window(chdb_client, f"SELECT * FROM {DB}.{view}(since_hours = 24)")


@pytest.mark.parametrize("relation", ["foreign_child", "foreign_parent", "sibling_overlapping"])
@pytest.mark.parametrize("foreign_first", [False, True])
def test_a_call_traced_by_us_and_contrib_counts_once_as_ours(chdb_client, tmp_path, relation, foreign_first):
    trace_id = secrets.token_hex(16)
    our = ours(trace_id)
    if relation == "foreign_child":
        other = contrib_openai_v2(trace_id=trace_id, parent=sid(our), ts_ns=WHEN_NS + 1000)
    elif relation == "foreign_parent":
        other = contrib_openai_v2(trace_id=trace_id, ts_ns=WHEN_NS - 1000)
        our[COLUMNS.index("ParentSpanId")] = sid(other)
    else:
        other = contrib_openai_v2(trace_id=trace_id, parent="0" * 16, ts_ns=WHEN_NS + 10_000_000)
    batches = [[other], [our]] if foreign_first else [[our], [other]]
    for batch in batches:  # spans of one trace in separate inserts, either order
        insert_spans(chdb_client, batch)
    sync(chdb_client, tmp_path)
    assert foreign(chdb_client)[sid(other)][-1] == 1
    rows = q(
        chdb_client,
        f"SELECT Source, CostUsd FROM {DB}.v_calls_all(since_hours = 87600) WHERE TraceId = %(t)s",
        t=trace_id,
    )
    assert rows == [("otel-llmcost", pytest.approx(0.0036))]


def test_the_same_model_in_another_trace_or_later_is_not_a_duplicate(chdb_client, tmp_path):
    trace_id = secrets.token_hex(16)
    our = ours(trace_id)
    later = contrib_openai_v2(trace_id=trace_id, ts_ns=WHEN_NS + 5 * 10**9)  # ours lasted 0.5 s
    elsewhere = contrib_openai_v2()
    insert_spans(chdb_client, [our, later, elsewhere])
    sync(chdb_client, tmp_path)
    got = foreign(chdb_client)
    assert (got[sid(later)][-1], got[sid(elsewhere)][-1]) == (False, False)
    by_source = q(
        chdb_client,
        f"SELECT Source, sum(Calls), sum(CostUsd) FROM {DB}.v_cost_by_source_daily(since_hours = 87600)"
        " GROUP BY Source ORDER BY Source",
    )
    # ours 0.0036; two contrib calls at 0.003 each
    assert by_source == [
        ("contrib-openai-v2", 2, pytest.approx(0.006)),
        ("otel-llmcost", 1, pytest.approx(0.0036)),
    ]


def test_internal_spans_summing_usage_and_our_own_spans_are_not_foreign(chdb_client):
    workflow = span(
        ("opentelemetry.instrumentation.langchain", "0.38.7"),
        "agent.workflow",
        {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5000},
        kind="Internal",
    )
    insert_spans(chdb_client, [workflow, ours(secrets.token_hex(16))])
    assert q(chdb_client, f"SELECT count() FROM {DB}.llm_foreign_calls") == [(0,)]


def test_real_sdk_spans_through_the_exporter_rows(chdb_client, tmp_path):
    """End to end: SDK spans with native attribute types -> exporter row -> MV -> views; the
    contrib span nested in ours (instrumented twice) is dropped, the OpenLIT one is kept."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from otel_llmcost.exporter.rows import span_to_row

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    our_tracer = provider.get_tracer(sc.INSTRUMENTATION_SCOPE)
    contrib_tracer = provider.get_tracer(sc.SCOPE_CONTRIB_OPENAI_V2, "2.2b0")
    openlit_tracer = provider.get_tracer(sc.SCOPE_OPENLIT)
    with our_tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as our_span:
        our_span.set_attributes(
            {
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 200,
                sc.COST_TOTAL: 0.0036,
            }
        )
        with contrib_tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as contrib_span:
            contrib_span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.finish_reasons": ("stop",),
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 200,
                }
            )
    with openlit_tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as openlit_span:
        openlit_span.set_attributes(
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 500,
                "gen_ai.usage.output_tokens": 50,
                "gen_ai.usage.cost": 0.00175,
            }
        )
    insert_spans(chdb_client, [span_to_row(s) for s in exporter.get_finished_spans()])
    sync(chdb_client, tmp_path)
    rows = q(
        chdb_client, f"SELECT Source, InputTokens, CostUsd FROM {DB}.v_calls_all(since_hours = 87600) ORDER BY Source"
    )
    # OpenLIT: 500 * 2 + 50 * 8 = 1400 per million; ours as recorded
    assert rows == [("openlit", 500, pytest.approx(0.0014)), ("otel-llmcost", 1000, pytest.approx(0.0036))]
