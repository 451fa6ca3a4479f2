"""Rate-limit pressure and the cache's request hit share read llm_cost_hourly, not
llm_calls (issue 24, item 3): the views give exactly what their old definitions over
llm_calls gave (lowest headroom and NULL-when-no-headers included), read no row of
llm_calls, and a database created before the rollup's new columns gets them filled once
from llm_calls on upgrade (022_rollup_backfill.sql), never twice. The daily views read
llm_cost_daily (issue 22, item 2) and give what the calls of each day give; an older
database gets llm_cost_daily filled from llm_cost_hourly once (023_rollup_daily_backfill.sql)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.storage import migrations
from tests.helpers.chdb import chdb_dsn, fresh_client, insert_spans
from tests.helpers.span_rows import now_ns, trace_row

FIXTURE = Path(__file__).with_name("fixtures") / "schema_a5d3197.sql"
DB = "otel"

# The views as they were defined before issue 24, over llm_calls.
OLD_RATE = f"""
SELECT toStartOfHour(Timestamp) AS Hour, ServiceName, Provider, RequestModel, Endpoint, Team,
    count() AS Calls, countIf(HttpStatus = 429 OR Throttled = 1) AS ThrottledCalls,
    ThrottledCalls / Calls AS ThrottledShare,
    sum(ThrottledAttempts) AS ThrottledAttempts, sum(RetryCount) AS Retries, max(RetryAfterS) AS MaxRetryAfterS,
    min(RateLimitRequestsRemaining) AS MinRequestsRemaining, max(RateLimitRequestsLimit) AS RequestsLimit,
    min(RateLimitTokensRemaining) AS MinTokensRemaining, max(RateLimitTokensLimit) AS TokensLimit,
    min(RateLimitRequestsRemaining / RateLimitRequestsLimit) AS MinRequestsHeadroom,
    min(RateLimitTokensRemaining / RateLimitTokensLimit) AS MinTokensHeadroom
FROM {DB}.llm_calls GROUP BY Hour, ServiceName, Provider, RequestModel, Endpoint, Team
ORDER BY Hour, ServiceName, Provider, RequestModel, Endpoint, Team
"""
NEW_RATE = (
    f"SELECT * FROM {DB}.v_rate_limit_pressure ORDER BY Hour, ServiceName, Provider, RequestModel, Endpoint, Team"
)
OLD_HIT = f"""
SELECT toStartOfHour(Timestamp) AS Hour, ServiceName, Endpoint, Provider, RequestModel, count() AS Calls,
    countIf(c.InputTokens > 0) AS CallsWithInput,
    countIf(c.InputTokens > 0 AND c.CacheReadTokens > 0) AS CallsWithCacheRead,
    sum(c.InputTokens) AS InputTokens, sum(c.CacheReadTokens) AS CacheReadTokens,
    CacheReadTokens / nullIf(InputTokens, 0) AS TokenHitRate,
    CallsWithCacheRead / nullIf(CallsWithInput, 0) AS RequestHitRate
FROM {DB}.llm_calls AS c GROUP BY Hour, ServiceName, Endpoint, Provider, RequestModel
ORDER BY Hour, ServiceName, Endpoint, Provider, RequestModel
"""
NEW_HIT = f"SELECT * FROM {DB}.v_cache_hit_share_hourly ORDER BY Hour, ServiceName, Endpoint, Provider, RequestModel"
# The daily views read llm_cost_daily (issue 22): the same as the calls of each day.
_DAILY_SUMS = (
    "count(), countIf(StatusCode = 'Error' OR ErrorType != ''), countIf(Unpriced = 1), sum(InputTokens),"
    " sum(OutputTokens), sum(CacheReadTokens), sum(CacheWriteTokens), sum(ReasoningTokens),"
    " round(sum(CostTotal), 9), round(sum(CostSavings), 9)"
)
OLD_DAILY = {
    "v_cost_by_model_daily": f"""
