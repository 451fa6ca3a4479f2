"""Migrations and views on chdb: each view gives the expected answer on a crafted data set.

Rows go into otel_traces exactly as the collector would write them, so the materialized
views are exercised too. One chdb database serves the module (opening chdb is slow);
tests stay independent by each using its own ServiceName.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets

import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.reporting import reports
from otel_llmcost.storage import migrations
from tests.helpers.chdb import insert_spans, q, reads_only_the_window
from tests.helpers.span_rows import HOUR_NS, call_row, now_ns

DB = "otel"


# The daily spend detector over the last year: every scripted day is inside it.
SPEND_DAILY = "otel.v_spend_anomalies_daily(since_hours = 8760)"


# --- migrations ---------------------------------------------------------------------------


def test_migrate_twice_is_a_no_op(chdb_module_client):
    before = q(
        chdb_module_client,
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String} ORDER BY name",
        d=DB,
    )
    again = migrations.migrate(chdb_module_client, database=DB)
    after = q(
        chdb_module_client,
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String} ORDER BY name",
        d=DB,
    )
    assert before == after
    assert again[0].startswith("CREATE DATABASE IF NOT EXISTS otel")
    names = {n for n, _ in after}
    assert {"otel_traces", "llm_calls", "llm_calls_mv", "llm_cost_hourly", "llm_user_daily"} <= names


def test_otel_traces_has_the_collector_schema(chdb_module_client):
    cols = q(
        chdb_module_client, "SELECT name, type FROM system.columns WHERE database = 'otel' AND table = 'otel_traces'"
    )
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


def test_render_with_cluster_gives_on_cluster_and_replicated_engines_keeping_macros(chdb_module_client):
    stmts = migrations.rendered_statements(database="obs", cluster="prod", ttl_days=30)
    for s in stmts:
        if s.startswith("INSERT INTO "):  # a one-time back-fill (022): data, not DDL, so no ON CLUSTER
            continue
        head = s.split("(", 1)[0].split(" AS", 1)[0]
        assert " ON CLUSTER prod" in head, head
    text = "\n".join(stmts)
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in text
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in text
    assert "MergeTree()" not in text.replace("ReplicatedMergeTree(", "").replace("AggregatingMergeTree()", "")
    assert "toIntervalDay(30)" in text and "{ttl_days}" not in text and "{cluster}" not in text
    for s in stmts:  # every rendered statement is valid ClickHouse SQL
        assert q(chdb_module_client, "SELECT formatQuery({s:String})", s=s)[0][0]


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


def test_llm_calls_reads_collector_strings_as_numbers(chdb_module_client):
    svc = "typed"
    row = call_row(
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
    insert_spans(chdb_module_client, [row, call_row(svc, now_ns(), name="not genai")])
    # a span without gen_ai.operation.name is not a GenAI call
    insert_spans(chdb_module_client, [[*row[:11], {"x": "y"}, *row[12:]]])
    got = q(
        chdb_module_client,
        "SELECT InputTokens, OutputTokens, CacheReadTokens, CostTotal, CostSavings, Throttled,"
        " RetryCount, TtftMs, RateLimitRequestsRemaining, RateLimitTokensLimit, HttpStatus, DurationMs"
        " FROM otel.llm_calls"
        " WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert len(got) == 2
    assert got[0] == (1200, 30, 1000, 0.00123, 1e-7, 1, 2, 250.0, 42, None, 200, 500.0)


def test_replayed_insert_with_same_token_is_counted_once_everywhere(chdb_module_client):
    svc = "dedup"
    rows = [call_row(svc, now_ns(), cost_total=0.5, user="u") for _ in range(3)]
    insert_spans(chdb_module_client, rows, token="spool-0001.jsonl")
    insert_spans(chdb_module_client, rows, token="spool-0001.jsonl")
    # identical rollup output from a different source insert must NOT be deduplicated
    insert_spans(chdb_module_client, [call_row(svc, now_ns(), cost_total=0.5, user="u") for _ in range(3)])
    assert q(chdb_module_client, "SELECT count() FROM otel.otel_traces WHERE ServiceName = {s:String}", s=svc) == [(6,)]
    assert q(chdb_module_client, "SELECT count() FROM otel.llm_calls WHERE ServiceName = {s:String}", s=svc) == [(6,)]
    assert q(
        chdb_module_client,
        "SELECT sum(Calls), sum(CostTotal) FROM otel.v_cost_hourly WHERE ServiceName = {s:String}",
        s=svc,
    ) == [(6, 3.0)]
    assert q(
        chdb_module_client, "SELECT sum(Calls) FROM otel.v_cost_by_user_daily WHERE ServiceName = {s:String}", s=svc
    ) == [(6,)]


# --- cost views ---------------------------------------------------------------------------


def test_cost_views_by_endpoint_model_feature_team_user(chdb_module_client):
    svc = "costs"
    t = now_ns()
    rows = [
        call_row(
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
        call_row(
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
    insert_spans(chdb_module_client, rows)
    by_ep = q(
        chdb_module_client,
        "SELECT Endpoint, sum(Calls), round(sum(CostTotal), 6), sum(InputTokens)"
        " FROM otel.v_cost_by_endpoint_hourly WHERE ServiceName = {s:String}"
        " GROUP BY Endpoint ORDER BY Endpoint",
        s=svc,
    )
    assert by_ep == [("/chat", 3, 0.6, 30), ("/sum", 1, 1.5, 0)]
    by_model = q(
        chdb_module_client,
        "SELECT RequestModel, Calls, round(CostTotal, 6) FROM otel.v_cost_by_model_daily"
        " WHERE ServiceName = {s:String} ORDER BY RequestModel",
        s=svc,
    )
    assert by_model == [("m1", 3, 0.6), ("m2", 1, 1.5)]
    by_feature = q(
        chdb_module_client,
        "SELECT Feature, round(CostTotal, 6) FROM otel.v_cost_by_feature_daily"
        " WHERE ServiceName = {s:String} ORDER BY Feature",
        s=svc,
    )
    assert by_feature == [("f1", 0.6), ("f2", 1.5)]
    by_team = q(
        chdb_module_client,
        "SELECT Team, Calls FROM otel.v_cost_by_team_daily WHERE ServiceName = {s:String} ORDER BY Team",
        s=svc,
    )
    assert by_team == [("t1", 3), ("t2", 1)]
    by_user = q(
        chdb_module_client,
        "SELECT User, Team, round(CostTotal, 6) FROM otel.v_cost_by_user_daily"
        " WHERE ServiceName = {s:String} ORDER BY User",
        s=svc,
    )
    assert by_user == [("u1", "t1", 0.6), ("u2", "t2", 1.5)]
    rep = reports.run(chdb_module_client, "spend_by_endpoint", since_hours=2)
    assert ("costs", "/sum") in [(r[0], r[1]) for r in rep.rows]
    assert rep.columns[:3] == ["ServiceName", "Endpoint", "Calls"]


def test_cache_efficiency_hit_rate_savings_and_premium(chdb_module_client):
    svc = "cache-eff"
    insert_spans(
        chdb_module_client,
        [
            call_row(
                svc,
                now_ns(),
                gen_ai_usage_input_tokens=1000,
                gen_ai_usage_cache_read_input_tokens=600,
                cost_savings=0.02,
                cost_cache_write_premium=0.0,
            ),
            call_row(
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
        chdb_module_client,
        "SELECT sum(InputTokens), sum(CacheReadTokens), sum(CacheWriteTokens),"
        " round(sum(CacheReadTokens) / sum(InputTokens), 3), round(sum(CostSavings), 6),"
        " round(sum(CostCacheWritePremium), 6)"
        " FROM otel.v_cache_efficiency WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [(2000, 600, 1000, 0.3, 0.019, 0.003)]
    hourly = q(chdb_module_client, "SELECT HitRate FROM otel.v_cache_efficiency WHERE ServiceName = {s:String}", s=svc)
    assert [round(h, 3) for (h,) in hourly] == [0.3]


def test_cache_never_paid_back_lists_only_old_writes_without_later_reads(chdb_module_client):
    svc = "payback"
    t = now_ns()
    insert_spans(
        chdb_module_client,
        [
            call_row(
                svc,
                t - 2 * HOUR_NS,
                prompt_prefix_hash="never",
                gen_ai_usage_cache_creation_input_tokens=2000,
                cost_cache_write=0.01,
                cost_cache_write_premium=0.002,
            ),
            call_row(svc, t - 2 * HOUR_NS, prompt_prefix_hash="paid", gen_ai_usage_cache_creation_input_tokens=2000),
            call_row(
                svc, t - 2 * HOUR_NS + 60 * 10**9, prompt_prefix_hash="paid", gen_ai_usage_cache_read_input_tokens=2000
            ),
            call_row(
                svc,
                t - 60 * 10**9,
                prompt_prefix_hash="recent",
                gen_ai_usage_cache_creation_input_tokens=2000,
            ),
        ],
    )
    got = q(
        chdb_module_client,
        "SELECT PrefixHash, Writes, WrittenTokens, round(WriteCost, 6), round(WritePremium, 6)"
        " FROM otel.v_cache_never_paid_back(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [("never", 1, 2000, 0.01, 0.002)]


def test_missed_caching_needs_two_uncached_repeats_of_a_cacheable_prefix(chdb_module_client):
    """The prefix's own tokens (not the whole prompt's) against the provider's minimum
    (OpenAI: 1,024); tests/storage/test_caching_views.py sizes the savings."""
    svc = "missed"
    t = now_ns()

    def call(prefix: str, prefix_tokens: int, **attrs):
        return call_row(
            svc,
            t,
            gen_ai_provider_name="openai",
            gen_ai_request_model="gpt-missed",
            prompt_prefix_hash=prefix,
            prompt_prefix_tokens=prefix_tokens,
            gen_ai_usage_input_tokens=2000,
            **attrs,
        )

    rows = [call("miss", 1500, cost_input=0.01) for _ in range(3)]
    rows += [call("hit", 1500) for _ in range(2)]
    rows += [call("hit", 1500, gen_ai_usage_cache_read_input_tokens=1900)]
    rows += [call("small", 500) for _ in range(3)]  # a 2,000-token prompt, but a 500-token prefix
    rows += [call("once", 5000)]
    insert_spans(chdb_module_client, rows)
    got = q(
        chdb_module_client,
        "SELECT PrefixHash, Calls, TotalInputTokens, round(InputCost, 6), PrefixTokens, MinCacheTokens"
        " FROM otel.v_missed_caching(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [("miss", 3, 6000, 0.03, 1500, 1024)]
    assert [r[2] for r in reports.run(chdb_module_client, "missed_caching", since_hours=1).rows if r[0] == svc] == [
        "miss"
    ]


OLD_HASHES = ("r1", "r2", "r2")


def test_duplicate_requests_spend_on_repeats(chdb_module_client):
    svc = "dupes"
    t = now_ns()
    insert_spans(
        chdb_module_client,
        [call_row(svc, t + i, prompt_request_hash="r1", cost_total=0.1) for i in range(3)]
        + [call_row(svc, t, prompt_request_hash="r2", cost_total=0.1)]
        # three days old: outside a 24-hour window, so never read nor counted there
        + [
            call_row(svc, t - 72 * HOUR_NS + i, prompt_request_hash=h, cost_total=1.0) for i, h in enumerate(OLD_HASHES)
        ],
    )

    def dupes(since_hours: int) -> list[tuple]:
        return q(
            chdb_module_client,
            "SELECT RequestHash, Calls, Repeats, round(Spend, 6), round(RepeatSpend, 6)"
            " FROM otel.v_duplicate_requests(since_hours = {h:UInt32}) WHERE ServiceName = {s:String}"
            " ORDER BY RequestHash",
            s=svc,
            h=since_hours,
        )

    assert dupes(24) == [("r1", 3, 2, 0.3, 0.2)]
    assert dupes(24 * 7) == [("r1", 4, 3, 1.3, 0.3), ("r2", 3, 2, 2.1, 1.1)]
    assert reads_only_the_window(chdb_module_client, "SELECT * FROM otel.v_duplicate_requests(since_hours = 24)")
    assert not reads_only_the_window(chdb_module_client, "SELECT * FROM otel.llm_calls WHERE RequestHash != ''")


def test_rate_limit_pressure_share_retries_and_lowest_remaining(chdb_module_client):
    svc = "ratelimit"
    t = now_ns()
    rows = [
        call_row(svc, t, http_response_status_code=429, error_type="RateLimitError", status="Error"),
        call_row(svc, t, throttled="true", retry_count=2, throttled_attempts=2, retry_after_s=1.5),
        call_row(svc, t),
        call_row(svc, t),
    ]
    for row, remaining in zip(rows, ("100", "50", "", "70"), strict=True):
        if remaining:
            row[11][sc.ratelimit_attribute("requests", "remaining")] = remaining
            row[11][sc.ratelimit_attribute("requests", "limit")] = "200"
    insert_spans(chdb_module_client, rows)
    got = q(
        chdb_module_client,
        "SELECT sum(Calls), sum(ThrottledCalls), sum(Retries), min(MinRequestsRemaining), max(RequestsLimit),"
        " min(MinRequestsHeadroom), max(MaxRetryAfterS)"
        " FROM otel.v_rate_limit_pressure WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [(4, 2, 2, 50, 200, 0.25, 1.5)]
    rep = [r for r in reports.run(chdb_module_client, "rate_limits", since_hours=1).rows if r[0] == svc]
    assert rep[0][5] == 0.5  # ThrottledShare


def test_unpriced_and_estimated_views(chdb_module_client):
    svc = "pricing"
    t = now_ns()
    insert_spans(
        chdb_module_client,
        [
            call_row(svc, t, unpriced="true", gen_ai_request_model="mystery", gen_ai_usage_input_tokens=10),
            call_row(svc, t, unpriced="false", gen_ai_usage_input_tokens=10),
            call_row(svc, t, usage_estimated="true", gen_ai_usage_input_tokens=7, cost_total=0.5),
        ],
    )
    unpriced = q(
        chdb_module_client,
        "SELECT RequestModel, Calls, InputTokens FROM otel.v_unpriced_calls WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert unpriced == [("mystery", 1, 10)]
    est = q(
        chdb_module_client,
        "SELECT Calls, InputTokens, CostTotal FROM otel.v_estimated_usage WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert est == [(1, 7, 0.5)]
    assert [r[2] for r in reports.run(chdb_module_client, "unpriced", since_hours=1).rows if r[0] == svc] == ["mystery"]


def test_cost_per_successful_task_joins_by_task_id_or_trace_id(chdb_module_client):
    svc = "tasks"
    t = now_ns()
    trace = secrets.token_hex(16)
    rows = [
        call_row(svc, t, task_id="T1", cost_total=0.1, feature="agent"),
        call_row(svc, t, task_id="T1", cost_total=0.2, feature="agent"),
        call_row(svc, t, trace_id=trace, cost_total=0.5, feature="agent"),  # no task id: joined by trace
        call_row(svc, t, cost_total=9.0, feature="agent"),  # belongs to no task
    ]
    ok = call_row(svc, t, name=sc.TASK_SPAN_NAME, task_id="T1", feature="agent")
    failed = call_row(svc, t, name=sc.TASK_SPAN_NAME, trace_id=trace, feature="agent")
    for span, success in ((ok, "true"), (failed, "false")):
        span[11] = {sc.TASK_ID: span[11].get(sc.TASK_ID, ""), sc.TASK_SUCCESS: success, sc.FEATURE: "agent"}
    # A task recorded three days ago, with its call: outside a 24-hour window.
    old = t - 72 * HOUR_NS
    old_call = call_row(svc, old, task_id="OLD", cost_total=4.0, feature="agent")
    old_outcome = call_row(svc, old, name=sc.TASK_SPAN_NAME, task_id="OLD", feature="agent")
    old_outcome[11] = {sc.TASK_ID: "OLD", sc.TASK_SUCCESS: "true", sc.FEATURE: "agent"}
    insert_spans(chdb_module_client, [*rows, ok, failed, old_call, old_outcome])
    outcomes = q(
        chdb_module_client,
        "SELECT TaskKey = 'T1', Success, Calls, round(CostTotal, 6) FROM otel.v_task_outcomes(since_hours = 24)"
        " WHERE ServiceName = {s:String} ORDER BY Success",
        s=svc,
    )
    assert outcomes == [(0, 0, 1, 0.5), (1, 1, 2, 0.3)]
    per = q(
        chdb_module_client,
        "SELECT Tasks, SuccessfulTasks, round(CostTotal, 6), round(CostPerSuccessfulTask, 6)"
        " FROM otel.v_cost_per_successful_task(since_hours = 24) WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert per == [(2, 1, 0.8, 0.8)]
    week = q(
        chdb_module_client,
        "SELECT sum(Tasks), sum(SuccessfulTasks), round(sum(CostTotal), 6)"
        " FROM otel.v_cost_per_successful_task(since_hours = 24 * 7) WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert week == [(3, 2, 4.8)]
    rep = [r for r in reports.run(chdb_module_client, "cost_per_task", since_hours=1).rows if r[0] == svc]
    assert rep[0][-1] == 0.8
    # Old days of outcomes and calls are never read.
    for view in ("v_task_outcomes", "v_cost_per_successful_task"):
        assert reads_only_the_window(chdb_module_client, f"SELECT * FROM otel.{view}(since_hours = 24)")


def test_a_task_counts_its_calls_from_the_day_before_its_outcome(chdb_module_client):
    svc = "tasks_early_calls"
    t = now_ns()
    early = call_row(svc, t - 20 * HOUR_NS, task_id="LONG", cost_total=0.4)  # 20 h before its outcome
    outcome = call_row(svc, t, name=sc.TASK_SPAN_NAME, task_id="LONG")
    outcome[11] = {sc.TASK_ID: "LONG", sc.TASK_SUCCESS: "true"}
    insert_spans(chdb_module_client, [early, outcome])
    got = q(
        chdb_module_client,
        "SELECT Calls, round(CostTotal, 6) FROM otel.v_task_outcomes(since_hours = 1) WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [(1, 0.4)]


# --- anomaly views ------------------------------------------------------------------------


def _local_noon(days_ago: int) -> int:
    day = dt.datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    return int((day - dt.timedelta(days=days_ago)).timestamp()) * 10**9


def test_spend_anomaly_flags_the_day_10_spike_and_not_the_noise(chdb_module_client):
    svc = "anomaly"
    rng = random.Random(7)
    rows = []
    for i in range(14):  # day 0 is 14 days ago, day 13 is yesterday
        ts = _local_noon(14 - i)
        for endpoint in ("/spiky", "/noisy"):
            spend = 10.0 * (1 + rng.uniform(-0.1, 0.1))
            if endpoint == "/spiky" and i == 10:
                spend = 30.0
            rows += [call_row(svc, ts + k, endpoint=endpoint, cost_total=spend / 4) for k in range(4)]
    insert_spans(chdb_module_client, rows)
    flagged = q(
        chdb_module_client,
        "SELECT Endpoint, Day, PriorDays FROM " + SPEND_DAILY + " WHERE ServiceName = {s:String} AND Flagged",
        s=svc,
    )
    spike_day = dt.datetime.fromtimestamp(_local_noon(4) / 1e9).date()
    assert flagged == [("/spiky", spike_day, 7)]
    # the first 7 days lack history and are never flagged
    early = q(
        chdb_module_client,
        "SELECT count() FROM " + SPEND_DAILY + " WHERE ServiceName = {s:String} AND PriorDays < 7 AND Flagged",
        s=svc,
    )
    assert early == [(0,)]


def test_spend_anomaly_counts_days_without_calls_as_zero(chdb_module_client):
    svc = "anomaly-gaps"
    rows = [call_row(svc, _local_noon(d), endpoint="/e", cost_total=1.0) for d in (12, 3)]
    rows += [call_row(svc, _local_noon(2), endpoint="/e", cost_total=1.0)]
    insert_spans(chdb_module_client, rows)
    got = q(
        chdb_module_client,
        "SELECT PriorDays, round(PriorMean, 4), Flagged FROM "
        + SPEND_DAILY
        + " WHERE ServiceName = {s:String} AND Day = {d:Date}",
        s=svc,
        d=dt.datetime.fromtimestamp(_local_noon(3) / 1e9).date(),
    )
    assert got == [(7, 0.0, 1)]  # 7 filled zero days before; a jump from nothing is flagged


def test_cache_hit_drop_flagged_only_for_a_halving(chdb_module_client):
    svc = "hitdrop"
    base = (now_ns() // HOUR_NS) * HOUR_NS
    rows = []
    for h in range(30, 0, -1):
        rate = {3: 0.2, 6: 0.7}.get(h, 0.8)
        rows.append(
            call_row(
                svc,
                base - h * HOUR_NS,
                gen_ai_usage_input_tokens=20000,
                gen_ai_usage_cache_read_input_tokens=int(20000 * rate),
            )
        )
    insert_spans(chdb_module_client, rows)
    flagged = q(
        chdb_module_client,
        "SELECT Hour, round(HitRate, 2), PriorHours FROM otel.v_cache_hit_drops_hourly"
        " WHERE ServiceName = {s:String} AND Flagged",
        s=svc,
    )
    assert len(flagged) == 1
    assert flagged[0][0] == dt.datetime.fromtimestamp((base - 3 * HOUR_NS) / 1e9)
    assert flagged[0][1:] == (0.2, 24)


def test_expensive_requests_over_threshold_or_endpoint_p99(chdb_module_client):
    svc = "expensive"
    t = now_ns() - HOUR_NS
    rows = [call_row(svc, t + i, endpoint="/e", cost_total=0.01) for i in range(150)]
    rows += [call_row(svc, t, endpoint="/e", cost_total=0.5), call_row(svc, t, endpoint="/other", cost_total=2.0)]
    rows += [call_row(svc, t, endpoint="/tiny", cost_total=0.9), call_row(svc, t, endpoint="/tiny", cost_total=0.01)]
    insert_spans(chdb_module_client, rows)
    got = q(
        chdb_module_client,
        "SELECT Endpoint, CostTotal, Reason FROM otel.v_expensive_requests"
        " WHERE ServiceName = {s:String} ORDER BY CostTotal",
        s=svc,
    )
    assert got == [("/e", 0.5, "over_endpoint_p99"), ("/other", 2.0, "over_threshold")]


def test_all_reports_run_and_name_their_columns(chdb_module_client):
    for name in reports.DEFAULT_REPORTS:
        rep = reports.run(chdb_module_client, name, since_hours=24)
        assert rep.title and rep.columns and rep.name == name
        assert all(len(r) == len(rep.columns) for r in rep.rows)
    with pytest.raises(ValueError):
        reports.run(chdb_module_client, "spend_by_model", since_hours=0)
    with pytest.raises(ValueError):
        reports.run(chdb_module_client, "spend_by_model", since_hours=1, database="otel; DROP TABLE otel.otel_traces")


def test_spend_anomaly_first_day_has_null_not_nan_prior(chdb_module_client):
    svc = "anomaly-first-day"
    insert_spans(chdb_module_client, [call_row(svc, _local_noon(1), endpoint="/e", cost_total=2.0)])
    got = q(
        chdb_module_client,
        "SELECT PriorDays, PriorMean, PriorStddev, ZScore, Flagged FROM "
        + SPEND_DAILY
        + " WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [(0, None, None, None, 0)]
    summed = q(
        chdb_module_client,
        "SELECT sum(PriorMean) FROM " + SPEND_DAILY + " WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert summed == [(0.0,)] or summed == [(None,)]  # never NaN


def test_cache_hit_drops_read_only_the_last_35_days(chdb_module_client):
    svc = "cache-drop-old"
    old = now_ns() - 40 * 24 * HOUR_NS
    rows = [
        call_row(
            svc,
            old - h * HOUR_NS,
            endpoint="/e",
            gen_ai_usage_input_tokens=20000,
            gen_ai_usage_cache_read_input_tokens=c,
        )
        for h, c in ((4, 15000), (3, 15000), (2, 15000), (1, 15000), (0, 0))
    ]
    insert_spans(chdb_module_client, rows)
    got = q(
        chdb_module_client, "SELECT count() FROM otel.v_cache_hit_drops_hourly WHERE ServiceName = {s:String}", s=svc
    )
    assert got == [(0,)]
