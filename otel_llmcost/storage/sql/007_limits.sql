-- Rate limits: the provider's (headers, 429s and retries in llm_calls) and the app's
-- OWN rate-limiter decisions (signals.limiter): one typed row per
-- 'llmcost.limiter.decision' span event.
--
-- The events ride on whatever span was current (usually the HTTP SERVER span of another
-- instrumentation), so, unlike llm_calls, rows are not limited to our scope: the event
-- name is ours. As in 002, every extraction is total (*OrNull, ifNotFinite): an
-- exception in a materialized view would fail the insert into otel_traces itself.

-- Throttled = the call ended in a 429 or was retried after one. Read from the hourly
-- rollup (003: its key holds this grouping, plus Feature): the sums add up and the
-- lowest/highest values are min/max of the per-row min/max, the same as over llm_calls.
CREATE VIEW IF NOT EXISTS {database}.v_rate_limit_pressure {cluster} AS
SELECT
    Hour,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
    Team,
    sum(Calls) AS Calls,
    sum(Throttled) AS ThrottledCalls,
    ThrottledCalls / Calls AS ThrottledShare,
    sum(ThrottledAttempts) AS ThrottledAttempts,
    sum(Retries) AS Retries,
    max(MaxRetryAfterS) AS MaxRetryAfterS,
    min(MinRequestsRemaining) AS MinRequestsRemaining,
    max(RequestsLimit) AS RequestsLimit,
    min(MinTokensRemaining) AS MinTokensRemaining,
    max(TokensLimit) AS TokensLimit,
    min(MinRequestsHeadroom) AS MinRequestsHeadroom,
    min(MinTokensHeadroom) AS MinTokensHeadroom
FROM {database}.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
    Team;

CREATE TABLE IF NOT EXISTS {database}.llm_limiter_decisions {cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    LimitKind LowCardinality(String),
    Action LowCardinality(String),
    Route LowCardinality(String),
    Tier LowCardinality(String),
    Rule LowCardinality(String),
    Source LowCardinality(String),
    -- who was limited: an HMAC when OTEL_LLMCOST_USER_HASH_KEY is set, like llm_calls.User
    Key String CODEC(ZSTD(1)),
    -- requests or tokens left in the window; NULL when the limiter did not say
    -- (min() skips NULLs, so "lowest remaining" stays right)
    Remaining Nullable(Float64),
    INDEX idx_key Key TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = {merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Route, toStartOfHour(Timestamp), Tier, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- ARRAY JOIN over the positions of our events only: a span with none yields no row,
-- and other events on the same span (exceptions, budget warnings) are never expanded.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_limiter_decisions_mv {cluster}
TO {database}.llm_limiter_decisions
AS SELECT
    Events.Timestamp[i] AS Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    Events.Attributes[i]['llmcost.limiter.limit'] AS LimitKind,
    Events.Attributes[i]['llmcost.limiter.action'] AS Action,
    Events.Attributes[i]['llmcost.limiter.route'] AS Route,
    Events.Attributes[i]['llmcost.limiter.tier'] AS Tier,
    Events.Attributes[i]['llmcost.limiter.rule'] AS Rule,
    Events.Attributes[i]['llmcost.limiter.source'] AS Source,
    Events.Attributes[i]['llmcost.limiter.key'] AS Key,
    if(isFinite(toFloat64OrNull(Events.Attributes[i]['llmcost.limiter.remaining'])),
        toFloat64OrNull(Events.Attributes[i]['llmcost.limiter.remaining']), NULL) AS Remaining
FROM {database}.otel_traces
ARRAY JOIN arrayFilter(n -> Events.Name[n] = 'llmcost.limiter.decision', arrayEnumerate(Events.Name)) AS i
WHERE has(Events.Name, 'llmcost.limiter.decision');

-- Decisions per hour, route, user tier and limit. Throttled counts the refusals
-- (throttled: retry later; rejected: refused for good); Delayed the requests that were
-- served late (queued, or retried after a refusal). ThrottleRate = Throttled / Decisions.
-- Dashboards re-aggregate it by route or tier: sum the counts, never average the rates.
CREATE VIEW IF NOT EXISTS {database}.v_app_rate_limits_hourly {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Route,
    Tier,
    LimitKind,
    count() AS Decisions,
    countIf(Action = 'allowed') AS Allowed,
    countIf(Action IN ('throttled', 'rejected')) AS Throttled,
    countIf(Action = 'rejected') AS Rejected,
    countIf(Action IN ('queued', 'retried')) AS Delayed,
    Throttled / Decisions AS ThrottleRate,
    uniqExact(Key) AS Keys,
    uniqExactIf(Key, Action IN ('throttled', 'rejected')) AS ThrottledKeys,
    min(Remaining) AS MinRemaining
FROM {database}.llm_limiter_decisions
GROUP BY
    Hour,
    ServiceName,
    Route,
    Tier,
    LimitKind;

-- Our throttling and the provider's, side by side per hour and route: app decisions
-- from llm_limiter_decisions, provider 429s from llm_calls, joined on the route
-- (the limiter's route is the llmcost.endpoint of the LLM calls made while serving
-- it, "<METHOD> <route>", when both come from the request's server span). A UNION ALL
-- and a GROUP BY instead of a FULL JOIN: an hour with only one side still has a row,
-- with zeros, not the other side's default key. The rates are NULL when there was
-- nothing to rate.
CREATE VIEW IF NOT EXISTS {database}.v_app_vs_provider_throttling_hourly {cluster} AS
SELECT
    Hour,
    ServiceName,
    Route,
    sum(AppDecisions) AS AppDecisions,
    sum(AppThrottled) AS AppThrottled,
    AppThrottled / nullIf(AppDecisions, 0) AS AppThrottleRate,
    sum(ProviderCalls) AS ProviderCalls,
    sum(ProviderThrottledCalls) AS ProviderThrottledCalls,
    sum(ProviderThrottledAttempts) AS ProviderThrottledAttempts,
    ProviderThrottledCalls / nullIf(ProviderCalls, 0) AS ProviderThrottleRate
FROM (
    SELECT
        toStartOfHour(Timestamp) AS Hour,
        ServiceName,
        Route,
        toUInt64(count()) AS AppDecisions,
        toUInt64(countIf(Action IN ('throttled', 'rejected'))) AS AppThrottled,
        toUInt64(0) AS ProviderCalls,
        toUInt64(0) AS ProviderThrottledCalls,
        toUInt64(0) AS ProviderThrottledAttempts
    FROM {database}.llm_limiter_decisions
    GROUP BY
        Hour,
        ServiceName,
        Route
    UNION ALL
    -- Throttled = the call ended in a 429 or was retried after one (as v_rate_limit_pressure);
    -- ThrottledAttempts = every 429 answer, SDK retries included.
    SELECT
        toStartOfHour(Timestamp) AS Hour,
        ServiceName,
        Endpoint AS Route,
        toUInt64(0) AS AppDecisions,
        toUInt64(0) AS AppThrottled,
        toUInt64(count()) AS ProviderCalls,
        toUInt64(countIf(HttpStatus = 429 OR Throttled = 1)) AS ProviderThrottledCalls,
        toUInt64(sum(ThrottledAttempts)) AS ProviderThrottledAttempts
    FROM {database}.llm_calls
    GROUP BY
        Hour,
        ServiceName,
        Route
)
GROUP BY
    Hour,
    ServiceName,
    Route;
