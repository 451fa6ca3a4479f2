-- Spend: by hour and by every dimension, unpriced and estimated calls, failures.
--
-- Views an analyst can guess by name. They read llm_calls and the rollups,
-- never the attribute maps of otel_traces, and they take no parameters (but
-- v_top_users, which takes the window in hours): filter them by time from outside
-- (WHERE Hour >= now() - INTERVAL 1 DAY).
-- Ratios are NULL, not 0 or NaN, when their denominator is zero.

-- Everything in the hourly rollup, finalised; the building block for ad-hoc
-- slicing (reports and dashboards re-aggregate it by any dimension).
CREATE VIEW IF NOT EXISTS {database}.v_cost_hourly {cluster} AS
SELECT
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    sum(Calls) AS Calls,
    sum(Errors) AS Errors,
    sum(Throttled) AS Throttled,
    sum(Retries) AS Retries,
    sum(Unpriced) AS Unpriced,
    sum(Estimated) AS Estimated,
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
    quantilesMerge(0.5, 0.9, 0.99)(DurationMsQuantiles)[1] AS DurationMsP50,
    quantilesMerge(0.5, 0.9, 0.99)(DurationMsQuantiles)[3] AS DurationMsP99
FROM {database}.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

CREATE VIEW IF NOT EXISTS {database}.v_cost_by_endpoint_hourly {cluster} AS
SELECT
    Hour,
    ServiceName,
    Endpoint,
    sum(Calls) AS Calls,
    sum(Errors) AS Errors,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostSavings) AS CostSavings,
    CostTotal / nullIf(Calls, 0) AS CostPerCall,
    quantilesMerge(0.5, 0.9, 0.99)(DurationMsQuantiles)[1] AS DurationMsP50,
    quantilesMerge(0.5, 0.9, 0.99)(DurationMsQuantiles)[2] AS DurationMsP90,
    quantilesMerge(0.5, 0.9, 0.99)(DurationMsQuantiles)[3] AS DurationMsP99,
    quantilesIfMerge(0.5, 0.9, 0.99)(TtftMsQuantiles)[1] AS TtftMsP50
FROM {database}.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Endpoint;

-- The daily views read the daily rollup (003): one row per day and key.
CREATE VIEW IF NOT EXISTS {database}.v_cost_by_model_daily {cluster} AS
SELECT
    Day,
    ServiceName,
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(Errors) AS Errors,
    sum(Unpriced) AS Unpriced,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    sum(ReasoningTokens) AS ReasoningTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostSavings) AS CostSavings,
    CostTotal / nullIf(Calls, 0) AS CostPerCall
FROM {database}.llm_cost_daily
GROUP BY
    Day,
    ServiceName,
    Provider,
    RequestModel;

CREATE VIEW IF NOT EXISTS {database}.v_cost_by_feature_daily {cluster} AS
SELECT
    Day,
    ServiceName,
    Feature,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostSavings) AS CostSavings,
    CostTotal / nullIf(Calls, 0) AS CostPerCall
FROM {database}.llm_cost_daily
GROUP BY
    Day,
    ServiceName,
    Feature;

CREATE VIEW IF NOT EXISTS {database}.v_cost_by_team_daily {cluster} AS
SELECT
    Day,
    ServiceName,
    Team,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostSavings) AS CostSavings,
    CostTotal / nullIf(Calls, 0) AS CostPerCall
FROM {database}.llm_cost_daily
GROUP BY
    Day,
    ServiceName,
    Team;

CREATE VIEW IF NOT EXISTS {database}.v_cost_by_user_daily {cluster} AS
SELECT
    Day,
    ServiceName,
    Team,
    User,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal,
    CostTotal / nullIf(Calls, 0) AS CostPerCall
FROM {database}.llm_user_daily
GROUP BY
    Day,
    ServiceName,
    Team,
    User;

-- Top users over a range: spend per service and user (teams summed) on the days of the
-- last since_hours hours (whole days: the first one from its midnight), from the narrower
-- per-user rollup (003), aggregated once: `v_top_users(since_hours = 720)`. Ranking users
-- through v_cost_by_user_daily groups every user, team and day first, and that is most of
-- its cost. Calls without a user are left out.
CREATE VIEW IF NOT EXISTS {database}.v_top_users {cluster} AS
SELECT
    ServiceName,
    User,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal,
    CostTotal / nullIf(Calls, 0) AS CostPerCall,
    min(Day) AS FirstDay,
    max(Day) AS LastDay
FROM {database}.llm_user_spend_daily
WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    User;

-- Spend per user by hour, with every dimension a dashboard filters on (endpoint, model,
-- team): llm_user_daily keeps neither endpoint nor model and cuts time by whole days.
-- Calls without a user are left out: they are nobody's spend.
CREATE VIEW IF NOT EXISTS {database}.v_cost_by_user_hourly {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
    User,
    count() AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal
FROM {database}.llm_calls
WHERE User != ''
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
    User;

-- Calls whose model had no price: their cost is unknown, not zero.
CREATE VIEW IF NOT EXISTS {database}.v_unpriced_calls {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    Endpoint,
    Team,
    count() AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE Unpriced = 1
GROUP BY
    Hour,
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    Endpoint,
    Team;

-- Calls whose tokens were counted locally because the provider returned no usage.
CREATE VIEW IF NOT EXISTS {database}.v_estimated_usage {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
    Team,
    count() AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal
FROM {database}.llm_calls
WHERE Estimated = 1
GROUP BY
    Hour,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
    Team;

-- Failed calls by error type and HTTP status, hourly: the "what is failing" view.
-- A call counts when its span status is Error or it carries error.type (a call
-- that succeeded after SDK retries has neither, and is counted in Retries of
-- v_rate_limit_pressure instead).
CREATE VIEW IF NOT EXISTS {database}.v_errors_hourly {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Team,
    ErrorType,
    HttpStatus,
    count() AS Calls,
    countIf(Throttled = 1 OR HttpStatus = 429) AS ThrottledCalls,
    sum(RetryCount) AS Retries,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE StatusCode = 'Error' OR ErrorType != ''
GROUP BY
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Team,
    ErrorType,
    HttpStatus;
