-- Budget events: what the app's budgets did to calls, from the span events the
-- instrumentation records (llmcost.budget.threshold_crossed, .downgraded, .refused, and
-- .unchecked when the budget store was unavailable and the call went out unchecked).
-- One typed row per event, with the attribution of the span that carries it.
--
-- Every extraction is total (*OrZero / *OrNull, NULL for a non-finite number), as in
-- llm_calls: an exception here would fail the insert into otel_traces itself.
CREATE TABLE IF NOT EXISTS {database}.llm_budget_events {cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    Event LowCardinality(String),
    Budget LowCardinality(String),
    Scope LowCardinality(String),
    -- the user (an HMAC when OTEL_LLMCOST_USER_HASH_KEY is set), feature, team, ... counted
    ScopeValue String CODEC(ZSTD(1)),
    Period LowCardinality(String),
    -- the share of the limit whose crossing raised the event (0.85); NULL when not said
    Threshold Nullable(Float64),
    Action LowCardinality(String),
    UsedUsd Nullable(Float64),
    LimitUsd Nullable(Float64),
    UsedTokens Nullable(Float64),
    LimitTokens Nullable(Float64),
    DowngradedTo LowCardinality(String),
    -- the model the app asked for (before any downgrade)
    Model LowCardinality(String),
    Endpoint LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    User String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = {merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Event, Budget, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- ARRAY JOIN over the positions of our budget events only: a span with none yields no
-- row, and other events on the same span (exceptions, limiter decisions) are never expanded.
-- The names are listed, not matched by prefix, so tests/storage/test_sql_contract.py holds
-- each to semconv.py; llmcost.budget.soft_limit is what releases before budget ladders
-- recorded (their threshold crossing).
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_budget_events_mv {cluster}
TO {database}.llm_budget_events
AS SELECT
    Events.Timestamp[i] AS Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    Events.Name[i] AS Event,
    Events.Attributes[i]['llmcost.budget.name'] AS Budget,
    Events.Attributes[i]['llmcost.budget.scope'] AS Scope,
    Events.Attributes[i]['llmcost.budget.scope_value'] AS ScopeValue,
    Events.Attributes[i]['llmcost.budget.period'] AS Period,
    if(isFinite(toFloat64OrZero(Events.Attributes[i]['llmcost.budget.threshold'])),
        toFloat64OrNull(Events.Attributes[i]['llmcost.budget.threshold']), NULL) AS Threshold,
    Events.Attributes[i]['llmcost.budget.action'] AS Action,
    if(isFinite(toFloat64OrZero(Events.Attributes[i]['llmcost.budget.used_usd'])),
        toFloat64OrNull(Events.Attributes[i]['llmcost.budget.used_usd']), NULL) AS UsedUsd,
    if(isFinite(toFloat64OrZero(Events.Attributes[i]['llmcost.budget.limit_usd'])),
        toFloat64OrNull(Events.Attributes[i]['llmcost.budget.limit_usd']), NULL) AS LimitUsd,
    if(isFinite(toFloat64OrZero(Events.Attributes[i]['llmcost.budget.used_tokens'])),
        toFloat64OrNull(Events.Attributes[i]['llmcost.budget.used_tokens']), NULL) AS UsedTokens,
    if(isFinite(toFloat64OrZero(Events.Attributes[i]['llmcost.budget.limit_tokens'])),
        toFloat64OrNull(Events.Attributes[i]['llmcost.budget.limit_tokens']), NULL) AS LimitTokens,
    Events.Attributes[i]['llmcost.budget.downgraded_to'] AS DowngradedTo,
    if(SpanAttributes['llmcost.budget.original_model'] != '',
        SpanAttributes['llmcost.budget.original_model'], SpanAttributes['gen_ai.request.model']) AS Model,
    SpanAttributes['llmcost.endpoint'] AS Endpoint,
    SpanAttributes['llmcost.feature'] AS Feature,
    SpanAttributes['llmcost.team'] AS Team,
    SpanAttributes['llmcost.user'] AS User
FROM {database}.otel_traces
ARRAY JOIN arrayFilter(
    n -> Events.Name[n] IN (
        'llmcost.budget.threshold_crossed',
        'llmcost.budget.downgraded',
        'llmcost.budget.refused',
        'llmcost.budget.unchecked',
        'llmcost.budget.soft_limit'
    ),
    arrayEnumerate(Events.Name)
) AS i
WHERE hasAny(Events.Name, [
    'llmcost.budget.threshold_crossed',
    'llmcost.budget.downgraded',
    'llmcost.budget.refused',
    'llmcost.budget.unchecked',
    'llmcost.budget.soft_limit'
]);

-- Budget events, newest first, with the share of the limit each one reported: what the
-- dashboard's events table and the "budget store unavailable" alert read.
CREATE VIEW IF NOT EXISTS {database}.v_budget_events {cluster} AS
SELECT
    Timestamp,
    ServiceName,
    Event,
    -- the last part of the name: threshold_crossed, downgraded, refused, unchecked
    splitByChar('.', Event)[-1] AS Kind,
    Budget,
    Scope,
    ScopeValue,
    Period,
    Threshold,
    Action,
    UsedUsd,
    LimitUsd,
    UsedUsd / nullIf(LimitUsd, 0) AS UsedShare,
    UsedTokens,
    LimitTokens,
    UsedTokens / nullIf(LimitTokens, 0) AS UsedTokenShare,
    DowngradedTo,
    Model,
    Endpoint,
    Feature,
    Team,
    User,
    TraceId,
    SpanId
FROM {database}.llm_budget_events
ORDER BY Timestamp DESC;
