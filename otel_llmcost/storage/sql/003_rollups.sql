-- Hourly and daily rollups fed from llm_calls, so dashboards over weeks read
-- thousands of rows instead of millions. Sums are SimpleAggregateFunction
-- (read them with sum()), latencies are quantile states (read them with
-- quantilesMerge / quantilesIfMerge). The views hide both details.
--
-- Calls per rollup row at 1,000,000 calls over 30 days (20 endpoints each calling 1 to 3
-- of 10 models, feature and team following from the endpoint, 5,000 users;
-- benchmarks/query_bench.py): llm_cost_hourly 34, llm_cost_daily 787, llm_user_daily 1.5,
-- llm_user_spend_daily 6.5. Feature and team cost llm_cost_hourly no rows while they
-- follow from the endpoint; its rows are hours x the endpoint-model pairs in use.
--
-- llm_cost_hourly also serves rate-limit pressure (v_rate_limit_pressure, 007) and the
-- request hit share of the cache (v_cache_hit_share_hourly, 014), whose groupings are a
-- subset of its key (issue 24): the lowest remaining requests and tokens, the highest
-- limits, the longest retry-after and the lowest headroom (remaining / limit of the same
-- call) are SimpleAggregateFunction(min / max), NULL where no call of the row carried
-- rate-limit headers; CallsWithInput / CallsWithCacheRead count calls with input tokens
-- and those of them that read from cache. A database created before them gets them
-- filled from llm_calls once (022_rollup_backfill.sql).

CREATE TABLE IF NOT EXISTS {database}.llm_cost_hourly {cluster} (
    Hour DateTime,
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Endpoint LowCardinality(String),
    RequestModel LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Throttled SimpleAggregateFunction(sum, UInt64),
    ThrottledAttempts SimpleAggregateFunction(sum, UInt64),
    Retries SimpleAggregateFunction(sum, UInt64),
    Unpriced SimpleAggregateFunction(sum, UInt64),
    Estimated SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64),
    UncachedInputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    CostInput SimpleAggregateFunction(sum, Float64),
    CostOutput SimpleAggregateFunction(sum, Float64),
    CostCacheRead SimpleAggregateFunction(sum, Float64),
    CostCacheWrite SimpleAggregateFunction(sum, Float64),
    CostCacheWritePremium SimpleAggregateFunction(sum, Float64),
    CostSavings SimpleAggregateFunction(sum, Float64),
    DurationMsQuantiles AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64),
    TtftMsQuantiles AggregateFunction(quantilesIf(0.5, 0.9, 0.99), Float64, UInt8),
    MaxRetryAfterS SimpleAggregateFunction(max, Float64),
    MinRequestsRemaining SimpleAggregateFunction(min, Nullable(Int64)),
    RequestsLimit SimpleAggregateFunction(max, Nullable(Int64)),
    MinTokensRemaining SimpleAggregateFunction(min, Nullable(Int64)),
    TokensLimit SimpleAggregateFunction(max, Nullable(Int64)),
    MinRequestsHeadroom SimpleAggregateFunction(min, Nullable(Float64)),
    MinTokensHeadroom SimpleAggregateFunction(min, Nullable(Float64)),
    CallsWithInput SimpleAggregateFunction(sum, UInt64),
    CallsWithCacheRead SimpleAggregateFunction(sum, UInt64)
) ENGINE = {aggregating_merge_tree}
PARTITION BY toYYYYMM(Hour)
ORDER BY (Hour, ServiceName, Provider, Endpoint, RequestModel, Feature, Team)
TTL Hour + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_cost_hourly_mv {cluster}
TO {database}.llm_cost_hourly
AS SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS Errors,
    toUInt64(countIf(Throttled = 1 OR HttpStatus = 429)) AS Throttled,
    toUInt64(sum(ThrottledAttempts)) AS ThrottledAttempts,
    toUInt64(sum(RetryCount)) AS Retries,
    toUInt64(countIf(Unpriced = 1)) AS Unpriced,
    toUInt64(countIf(Estimated = 1)) AS Estimated,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    sum(ReasoningTokens) AS ReasoningTokens,
    sum(UncachedInputTokens) AS UncachedInputTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostInput) AS CostInput,
    sum(CostOutput) AS CostOutput,
    sum(CostCacheRead) AS CostCacheRead,
    sum(CostCacheWrite) AS CostCacheWrite,
    sum(CostCacheWritePremium) AS CostCacheWritePremium,
    sum(CostSavings) AS CostSavings,
    quantilesState(0.5, 0.9, 0.99)(DurationMs) AS DurationMsQuantiles,
    quantilesIfState(0.5, 0.9, 0.99)(ifNull(TtftMs, 0), toUInt8(isNotNull(TtftMs))) AS TtftMsQuantiles,
    max(RetryAfterS) AS MaxRetryAfterS,
    min(RateLimitRequestsRemaining) AS MinRequestsRemaining,
    max(RateLimitRequestsLimit) AS RequestsLimit,
    min(RateLimitTokensRemaining) AS MinTokensRemaining,
    max(RateLimitTokensLimit) AS TokensLimit,
    min(RateLimitRequestsRemaining / RateLimitRequestsLimit) AS MinRequestsHeadroom,
    min(RateLimitTokensRemaining / RateLimitTokensLimit) AS MinTokensHeadroom,
    -- c.: the raw columns, not the sums of the same names above
    toUInt64(countIf(c.InputTokens > 0)) AS CallsWithInput,
    toUInt64(countIf(c.InputTokens > 0 AND c.CacheReadTokens > 0)) AS CallsWithCacheRead
