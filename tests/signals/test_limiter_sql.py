"""sql/007 on chdb: app rate-limiter decisions extracted from span events, and the views.

Rows go into otel_traces the way the collector writes them (decision events on HTTP server
spans of another instrumentation, GenAI spans for the provider side), so the materialized
views run. Expected answers are computed in Python from the same constructed decisions.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.exporter.rows import COLUMNS
from tests.helpers.chdb import insert_spans, q
from tests.helpers.span_rows import server_span_row, trace_row

DB = "otel"
THROTTLING = {"throttled", "rejected"}


def hour_ago(hours: int, minute: int = 5) -> dt.datetime:
    top = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return top - dt.timedelta(hours=hours) + dt.timedelta(minutes=minute)


def ns(when: dt.datetime) -> int:
    return int(when.timestamp() * 1e9)


def decision(action: str, *, limit: str = "per-user", route: str = "", tier: str = "", **extra: Any) -> dict[str, str]:
    attrs = {sc.LIMITER_LIMIT: limit, sc.LIMITER_ACTION: action, sc.LIMITER_SOURCE: "app"}
    if route:
        attrs[sc.LIMITER_ROUTE] = route
    if tier:
        attrs[sc.LIMITER_TIER] = tier
    attrs.update({getattr(sc, f"LIMITER_{k.upper()}"): str(v) for k, v in extra.items()})
    return attrs


def server_span(service: str, when: dt.datetime, events: list[tuple[str, dict[str, str]]]) -> list[Any]:
    """An HTTP server span of the FastAPI instrumentation carrying ``events`` (name, attributes)."""
    return server_span_row(ns(when), "POST /chat", events, service=service)


def llm_call(service: str, when: dt.datetime, endpoint: str, **attrs: Any) -> list[Any]:
    attributes = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "m1", sc.ENDPOINT: endpoint}
    attributes.update({k: str(v) for k, v in attrs.items()})
    return trace_row(ns(when), attributes, service=service, name="chat m1")


def test_only_decision_events_become_typed_rows_whatever_the_span(chdb_module_client):
    svc = "extract"
    when = hour_ago(0)
    events = [
        ("exception", {"exception.type": "ValueError"}),
        (sc.EVENT_LIMITER_DECISION, decision("throttled", route="POST /chat", tier="free", key="h-1", remaining=0)),
        (
            sc.EVENT_LIMITER_DECISION,
            decision("allowed", limit="per-tier", key="free", remaining="12.5", rule="5 per 1 minute"),
        ),
        (sc.EVENT_BUDGET_SOFT_LIMIT, {sc.BUDGET_NAME: "b"}),
        (sc.EVENT_LIMITER_DECISION, decision("queued", limit="provider", remaining="not a number")),
    ]
    insert_spans(chdb_module_client, [server_span(svc, when, events), server_span(svc, when, [("exception", {})])])
    got = q(
        chdb_module_client,
        "SELECT LimitKind, Action, Route, Tier, Key, Remaining, Rule, Source FROM otel.llm_limiter_decisions"
        " WHERE ServiceName = {s:String} ORDER BY Timestamp",
        s=svc,
    )
    assert got == [
        ("per-user", "throttled", "POST /chat", "free", "h-1", 0.0, "", "app"),
        ("per-tier", "allowed", "", "", "free", 12.5, "5 per 1 minute", "app"),
        ("provider", "queued", "", "", "", None, "", "app"),
    ]
    (span_id,) = {
        r[0]
        for r in q(
            chdb_module_client, "SELECT SpanId FROM otel.llm_limiter_decisions WHERE ServiceName = {s:String}", s=svc
        )
    }
    assert len(span_id) == 16


def test_non_finite_remaining_is_null(chdb_module_client):
    svc = "non-finite"
    events = [(sc.EVENT_LIMITER_DECISION, decision("allowed", remaining=v)) for v in ("inf", "nan", "-inf", "3")]
    insert_spans(chdb_module_client, [server_span(svc, hour_ago(0), events)])
    got = q(
        chdb_module_client, "SELECT Remaining FROM otel.llm_limiter_decisions WHERE ServiceName = {s:String}", s=svc
    )
    assert sorted(got, key=lambda r: r[0] is None) == [(3.0,), (None,), (None,), (None,)]


def test_hourly_view_counts_and_throttle_rate_per_route_and_tier(chdb_module_client):
    svc = "hourly"
    rng = random.Random(12)
    made: list[tuple[dt.datetime, str, str, str, str]] = []
    rows = []
    for _ in range(300):
        when = hour_ago(rng.randrange(3), minute=rng.randrange(60))
        route = rng.choice(["POST /chat", "GET /search"])
        tier = rng.choice(["free", "pro"])
        action = rng.choices(sc.LIMITER_ACTIONS, weights=[70, 15, 5, 5, 5])[0]
        key = f"user-{rng.randrange(20)}"
        made.append((when.replace(minute=0), route, tier, action, key))
        rows.append(
            server_span(svc, when, [(sc.EVENT_LIMITER_DECISION, decision(action, route=route, tier=tier, key=key))])
        )
    insert_spans(chdb_module_client, rows)

    groups: dict[tuple, list[tuple[str, str]]] = {}
    for hour, route, tier, action, key in made:
        groups.setdefault((hour.replace(tzinfo=None), route, tier), []).append((action, key))
    expected = []
    for (hour, route, tier), items in sorted(groups.items()):
        actions = Counter(a for a, _ in items)
        throttled = actions["throttled"] + actions["rejected"]
        expected.append(
            (
                hour,
                route,
                tier,
                len(items),
                actions["allowed"],
                throttled,
                actions["rejected"],
                actions["queued"] + actions["retried"],
                round(throttled / len(items), 9),
                len({k for _, k in items}),
                len({k for a, k in items if a in THROTTLING}),
            )
        )
    got = q(
        chdb_module_client,
        "SELECT Hour, Route, Tier, Decisions, Allowed, Throttled, Rejected, Delayed, round(ThrottleRate, 9),"
        " Keys, ThrottledKeys FROM otel.v_app_rate_limits_hourly WHERE ServiceName = {s:String}"
        " ORDER BY Hour, Route, Tier",
        s=svc,
    )
    assert got == expected
    # re-aggregated per tier the way the dashboard does it: sum the counts, then divide
    per_tier = q(
        chdb_module_client,
        "SELECT Tier, sum(Throttled) / sum(Decisions) FROM otel.v_app_rate_limits_hourly"
        " WHERE ServiceName = {s:String} GROUP BY Tier ORDER BY Tier",
        s=svc,
    )
    for tier, rate in per_tier:
        mine = [a for _, _, t, a, _ in made if t == tier]
        assert rate == pytest.approx(sum(a in THROTTLING for a in mine) / len(mine))


def test_app_throttling_beside_provider_429s_per_route_and_hour(chdb_module_client):
    svc = "side-by-side"
    rows = []
    app = {  # (hours ago, route) -> actions
        (1, "POST /chat"): ["allowed"] * 6 + ["throttled"] * 3 + ["rejected"],
        (0, "POST /chat"): ["allowed"] * 4,
        (0, "GET /search"): ["throttled"] * 2,  # no LLM call on this route this hour
    }
    for (hours, route), actions in app.items():
        rows += [
            server_span(svc, hour_ago(hours), [(sc.EVENT_LIMITER_DECISION, decision(a, route=route))]) for a in actions
        ]
    provider = {  # (hours ago, route) -> [(throttled flag, 429 attempts, http status)]
        (1, "POST /chat"): [("true", 2, 200), ("false", 0, 200), ("false", 0, 429), ("false", 0, 200)],
        (0, "POST /chat"): [("false", 0, 200)] * 2,
        (2, "POST /summarize"): [("true", 1, 200)],  # no app decision on this route
    }
    for (hours, route), calls in provider.items():
        for throttled, attempts, status in calls:
            rows.append(
                llm_call(
                    svc,
                    hour_ago(hours),
                    route,
                    **{sc.THROTTLED: throttled, sc.THROTTLED_ATTEMPTS: attempts, sc.HTTP_RESPONSE_STATUS_CODE: status},
                )
            )
    insert_spans(chdb_module_client, rows)

    keys = sorted(set(app) | set(provider), key=lambda k: (-k[0], k[1]))
    expected = []
    for hours, route in keys:
        actions = app.get((hours, route), [])
        calls = provider.get((hours, route), [])
        app_throttled = sum(a in THROTTLING for a in actions)
        provider_throttled = sum(t == "true" or s == 429 for t, _, s in calls)
        expected.append(
            (
                hour_ago(hours, minute=0).replace(tzinfo=None),
                route,
                len(actions),
                app_throttled,
                app_throttled / len(actions) if actions else None,
                len(calls),
                provider_throttled,
                sum(a for _, a, _ in calls),
                provider_throttled / len(calls) if calls else None,
            )
        )
    got = q(
        chdb_module_client,
        "SELECT Hour, Route, AppDecisions, AppThrottled, AppThrottleRate, ProviderCalls, ProviderThrottledCalls,"
        " ProviderThrottledAttempts, ProviderThrottleRate FROM otel.v_app_vs_provider_throttling_hourly"
        " WHERE ServiceName = {s:String} ORDER BY Hour, Route",
        s=svc,
    )
    assert got == expected


def test_replayed_insert_is_counted_once(chdb_module_client):
    svc = "limiter-dedup"
    rows = [server_span(svc, hour_ago(0), [(sc.EVENT_LIMITER_DECISION, decision("throttled", route="POST /x"))])]
    insert_spans(chdb_module_client, rows, token="spool-limiter-1")
    insert_spans(chdb_module_client, rows, token="spool-limiter-1")
    assert q(
        chdb_module_client,
        "SELECT sum(Decisions) FROM otel.v_app_rate_limits_hourly WHERE ServiceName = {s:String}",
        s=svc,
    ) == [(1,)]


def test_decisions_recorded_by_the_api_land_in_the_views(chdb_module_client, tmp_path):
    """End to end: record_limiter_decision -> real SDK span -> exporter row -> MV -> view."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_llmcost import runtime
    from otel_llmcost.config import Settings
    from otel_llmcost.exporter.rows import span_to_row
    from otel_llmcost.signals import limiter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recording = runtime.Runtime(Settings(), tracer_provider=provider)
    runtime.install(recording)  # what instrument() does; the decisions need no LLM SDK
    try:
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("POST /chat"):
            limiter.record_limiter_decision(limit="per-user", key="u", action="allowed", route="POST /chat", tier="pro")
            limiter.record_limiter_decision(
                limit="per-user", key="u", action="throttled", route="POST /chat", tier="pro"
            )
        limiter.record_limiter_decision(limit="per-user", key="v", action="rejected", route="POST /chat", tier="pro")
    finally:
        runtime.uninstall(recording)
    rows = [span_to_row(span) for span in exporter.get_finished_spans()]
    for row in rows:
        row[COLUMNS.index("ServiceName")] = "api-end-to-end"
    insert_spans(chdb_module_client, rows)
    got = q(
        chdb_module_client,
        "SELECT Route, Tier, Decisions, Throttled, Rejected FROM otel.v_app_rate_limits_hourly"
        " WHERE ServiceName = 'api-end-to-end'",
    )
    assert got == [("POST /chat", "pro", 3, 2, 1)]
