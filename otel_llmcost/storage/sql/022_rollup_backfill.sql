-- Fill the columns that llm_cost_hourly gained for rate-limit pressure and the cache's
-- request hit share (issue 24, 003_rollups.sql) for the hours recorded before them.
--
-- The rows a database already holds got the columns' defaults (0, NULL), and the
-- materialized view fills them only for later inserts. This adds, per hour and key, a
-- row holding only those columns, computed from llm_calls (as far as its TTL keeps it):
-- its other sums are 0, so merging it changes nothing else, and min/max over NULL and a
-- value is the value. It runs only while no row of the rollup has any of them set, so a
-- new database (nothing to read) and a second application (already set) add nothing.
-- chdb has a single writer, so no insert lands between the migrations and this; on a
-- ClickHouse server, run `otel-llmcost migrate` before the collector writes.
INSERT INTO {database}.llm_cost_hourly (
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    MaxRetryAfterS,
    MinRequestsRemaining,
    RequestsLimit,
    MinTokensRemaining,
    TokensLimit,
    MinRequestsHeadroom,
    MinTokensHeadroom,
    CallsWithInput,
    CallsWithCacheRead
)
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    max(RetryAfterS),
    min(RateLimitRequestsRemaining),
    max(RateLimitRequestsLimit),
    min(RateLimitTokensRemaining),
    max(RateLimitTokensLimit),
    min(RateLimitRequestsRemaining / RateLimitRequestsLimit),
    min(RateLimitTokensRemaining / RateLimitTokensLimit),
    toUInt64(countIf(InputTokens > 0)),
    toUInt64(countIf(InputTokens > 0 AND CacheReadTokens > 0))
FROM {database}.llm_calls
WHERE (
    SELECT count()
    FROM {database}.llm_cost_hourly
    WHERE CallsWithInput > 0
        OR MaxRetryAfterS > 0
        OR MinRequestsRemaining IS NOT NULL
        OR RequestsLimit IS NOT NULL
        OR MinTokensRemaining IS NOT NULL
        OR TokensLimit IS NOT NULL
) = 0
GROUP BY
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;
