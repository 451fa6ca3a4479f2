-- Views an analyst can guess by name. They read llm_calls and the rollups,
-- never the attribute maps of otel_traces, and they take no parameters:
-- filter them by time from outside (WHERE Hour >= now() - INTERVAL 1 DAY).
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

CREATE VIEW IF NOT EXISTS {database}.v_cost_by_model_daily {cluster} AS
SELECT
    toDate(Hour) AS Day,
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
FROM {database}.llm_cost_hourly
GROUP BY
    Day,
    ServiceName,
    Provider,
    RequestModel;

CREATE VIEW IF NOT EXISTS {database}.v_cost_by_feature_daily {cluster} AS
SELECT
    toDate(Hour) AS Day,
    ServiceName,
    Feature,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostSavings) AS CostSavings,
    CostTotal / nullIf(Calls, 0) AS CostPerCall
FROM {database}.llm_cost_hourly
GROUP BY
    Day,
    ServiceName,
    Feature;

CREATE VIEW IF NOT EXISTS {database}.v_cost_by_team_daily {cluster} AS
SELECT
    toDate(Hour) AS Day,
    ServiceName,
    Team,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal,
    sum(CostSavings) AS CostSavings,
    CostTotal / nullIf(Calls, 0) AS CostPerCall
FROM {database}.llm_cost_hourly
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

-- HitRate = cache read tokens / input tokens (input tokens include cached ones
-- for every provider, see usage.py). CostSavings is what the instrumentation
-- computed (cost without caching minus actual cost), so it already nets out
-- the write premium; CostCacheWritePremium is shown apart to see what caching
-- costs before it pays back.
CREATE VIEW IF NOT EXISTS {database}.v_cache_efficiency {cluster} AS
SELECT
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    CacheReadTokens / nullIf(InputTokens, 0) AS HitRate,
    sum(CostCacheRead) AS CostCacheRead,
    sum(CostCacheWrite) AS CostCacheWrite,
    sum(CostCacheWritePremium) AS CostCacheWritePremium,
    sum(CostSavings) AS CostSavings
FROM {database}.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel;

-- Prefixes whose cache writes were never followed by a cache read. Only
-- prefixes whose last write is over an hour old (the longest cache TTL) are
-- listed, so a write that may still be read is not reported yet.
CREATE VIEW IF NOT EXISTS {database}.v_cache_never_paid_back {cluster} AS
SELECT
    ServiceName,
    Provider,
    RequestModel,
    PrefixHash,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    countIf(CacheWriteTokens > 0) AS Writes,
    sum(CacheWriteTokens) AS WrittenTokens,
    sum(CostCacheWrite) AS WriteCost,
    sum(CostCacheWritePremium) AS WritePremium,
    minIf(Timestamp, CacheWriteTokens > 0) AS FirstWrite,
    maxIf(Timestamp, CacheWriteTokens > 0) AS LastWrite,
    countIf(CacheReadTokens > 0) AS Reads,
    maxIf(Timestamp, CacheReadTokens > 0) AS LastRead
FROM {database}.llm_calls
WHERE PrefixHash != ''
GROUP BY
    ServiceName,
    Provider,
    RequestModel,
    PrefixHash
HAVING Writes > 0
    AND (Reads = 0 OR LastRead <= FirstWrite)
    AND LastWrite < now() - INTERVAL 1 HOUR;

-- The same prompt prefix sent at least twice with enough input tokens to be
-- cacheable (1024 is the smallest cacheable prompt at OpenAI and Anthropic)
-- and never read from cache: a candidate for cache_control or a stable prefix.
CREATE VIEW IF NOT EXISTS {database}.v_missed_caching {cluster} AS
SELECT
    ServiceName,
    Provider,
    RequestModel,
    PrefixHash,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    count() AS Calls,
    sum(InputTokens) AS TotalInputTokens,
    sum(CostInput) AS InputCost,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE PrefixHash != ''
    AND InputTokens >= 1024
GROUP BY
    ServiceName,
    Provider,
    RequestModel,
    PrefixHash
HAVING Calls >= 2
    AND sum(CacheReadTokens) = 0;

-- Identical requests (same request hash): RepeatSpend is everything spent
-- after the first one, i.e. what a response cache would have saved.
CREATE VIEW IF NOT EXISTS {database}.v_duplicate_requests {cluster} AS
SELECT
    ServiceName,
    RequestModel,
    RequestHash,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    count() AS Calls,
    Calls - 1 AS Repeats,
    sum(CostTotal) AS Spend,
    Spend - argMin(CostTotal, Timestamp) AS RepeatSpend,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE RequestHash != ''
