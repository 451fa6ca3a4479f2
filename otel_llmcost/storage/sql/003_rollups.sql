-- Hourly and daily rollups fed from llm_calls, so dashboards over weeks read
-- thousands of rows instead of millions. Sums are SimpleAggregateFunction
-- (read them with sum()), latencies are quantile states (read them with
-- quantilesMerge / quantilesIfMerge). The views hide both details.

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
    TtftMsQuantiles AggregateFunction(quantilesIf(0.5, 0.9, 0.99), Float64, UInt8)
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
    quantilesIfState(0.5, 0.9, 0.99)(ifNull(TtftMs, 0), toUInt8(isNotNull(TtftMs))) AS TtftMsQuantiles
FROM {database}.llm_calls
GROUP BY
    Hour,
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
