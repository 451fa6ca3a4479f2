"""Migrations and views on chdb: each view gives the expected answer on a crafted data set.

Rows go into otel_traces exactly as the collector would write them, so the materialized
views are exercised too. One chdb database serves the module (opening chdb is slow);
tests stay independent by each using its own ServiceName.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from typing import Any

import clickhouse_connect
import pytest
from span_rows import trace_row

from otel_llmcost import semconv as sc
from otel_llmcost.exporter.rows import COLUMNS
from otel_llmcost.reporting import reports
from otel_llmcost.storage import migrations

DB = "otel"
HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("views") / "chdb"
    c = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    migrations.migrate(c, database=DB)
    yield c
    c.close()


def now_ns() -> int:
    return time.time_ns()


def call(
    service: str,
    ts_ns: int,
    *,
    name: str | None = None,
    status: str = "Unset",
    duration_ns: int = 500_000_000,
    trace_id: str | None = None,
    **attrs: Any,
) -> list[Any]:
    """An otel_traces row for a GenAI span; attrs use semconv constant names (lower-case)."""
    attributes = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: "m1",
        sc.GEN_AI_PROVIDER_NAME: "p1",
    }
    attributes.update({getattr(sc, k.upper()): str(v) for k, v in attrs.items()})
    return trace_row(
        ts_ns,
        attributes,
        service=service,
        name=name or f"chat {attributes[sc.GEN_AI_REQUEST_MODEL]}",
        trace_id=trace_id,
        duration_ns=duration_ns,
        status=status,
    )


def insert(client, rows: list[list[Any]], token: str | None = None) -> None:
    settings = {"insert_deduplication_token": token} if token else None
    client.insert(f"{DB}.otel_traces", rows, column_names=list(COLUMNS), settings=settings)


def q(client, sql: str, **params: Any) -> list[tuple]:
    return client.query(sql, parameters=params).result_rows


# --- migrations ---------------------------------------------------------------------------


def test_migrate_twice_is_a_no_op(client):
    before = q(
        client,
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String} ORDER BY name",
        d=DB,
    )
    again = migrations.migrate(client, database=DB)
    after = q(
        client,
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String} ORDER BY name",
        d=DB,
    )
    assert before == after
    assert again[0].startswith("CREATE DATABASE IF NOT EXISTS otel")
    names = {n for n, _ in after}
    assert {"otel_traces", "llm_calls", "llm_calls_mv", "llm_cost_hourly", "llm_user_daily"} <= names


def test_otel_traces_has_the_collector_schema(client):
    cols = q(client, "SELECT name, type FROM system.columns WHERE database = 'otel' AND table = 'otel_traces'")
    assert [c for c, _ in cols][:15] == [
        "Timestamp",
        "TraceId",
        "SpanId",
        "ParentSpanId",
        "TraceState",
        "SpanName",
        "SpanKind",
        "ServiceName",
        "ResourceAttributes",
        "ScopeName",
        "ScopeVersion",
        "SpanAttributes",
        "Duration",
        "StatusCode",
        "StatusMessage",
    ]
    types = dict(cols)
    assert types["Duration"] == "UInt64"
    assert types["SpanAttributes"] == "Map(LowCardinality(String), String)"
    assert types["Events.Attributes"] == "Array(Map(LowCardinality(String), String))"


def test_render_with_cluster_gives_on_cluster_and_replicated_engines_keeping_macros(client):
    stmts = migrations.rendered_statements(database="obs", cluster="prod", ttl_days=30)
    for s in stmts:
        head = s.split("(", 1)[0].split(" AS", 1)[0]
        assert " ON CLUSTER prod" in head, head
    text = "\n".join(stmts)
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in text
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in text
    assert "MergeTree()" not in text.replace("ReplicatedMergeTree(", "").replace("AggregatingMergeTree()", "")
    assert "toIntervalDay(30)" in text and "{ttl_days}" not in text and "{cluster}" not in text
    for s in stmts:  # every rendered statement is valid ClickHouse SQL
        assert q(client, "SELECT formatQuery({s:String})", s=s)[0][0]


def test_render_without_cluster_uses_plain_engines():
    text = "\n".join(migrations.rendered_statements(database="otel", cluster=None, ttl_days=7))
    assert "ON CLUSTER" not in text and "Replicated" not in text
    assert "ENGINE = MergeTree()" in text and "ENGINE = AggregatingMergeTree()" in text


@pytest.mark.parametrize("bad", ["otel; DROP TABLE x", "1db", "a-b", "", "a b", "x`y"])
def test_render_rejects_unsafe_identifiers(bad):
    with pytest.raises(ValueError):
        migrations.render("{database}", database=bad, cluster=None, ttl_days=1)
    with pytest.raises(ValueError):
        migrations.render("{cluster}", database="otel", cluster=bad or "x y", ttl_days=1)


# --- typed extraction and dedup ----------------------------------------------------------


def test_llm_calls_reads_collector_strings_as_numbers(client):
    svc = "typed"
    row = call(
        svc,
        now_ns(),
        gen_ai_usage_input_tokens=1200,
        gen_ai_usage_output_tokens=30,
        gen_ai_usage_cache_read_input_tokens=1000,
        cost_total="0.00123",
        cost_savings="1e-7",
        throttled="true",
        retry_count=2,
        gen_ai_response_time_to_first_chunk="0.25",
        http_response_status_code=200,
    )
    row[11][sc.ratelimit_attribute("requests", "remaining")] = "42"
    row[11][sc.ratelimit_attribute("tokens", "limit")] = "not a number"
    insert(client, [row, call(svc, now_ns(), name="not genai")])
    # a span without gen_ai.operation.name is not a GenAI call
    insert(client, [[*row[:11], {"x": "y"}, *row[12:]]])
    got = q(
        client,
        "SELECT InputTokens, OutputTokens, CacheReadTokens, CostTotal, CostSavings, Throttled,"
        " RetryCount, TtftMs, RateLimitRequestsRemaining, RateLimitTokensLimit, HttpStatus, DurationMs"
        " FROM otel.llm_calls"
        " WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert len(got) == 2
    assert got[0] == (1200, 30, 1000, 0.00123, 1e-7, 1, 2, 250.0, 42, None, 200, 500.0)


def test_replayed_insert_with_same_token_is_counted_once_everywhere(client):
    svc = "dedup"
    rows = [call(svc, now_ns(), cost_total=0.5, user="u") for _ in range(3)]
    insert(client, rows, token="spool-0001.jsonl")
    insert(client, rows, token="spool-0001.jsonl")
    # identical rollup output from a different source insert must NOT be deduplicated
    insert(client, [call(svc, now_ns(), cost_total=0.5, user="u") for _ in range(3)])
    assert q(client, "SELECT count() FROM otel.otel_traces WHERE ServiceName = {s:String}", s=svc) == [(6,)]
    assert q(client, "SELECT count() FROM otel.llm_calls WHERE ServiceName = {s:String}", s=svc) == [(6,)]
    assert q(
        client,
        "SELECT sum(Calls), sum(CostTotal) FROM otel.v_cost_hourly WHERE ServiceName = {s:String}",
        s=svc,
    ) == [(6, 3.0)]
    assert q(client, "SELECT sum(Calls) FROM otel.v_cost_by_user_daily WHERE ServiceName = {s:String}", s=svc) == [(6,)]


# --- cost views ---------------------------------------------------------------------------


def test_cost_views_by_endpoint_model_feature_team_user(client):
    svc = "costs"
    t = now_ns()
    rows = [
        call(
            svc,
            t,
            endpoint="/chat",
            feature="f1",
            team="t1",
            user="u1",
            cost_total=c,
            gen_ai_usage_input_tokens=10,
        )
        for c in (0.1, 0.2, 0.3)
    ]
    rows.append(
        call(
            svc,
            t,
            endpoint="/sum",
            feature="f2",
            team="t2",
            user="u2",
            cost_total=1.5,
            gen_ai_request_model="m2",
        )
    )
    insert(client, rows)
    by_ep = q(
        client,
        "SELECT Endpoint, sum(Calls), round(sum(CostTotal), 6), sum(InputTokens)"
        " FROM otel.v_cost_by_endpoint_hourly WHERE ServiceName = {s:String}"
        " GROUP BY Endpoint ORDER BY Endpoint",
        s=svc,
    )
    assert by_ep == [("/chat", 3, 0.6, 30), ("/sum", 1, 1.5, 0)]
    by_model = q(
        client,
        "SELECT RequestModel, Calls, round(CostTotal, 6) FROM otel.v_cost_by_model_daily"
        " WHERE ServiceName = {s:String} ORDER BY RequestModel",
        s=svc,
    )
    assert by_model == [("m1", 3, 0.6), ("m2", 1, 1.5)]
    by_feature = q(
        client,
        "SELECT Feature, round(CostTotal, 6) FROM otel.v_cost_by_feature_daily"
        " WHERE ServiceName = {s:String} ORDER BY Feature",
        s=svc,
    )
    assert by_feature == [("f1", 0.6), ("f2", 1.5)]
    by_team = q(
        client,
        "SELECT Team, Calls FROM otel.v_cost_by_team_daily WHERE ServiceName = {s:String} ORDER BY Team",
        s=svc,
    )
    assert by_team == [("t1", 3), ("t2", 1)]
    by_user = q(
        client,
        "SELECT User, Team, round(CostTotal, 6) FROM otel.v_cost_by_user_daily"
        " WHERE ServiceName = {s:String} ORDER BY User",
        s=svc,
    )
    assert by_user == [("u1", "t1", 0.6), ("u2", "t2", 1.5)]
    rep = reports.run(client, "spend_by_endpoint", since_hours=2)
    assert ("costs", "/sum") in [(r[0], r[1]) for r in rep.rows]
    assert rep.columns[:3] == ["ServiceName", "Endpoint", "Calls"]


def test_cache_efficiency_hit_rate_savings_and_premium(client):
    svc = "cache-eff"
    insert(
        client,
        [
            call(
                svc,
                now_ns(),
                gen_ai_usage_input_tokens=1000,
                gen_ai_usage_cache_read_input_tokens=600,
                cost_savings=0.02,
                cost_cache_write_premium=0.0,
            ),
            call(
                svc,
                now_ns(),
                gen_ai_usage_input_tokens=1000,
                gen_ai_usage_cache_creation_input_tokens=1000,
                cost_savings=-0.001,
                cost_cache_write_premium=0.003,
            ),
        ],
    )
    got = q(
        client,
        "SELECT sum(InputTokens), sum(CacheReadTokens), sum(CacheWriteTokens),"
        " round(sum(CacheReadTokens) / sum(InputTokens), 3), round(sum(CostSavings), 6),"
        " round(sum(CostCacheWritePremium), 6)"
        " FROM otel.v_cache_efficiency WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [(2000, 600, 1000, 0.3, 0.019, 0.003)]
    hourly = q(client, "SELECT HitRate FROM otel.v_cache_efficiency WHERE ServiceName = {s:String}", s=svc)
    assert [round(h, 3) for (h,) in hourly] == [0.3]


def test_cache_never_paid_back_lists_only_old_writes_without_later_reads(client):
    svc = "payback"
    t = now_ns()
    insert(
        client,
        [
            call(
                svc,
                t - 2 * HOUR_NS,
                prompt_prefix_hash="never",
                gen_ai_usage_cache_creation_input_tokens=2000,
                cost_cache_write=0.01,
                cost_cache_write_premium=0.002,
            ),
            call(svc, t - 2 * HOUR_NS, prompt_prefix_hash="paid", gen_ai_usage_cache_creation_input_tokens=2000),
            call(svc, t - HOUR_NS, prompt_prefix_hash="paid", gen_ai_usage_cache_read_input_tokens=2000),
            call(
                svc,
                t - 60 * 10**9,
                prompt_prefix_hash="recent",
                gen_ai_usage_cache_creation_input_tokens=2000,
            ),
        ],
    )
    got = q(
        client,
        "SELECT PrefixHash, Writes, WrittenTokens, round(WriteCost, 6), round(WritePremium, 6)"
        " FROM otel.v_cache_never_paid_back WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [("never", 1, 2000, 0.01, 0.002)]


def test_missed_caching_needs_two_large_uncached_repeats(client):
    svc = "missed"
    t = now_ns()
    rows = [call(svc, t, prompt_prefix_hash="miss", gen_ai_usage_input_tokens=2000, cost_input=0.01) for _ in range(3)]
    rows += [call(svc, t, prompt_prefix_hash="hit", gen_ai_usage_input_tokens=2000) for _ in range(2)]
    rows += [
        call(
            svc,
            t,
            prompt_prefix_hash="hit",
            gen_ai_usage_input_tokens=2000,
            gen_ai_usage_cache_read_input_tokens=1900,
        )
    ]
    rows += [call(svc, t, prompt_prefix_hash="small", gen_ai_usage_input_tokens=500) for _ in range(3)]
    rows += [call(svc, t, prompt_prefix_hash="once", gen_ai_usage_input_tokens=5000)]
    insert(client, rows)
    got = q(
        client,
        "SELECT PrefixHash, Calls, TotalInputTokens, round(InputCost, 6) FROM otel.v_missed_caching"
        " WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [("miss", 3, 6000, 0.03)]
    assert [r[2] for r in reports.run(client, "missed_caching", since_hours=1).rows if r[0] == svc] == ["miss"]


def test_duplicate_requests_spend_on_repeats(client):
    svc = "dupes"
    t = now_ns()
    insert(
        client,
        [call(svc, t + i, prompt_request_hash="r1", cost_total=0.1) for i in range(3)]
        + [call(svc, t, prompt_request_hash="r2", cost_total=0.1)],
    )
    got = q(
        client,
        "SELECT RequestHash, Calls, Repeats, round(Spend, 6), round(RepeatSpend, 6)"
        " FROM otel.v_duplicate_requests WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [("r1", 3, 2, 0.3, 0.2)]


def test_rate_limit_pressure_share_retries_and_lowest_remaining(client):
    svc = "ratelimit"
    t = now_ns()
    rows = [
        call(svc, t, http_response_status_code=429, error_type="RateLimitError", status="Error"),
        call(svc, t, throttled="true", retry_count=2, throttled_attempts=2, retry_after_s=1.5),
        call(svc, t),
        call(svc, t),
    ]
    for row, remaining in zip(rows, ("100", "50", "", "70"), strict=True):
        if remaining:
            row[11][sc.ratelimit_attribute("requests", "remaining")] = remaining
            row[11][sc.ratelimit_attribute("requests", "limit")] = "200"
    insert(client, rows)
    got = q(
        client,
        "SELECT sum(Calls), sum(ThrottledCalls), sum(Retries), min(MinRequestsRemaining), max(RequestsLimit),"
        " min(MinRequestsHeadroom), max(MaxRetryAfterS)"
        " FROM otel.v_rate_limit_pressure WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [(4, 2, 2, 50, 200, 0.25, 1.5)]
    rep = [r for r in reports.run(client, "rate_limits", since_hours=1).rows if r[0] == svc]
    assert rep[0][5] == 0.5  # ThrottledShare


def test_unpriced_and_estimated_views(client):
    svc = "pricing"
    t = now_ns()
    insert(
        client,
        [
            call(svc, t, unpriced="true", gen_ai_request_model="mystery", gen_ai_usage_input_tokens=10),
            call(svc, t, unpriced="false", gen_ai_usage_input_tokens=10),
            call(svc, t, usage_estimated="true", gen_ai_usage_input_tokens=7, cost_total=0.5),
        ],
    )
    unpriced = q(
        client,
        "SELECT RequestModel, Calls, InputTokens FROM otel.v_unpriced_calls WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert unpriced == [("mystery", 1, 10)]
    est = q(
        client,
        "SELECT Calls, InputTokens, CostTotal FROM otel.v_estimated_usage WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert est == [(1, 7, 0.5)]
    assert [r[2] for r in reports.run(client, "unpriced", since_hours=1).rows if r[0] == svc] == ["mystery"]


def test_cost_per_successful_task_joins_by_task_id_or_trace_id(client):
    svc = "tasks"
    t = now_ns()
    trace = secrets.token_hex(16)
    rows = [
        call(svc, t, task_id="T1", cost_total=0.1, feature="agent"),
        call(svc, t, task_id="T1", cost_total=0.2, feature="agent"),
        call(svc, t, trace_id=trace, cost_total=0.5, feature="agent"),  # no task id: joined by trace
        call(svc, t, cost_total=9.0, feature="agent"),  # belongs to no task
    ]
    ok = call(svc, t, name=sc.TASK_SPAN_NAME, task_id="T1", feature="agent")
    failed = call(svc, t, name=sc.TASK_SPAN_NAME, trace_id=trace, feature="agent")
    for span, success in ((ok, "true"), (failed, "false")):
        span[11] = {sc.TASK_ID: span[11].get(sc.TASK_ID, ""), sc.TASK_SUCCESS: success, sc.FEATURE: "agent"}
    insert(client, [*rows, ok, failed])
    outcomes = q(
        client,
        "SELECT TaskKey = 'T1', Success, Calls, round(CostTotal, 6) FROM otel.v_task_outcomes"
        " WHERE ServiceName = {s:String} ORDER BY Success",
        s=svc,
    )
    assert outcomes == [(0, 0, 1, 0.5), (1, 1, 2, 0.3)]
    per = q(
        client,
        "SELECT Tasks, SuccessfulTasks, round(CostTotal, 6), round(CostPerSuccessfulTask, 6)"
        " FROM otel.v_cost_per_successful_task WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert per == [(2, 1, 0.8, 0.8)]
    rep = [r for r in reports.run(client, "cost_per_task", since_hours=1).rows if r[0] == svc]
    assert rep[0][-1] == 0.8


# --- anomaly views ------------------------------------------------------------------------


def _local_noon(days_ago: int) -> int:
    day = dt.datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    return int((day - dt.timedelta(days=days_ago)).timestamp()) * 10**9


def test_spend_anomaly_flags_the_day_10_spike_and_not_the_noise(client):
    svc = "anomaly"
    rng = random.Random(7)
    rows = []
    for i in range(14):  # day 0 is 14 days ago, day 13 is yesterday
        ts = _local_noon(14 - i)
        for endpoint in ("/spiky", "/noisy"):
            spend = 10.0 * (1 + rng.uniform(-0.1, 0.1))
            if endpoint == "/spiky" and i == 10:
                spend = 30.0
            rows += [call(svc, ts + k, endpoint=endpoint, cost_total=spend / 4) for k in range(4)]
    insert(client, rows)
    flagged = q(
        client,
        "SELECT Endpoint, Day, PriorDays FROM otel.v_spend_anomalies_daily WHERE ServiceName = {s:String} AND Flagged",
        s=svc,
    )
    spike_day = dt.datetime.fromtimestamp(_local_noon(4) / 1e9).date()
    assert flagged == [("/spiky", spike_day, 7)]
    # the first 7 days lack history and are never flagged
    early = q(
        client,
        "SELECT count() FROM otel.v_spend_anomalies_daily WHERE ServiceName = {s:String} AND PriorDays < 7 AND Flagged",
        s=svc,
    )
    assert early == [(0,)]
    rep = [r for r in reports.run(client, "anomalies", since_hours=24 * 6).rows if r[1] == svc]
    assert [(r[2], r[0]) for r in rep] == [("/spiky", spike_day)]


def test_spend_anomaly_counts_days_without_calls_as_zero(client):
    svc = "anomaly-gaps"
    rows = [call(svc, _local_noon(d), endpoint="/e", cost_total=1.0) for d in (12, 3)]
    rows += [call(svc, _local_noon(2), endpoint="/e", cost_total=1.0)]
    insert(client, rows)
    got = q(
        client,
        "SELECT PriorDays, round(PriorMean, 4), Flagged FROM otel.v_spend_anomalies_daily"
        " WHERE ServiceName = {s:String} AND Day = {d:Date}",
        s=svc,
        d=dt.datetime.fromtimestamp(_local_noon(3) / 1e9).date(),
    )
    assert got == [(7, 0.0, 1)]  # 7 filled zero days before; a jump from nothing is flagged


def test_cache_hit_drop_flagged_only_for_a_halving(client):
    svc = "hitdrop"
    base = (now_ns() // HOUR_NS) * HOUR_NS
    rows = []
    for h in range(30, 0, -1):
        rate = {3: 0.2, 6: 0.7}.get(h, 0.8)
        rows.append(
            call(
                svc,
                base - h * HOUR_NS,
                gen_ai_usage_input_tokens=20000,
                gen_ai_usage_cache_read_input_tokens=int(20000 * rate),
            )
        )
    insert(client, rows)
    flagged = q(
        client,
        "SELECT Hour, round(HitRate, 2), PriorHours FROM otel.v_cache_hit_drops_hourly"
        " WHERE ServiceName = {s:String} AND Flagged",
        s=svc,
    )
    assert len(flagged) == 1
    assert flagged[0][0] == dt.datetime.fromtimestamp((base - 3 * HOUR_NS) / 1e9)
    assert flagged[0][1:] == (0.2, 24)


def test_expensive_requests_over_threshold_or_endpoint_p99(client):
    svc = "expensive"
    t = now_ns() - HOUR_NS
    rows = [call(svc, t + i, endpoint="/e", cost_total=0.01) for i in range(150)]
    rows += [call(svc, t, endpoint="/e", cost_total=0.5), call(svc, t, endpoint="/other", cost_total=2.0)]
    rows += [call(svc, t, endpoint="/tiny", cost_total=0.9), call(svc, t, endpoint="/tiny", cost_total=0.01)]
    insert(client, rows)
    got = q(
        client,
        "SELECT Endpoint, CostTotal, Reason FROM otel.v_expensive_requests"
        " WHERE ServiceName = {s:String} ORDER BY CostTotal",
        s=svc,
    )
    assert got == [("/e", 0.5, "over_endpoint_p99"), ("/other", 2.0, "over_threshold")]


def test_all_reports_run_and_name_their_columns(client):
    for name in reports.DEFAULT_REPORTS:
        rep = reports.run(client, name, since_hours=24)
        assert rep.title and rep.columns and rep.name == name
        assert all(len(r) == len(rep.columns) for r in rep.rows)
    with pytest.raises(ValueError):
        reports.run(client, "spend_by_model", since_hours=0)
    with pytest.raises(ValueError):
        reports.run(client, "spend_by_model", since_hours=1, database="otel; DROP TABLE otel.otel_traces")
