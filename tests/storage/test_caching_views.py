"""The caching views of 014_caching_opportunities.sql on scripted traffic, each expectation
computed by hand (issue 20, item 1): missed caching is judged on the shared prefix against
the provider's minimum and sized by what caching would save; a cache write is judged
against its breakeven; the hit rate is also a share of requests.

Each test uses its own ServiceName and model, so the per-model prices the views read
from recorded calls never mix between tests.
"""

from __future__ import annotations

import pytest

from otel_llmcost.reporting import reports
from tests.helpers.chdb import insert_spans, q
from tests.helpers.span_rows import HOUR_NS, call_row, now_ns

MINUTE_NS = 60 * 10**9
# Sonnet-like prices, USD per token: input $3/M, cache read $0.30/M, 5-minute write $3.75/M
# (premium $0.75/M), 1-hour write $6/M (premium $3/M).
INPUT, READ, PREMIUM_5M, PREMIUM_1H = 3e-6, 0.3e-6, 0.75e-6, 3e-6


def anthropic_call(svc: str, model: str, ts: int, **attrs) -> list:
    return call_row(svc, ts, gen_ai_provider_name="anthropic", gen_ai_request_model=model, **attrs)


def uncached(svc: str, model: str, ts: int, prefix: str, prefix_tokens: int, input_tokens: int) -> list:
    """A call sending `prefix` uncached: every input token billed at the input price."""
    return anthropic_call(
        svc,
        model,
        ts,
        prompt_prefix_hash=prefix,
        prompt_prefix_tokens=prefix_tokens,
        gen_ai_usage_input_tokens=input_tokens,
        usage_uncached_input_tokens=input_tokens,
        cost_input=round(input_tokens * INPUT, 12),
    )


def reference_cache_calls(svc: str, model: str, ts: int) -> list:
    """Calls of `model` on another prefix that wrote and read the cache: what the model pays
    per cache-read token ($0.30/M) and per written token above input ($0.75/M)."""
    return [
        anthropic_call(
            svc,
            model,
            ts,
            prompt_prefix_hash="reference",
            gen_ai_usage_input_tokens=1000,
            gen_ai_usage_cache_creation_input_tokens=1000,
            cost_cache_write=1000 * (INPUT + PREMIUM_5M),
            cost_cache_write_premium=1000 * PREMIUM_5M,
        ),
        anthropic_call(
            svc,
            model,
            ts + MINUTE_NS,
            prompt_prefix_hash="reference",
            gen_ai_usage_input_tokens=1000,
            gen_ai_usage_cache_read_input_tokens=1000,
            cost_cache_read=1000 * READ,
        ),
    ]


def missed(client, svc: str) -> list[tuple]:
    return q(
        client,
        "SELECT PrefixHash, Calls, PrefixTokens, MinCacheTokens, ExpectedReads, ExpectedWrites, PriceBasis,"
        " round(EstSavings, 6), round(EstSavingsPerMonth, 6)"
        " FROM otel.v_missed_caching(since_hours = 24) WHERE ServiceName = {s:String} ORDER BY PrefixHash",
        s=svc,
    )


# --- missed caching -------------------------------------------------------------------------


def test_short_system_prompts_are_not_missed_caching_though_the_whole_prompt_is_long(chdb_module_client):
    """The user's case: an 8-token and a 13-token system prompt, 1,500-token prompts, sent
    50 times each uncached. The old view listed both (whole prompt >= 1024 tokens, charging
    the full input cost); neither prefix reaches Anthropic's 1,024-token minimum."""
    svc, model = "missed-short", "claude-sonnet-4-5-short"
    t = now_ns() - HOUR_NS
    rows = [uncached(svc, model, t + i * MINUTE_NS, "sys8", 8, 1500) for i in range(50)]
    rows += [uncached(svc, model, t + i * MINUTE_NS, "sys13", 13, 1500) for i in range(50)]
    insert_spans(chdb_module_client, rows + reference_cache_calls(svc, model, t))
    assert missed(chdb_module_client, svc) == []