GROUP BY
    ServiceName,
    RequestModel,
    RequestHash
HAVING Calls >= 2;

-- Throttled = the call ended in a 429 or was retried after one.
CREATE VIEW IF NOT EXISTS {database}.v_rate_limit_pressure {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    RequestModel,
    count() AS Calls,
    countIf(HttpStatus = 429 OR Throttled = 1) AS ThrottledCalls,
    ThrottledCalls / Calls AS ThrottledShare,
    sum(ThrottledAttempts) AS ThrottledAttempts,
    sum(RetryCount) AS Retries,
    max(RetryAfterS) AS MaxRetryAfterS,
    min(RateLimitRequestsRemaining) AS MinRequestsRemaining,
    max(RateLimitRequestsLimit) AS RequestsLimit,
    min(RateLimitTokensRemaining) AS MinTokensRemaining,
    max(RateLimitTokensLimit) AS TokensLimit,
    min(RateLimitRequestsRemaining / RateLimitRequestsLimit) AS MinRequestsHeadroom,
    min(RateLimitTokensRemaining / RateLimitTokensLimit) AS MinTokensHeadroom
FROM {database}.llm_calls
GROUP BY
    Hour,
    ServiceName,
    Provider,
    RequestModel;

-- Calls whose model had no price: their cost is unknown, not zero.
CREATE VIEW IF NOT EXISTS {database}.v_unpriced_calls {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
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
    ResponseModel;

-- Calls whose tokens were counted locally because the provider returned no usage.
CREATE VIEW IF NOT EXISTS {database}.v_estimated_usage {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
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
    Endpoint;

-- One row per task with a recorded outcome, with the cost of its LLM calls.
-- Calls belong to a task by llmcost.task.id, or by trace id when they carry none.
-- A task recorded twice keeps its latest outcome.
CREATE VIEW IF NOT EXISTS {database}.v_task_outcomes {cluster} AS
SELECT
    o.TaskKey AS TaskKey,
    o.RecordedAt AS Timestamp,
    o.ServiceName AS ServiceName,
    o.Success AS Success,
    if(o.Feature != '', o.Feature, c.Feature) AS Feature,
    if(o.Endpoint != '', o.Endpoint, c.Endpoint) AS Endpoint,
    if(o.Team != '', o.Team, c.Team) AS Team,
    c.Calls AS Calls,
    c.InputTokens AS InputTokens,
    c.OutputTokens AS OutputTokens,
    c.CostTotal AS CostTotal
FROM (
    SELECT
        TaskKey,
        max(Timestamp) AS RecordedAt,
        argMax(ServiceName, Timestamp) AS ServiceName,
        argMax(Success, Timestamp) AS Success,
        argMax(Feature, Timestamp) AS Feature,
        argMax(Endpoint, Timestamp) AS Endpoint,
        argMax(Team, Timestamp) AS Team
    FROM {database}.llm_task_outcomes
    GROUP BY TaskKey
) AS o
LEFT JOIN (
    SELECT
        if(TaskId != '', TaskId, TraceId) AS TaskKey,
        count() AS Calls,
        sum(InputTokens) AS InputTokens,
        sum(OutputTokens) AS OutputTokens,
        sum(CostTotal) AS CostTotal,
        any(Feature) AS Feature,
        any(Endpoint) AS Endpoint,
        any(Team) AS Team
    FROM {database}.llm_calls
    WHERE if(TaskId != '', TaskId, TraceId) IN (SELECT TaskKey FROM {database}.llm_task_outcomes)
    GROUP BY TaskKey
) AS c ON o.TaskKey = c.TaskKey;

-- Cost per successful task counts the spend of failed tasks too: that is the
-- price of each success.
CREATE VIEW IF NOT EXISTS {database}.v_cost_per_successful_task {cluster} AS
SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Feature,
    count() AS Tasks,
    sum(Success) AS SuccessfulTasks,
    SuccessfulTasks / Tasks AS SuccessRate,
    sum(CostTotal) AS CostTotal,
    CostTotal / nullIf(SuccessfulTasks, 0) AS CostPerSuccessfulTask
FROM {database}.v_task_outcomes
GROUP BY
    Day,
    ServiceName,
    Feature;

-- Daily spend per endpoint against the 7 days before it. Days without calls
-- between an endpoint's first and last day count as zero spend (WITH FILL).
-- Flagged when z >= 2 and spend >= 1.3 x the prior mean, with 7 prior days of
-- history; when the prior days were all equal (stddev 0) any rise of 30% or
-- more is flagged and ZScore is NULL.
CREATE VIEW IF NOT EXISTS {database}.v_spend_anomalies_daily {cluster} AS
SELECT
    Day,
    ServiceName,
    Endpoint,
    Spend,
    PriorDays,
    PriorMean,
    PriorStddev,
    if(PriorStddev > 0, (Spend - PriorMean) / PriorStddev, NULL) AS ZScore,
    PriorDays >= 7
        AND Spend >= 1.3 * PriorMean
        AND Spend > PriorMean
        AND (PriorStddev = 0 OR (Spend - PriorMean) / PriorStddev >= 2) AS Flagged
FROM (
    SELECT
        Day,
        ServiceName,
        Endpoint,
        Spend,
        count() OVER w AS PriorDays,
        avg(Spend) OVER w AS PriorMean,
        stddevPop(Spend) OVER w AS PriorStddev
    FROM (
        SELECT
            toDate(Hour) AS Day,
            ServiceName,
            Endpoint,
            sum(CostTotal) AS Spend
        FROM {database}.llm_cost_hourly
        GROUP BY
            Day,
            ServiceName,
            Endpoint
        ORDER BY
            ServiceName,
            Endpoint,
            Day WITH FILL STEP 1
    )
    WINDOW w AS (
        PARTITION BY ServiceName, Endpoint
        ORDER BY toRelativeDayNum(Day)
        RANGE BETWEEN 7 PRECEDING AND 1 PRECEDING
    )
);

-- Hourly cache hit rate against the token-weighted hit rate of the 24 hours
-- before it (hours with input only). Flagged when it fell by half or more,
-- the hour had at least 10000 input tokens and at least 3 prior hours exist.
CREATE VIEW IF NOT EXISTS {database}.v_cache_hit_drops_hourly {cluster} AS
SELECT
    Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    InputTokens,
    CacheReadTokens,
    HitRate,
    PriorHours,
    PriorHitRate,
    PriorHours >= 3
        AND PriorHitRate > 0
        AND InputTokens >= 10000
        AND HitRate <= 0.5 * PriorHitRate AS Flagged
FROM (
    SELECT
        Hour,
        ServiceName,
        Endpoint,
        RequestModel,
        InputTokens,
        CacheReadTokens,
        CacheReadTokens / InputTokens AS HitRate,
        count() OVER w AS PriorHours,
        sum(CacheReadTokens) OVER w / nullIf(sum(InputTokens) OVER w, 0) AS PriorHitRate
    FROM (
        SELECT
            Hour,
            ServiceName,
            Endpoint,
            RequestModel,
            sum(InputTokens) AS InputTokens,
            sum(CacheReadTokens) AS CacheReadTokens
        FROM {database}.llm_cost_hourly
        GROUP BY
            Hour,
            ServiceName,
            Endpoint,
            RequestModel
        HAVING InputTokens > 0
    )
    WINDOW w AS (
        PARTITION BY ServiceName, Endpoint, RequestModel
        ORDER BY toRelativeHourNum(Hour)
        RANGE BETWEEN 24 PRECEDING AND 1 PRECEDING
    )
);

-- Single calls of the last 7 days that cost at least ExpensiveCallUsd (1.00 USD)
-- or more than the p99 of their endpoint over the same 7 days. The p99 rule
-- needs 100 calls on the endpoint, below that p99 is just "the largest call".
CREATE VIEW IF NOT EXISTS {database}.v_expensive_requests {cluster} AS
WITH 1.0 AS ExpensiveCallUsd
SELECT
    c.Timestamp AS Timestamp,
    c.ServiceName AS ServiceName,
    c.Endpoint AS Endpoint,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    c.Feature AS Feature,
    c.User AS User,
    c.TraceId AS TraceId,
    c.SpanId AS SpanId,
    c.InputTokens AS InputTokens,
    c.OutputTokens AS OutputTokens,
    c.CostTotal AS CostTotal,
    p.P99Cost AS EndpointP99Cost,
    if(c.CostTotal >= ExpensiveCallUsd, 'over_threshold', 'over_endpoint_p99') AS Reason
FROM {database}.llm_calls AS c
LEFT JOIN (
    SELECT
        ServiceName,
        Endpoint,
        quantile(0.99)(CostTotal) AS P99Cost,
        count() AS EndpointCalls
    FROM {database}.llm_calls
    WHERE Timestamp >= now() - INTERVAL 7 DAY
    GROUP BY
        ServiceName,
        Endpoint
) AS p ON c.ServiceName = p.ServiceName AND c.Endpoint = p.Endpoint
WHERE c.Timestamp >= now() - INTERVAL 7 DAY
    AND (c.CostTotal >= ExpensiveCallUsd OR (p.EndpointCalls >= 100 AND c.CostTotal > p.P99Cost));
