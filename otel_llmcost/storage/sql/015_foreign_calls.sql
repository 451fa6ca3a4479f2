-- GenAI calls traced by OTHER instrumentations (contrib openai-v2, OpenLLMetry, OpenLIT, ...),
-- typed once at insert time like llm_calls (002), priced from the catalogue (009) at the
-- call's own time, and merged with our calls in v_calls_all without counting a call twice.
--
-- Design, and why it is not a second MV into llm_calls:
--   * llm_calls and every MV and view on it (rollups, caching, budgets, anomalies) mean
--     "calls otel-llmcost traced and priced". A foreign span of a call that we traced too
--     arrives in its own insert block, often before or after ours, so an insert-time rule
--     cannot tell whether it is a duplicate; writing it into llm_calls would double count
--     in every rollup. So foreign calls get their own table, llm_foreign_calls, and the
--     duplicate test runs at read time (v_foreign_calls.Duplicate), where both sides exist.
--   * Pricing: model-id matching is genai-prices' logic, which SQL cannot run, so `prices
--     sync` resolves the (PriceProvider, RequestModel, ResponseModel) of foreign calls into
--     llm_price_refs exactly as it does for ours (pricing.catalogue.recorded_refs), and
--     v_foreign_calls joins refs and prices of the newest sync at the call's timestamp and
--     input-token tier, like v_calls_repriced. A call with no catalogue row stays Unpriced
--     with CostUsd NULL, never $0. Before the first sync every foreign call is unpriced.
--
-- Which spans: not ours (ScopeName != 'otel_llmcost'), kind Client (agent/workflow spans that
-- sum their children's usage are Internal), a model, and any input or output token count.
--
-- Attribute names, by source (see semconv.py for where each comes from):
--   contrib openai-v2    gen_ai.system / gen_ai.provider.name, gen_ai.request.model,
--                        gen_ai.response.model, gen_ai.usage.input_tokens / .output_tokens,
--                        gen_ai.usage.cache_read.input_tokens (util-genai);
--   OpenLLMetry          gen_ai.system, gen_ai.usage.input_tokens / .output_tokens (current) or
--                        gen_ai.usage.prompt_tokens / .completion_tokens (older),
--                        gen_ai.usage.cache_read_input_tokens / cache_creation_input_tokens,
--                        gen_ai.usage.reasoning_tokens, llm.usage.total_tokens;
--   OpenLIT              gen_ai.system, gen_ai.usage.input_tokens / .output_tokens,
--                        gen_ai.usage.reasoning_tokens, gen_ai.usage.cost (its own price:
--                        kept as CostReported, never added to CostUsd).
--
-- Token normalization: as in llm_calls, InputTokens INCLUDES cache reads and writes. OpenAI
-- and Gemini report it so; for Anthropic, contrib and OpenLLMetry add cache_read and
-- cache_creation to Anthropic's input_tokens before they record it. A source that records
-- Anthropic's raw input_tokens (cache excluded) shows input < cache_read + cache_write on a
-- cached call; there the cache tokens are added. (Raw input >= cache on a cached call cannot
-- be told apart from the total: such a call is under-counted by its cache tokens.)

CREATE TABLE IF NOT EXISTS {database}.llm_foreign_calls {cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    -- Which instrumentation: contrib-openai-v2, openllmetry, openlit, or the scope name.
    Source LowCardinality(String),
    ScopeName LowCardinality(String),
    Provider LowCardinality(String),
    -- genai-prices' provider id for Provider ('' when unknown: the model id alone decides).
    PriceProvider LowCardinality(String),
    Operation LowCardinality(String),
    RequestModel LowCardinality(String),
    ResponseModel LowCardinality(String),
    StatusCode LowCardinality(String),
    DurationMs Float64 CODEC(ZSTD(1)),
    InputTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheReadTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheWriteTokens UInt64 CODEC(T64, ZSTD(1)),
    ReasoningTokens UInt64 CODEC(T64, ZSTD(1)),
    UncachedInputTokens UInt64 CODEC(T64, ZSTD(1)),
    CostReported Nullable(Float64),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = {merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, toStartOfHour(Timestamp), RequestModel, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_foreign_calls_mv {cluster}
TO {database}.llm_foreign_calls
AS WITH
    greatest(toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens']),
             toUInt64OrZero(SpanAttributes['gen_ai.usage.prompt_tokens'])) AS input_raw
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ParentSpanId,
    ServiceName,
    multiIf(ScopeName = 'opentelemetry.instrumentation.openai_v2', 'contrib-openai-v2',
            ScopeName IN ('opentelemetry.instrumentation.openai.v1', 'opentelemetry.instrumentation.openai.v0'),
            'openllmetry',
            startsWith(ScopeName, 'openlit'), 'openlit',
            ScopeName) AS Source,
    ScopeName,
    if(SpanAttributes['gen_ai.provider.name'] != '', SpanAttributes['gen_ai.provider.name'],
       SpanAttributes['gen_ai.system']) AS Provider,
    multiIf(lower(Provider) = 'openai', 'openai',
            lower(Provider) = 'anthropic', 'anthropic',
            lower(Provider) IN ('gcp.gemini', 'gcp.vertex_ai', 'gemini', 'vertex_ai', 'google'), 'google',
            '') AS PriceProvider,
    if(SpanAttributes['gen_ai.operation.name'] != '', SpanAttributes['gen_ai.operation.name'],
       SpanAttributes['llm.request.type']) AS Operation,
    SpanAttributes['gen_ai.request.model'] AS RequestModel,
    SpanAttributes['gen_ai.response.model'] AS ResponseModel,
    StatusCode,
    Duration / 1e6 AS DurationMs,
    greatest(toUInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens']),
             toUInt64OrZero(SpanAttributes['gen_ai.usage.completion_tokens'])) AS OutputTokens,
    greatest(toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_read.input_tokens']),
             toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_read_input_tokens'])) AS CacheReadTokens,
    greatest(toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_creation.input_tokens']),
             toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_creation_input_tokens'])) AS CacheWriteTokens,
    least(greatest(toUInt64OrZero(SpanAttributes['gen_ai.usage.reasoning.output_tokens']),
                   toUInt64OrZero(SpanAttributes['gen_ai.usage.reasoning_tokens'])), OutputTokens) AS ReasoningTokens,
    if(PriceProvider = 'anthropic' AND input_raw < CacheReadTokens + CacheWriteTokens,
       input_raw + CacheReadTokens + CacheWriteTokens, input_raw) AS InputTokens,
    InputTokens - least(InputTokens, CacheReadTokens + CacheWriteTokens) AS UncachedInputTokens,
    if(isFinite(toFloat64OrZero(SpanAttributes['gen_ai.usage.cost'])),
       toFloat64OrNull(SpanAttributes['gen_ai.usage.cost']), NULL) AS CostReported
FROM {database}.otel_traces
WHERE ScopeName != 'otel_llmcost'
  AND SpanKind = 'Client'
  AND (SpanAttributes['gen_ai.request.model'] != '' OR SpanAttributes['gen_ai.response.model'] != '')
  AND (mapContains(SpanAttributes, 'gen_ai.usage.input_tokens')
       OR mapContains(SpanAttributes, 'gen_ai.usage.output_tokens')
       OR mapContains(SpanAttributes, 'gen_ai.usage.prompt_tokens')
       OR mapContains(SpanAttributes, 'gen_ai.usage.completion_tokens'));

-- The foreign calls of the last since_hours (from the start of that hour) that otel-llmcost
-- traced too: a call of ours in the same trace that is the foreign span's parent or child,
-- or has the same requested model and overlaps it in time (two instrumentations wrapping one
-- SDK method nest in either order, or are siblings when one of them does not propagate
-- context). Ours is read from an hour before the window: it starts at most that much
-- earlier. The one place of the duplicate rule (v_foreign_calls, v_foreign_spend_hourly).
CREATE VIEW IF NOT EXISTS {database}.v_foreign_duplicates {cluster} AS
SELECT y.SpanId AS SpanId
FROM {database}.llm_foreign_calls AS y
INNER JOIN (
    SELECT TraceId, SpanId, ParentSpanId, RequestModel,
           toUnixTimestamp64Nano(Timestamp) AS start_ns,
           start_ns + toInt64(DurationMs * 1e6) AS end_ns
    FROM {database}.llm_calls
    WHERE Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32})) - INTERVAL 1 HOUR
      AND TraceId IN (
        SELECT TraceId
        FROM {database}.llm_foreign_calls
        WHERE Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
      )
) AS c ON c.TraceId = y.TraceId
WHERE y.Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
  AND (c.SpanId = y.ParentSpanId
       OR c.ParentSpanId = y.SpanId
       OR (c.RequestModel = y.RequestModel
           AND c.start_ns <= toUnixTimestamp64Nano(y.Timestamp) + toInt64(y.DurationMs * 1e6)
           AND toUnixTimestamp64Nano(y.Timestamp) <= c.end_ns));

-- Every foreign call of the last since_hours (from the start of that hour), priced by the
-- newest catalogue at the call's time, with Duplicate = 1 when otel-llmcost traced the same
-- call (v_foreign_duplicates). Formula: v_calls_repriced's, on text tokens (foreign spans
-- carry no audio/image split and no cache TTL: cache writes at the 5m price).
CREATE VIEW IF NOT EXISTS {database}.v_foreign_calls {cluster} AS
SELECT
    f.Timestamp AS Timestamp,
    f.TraceId AS TraceId,
    f.SpanId AS SpanId,
    f.ParentSpanId AS ParentSpanId,
    f.ServiceName AS ServiceName,
    f.Source AS Source,
    f.ScopeName AS ScopeName,
    f.Provider AS Provider,
    f.Operation AS Operation,
    f.RequestModel AS RequestModel,
    f.ResponseModel AS ResponseModel,
    f.StatusCode AS StatusCode,
    f.DurationMs AS DurationMs,
    f.InputTokens AS InputTokens,
    f.OutputTokens AS OutputTokens,
    f.CacheReadTokens AS CacheReadTokens,
    f.CacheWriteTokens AS CacheWriteTokens,
    f.ReasoningTokens AS ReasoningTokens,
    f.UncachedInputTokens AS UncachedInputTokens,
    f.CostReported AS CostReported,
    p.Model != '' AS Priced,
    NOT Priced AS Unpriced,
    if(Priced,
       (f.UncachedInputTokens * p.InputMtok + f.CacheReadTokens * p.CacheReadMtok
        + f.CacheWriteTokens * p.CacheWrite5mMtok
        + (f.OutputTokens - f.ReasoningTokens) * p.OutputMtok + f.ReasoningTokens * p.ReasoningMtok) / 1e6,
       NULL) AS CostUsd,
    p.Provider AS CatalogueProvider,
    p.Model AS CatalogueModel,
    p.Source AS CatalogueSource,
    p.Version AS CatalogueVersion,
    f.SpanId IN (
        SELECT SpanId FROM {database}.v_foreign_duplicates(since_hours = {since_hours:UInt32})
    ) AS Duplicate
FROM {database}.llm_foreign_calls AS f
LEFT JOIN (
    SELECT *
    FROM {database}.llm_price_refs
    WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
) AS m
    ON m.PriceProvider = f.PriceProvider
    AND m.RequestModel = f.RequestModel
    AND m.ResponseModel = f.ResponseModel
    AND m.CallVariant = ''
    AND f.Timestamp >= m.ValidFrom
    AND f.Timestamp < m.ValidUntil
LEFT JOIN (
    SELECT *
    FROM {database}.llm_prices
    WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
) AS p
    ON p.Provider = m.Provider
    AND p.Model = m.Model
    AND p.Variant = m.Variant
    AND f.Timestamp >= p.EffectiveFrom
    AND f.Timestamp < p.EffectiveUntil
    AND f.InputTokens >= p.InputTokensFrom
    AND f.InputTokens < p.InputTokensUntil
WHERE f.Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}));

-- Every call of the last since_hours (from the start of that hour) once: ours (Source
-- 'otel-llmcost', cost as recorded) and the foreign calls we did not trace ourselves (cost
-- from the catalogue). CostUsd is NULL for an unpriced call, so sum(CostUsd) is the priced
-- spend and countIf(Unpriced) what it leaves out.
CREATE VIEW IF NOT EXISTS {database}.v_calls_all {cluster} AS
SELECT
    Timestamp, TraceId, SpanId, ServiceName,
    toString('otel-llmcost') AS Source,
    toString(Provider) AS Provider,
    toString(RequestModel) AS RequestModel,
    toString(ResponseModel) AS ResponseModel,
    InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens, ReasoningTokens,
    toUInt8(Unpriced OR Implausible) AS Unpriced,
    if(Unpriced OR Implausible, NULL, CostTotal) AS CostUsd
FROM {database}.llm_calls
WHERE Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
UNION ALL
SELECT
    Timestamp, TraceId, SpanId, ServiceName,
    toString(Source) AS Source,
    toString(Provider) AS Provider,
    toString(RequestModel) AS RequestModel,
    toString(ResponseModel) AS ResponseModel,
    InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens, ReasoningTokens,
    toUInt8(Unpriced) AS Unpriced,
    CostUsd
FROM {database}.v_foreign_calls(since_hours = {since_hours:UInt32})
WHERE NOT Duplicate;

-- Spend per day and source over the last since_hours (from the start of that hour): how
-- much of the bill each instrumentation saw.
CREATE VIEW IF NOT EXISTS {database}.v_cost_by_source_daily {cluster} AS
SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Source,
    Provider,
    RequestModel,
    count() AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostUsd) AS CostUsd,
    countIf(Unpriced) AS UnpricedCalls
FROM {database}.v_calls_all(since_hours = {since_hours:UInt32})
GROUP BY Day, ServiceName, Source, Provider, RequestModel;