def test_a_long_shared_prefix_sent_uncached_is_listed_with_the_saving_caching_would_bring(chdb_module_client):
    """A 2,000-token prefix (prompts of 2,100 tokens) sent 100 times, one minute apart, never
    cached. Cached with a 5-minute TTL: the first call writes, the 99 others read.
      reads:  99 * 2,000 * ($3.00 - $0.30)/M = $0.5346
      write:   1 * 2,000 * $0.75/M           = $0.0015 (premium)
      saving: 0.5346 - 0.0015                = $0.5331 over 99 minutes, i.e. one day (the
      floor): $0.5331 * 30 = $15.993 a month."""
    svc, model = "missed-long", "claude-sonnet-4-5-long"
    t = now_ns() - 2 * HOUR_NS
    rows = [uncached(svc, model, t + i * MINUTE_NS, "long", 2000, 2100) for i in range(100)]
    insert_spans(chdb_module_client, rows + reference_cache_calls(svc, model, t))
    assert missed(chdb_module_client, svc) == [("long", 100, 2000, 1024, 99, 1, "recorded", 0.5331, 15.993)]
    (row,) = [r for r in reports.run(chdb_module_client, "missed_caching", since_hours=3).rows if r[0] == svc]
    columns = reports.run(chdb_module_client, "missed_caching", since_hours=3).columns
    report = dict(zip(columns, row, strict=True))
    assert report["PrefixTokens"] == 2000 and report["EstSavingsPerMonthUsd"] == 15.993


def test_missed_caching_counts_only_repeats_within_the_cache_lifetime(chdb_module_client):
    """Three calls an hour apart: a 5-minute cache would have expired before each repeat,
    so caching would only add write premiums: not listed."""
    svc, model = "missed-sparse", "claude-sonnet-4-5-sparse"
    t = now_ns() - 4 * HOUR_NS
    rows = [uncached(svc, model, t + i * HOUR_NS, "sparse", 2000, 2100) for i in range(3)]
    insert_spans(chdb_module_client, rows + reference_cache_calls(svc, model, t))
    assert missed(chdb_module_client, svc) == []


def test_missed_caching_without_any_cache_price_is_listed_with_an_unknown_saving(chdb_module_client):
    """No call of the model ever read or wrote the cache and no catalogue: the saving is
    NULL (unknown), never $0, and the prefix is still listed."""
    svc, model = "missed-unknown", "claude-sonnet-4-5-unknown"
    t = now_ns() - HOUR_NS
    insert_spans(chdb_module_client, [uncached(svc, model, t + i * MINUTE_NS, "p", 1500, 1600) for i in range(3)])
    assert missed(chdb_module_client, svc) == [("p", 3, 1500, 1024, 2, 1, "", None, None)]


# --- never paid back --------------------------------------------------------------------------


def write(svc: str, model: str, ts: int, tokens: int, ttl: str, prefix: str = "", endpoint: str = "/e") -> list:
    """A cache write of `tokens` at the Sonnet-like prices, with the premium and breakeven
    the instrumentation records (premium / (input - read) per token)."""
    premium = PREMIUM_1H if ttl == "1h" else PREMIUM_5M
    attrs = {"usage_cache_write_1h_tokens": tokens} if ttl == "1h" else {}
    return anthropic_call(
        svc,
        model,
        ts,
        endpoint=endpoint,
        prompt_prefix_hash=prefix,
        gen_ai_usage_input_tokens=tokens,
        gen_ai_usage_cache_creation_input_tokens=tokens,
        cache_write_ttl=ttl,
        cost_cache_write=round(tokens * (INPUT + premium), 12),
        cost_cache_write_premium=round(tokens * premium, 12),
        cache_breakeven_reads=premium / (INPUT - READ),
        **attrs,
    )


def read(svc: str, model: str, ts: int, tokens: int, prefix: str = "", endpoint: str = "/e") -> list:
    return anthropic_call(
        svc,
        model,
        ts,
        endpoint=endpoint,
        prompt_prefix_hash=prefix,
        gen_ai_usage_input_tokens=tokens,
        gen_ai_usage_cache_read_input_tokens=tokens,
        cost_cache_read=round(tokens * READ, 12),
    )


