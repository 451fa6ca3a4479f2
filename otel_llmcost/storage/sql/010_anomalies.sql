-- Anomalies: what spent or behaved unlike its own past. Views follow the rules of 004.

-- Daily spend per endpoint against the 7 days before it. Days without calls
-- between an endpoint's first and last day count as zero spend (WITH FILL).
-- Flagged when z >= 2 and spend >= 1.3 x the prior mean, with 7 prior days of
-- history; when the prior days were all equal (stddev 0) any rise of 30% or
-- more is flagged and ZScore is NULL. On an endpoint's first day there are no prior
-- days: PriorMean, PriorStddev and ZScore are NULL (not NaN), so sums skip them.
-- Kept for the daily dashboard panels; the hourly detectors are v_anomalies (013).
-- v_spend_anomalies_daily(since_hours = 168): the days of the window, read with the 7 days
-- before it and no further, so its cost does not grow with retention. An endpoint's history
-- starts there: one silent for those 7 days counts as new (no prior days) when it returns;
-- a key new to the whole history is the hourly detectors' new_entity.
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
    ifNull(PriorDays >= 7
        AND Spend >= 1.3 * PriorMean
        AND Spend > PriorMean
        AND (PriorStddev = 0 OR (Spend - PriorMean) / PriorStddev >= 2), 0) AS Flagged
FROM (
    SELECT
        Day,
        ServiceName,
        Endpoint,
        Spend,
        count() OVER w AS PriorDays,
        if(PriorDays > 0, avg(Spend) OVER w, NULL) AS PriorMean,
        if(PriorDays > 0, stddevPop(Spend) OVER w, NULL) AS PriorStddev
    FROM (
        SELECT
            Day,
            ServiceName,
            Endpoint,
            sum(CostTotal) AS Spend
        FROM {database}.llm_cost_daily
        WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32})) - 7
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
)
WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32}));

-- Hourly cache hit rate per endpoint, model and team against the token-weighted hit
-- rate of the 24 hours before it (hours with input only). Flagged when it fell by half or more,
-- the hour had at least 10000 input tokens and at least 3 prior hours exist.
-- Bounded to the last 35 days (+ the 24 hours before them), whatever the range asked.
CREATE VIEW IF NOT EXISTS {database}.v_cache_hit_drops_hourly {cluster} AS
SELECT
    Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
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
        Team,
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
            Team,
            sum(InputTokens) AS InputTokens,
            sum(CacheReadTokens) AS CacheReadTokens
        FROM {database}.llm_cost_hourly
        WHERE Hour >= toStartOfHour(now()) - INTERVAL 36 DAY
        GROUP BY
            Hour,
            ServiceName,
            Endpoint,
            RequestModel,
            Team
        HAVING InputTokens > 0
    )
    WINDOW w AS (
        PARTITION BY ServiceName, Endpoint, RequestModel, Team
        ORDER BY toRelativeHourNum(Hour)
        RANGE BETWEEN 24 PRECEDING AND 1 PRECEDING
    )
)
WHERE Hour >= toStartOfHour(now()) - INTERVAL 35 DAY;

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
    c.Team AS Team,
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