SELECT toDate(Timestamp) AS Day, ServiceName, Provider, RequestModel, {_DAILY_SUMS}
FROM {DB}.llm_calls GROUP BY Day, ServiceName, Provider, RequestModel ORDER BY ALL""",
    "v_cost_by_feature_daily": f"""
SELECT toDate(Timestamp) AS Day, ServiceName, Feature, count(), sum(InputTokens), sum(OutputTokens),
    round(sum(CostTotal), 9), round(sum(CostSavings), 9)
FROM {DB}.llm_calls GROUP BY Day, ServiceName, Feature ORDER BY ALL""",
    "v_cost_by_team_daily": f"""
SELECT toDate(Timestamp) AS Day, ServiceName, Team, count(), sum(InputTokens), sum(OutputTokens),
    round(sum(CostTotal), 9), round(sum(CostSavings), 9)
FROM {DB}.llm_calls GROUP BY Day, ServiceName, Team ORDER BY ALL""",
}
OLD_DAILY["v_top_users"] = f"""
SELECT ServiceName, User, count(), sum(InputTokens), sum(OutputTokens), round(sum(CostTotal), 9),
    min(toDate(Timestamp)), max(toDate(Timestamp))
FROM {DB}.llm_calls WHERE User != '' AND toDate(Timestamp) >= toDate(now() - toIntervalHour(50))
GROUP BY ServiceName, User ORDER BY ALL"""
NEW_DAILY = {
    "v_top_users": f"""
SELECT ServiceName, User, Calls, InputTokens, OutputTokens, round(CostTotal, 9), FirstDay, LastDay
FROM {DB}.v_top_users(since_hours = 50) ORDER BY ALL""",
    "v_cost_by_model_daily": f"""
SELECT Day, ServiceName, Provider, RequestModel, Calls, Errors, Unpriced, InputTokens, OutputTokens, CacheReadTokens,
    CacheWriteTokens, ReasoningTokens, round(CostTotal, 9), round(CostSavings, 9)
FROM {DB}.v_cost_by_model_daily ORDER BY ALL""",
    "v_cost_by_feature_daily": f"""
SELECT Day, ServiceName, Feature, Calls, InputTokens, OutputTokens, round(CostTotal, 9), round(CostSavings, 9)
FROM {DB}.v_cost_by_feature_daily ORDER BY ALL""",
    "v_cost_by_team_daily": f"""