def never_paid_back(client, svc: str) -> list[tuple]:
    return q(
        client,
        "SELECT PrefixHash, Endpoint, Writes, Writes1h, WrittenTokens, Reads, round(BreakevenReads, 4),"
        " round(WritePremium, 6), round(NetLoss, 6)"
        " FROM otel.v_cache_never_paid_back(since_hours = 24) WHERE ServiceName = {s:String}"
        " ORDER BY PrefixHash, Endpoint",
        s=svc,
    )


def test_a_one_hour_write_read_once_did_not_pay_back(chdb_module_client):
    """The user's case: 5,000 tokens written with a 1-hour TTL, read once.
      premium:   5,000 * $3/M             = $0.015
      one read saves 5,000 * $2.70/M      = $0.0135; breakeven 3/2.7 = 1.1111 reads
      net loss:  0.015 - 0.0135           = $0.0015
    The old view listed only prefixes never read."""
    svc, model = "payback-1h", "claude-sonnet-4-5-1h"
    t = now_ns() - 3 * HOUR_NS
    insert_spans(
        chdb_module_client,
        [write(svc, model, t, 5000, "1h", prefix="sys"), read(svc, model, t + 30 * MINUTE_NS, 5000, prefix="sys")],
    )
    assert never_paid_back(chdb_module_client, svc) == [("sys", "", 1, 1, 5000, 1, 1.1111, 0.015, 0.0015)]


def test_a_prefix_less_write_is_listed_by_endpoint(chdb_module_client):
    """A single-message prompt with cache_control (no prefix hash), 4,000 tokens written
    for 5 minutes and never read: the premium 4,000 * $0.75/M = $0.003 is lost. The old
    view skipped every write without a prefix hash."""
    svc, model = "payback-noprefix", "claude-sonnet-4-5-noprefix"
    t = now_ns() - 2 * HOUR_NS
    insert_spans(chdb_module_client, [write(svc, model, t, 4000, "5m", endpoint="/ask")])
    assert never_paid_back(chdb_module_client, svc) == [("", "/ask", 1, 0, 4000, 0, 0.2778, 0.003, 0.003)]


def test_writes_read_at_or_above_their_breakeven_are_not_listed(chdb_module_client):
    """A 5-minute write read twice (breakeven 0.28), a 1-hour write read twice (breakeven
    1.11, two reads a minute apart): both paid back. A 5-minute write read only after its
    cache expired (an hour later: a gap longer than the TTL) counts no read: listed with
    its whole premium, 2,000 * $0.75/M = $0.0015."""
    svc, model = "payback-paid", "claude-sonnet-4-5-paid"
    t = now_ns() - 5 * HOUR_NS
    insert_spans(
        chdb_module_client,
        [
            write(svc, model, t, 2000, "5m", prefix="a"),
            read(svc, model, t + MINUTE_NS, 2000, prefix="a"),
            read(svc, model, t + 2 * MINUTE_NS, 2000, prefix="a"),
            write(svc, model, t, 2000, "1h", prefix="b"),
            read(svc, model, t + 40 * MINUTE_NS, 2000, prefix="b"),
            read(svc, model, t + 41 * MINUTE_NS, 2000, prefix="b"),
            write(svc, model, t, 2000, "5m", prefix="c"),
            read(svc, model, t + HOUR_NS, 2000, prefix="c"),
        ],
    )
    assert never_paid_back(chdb_module_client, svc) == [("c", "", 1, 0, 2000, 0, 0.2778, 0.0015, 0.0015)]


def test_a_write_whose_cache_may_still_be_read_is_not_judged_yet(chdb_module_client):
    svc, model = "payback-live", "claude-sonnet-4-5-live"
    insert_spans(chdb_module_client, [write(svc, model, now_ns() - 10 * MINUTE_NS, 2000, "1h", prefix="x")])
    assert never_paid_back(chdb_module_client, svc) == []


# --- hit rate: requests and tokens ------------------------------------------------------------


