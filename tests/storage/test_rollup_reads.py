"""Rate-limit pressure and the cache's request hit share read llm_cost_hourly, not
llm_calls (issue 24, item 3): the views give exactly what their old definitions over
llm_calls gave (lowest headroom and NULL-when-no-headers included), read no row of
llm_calls, and a database created before the rollup's new columns gets them filled once
from llm_calls on upgrade (022_rollup_backfill.sql), never twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.storage import migrations
from tests.helpers.chdb import chdb_dsn, insert_spans, migrated_client
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
    with migrated_client(chdb_dsn(tmp_path)) as client:
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

    # The back-fill applied again (an edited file, a repair) adds nothing.
    backfill = (migrations.MIGRATIONS_DIR / "022_rollup_backfill.sql").read_text(encoding="utf-8")
    for statement in migrations.split_statements(migrations.render(backfill, database=DB, cluster=None, ttl_days=180)):
        client.command(statement)
    _same(client, NEW_RATE, OLD_RATE)
    _same(client, NEW_HIT, OLD_HIT)