SELECT Day, ServiceName, Team, Calls, InputTokens, OutputTokens, round(CostTotal, 9), round(CostSavings, 9)
FROM {DB}.v_cost_by_team_daily ORDER BY ALL""",
}


def _calls(service: str, n: int, start_ns: int) -> list[list[Any]]:
    """``n`` calls over 2 endpoints, 2 models and 2 features: some with rate-limit headers
    (one with a limit of 0), some throttled or retried, some reading from cache, some with
    no input tokens."""
    rows = []
    for i in range(n):
        attrs: dict[str, str] = {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: f"m{i % 2}",
            "llmcost.endpoint": f"POST /e{i % 3 % 2}",
            "llmcost.feature": f"f{i % 5 % 2}",
            "llmcost.team": "t",
            "llmcost.user": f"u{i % 4}" if i % 5 else "",
            sc.GEN_AI_USAGE_INPUT_TOKENS: str(0 if i % 7 == 0 else 100 + i),
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: str(50 if i % 3 == 0 else 0),
            sc.RETRY_COUNT: str(i % 4 // 3),
            sc.RETRY_AFTER_S: str(i % 5 * 0.5),
            sc.THROTTLED: "true" if i % 6 == 0 else "false",
            sc.THROTTLED_ATTEMPTS: str(i % 6 == 0),
        }
        if i % 4:
            attrs[sc.ratelimit_attribute("requests", "remaining")] = str(1000 - 7 * i)
            attrs[sc.ratelimit_attribute("requests", "limit")] = str(1000 if i % 9 else 0)
            attrs[sc.ratelimit_attribute("tokens", "remaining")] = str(90_000 - 1000 * i)
            attrs[sc.ratelimit_attribute("tokens", "limit")] = "100000"
        rows.append(trace_row(start_ns + i * 600 * 10**9, attrs, service=service, name=f"chat m{i % 2}"))
    return rows


def _same(client: Any, new: str, old: str) -> list[tuple]:
    got, want = client.query(new).result_rows, client.query(old).result_rows
    assert got == want
    return got


def test_the_views_over_the_rollup_give_what_the_old_views_over_llm_calls_gave(tmp_path: Path) -> None:
    with fresh_client(tmp_path) as client:
        insert_spans(client, _calls("fresh", 40, now_ns() - 8 * 3600 * 10**9))
        insert_spans(client, _calls("fresh", 13, now_ns() - 3 * 3600 * 10**9))  # a second part

        rate = _same(client, NEW_RATE, OLD_RATE)
        hit = _same(client, NEW_HIT, OLD_HIT)

        assert any(r[12] is None for r in rate) and any(r[12] is not None for r in rate)  # NULL: no headers
        assert any(r[-1] for r in hit)
        calls = client.query(f"SELECT count() FROM {DB}.llm_calls").result_rows[0][0]
        rollup = client.query(f"SELECT count() FROM {DB}.llm_cost_hourly").result_rows[0][0]
        assert rollup < calls
        limit = {"max_rows_to_read": rollup, "read_overflow_mode": "throw"}  # llm_calls would exceed it
        client.query(NEW_RATE, settings=limit)
        client.query(NEW_HIT, settings=limit)


def _same_daily(client: Any) -> None:
    for view, old in OLD_DAILY.items():
        assert _same(client, NEW_DAILY[view], old), view


def test_the_daily_views_read_the_daily_rollup_and_give_what_the_calls_give(tmp_path: Path) -> None:
    day_ns = 24 * 3600 * 10**9
    with fresh_client(tmp_path) as client:
        for days_ago in (3, 2, 1):  # 40 calls 10 minutes apart: some days are split in two
            insert_spans(client, _calls("daily", 40, now_ns() - days_ago * day_ns - 3 * 3600 * 10**9))
        insert_spans(client, _calls("daily", 13, now_ns() - 3600 * 10**9))

        _same_daily(client)
        hourly = client.query(f"SELECT count() FROM {DB}.llm_cost_hourly").result_rows[0][0]
        daily = client.query(f"SELECT count() FROM {DB}.llm_cost_daily FINAL").result_rows[0][0]
        assert daily < hourly
        limit = {"max_rows_to_read": daily * 2, "read_overflow_mode": "throw"}  # parts not yet merged
        for sql in NEW_DAILY.values():
            client.query(sql, settings=limit)


@pytest.fixture
def old_database(tmp_path: Path) -> Any:
    client = clickhouse_connect.get_client(dsn=chdb_dsn(tmp_path))
    for statement in migrations.split_statements(FIXTURE.read_text(encoding="utf-8")):
        client.command(statement)
    yield client
    client.close()


def test_an_upgraded_database_gets_the_new_columns_filled_once_from_llm_calls(old_database: Any) -> None:
    client = old_database
    insert_spans(client, _calls("upgrade", 30, now_ns() - 6 * 3600 * 10**9))  # recorded before the upgrade

    migrations.migrate(client, database=DB)
    insert_spans(client, _calls("upgrade", 11, now_ns() - 5 * 3600 * 10**9))  # and after
    _same(client, NEW_RATE, OLD_RATE)
    _same(client, NEW_HIT, OLD_HIT)
    _same_daily(client)  # llm_cost_daily filled from llm_cost_hourly (023_rollup_daily_backfill.sql)

    # The back-fill applied again (an edited file, a repair) adds nothing.
    for name in ("022_rollup_backfill.sql", "023_rollup_daily_backfill.sql"):
        backfill = (migrations.MIGRATIONS_DIR / name).read_text(encoding="utf-8")
        rendered = migrations.render(backfill, database=DB, cluster=None, ttl_days=180)
        for statement in migrations.split_statements(rendered):
            client.command(statement)
    _same(client, NEW_RATE, OLD_RATE)
    _same(client, NEW_HIT, OLD_HIT)
    _same_daily(client)