def test_request_share_and_token_share_of_cache_hits_differ(chdb_module_client):
    """10 calls with input: 9 read 200 of 1,000 input tokens from cache, 1 read nothing;
    one more call failed with no input (no miss).
      request share: 9 / 10                   = 0.9
      token share:   9 * 200 / (10 * 1,000)   = 0.18"""
    svc = "hit-share"
    t = now_ns()
    rows = [call_row(svc, t, gen_ai_usage_input_tokens=1000, gen_ai_usage_cache_read_input_tokens=200)] * 9
    rows += [call_row(svc, t, gen_ai_usage_input_tokens=1000)]
    rows += [call_row(svc, t, status="Error")]
    insert_spans(chdb_module_client, rows)
    got = q(
        chdb_module_client,
        "SELECT sum(Calls), sum(CallsWithInput), sum(CallsWithCacheRead), round(sum(CallsWithCacheRead) /"
        " sum(CallsWithInput), 4), round(sum(CacheReadTokens) / sum(InputTokens), 4)"
        " FROM otel.v_cache_hit_share_hourly WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert got == [(11, 10, 9, 0.9, 0.18)]
    hourly = q(
        chdb_module_client,
        "SELECT round(RequestHitRate, 4), round(TokenHitRate, 4) FROM otel.v_cache_hit_share_hourly"
        " WHERE ServiceName = {s:String}",
        s=svc,
    )
    assert hourly == [(0.9, 0.18)]
    result = reports.run(chdb_module_client, "cache_efficiency", since_hours=1)
    (row,) = [dict(zip(result.columns, r, strict=True)) for r in result.rows if r[0] == svc]
    assert (row["HitRate"], row["RequestHitRate"]) == (0.18, 0.9)


@pytest.mark.parametrize(
    "view",
    ["v_missed_caching(since_hours = 24)", "v_cache_never_paid_back(since_hours = 24)", "v_cache_hit_share_hourly"],
)
def test_caching_views_run_on_an_empty_service(chdb_module_client, view):
    assert q(chdb_module_client, f"SELECT count() FROM otel.{view} WHERE ServiceName = 'nobody'") == [(0,)]


def test_the_hit_rate_floor_rule_fires_below_the_floor_only_where_the_cache_is_used(chdb_module_client):
    """The alert llmcost-cache-hit-floor (rules.yaml), token share < 0.2 over the last hour,
    endpoints with >= 20 calls that read the cache in the last 7 days:
      /low:   4 of 25 calls read all 1,000 tokens: 4,000 / 25,000 = 0.16 -> fires
      /high: 20 of 25 calls: 0.8 -> silent; /never: never read the cache -> not judged."""
    import datetime as dt
    from pathlib import Path

    import yaml

    from otel_llmcost.reporting import grafana_macros as gm

    svc = "hit-floor"
    t = now_ns()
    rows = []
    for endpoint, hits in (("/low", 4), ("/high", 20), ("/never", 0)):
        for i in range(25):
            reads = {"gen_ai_usage_cache_read_input_tokens": 1000} if i < hits else {}
            rows.append(call_row(svc, t, endpoint=endpoint, gen_ai_usage_input_tokens=1000, **reads))
    insert_spans(chdb_module_client, rows)
    path = Path(__file__).parents[2] / "dashboards/provisioning/alerting/rules.yaml"
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"][0]["rules"]
    rule = next(r for r in rules if r["uid"] == "llmcost-cache-hit-floor")
    (condition,) = next(d for d in rule["data"] if d["refId"] == "B")["model"]["conditions"]
    assert condition["evaluator"] == {"type": "lt", "params": [0.2]}
    now = dt.datetime.now(dt.timezone.utc)
    sql = gm.expand(rule["data"][0]["model"]["rawSql"], time_range=gm.TimeRange(now - dt.timedelta(hours=1), now))
    got = q(chdb_module_client, sql.replace("FROM v_", "FROM otel.v_"))
    values = {endpoint: round(value, 4) for service, endpoint, value in got if service == svc}
    assert values == {"/low": 0.16, "/high": 0.8}
    assert [e for e, v in values.items() if v < condition["evaluator"]["params"][0]] == ["/low"]