FROM {database}.llm_calls AS c
GROUP BY
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

-- The same sums by day, for the views that cut time by whole days (v_cost_by_model_daily,
-- v_cost_by_feature_daily, v_cost_by_team_daily, 004; v_spend_anomalies_daily, 010): a
-- range of weeks reads one row per day and key instead of 24. Same key as
-- llm_cost_hourly: feature and team follow from the endpoint in real traffic, so they add
-- almost no rows (benchmarks/query_bench.py measures calls per row of each rollup). No
-- latency quantiles or rate-limit columns: the hourly rollup keeps those. A database
-- created before it gets it filled from llm_cost_hourly once (023_rollup_daily_backfill.sql).
CREATE TABLE IF NOT EXISTS {database}.llm_cost_daily {cluster} (
    Day Date,
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Endpoint LowCardinality(String),
    RequestModel LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Throttled SimpleAggregateFunction(sum, UInt64),
    Retries SimpleAggregateFunction(sum, UInt64),
    Unpriced SimpleAggregateFunction(sum, UInt64),
    Estimated SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64),
    UncachedInputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    CostInput SimpleAggregateFunction(sum, Float64),
    CostOutput SimpleAggregateFunction(sum, Float64),
    CostCacheRead SimpleAggregateFunction(sum, Float64),
    CostCacheWrite SimpleAggregateFunction(sum, Float64),
    CostCacheWritePremium SimpleAggregateFunction(sum, Float64),
    CostSavings SimpleAggregateFunction(sum, Float64)
) ENGINE = {aggregating_merge_tree}
PARTITION BY toYYYYMM(Day)
ORDER BY (Day, ServiceName, Provider, Endpoint, RequestModel, Feature, Team)
TTL Day + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_cost_daily_mv {cluster}
TO {database}.llm_cost_daily
AS SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS Errors,
    toUInt64(countIf(Throttled = 1 OR HttpStatus = 429)) AS Throttled,
    toUInt64(sum(RetryCount)) AS Retries,
    toUInt64(countIf(Unpriced = 1)) AS Unpriced,
    toUInt64(countIf(Estimated = 1)) AS Estimated,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    sum(ReasoningTokens) AS ReasoningTokens,
    sum(UncachedInputTokens) AS UncachedInputTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostInput) AS CostInput,
    sum(CostOutput) AS CostOutput,
    sum(CostCacheRead) AS CostCacheRead,
    sum(CostCacheWrite) AS CostCacheWrite,
    sum(CostCacheWritePremium) AS CostCacheWritePremium,
    sum(CostSavings) AS CostSavings
FROM {database}.llm_calls
GROUP BY
    Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

-- Per-user daily spend. User is high-cardinality, so it gets its own narrow
-- table instead of a dimension on llm_cost_hourly.

CREATE TABLE IF NOT EXISTS {database}.llm_user_daily {cluster} (
    Day Date,
    ServiceName LowCardinality(String),
    Team LowCardinality(String),
    User String,
    Calls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64)
) ENGINE = {aggregating_merge_tree}
PARTITION BY toYYYYMM(Day)
ORDER BY (Day, ServiceName, Team, User)
TTL Day + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_user_daily_mv {cluster}
TO {database}.llm_user_daily
AS SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Team,
    User,
    toUInt64(count()) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal
FROM {database}.llm_calls
GROUP BY
    Day,
    ServiceName,
    Team,
    User;

-- Per-user daily spend without the team: what "top users over a range" reads
-- (v_top_users, 004). A user's calls are spread over the teams of the endpoints
-- they use, so llm_user_daily holds up to a row per team for each user and day (1.5
-- calls per row at 1,000,000 calls, 20 endpoints over 8 teams, 5,000 users): this one
-- holds at most one per user and day. A database created before it gets it filled from
-- llm_user_daily once (023_rollup_daily_backfill.sql).
CREATE TABLE IF NOT EXISTS {database}.llm_user_spend_daily {cluster} (
    Day Date,
    ServiceName LowCardinality(String),
    User String,
    Calls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64)
) ENGINE = {aggregating_merge_tree}
PARTITION BY toYYYYMM(Day)
ORDER BY (Day, ServiceName, User)
TTL Day + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_user_spend_daily_mv {cluster}
TO {database}.llm_user_spend_daily
AS SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    User,
    toUInt64(count()) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal
FROM {database}.llm_calls
WHERE User != ''
GROUP BY
    Day,
    ServiceName,
    User;
