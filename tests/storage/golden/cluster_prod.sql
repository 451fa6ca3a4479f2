CREATE DATABASE IF NOT EXISTS otel ON CLUSTER prod;

CREATE TABLE IF NOT EXISTS otel.llmcost_schema_files  ON CLUSTER prod (
    File String,
    Checksum String,
    AppliedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (File, AppliedAt);

CREATE TABLE IF NOT EXISTS otel.otel_traces_local  ON CLUSTER prod (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS otel.otel_traces ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ParentSpanId String,
    TraceState String,
    SpanName LowCardinality(String),
    SpanKind LowCardinality(String),
    ServiceName LowCardinality(String),
    ResourceAttributes Map(LowCardinality(String), String),
    ScopeName String,
    ScopeVersion String,
    SpanAttributes Map(LowCardinality(String), String),
    Duration UInt64,
    StatusCode LowCardinality(String),
    StatusMessage String,
    Events Nested ( Timestamp DateTime64(9), Name LowCardinality(String), Attributes Map(LowCardinality(String), String) ),
    Links Nested ( TraceId String, SpanId String, TraceState String, Attributes Map(LowCardinality(String), String) ),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))'))
) ENGINE = Distributed('prod', 'otel', 'otel_traces_local', cityHash64(TraceId));

ALTER TABLE otel.otel_traces_local  ON CLUSTER prod
    MODIFY SETTING non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.otel_traces_trace_id_ts_local  ON CLUSTER prod (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
TTL toDateTime(Start) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS otel.otel_traces_trace_id_ts ON CLUSTER prod (
    TraceId String,
    Start SimpleAggregateFunction(min, DateTime),
    End SimpleAggregateFunction(max, DateTime)
) ENGINE = Distributed('prod', 'otel', 'otel_traces_trace_id_ts_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.otel_traces_trace_id_ts_mv  ON CLUSTER prod
TO otel.otel_traces_trace_id_ts_local
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM otel.otel_traces_local
WHERE TraceId != ''
GROUP BY TraceId;

CREATE TABLE IF NOT EXISTS otel.llm_calls_local  ON CLUSTER prod (
    Timestamp DateTime64(9) CODEC(Delta(8), T64('bit'), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    Endpoint LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    Team LowCardinality(String) CODEC(ZSTD(1)),
    User String CODEC(ZSTD(3)),
    Session String CODEC(ZSTD(1)),
    TaskId String CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    HttpStatus UInt16 CODEC(T64, ZSTD(1)),
    DurationMs Float64 CODEC(ZSTD(1)),
    TtftMs Nullable(Float64) CODEC(ZSTD(1)),
    Stream UInt8 CODEC(T64, ZSTD(1)),
    InputTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheReadTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheWriteTokens UInt64 CODEC(T64, ZSTD(1)),
    ReasoningTokens UInt64 CODEC(T64, ZSTD(1)),
    UncachedInputTokens UInt64 CODEC(T64, ZSTD(1)),
    CostTotal Float64 CODEC(ZSTD(1)),
    CostInput Float64 CODEC(ZSTD(1)),
    CostOutput Float64 CODEC(ZSTD(1)),
    CostCacheRead Float64 CODEC(ZSTD(1)),
    CostCacheWrite Float64 CODEC(ZSTD(1)),
    CostCacheWritePremium Float64 CODEC(ZSTD(1)),
    CostSavings Float64 CODEC(ZSTD(1)),
    Unpriced UInt8 CODEC(T64, ZSTD(1)),
    Estimated UInt8 CODEC(T64, ZSTD(1)),
    Throttled UInt8 CODEC(T64, ZSTD(1)),
    ThrottledAttempts UInt32 CODEC(T64, ZSTD(1)),
    RetryCount UInt32 CODEC(T64, ZSTD(1)),
    RetryAfterS Float64 CODEC(ZSTD(1)),
    RateLimitRequestsRemaining Nullable(Int64) CODEC(T64, ZSTD(1)),
    RateLimitRequestsLimit Nullable(Int64) CODEC(T64, ZSTD(1)),
    RateLimitTokensRemaining Nullable(Int64) CODEC(T64, ZSTD(1)),
    RateLimitTokensLimit Nullable(Int64) CODEC(T64, ZSTD(1)),
    CacheWriteTtl LowCardinality(String) CODEC(ZSTD(1)),
    CacheBreakevenReads Float64 CODEC(ZSTD(1)),
    PrefixHash String CODEC(ZSTD(1)),
    RequestHash String CODEC(ZSTD(1)),
    -- Which price entry priced the call (see semconv.PRICE_*); PriceProvider is set on
    -- unpriced calls too, so `prices sync` can match a price added later.
    PriceSource LowCardinality(String) CODEC(ZSTD(1)),
    PriceVersion LowCardinality(String) CODEC(ZSTD(1)),
    PriceProvider LowCardinality(String) CODEC(ZSTD(1)),
    PriceModel LowCardinality(String) CODEC(ZSTD(1)),
    PriceVariant LowCardinality(String) CODEC(ZSTD(1)),
    PriceEffectiveFrom Nullable(Date),
    -- What the host says it billed, beside CostTotal and never added to it.
    CostReported Nullable(Float64) CODEC(ZSTD(1)),
    CostReportedSource LowCardinality(String) CODEC(ZSTD(1)),
    -- The 1-hour-TTL share of CacheWriteTokens, and the audio and image subsets of the
    -- token totals above (otel_llmcost/pricing/usage.py): what repricing needs beyond the totals.
    CacheWrite1hTokens UInt64 CODEC(T64, ZSTD(1)),
    InputAudioTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheAudioReadTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputAudioTokens UInt64 CODEC(T64, ZSTD(1)),
    InputImageTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheImageReadTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputImageTokens UInt64 CODEC(T64, ZSTD(1)),
    -- The user's plan (llmcost.user.tier): tier budgets and cost per tier.
    Tier LowCardinality(String) CODEC(ZSTD(1)),
    -- Usage beyond any plausible bound (llmcost.usage.implausible): kept as reported, never priced.
    Implausible UInt8 CODEC(T64, ZSTD(1)),
    -- Prompt anatomy (llmcost.prompt.component.*, otel_llmcost/instrumentation/anatomy.py):
    -- the prompt's tokens per component, counted offline (an estimate that adds up to the
    -- prompt, not to InputTokens); all 0 when anatomy was off or sampled out.
    PromptSystemTokens UInt64 CODEC(T64, ZSTD(1)),
    PromptToolsTokens UInt64 CODEC(T64, ZSTD(1)),
    PromptContextTokens UInt64 CODEC(T64, ZSTD(1)),
    PromptHistoryTokens UInt64 CODEC(T64, ZSTD(1)),
    PromptLatestTokens UInt64 CODEC(T64, ZSTD(1)),
    -- The first of gen_ai.response.finish_reasons as the provider spells it ('stop',
    -- 'length', 'end_turn', 'max_tokens', ...); '' when none was recorded.
    FinishReason LowCardinality(String) CODEC(ZSTD(1)),
    -- gen_ai.request.max_tokens; 0 when the request set none.
    MaxTokens UInt64 CODEC(T64, ZSTD(1)),
    -- The model asked for when a budget downgraded the call (llmcost.budget.original_model); '' otherwise.
    OriginalModel LowCardinality(String) CODEC(ZSTD(1)),
    -- Whether the app marked the call as work no user waits for (llmcost.background, set
    -- by llmcost.attributes(background=...)): 1 or 0, NULL when it said nothing.
    Background Nullable(UInt8) CODEC(T64, ZSTD(1)),
    -- The OpenAI Batch API output file whose spend an Operation = 'batch' row records
    -- (llmcost.batch.file_id; otel_llmcost/instrumentation/batches.py); '' for every other call.
    -- One process records a file once; a file read in two processes is two rows per model:
    -- `LIMIT 1 BY BatchFileId, RequestModel` over the batch rows keeps one.
    BatchFileId String CODEC(ZSTD(1)),
    -- SimHash of the normalized last user message (llmcost.prompt.simhash, 16 hex digits;
    -- otel_llmcost/instrumentation/similarity.py): near-duplicate requests by Hamming
    -- distance (018_near_duplicates.sql). 0 when there is none or it is malformed.
    SimHash UInt64,
    -- Audio calls billed in units other than tokens (otel_llmcost/providers/openai_media.py):
    -- the seconds of input audio a whisper-1 response billed (llmcost.usage.audio_seconds) and
    -- the characters sent to speech (llmcost.usage.input_characters, recorded on failed calls
    -- too); 0 for every other call. Priced by llm_unit_prices (026_audio_units.sql).
    AudioSeconds Float64 CODEC(ZSTD(1)),
    InputCharacters UInt64 CODEC(T64, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user User TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_prefix_hash PrefixHash TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_request_hash RequestHash TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Endpoint, toStartOfHour(Timestamp), RequestModel, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_calls ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ParentSpanId String,
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Operation LowCardinality(String),
    RequestModel LowCardinality(String),
    ResponseModel LowCardinality(String),
    Endpoint LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    User String,
    Session String,
    TaskId String,
    StatusCode LowCardinality(String),
    ErrorType LowCardinality(String),
    HttpStatus UInt16,
    DurationMs Float64,
    TtftMs Nullable(Float64),
    Stream UInt8,
    InputTokens UInt64,
    OutputTokens UInt64,
    CacheReadTokens UInt64,
    CacheWriteTokens UInt64,
    ReasoningTokens UInt64,
    UncachedInputTokens UInt64,
    CostTotal Float64,
    CostInput Float64,
    CostOutput Float64,
    CostCacheRead Float64,
    CostCacheWrite Float64,
    CostCacheWritePremium Float64,
    CostSavings Float64,
    Unpriced UInt8,
    Estimated UInt8,
    Throttled UInt8,
    ThrottledAttempts UInt32,
    RetryCount UInt32,
    RetryAfterS Float64,
    RateLimitRequestsRemaining Nullable(Int64),
    RateLimitRequestsLimit Nullable(Int64),
    RateLimitTokensRemaining Nullable(Int64),
    RateLimitTokensLimit Nullable(Int64),
    CacheWriteTtl LowCardinality(String),
    CacheBreakevenReads Float64,
    PrefixHash String,
    RequestHash String,
    PriceSource LowCardinality(String),
    PriceVersion LowCardinality(String),
    PriceProvider LowCardinality(String),
    PriceModel LowCardinality(String),
    PriceVariant LowCardinality(String),
    PriceEffectiveFrom Nullable(Date),
    CostReported Nullable(Float64),
    CostReportedSource LowCardinality(String),
    CacheWrite1hTokens UInt64,
    InputAudioTokens UInt64,
    CacheAudioReadTokens UInt64,
    OutputAudioTokens UInt64,
    InputImageTokens UInt64,
    CacheImageReadTokens UInt64,
    OutputImageTokens UInt64,
    Tier LowCardinality(String),
    Implausible UInt8,
    PromptSystemTokens UInt64,
    PromptToolsTokens UInt64,
    PromptContextTokens UInt64,
    PromptHistoryTokens UInt64,
    PromptLatestTokens UInt64,
    FinishReason LowCardinality(String),
    MaxTokens UInt64,
    OriginalModel LowCardinality(String),
    Background Nullable(UInt8),
    BatchFileId String,
    SimHash UInt64,
    AudioSeconds Float64,
    InputCharacters UInt64
) ENGINE = Distributed('prod', 'otel', 'llm_calls_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_calls_mv  ON CLUSTER prod
TO otel.llm_calls_local
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ParentSpanId,
    ServiceName,
    SpanAttributes['gen_ai.provider.name'] AS Provider,
    SpanAttributes['gen_ai.operation.name'] AS Operation,
    SpanAttributes['gen_ai.request.model'] AS RequestModel,
    SpanAttributes['gen_ai.response.model'] AS ResponseModel,
    SpanAttributes['llmcost.endpoint'] AS Endpoint,
    SpanAttributes['llmcost.feature'] AS Feature,
    SpanAttributes['llmcost.team'] AS Team,
    SpanAttributes['llmcost.user'] AS User,
    SpanAttributes['llmcost.session'] AS Session,
    SpanAttributes['llmcost.task.id'] AS TaskId,
    StatusCode,
    SpanAttributes['error.type'] AS ErrorType,
    toUInt16OrZero(SpanAttributes['http.response.status_code']) AS HttpStatus,
    Duration / 1e6 AS DurationMs,
    toFloat64OrNull(SpanAttributes['gen_ai.response.time_to_first_chunk']) * 1000 AS TtftMs,
    lower(SpanAttributes['gen_ai.request.stream']) IN ('true', '1') AS Stream,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens']) AS InputTokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens']) AS OutputTokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_read.input_tokens']) AS CacheReadTokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_creation.input_tokens']) AS CacheWriteTokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.reasoning.output_tokens']) AS ReasoningTokens,
    toUInt64OrZero(SpanAttributes['llmcost.usage.uncached_input_tokens']) AS UncachedInputTokens,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.total']), 0) AS CostTotal,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.input']), 0) AS CostInput,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.output']), 0) AS CostOutput,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.cache_read']), 0) AS CostCacheRead,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.cache_write']), 0) AS CostCacheWrite,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.cache_write_premium']), 0) AS CostCacheWritePremium,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.savings']), 0) AS CostSavings,
    lower(SpanAttributes['llmcost.unpriced']) IN ('true', '1') AS Unpriced,
    lower(SpanAttributes['llmcost.usage.estimated']) IN ('true', '1') AS Estimated,
    lower(SpanAttributes['llmcost.throttled']) IN ('true', '1') AS Throttled,
    toUInt32OrZero(SpanAttributes['llmcost.throttled.attempts']) AS ThrottledAttempts,
    toUInt32OrZero(SpanAttributes['llmcost.retry.count']) AS RetryCount,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.retry.after_s']), 0) AS RetryAfterS,
    accurateCastOrNull(toFloat64OrNull(SpanAttributes['llmcost.ratelimit.requests.remaining']), 'Int64') AS RateLimitRequestsRemaining,
    accurateCastOrNull(toFloat64OrNull(SpanAttributes['llmcost.ratelimit.requests.limit']), 'Int64') AS RateLimitRequestsLimit,
    accurateCastOrNull(toFloat64OrNull(SpanAttributes['llmcost.ratelimit.tokens.remaining']), 'Int64') AS RateLimitTokensRemaining,
    accurateCastOrNull(toFloat64OrNull(SpanAttributes['llmcost.ratelimit.tokens.limit']), 'Int64') AS RateLimitTokensLimit,
    SpanAttributes['llmcost.cache.write_ttl'] AS CacheWriteTtl,
    ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.cache.breakeven_reads']), 0) AS CacheBreakevenReads,
    SpanAttributes['llmcost.prompt.prefix_hash'] AS PrefixHash,
    SpanAttributes['llmcost.prompt.request_hash'] AS RequestHash,
    SpanAttributes['llmcost.price.source'] AS PriceSource,
    SpanAttributes['llmcost.price.version'] AS PriceVersion,
    SpanAttributes['llmcost.price.provider'] AS PriceProvider,
    SpanAttributes['llmcost.price.model'] AS PriceModel,
    SpanAttributes['llmcost.price.variant'] AS PriceVariant,
    toDateOrNull(SpanAttributes['llmcost.price.effective_from']) AS PriceEffectiveFrom,
    if(isFinite(toFloat64OrZero(SpanAttributes['llmcost.cost.reported'])),
       toFloat64OrNull(SpanAttributes['llmcost.cost.reported']), NULL) AS CostReported,
    SpanAttributes['llmcost.cost.reported_source'] AS CostReportedSource,
    toUInt64OrZero(SpanAttributes['llmcost.usage.cache_write_1h_tokens']) AS CacheWrite1hTokens,
    toUInt64OrZero(SpanAttributes['llmcost.usage.input_audio_tokens']) AS InputAudioTokens,
    toUInt64OrZero(SpanAttributes['llmcost.usage.cache_audio_read_tokens']) AS CacheAudioReadTokens,
    toUInt64OrZero(SpanAttributes['llmcost.usage.output_audio_tokens']) AS OutputAudioTokens,
    toUInt64OrZero(SpanAttributes['llmcost.usage.input_image_tokens']) AS InputImageTokens,
    toUInt64OrZero(SpanAttributes['llmcost.usage.cache_image_read_tokens']) AS CacheImageReadTokens,
    toUInt64OrZero(SpanAttributes['llmcost.usage.output_image_tokens']) AS OutputImageTokens,
    SpanAttributes['llmcost.user.tier'] AS Tier,
    lower(SpanAttributes['llmcost.usage.implausible']) IN ('true', '1') AS Implausible,
    toUInt64OrZero(SpanAttributes['llmcost.prompt.component.system']) AS PromptSystemTokens,
    toUInt64OrZero(SpanAttributes['llmcost.prompt.component.tools']) AS PromptToolsTokens,
    toUInt64OrZero(SpanAttributes['llmcost.prompt.component.context']) AS PromptContextTokens,
    toUInt64OrZero(SpanAttributes['llmcost.prompt.component.history']) AS PromptHistoryTokens,
    toUInt64OrZero(SpanAttributes['llmcost.prompt.component.latest']) AS PromptLatestTokens,
    -- A string array arrives as JSON text ('["stop"]', as the collector stores it); a
    -- plain string is taken as it is. JSONExtractString gives '' on anything malformed.
    if(startsWith(SpanAttributes['gen_ai.response.finish_reasons'], '['),
       JSONExtractString(SpanAttributes['gen_ai.response.finish_reasons'], 1),
       SpanAttributes['gen_ai.response.finish_reasons']) AS FinishReason,
    toUInt64OrZero(SpanAttributes['gen_ai.request.max_tokens']) AS MaxTokens,
    SpanAttributes['llmcost.budget.original_model'] AS OriginalModel,
    CAST(multiIf(SpanAttributes['llmcost.background'] IN ('true', '1'), 1,
                 SpanAttributes['llmcost.background'] IN ('false', '0'), 0,
                 NULL) AS Nullable(UInt8)) AS Background,
    SpanAttributes['llmcost.batch.file_id'] AS BatchFileId,
    if(match(SpanAttributes['llmcost.prompt.simhash'], '^[0-9a-fA-F]{16}$'),
       reinterpretAsUInt64(reverse(unhex(SpanAttributes['llmcost.prompt.simhash']))), 0) AS SimHash,
    greatest(ifNotFinite(toFloat64OrZero(SpanAttributes['llmcost.usage.audio_seconds']), 0), 0) AS AudioSeconds,
    toUInt64OrZero(SpanAttributes['llmcost.usage.input_characters']) AS InputCharacters
FROM otel.otel_traces_local
-- Only otel-llmcost's own spans: other GenAI instrumentations (and SDKs that trace
-- themselves, as anthropic 2.x does under the global tracer provider) emit a second
-- span per call with gen_ai.* attributes but no cost, which would double-count calls.
WHERE ScopeName = 'otel_llmcost'
  AND SpanAttributes['gen_ai.operation.name'] != '';

CREATE TABLE IF NOT EXISTS otel.llm_cost_hourly_local  ON CLUSTER prod (
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
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Hour)
ORDER BY (Hour, ServiceName, Provider, Endpoint, RequestModel, Feature, Team)
TTL Hour + toIntervalDay(180)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_cost_hourly ON CLUSTER prod (
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
) ENGINE = Distributed('prod', 'otel', 'llm_cost_hourly_local', rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_cost_hourly_mv  ON CLUSTER prod
TO otel.llm_cost_hourly_local
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
FROM otel.llm_calls_local AS c
GROUP BY
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

CREATE TABLE IF NOT EXISTS otel.llm_cost_daily_local  ON CLUSTER prod (
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
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Day)
ORDER BY (Day, ServiceName, Provider, Endpoint, RequestModel, Feature, Team)
TTL Day + toIntervalDay(180)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_cost_daily ON CLUSTER prod (
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
) ENGINE = Distributed('prod', 'otel', 'llm_cost_daily_local', rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_cost_daily_mv  ON CLUSTER prod
TO otel.llm_cost_daily_local
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
FROM otel.llm_calls_local
GROUP BY
    Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

CREATE TABLE IF NOT EXISTS otel.llm_user_daily_local  ON CLUSTER prod (
    Day Date,
    ServiceName LowCardinality(String),
    Team LowCardinality(String),
    User String,
    Calls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Day)
ORDER BY (Day, ServiceName, Team, User)
TTL Day + toIntervalDay(180)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_user_daily ON CLUSTER prod (
    Day Date,
    ServiceName LowCardinality(String),
    Team LowCardinality(String),
    User String,
    Calls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64)
) ENGINE = Distributed('prod', 'otel', 'llm_user_daily_local', rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_user_daily_mv  ON CLUSTER prod
TO otel.llm_user_daily_local
AS SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Team,
    User,
    toUInt64(count()) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal
FROM otel.llm_calls_local
GROUP BY
    Day,
    ServiceName,
    Team,
    User;

CREATE TABLE IF NOT EXISTS otel.llm_user_spend_daily_local  ON CLUSTER prod (
    Day Date,
    ServiceName LowCardinality(String),
    User String,
    Calls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Day)
ORDER BY (Day, ServiceName, User)
TTL Day + toIntervalDay(180)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_user_spend_daily ON CLUSTER prod (
    Day Date,
    ServiceName LowCardinality(String),
    User String,
    Calls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64)
) ENGINE = Distributed('prod', 'otel', 'llm_user_spend_daily_local', rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_user_spend_daily_mv  ON CLUSTER prod
TO otel.llm_user_spend_daily_local
AS SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    User,
    toUInt64(count()) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostTotal
FROM otel.llm_calls_local
WHERE User != ''
GROUP BY
    Day,
    ServiceName,
    User;

CREATE VIEW IF NOT EXISTS otel.v_cost_hourly  ON CLUSTER prod AS
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
FROM otel.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

CREATE VIEW IF NOT EXISTS otel.v_cost_by_endpoint_hourly  ON CLUSTER prod AS
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
FROM otel.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Endpoint;

CREATE VIEW IF NOT EXISTS otel.v_cost_by_model_daily  ON CLUSTER prod AS
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
FROM otel.llm_cost_daily
GROUP BY
    Day,
    ServiceName,
    Provider,
    RequestModel;

CREATE VIEW IF NOT EXISTS otel.v_cost_by_feature_daily  ON CLUSTER prod AS
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
FROM otel.llm_cost_daily
GROUP BY
    Day,
    ServiceName,
    Feature;

CREATE VIEW IF NOT EXISTS otel.v_cost_by_team_daily  ON CLUSTER prod AS
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
FROM otel.llm_cost_daily
GROUP BY
    Day,
    ServiceName,
    Team;

CREATE VIEW IF NOT EXISTS otel.v_cost_by_user_daily  ON CLUSTER prod AS
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
FROM otel.llm_user_daily
GROUP BY
    Day,
    ServiceName,
    Team,
    User;

CREATE VIEW IF NOT EXISTS otel.v_top_users  ON CLUSTER prod AS
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
FROM otel.llm_user_spend_daily
WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    User;

CREATE VIEW IF NOT EXISTS otel.v_cost_by_user_hourly  ON CLUSTER prod AS
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
FROM otel.llm_calls
WHERE User != ''
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
    User;

CREATE VIEW IF NOT EXISTS otel.v_unpriced_calls  ON CLUSTER prod AS
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
FROM otel.llm_calls
WHERE Unpriced = 1
GROUP BY
    Hour,
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    Endpoint,
    Team;

CREATE VIEW IF NOT EXISTS otel.v_estimated_usage  ON CLUSTER prod AS
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
FROM otel.llm_calls
WHERE Estimated = 1
GROUP BY
    Hour,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
    Team;

CREATE VIEW IF NOT EXISTS otel.v_errors_hourly  ON CLUSTER prod AS
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
FROM otel.llm_calls
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

CREATE TABLE IF NOT EXISTS otel.llm_task_outcomes_local  ON CLUSTER prod (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    TaskId String CODEC(ZSTD(1)),
    TaskKey String CODEC(ZSTD(1)),
    Success UInt8,
    Endpoint LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    User String CODEC(ZSTD(1)),
    DurationMs Float64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, TaskKey, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_task_outcomes ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ServiceName LowCardinality(String),
    TaskId String,
    TaskKey String,
    Success UInt8,
    Endpoint LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    User String,
    DurationMs Float64
) ENGINE = Distributed('prod', 'otel', 'llm_task_outcomes_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_task_outcomes_mv  ON CLUSTER prod
TO otel.llm_task_outcomes_local
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['llmcost.task.id'] AS TaskId,
    if(TaskId != '', TaskId, TraceId) AS TaskKey,
    lower(SpanAttributes['llmcost.task.success']) IN ('true', '1') AS Success,
    SpanAttributes['llmcost.endpoint'] AS Endpoint,
    SpanAttributes['llmcost.feature'] AS Feature,
    SpanAttributes['llmcost.team'] AS Team,
    SpanAttributes['llmcost.user'] AS User,
    Duration / 1e6 AS DurationMs
FROM otel.otel_traces_local
WHERE SpanName = 'llmcost.task';

CREATE VIEW IF NOT EXISTS otel.v_task_outcomes  ON CLUSTER prod AS
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
    FROM otel.llm_task_outcomes
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
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
    FROM otel.llm_calls
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32} + 24)
      AND if(TaskId != '', TaskId, TraceId) IN (
        SELECT TaskKey
        FROM otel.llm_task_outcomes
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    )
    GROUP BY TaskKey
) AS c ON o.TaskKey = c.TaskKey;

CREATE VIEW IF NOT EXISTS otel.v_cost_per_successful_task  ON CLUSTER prod AS
SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Feature,
    Endpoint,
    Team,
    count() AS Tasks,
    sum(Success) AS SuccessfulTasks,
    SuccessfulTasks / Tasks AS SuccessRate,
    sum(CostTotal) AS CostTotal,
    CostTotal / nullIf(SuccessfulTasks, 0) AS CostPerSuccessfulTask
FROM otel.v_task_outcomes(since_hours = {since_hours:UInt32})
GROUP BY
    Day,
    ServiceName,
    Feature,
    Endpoint,
    Team;

CREATE VIEW IF NOT EXISTS otel.v_cache_efficiency  ON CLUSTER prod AS
SELECT
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    Team,
    sum(Calls) AS Calls,
    sum(Unpriced) AS UnpricedCalls,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    CacheReadTokens / nullIf(InputTokens, 0) AS HitRate,
    sum(CostCacheRead) AS CostCacheRead,
    sum(CostCacheWrite) AS CostCacheWrite,
    sum(CostCacheWritePremium) AS CostCacheWritePremium,
    sum(CostSavings) AS CostSavings
FROM otel.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    Team;

CREATE TABLE IF NOT EXISTS otel.llm_prefix_tokens_local  ON CLUSTER prod (
    Day Date,
    ServiceName LowCardinality(String),
    PrefixHash String,
    PrefixTokens SimpleAggregateFunction(max, UInt64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Day)
ORDER BY (ServiceName, PrefixHash, Day)
TTL Day + toIntervalDay(180)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_prefix_tokens ON CLUSTER prod (
    Day Date,
    ServiceName LowCardinality(String),
    PrefixHash String,
    PrefixTokens SimpleAggregateFunction(max, UInt64)
) ENGINE = Distributed('prod', 'otel', 'llm_prefix_tokens_local', rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_prefix_tokens_mv  ON CLUSTER prod
TO otel.llm_prefix_tokens_local
AS SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    SpanAttributes['llmcost.prompt.prefix_hash'] AS PrefixHash,
    max(toUInt64OrZero(SpanAttributes['llmcost.prompt.prefix_tokens'])) AS PrefixTokens
FROM otel.otel_traces_local
WHERE ScopeName = 'otel_llmcost'
  AND SpanAttributes['gen_ai.operation.name'] != ''
  AND SpanAttributes['llmcost.prompt.prefix_hash'] != ''
  AND SpanAttributes['llmcost.prompt.prefix_tokens'] != ''
GROUP BY
    Day,
    ServiceName,
    PrefixHash;

CREATE VIEW IF NOT EXISTS otel.v_cache_min_rules  ON CLUSTER prod AS
SELECT
    tupleElement(Rule, 1) AS Rank,
    tupleElement(Rule, 2) AS ProviderPattern,
    tupleElement(Rule, 3) AS ModelPattern,
    tupleElement(Rule, 4) AS MinCacheTokens
FROM (
    SELECT arrayJoin([
        (1, '^anthropic$', 'opus-4-[56]|haiku-4-5', 4096),
        (2, '^anthropic$', 'sonnet-4-6|haiku', 2048),
        (3, '^anthropic$', '', 1024),
        (4, '^(openai|azure.ai.openai)$', '', 1024),
        (5, '^gcp[.](gemini|vertex_ai)$', 'pro', 4096),
        (6, '^gcp[.](gemini|vertex_ai)$', '', 1024)
    ]) AS Rule
);

CREATE VIEW IF NOT EXISTS otel.v_cache_min_tokens  ON CLUSTER prod AS
SELECT
    Provider,
    RequestModel,
    nullIf(tupleElement(arrayFirst(r -> match(Provider, r.1) AND match(RequestModel, r.2),
        (SELECT groupArray((ProviderPattern, ModelPattern, MinCacheTokens))
         FROM (SELECT * FROM otel.v_cache_min_rules ORDER BY Rank))), 3), 0) AS MinCacheTokens
FROM (
    SELECT DISTINCT
        Provider,
        RequestModel
    FROM otel.llm_cost_daily
);

CREATE VIEW IF NOT EXISTS otel.v_prefix_calls_hourly  ON CLUSTER prod AS
SELECT
    toStartOfHour(c.Timestamp) AS Hour,
    c.ServiceName AS ServiceName,
    c.Endpoint AS Endpoint,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    c.PrefixHash AS PrefixHash,
    count() AS Calls,
    nullIf(max(p.PrefixTokens), 0) AS PrefixTokens,
    sum(c.InputTokens) AS InputTokens,
    sum(c.CacheReadTokens) AS CacheReadTokens,
    sum(c.CacheWriteTokens) AS CacheWriteTokens,
    sum(c.CostSavings) AS CostSavings,
    sum(c.CostCacheWritePremium) AS CostCacheWritePremium
FROM otel.llm_calls AS c
LEFT JOIN (
    SELECT
        ServiceName,
        PrefixHash,
        max(PrefixTokens) AS PrefixTokens
    FROM otel.llm_prefix_tokens
    GROUP BY
        ServiceName,
        PrefixHash
) AS p ON p.ServiceName = c.ServiceName AND p.PrefixHash = c.PrefixHash
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    PrefixHash;

CREATE VIEW IF NOT EXISTS otel.v_prefix_stability_hourly  ON CLUSTER prod AS
SELECT
    s.Hour AS Hour,
    s.ServiceName AS ServiceName,
    s.Endpoint AS Endpoint,
    s.Provider AS Provider,
    s.RequestModel AS RequestModel,
    s.AllCalls AS Calls,
    s.DistinctPrefixes AS DistinctPrefixes,
    s.TopPrefixCalls AS TopPrefixCalls,
    s.TopPrefixCalls / s.AllCalls AS TopPrefixShare,
    s.TopPrefixTokens AS TopPrefixTokens,
    nullIf(tupleElement(arrayFirst(r -> match(s.Provider, r.1) AND match(s.RequestModel, r.2),
        (SELECT groupArray((ProviderPattern, ModelPattern, MinCacheTokens))
         FROM (SELECT * FROM otel.v_cache_min_rules ORDER BY Rank))), 3), 0) AS MinCacheTokens,
    s.TopPrefixTokens >= MinCacheTokens AS PrefixCacheable,
    s.AllInputTokens AS InputTokens,
    s.AllCacheReadTokens AS CacheReadTokens,
    s.AllCacheReadTokens / nullIf(s.AllInputTokens, 0) AS HitRate,
    s.AllCostSavings AS CostSavings
FROM (
    SELECT
        Hour,
        ServiceName,
        Endpoint,
        Provider,
        RequestModel,
        sum(Calls) AS AllCalls,
        uniqExactIf(PrefixHash, PrefixHash != '') AS DistinctPrefixes,
        maxIf(Calls, PrefixHash != '') AS TopPrefixCalls,
        argMaxIf(PrefixTokens, Calls, PrefixHash != '') AS TopPrefixTokens,
        sum(InputTokens) AS AllInputTokens,
        sum(CacheReadTokens) AS AllCacheReadTokens,
        sum(CostSavings) AS AllCostSavings
    FROM otel.v_prefix_calls_hourly
    GROUP BY
        Hour,
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
) AS s;

CREATE VIEW IF NOT EXISTS otel.v_rate_limit_pressure  ON CLUSTER prod AS
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
FROM otel.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
    Team;

CREATE TABLE IF NOT EXISTS otel.llm_limiter_decisions_local  ON CLUSTER prod (
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
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Route, toStartOfHour(Timestamp), Tier, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_limiter_decisions ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ServiceName LowCardinality(String),
    LimitKind LowCardinality(String),
    Action LowCardinality(String),
    Route LowCardinality(String),
    Tier LowCardinality(String),
    Rule LowCardinality(String),
    Source LowCardinality(String),
    Key String,
    Remaining Nullable(Float64)
) ENGINE = Distributed('prod', 'otel', 'llm_limiter_decisions_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_limiter_decisions_mv  ON CLUSTER prod
TO otel.llm_limiter_decisions_local
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
FROM otel.otel_traces_local
ARRAY JOIN arrayFilter(n -> Events.Name[n] = 'llmcost.limiter.decision', arrayEnumerate(Events.Name)) AS i
WHERE has(Events.Name, 'llmcost.limiter.decision');

CREATE VIEW IF NOT EXISTS otel.v_app_rate_limits_hourly  ON CLUSTER prod AS
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
FROM otel.llm_limiter_decisions
GROUP BY
    Hour,
    ServiceName,
    Route,
    Tier,
    LimitKind;

CREATE VIEW IF NOT EXISTS otel.v_app_vs_provider_throttling_hourly  ON CLUSTER prod AS
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
    FROM otel.llm_limiter_decisions
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
    FROM otel.llm_calls
    GROUP BY
        Hour,
        ServiceName,
        Route
)
GROUP BY
    Hour,
    ServiceName,
    Route;

CREATE TABLE IF NOT EXISTS otel.llm_budgets  ON CLUSTER prod (
    Name LowCardinality(String),
    Scope LowCardinality(String),
    Match String,
    Period LowCardinality(String),
    TimeZone LowCardinality(String),
    PeriodStart DateTime64(3, 'UTC'),
    PeriodEnd DateTime64(3, 'UTC'),
    LimitUsd Float64,
    UpdatedAt DateTime64(3, 'UTC'),
    LimitTokens UInt64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (Name, UpdatedAt);

CREATE VIEW IF NOT EXISTS otel.v_budget_periods  ON CLUSTER prod AS
SELECT
    Name AS Budget,
    Scope,
    Match,
    Period,
    TimeZone,
    LimitUsd,
    LimitTokens,
    multiIf(
        now64(3, 'UTC') < SyncedEnd, SyncedStart,
        Period = 'day', toDateTime64(toStartOfDay(LocalNow), 3, 'UTC') - toIntervalSecond(OffsetS),
        Period = 'week', toDateTime64(toMonday(LocalNow), 3, 'UTC') - toIntervalSecond(OffsetS),
        toDateTime64(toStartOfMonth(LocalNow), 3, 'UTC') - toIntervalSecond(OffsetS)
    ) AS PeriodStart,
    multiIf(
        now64(3, 'UTC') < SyncedEnd, SyncedEnd,
        Period = 'day', PeriodStart + toIntervalDay(1),
        Period = 'week', PeriodStart + toIntervalDay(7),
        toDateTime64(addMonths(toStartOfMonth(LocalNow), 1), 3, 'UTC') - toIntervalSecond(OffsetS)
    ) AS PeriodEnd,
    SyncedAt AS UpdatedAt
FROM
(
    SELECT
        Name,
        argMax(Scope, UpdatedAt) AS Scope,
        argMax(Match, UpdatedAt) AS Match,
        argMax(Period, UpdatedAt) AS Period,
        argMax(TimeZone, UpdatedAt) AS TimeZone,
        argMax(PeriodStart, UpdatedAt) AS SyncedStart,
        argMax(PeriodEnd, UpdatedAt) AS SyncedEnd,
        argMax(LimitUsd, UpdatedAt) AS LimitUsd,
        argMax(LimitTokens, UpdatedAt) AS LimitTokens,
        max(UpdatedAt) AS SyncedAt,
        (86400 - toUnixTimestamp(toDateTime(SyncedStart)) % 86400) % 86400 AS EastOfUtcS,
        if(EastOfUtcS > 14 * 3600, EastOfUtcS - 86400, EastOfUtcS) AS OffsetS,
        toDateTime(now64(3, 'UTC') + toIntervalSecond(OffsetS), 'UTC') AS LocalNow
    FROM otel.llm_budgets
    GROUP BY Name
);

CREATE VIEW IF NOT EXISTS otel.v_budget_status  ON CLUSTER prod AS
SELECT
    Budget,
    Scope,
    ScopeValue,
    Period,
    PeriodStart,
    PeriodEnd,
    LimitUsd,
    UsedUsd,
    Calls,
    UsedUsd / nullIf(LimitUsd, 0) AS UsedShare,
    UsedUsd * 86400 / greatest(dateDiff('second', PeriodStart, now64(3, 'UTC')), 60) AS BurnRateUsdPerDay,
    multiIf(
        LimitUsd <= 0, NULL,
        UsedUsd >= LimitUsd, now64(3, 'UTC'),
        BurnRateUsdPerDay <= 0, NULL,
        now64(3, 'UTC') + toIntervalSecond(toInt64((LimitUsd - UsedUsd) / BurnRateUsdPerDay * 86400)) < PeriodEnd,
        now64(3, 'UTC') + toIntervalSecond(toInt64((LimitUsd - UsedUsd) / BurnRateUsdPerDay * 86400)),
        NULL
    ) AS ProjectedExhaustion,
    -- Added after the columns above (the CLI reads those by name and position).
    -- NULL for a budget without a USD limit (token-denominated only), and likewise for tokens.
    if(LimitUsd > 0, LimitUsd - UsedUsd, NULL) AS HeadroomUsd,
    HeadroomUsd / nullIf(LimitUsd, 0) AS HeadroomShare,
    BurnRateUsdPerDay * dateDiff('second', PeriodStart, PeriodEnd) / 86400 AS ProjectedUsdAtPeriodEnd,
    UsedTokens,
    LimitTokens,
    UsedTokens / nullIf(LimitTokens, 0) AS UsedTokenShare,
    if(LimitTokens > 0, toInt64(LimitTokens) - toInt64(UsedTokens), NULL) AS HeadroomTokens,
    -- The larger of the USD and token shares: what the alert thresholds compare.
    greatest(ifNull(UsedShare, 0), ifNull(UsedTokenShare, 0)) AS LimitShare,
    LastCallAt
FROM
(
    SELECT
        b.Budget AS Budget,
        b.Scope AS Scope,
        multiIf(
            b.Scope = 'user', c.User,
            b.Scope = 'feature', c.Feature,
            b.Scope = 'team', c.Team,
            b.Scope = 'endpoint', c.Endpoint,
            b.Scope = 'session', c.Session,
            b.Scope = 'tier', c.Tier,
            ''
        ) AS ScopeValue,
        b.Period AS Period,
        b.PeriodStart AS PeriodStart,
        b.PeriodEnd AS PeriodEnd,
        any(b.LimitUsd) AS LimitUsd,
        any(b.LimitTokens) AS LimitTokens,
        sum(c.CostTotal) AS UsedUsd,
        -- Implausible usage is kept as reported but never charged (as by the app's budgets).
        sumIf(c.InputTokens + c.OutputTokens, NOT c.Implausible) AS UsedTokens,
        count() AS Calls,
        max(c.Timestamp) AS LastCallAt
    FROM otel.llm_calls AS c
    CROSS JOIN otel.v_budget_periods AS b
    WHERE c.Timestamp >= (SELECT min(PeriodStart) FROM otel.v_budget_periods)
        AND c.Timestamp < (SELECT max(PeriodEnd) FROM otel.v_budget_periods)
        AND c.Timestamp >= b.PeriodStart
        AND c.Timestamp < b.PeriodEnd
        AND (b.Scope = 'global' OR ScopeValue != '')
        AND (b.Match = '' OR ScopeValue = b.Match)
    GROUP BY Budget, Scope, ScopeValue, Period, PeriodStart, PeriodEnd
);

CREATE TABLE IF NOT EXISTS otel.llm_prices  ON CLUSTER prod (
    SyncId DateTime64(6),
    Provider LowCardinality(String),
    Model String,
    Variant LowCardinality(String),
    -- One row applies to a call when EffectiveFrom <= Timestamp < EffectiveUntil (UTC)
    -- and InputTokensFrom <= InputTokens < InputTokensUntil (price tiers).
    EffectiveFrom DateTime,
    EffectiveUntil DateTime,
    InputTokensFrom UInt64,
    InputTokensUntil UInt64,
    InputMtok Float64,
    OutputMtok Float64,
    CacheReadMtok Float64,
    CacheWrite5mMtok Float64,
    CacheWrite1hMtok Float64,
    ReasoningMtok Float64,
    -- 0 when the model has no cache-read price (CacheReadMtok is then the input price).
    CacheReadPriced UInt8,
    -- NULL where the model bills the modality at the text price.
    InputAudioMtok Nullable(Float64),
    CacheAudioReadMtok Nullable(Float64),
    OutputAudioMtok Nullable(Float64),
    InputImageMtok Nullable(Float64),
    CacheImageReadMtok Nullable(Float64),
    OutputImageMtok Nullable(Float64),
    -- 1: the price also changes within the day (off-peak discounts); the row holds the
    -- price at 00:00 UTC, so repricing such calls is an approximation.
    TimeOfDay UInt8,
    Source LowCardinality(String),
    Version LowCardinality(String)
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (SyncId, Provider, Model, Variant, EffectiveFrom, InputTokensFrom);

CREATE TABLE IF NOT EXISTS otel.llm_price_refs  ON CLUSTER prod (
    SyncId DateTime64(6),
    PriceProvider LowCardinality(String),
    RequestModel LowCardinality(String),
    ResponseModel LowCardinality(String),
    CallVariant LowCardinality(String),
    ValidFrom DateTime,
    ValidUntil DateTime,
    Provider LowCardinality(String),
    Model String,
    Variant LowCardinality(String),
    Source LowCardinality(String)
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (SyncId, PriceProvider, RequestModel, ResponseModel, CallVariant, ValidFrom);

CREATE TABLE IF NOT EXISTS otel.llm_price_syncs  ON CLUSTER prod (
    SyncId DateTime64(6),
    DatabaseVersion LowCardinality(String),
    OverrideFile String,
    OverrideVersion String,
    Prices UInt64,
    Refs UInt64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY SyncId;

CREATE VIEW IF NOT EXISTS otel.v_prices_current  ON CLUSTER prod AS
SELECT *
FROM otel.llm_prices
WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs);

CREATE VIEW IF NOT EXISTS otel.v_cost_reported_vs_computed  ON CLUSTER prod AS
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    Endpoint,
    Team,
    CostReportedSource AS ReportedSource,
    assumeNotNull(CostReported) AS ReportedUsd,
    CostTotal AS ComputedUsd,
    Unpriced,
    ReportedUsd - ComputedUsd AS DifferenceUsd,
    NOT Unpriced AND abs(DifferenceUsd) > greatest(0.000001, 0.02 * ReportedUsd) AS Disagrees
FROM otel.llm_calls
WHERE CostReported IS NOT NULL;

CREATE VIEW IF NOT EXISTS otel.v_cost_reported_disagreements  ON CLUSTER prod AS
SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Provider,
    RequestModel,
    ReportedSource,
    Endpoint,
    Team,
    count() AS Calls,
    sum(ReportedUsd) AS ReportedCostUsd,
    sumIf(ComputedUsd, NOT Unpriced) AS ComputedCostUsd,
    countIf(Unpriced) AS UnpricedCalls,
    sumIf(ReportedUsd, Unpriced) AS UnpricedReportedUsd,
    countIf(Disagrees) AS DisagreeingCalls,
    sumIf(DifferenceUsd, NOT Unpriced) AS TotalDifferenceUsd,
    maxIf(abs(DifferenceUsd), NOT Unpriced) AS MaxAbsDifferenceUsd
FROM otel.v_cost_reported_vs_computed
GROUP BY Day, ServiceName, Provider, RequestModel, ReportedSource, Endpoint, Team;

CREATE VIEW IF NOT EXISTS otel.v_spend_anomalies_daily  ON CLUSTER prod AS
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
        FROM otel.llm_cost_daily
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

CREATE VIEW IF NOT EXISTS otel.v_cache_hit_drops_hourly  ON CLUSTER prod AS
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
        FROM otel.llm_cost_hourly
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

CREATE VIEW IF NOT EXISTS otel.v_expensive_requests  ON CLUSTER prod AS
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
FROM otel.llm_calls AS c
LEFT JOIN (
    SELECT
        ServiceName,
        Endpoint,
        quantile(0.99)(CostTotal) AS P99Cost,
        count() AS EndpointCalls
    FROM otel.llm_calls
    WHERE Timestamp >= now() - INTERVAL 7 DAY
    GROUP BY
        ServiceName,
        Endpoint
) AS p ON c.ServiceName = p.ServiceName AND c.Endpoint = p.Endpoint
WHERE c.Timestamp >= now() - INTERVAL 7 DAY
    AND (c.CostTotal >= ExpensiveCallUsd OR (p.EndpointCalls >= 100 AND c.CostTotal > p.P99Cost));

CREATE VIEW IF NOT EXISTS otel.v_duplicate_requests  ON CLUSTER prod AS
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
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND RequestHash != ''
GROUP BY
    ServiceName,
    RequestModel,
    RequestHash
HAVING Calls >= 2;

CREATE TABLE IF NOT EXISTS otel.llm_evidence_local  ON CLUSTER prod (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    SetId String CODEC(ZSTD(1)),
    ItemIds Array(String) CODEC(ZSTD(1)),
    ItemTokens Array(UInt64) CODEC(ZSTD(1)),
    EvidenceTokens UInt64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SetId, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_evidence ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ServiceName LowCardinality(String),
    SetId String,
    ItemIds Array(String),
    ItemTokens Array(UInt64),
    EvidenceTokens UInt64
) ENGINE = Distributed('prod', 'otel', 'llm_evidence_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_evidence_mv  ON CLUSTER prod
TO otel.llm_evidence_local
AS WITH
    JSONExtract(SpanAttributes['llmcost.evidence.ids'], 'Array(String)') AS RawIds,
    JSONExtract(SpanAttributes['llmcost.evidence.tokens'], 'Array(UInt64)') AS RawTokens
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['llmcost.evidence.set_id'] AS SetId,
    if(length(RawIds) = length(RawTokens), RawIds, []) AS ItemIds,
    if(length(RawIds) = length(RawTokens), RawTokens, []) AS ItemTokens,
    greatest(toUInt64OrZero(SpanAttributes['llmcost.evidence.total_tokens']), arraySum(ItemTokens)) AS EvidenceTokens
FROM otel.otel_traces_local
WHERE ScopeName = 'otel_llmcost'
  AND SpanAttributes['gen_ai.operation.name'] != ''
  AND SpanAttributes['llmcost.evidence.set_id'] != '';

CREATE TABLE IF NOT EXISTS otel.llm_citations_local  ON CLUSTER prod (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    SetId String CODEC(ZSTD(1)),
    CitedIds Array(String) CODEC(ZSTD(1))
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SetId, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_citations ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ServiceName LowCardinality(String),
    SetId String,
    CitedIds Array(String)
) ENGINE = Distributed('prod', 'otel', 'llm_citations_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_citations_mv  ON CLUSTER prod
TO otel.llm_citations_local
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['llmcost.evidence.set_id'] AS SetId,
    JSONExtract(SpanAttributes['llmcost.evidence.cited_ids'], 'Array(String)') AS CitedIds
FROM otel.otel_traces_local
WHERE ScopeName = 'otel_llmcost'
  AND SpanName = 'llmcost.citations'
  AND SpanAttributes['llmcost.evidence.set_id'] != '';

CREATE VIEW IF NOT EXISTS otel.v_evidence_calls  ON CLUSTER prod AS
SELECT
    e.Timestamp AS Timestamp,
    e.ServiceName AS ServiceName,
    c.Endpoint AS Endpoint,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    c.Team AS Team,
    e.TraceId AS TraceId,
    e.SpanId AS SpanId,
    e.SetId AS SetId,
    length(e.ItemIds) AS Items,
    e.EvidenceTokens AS EvidenceTokens,
    k.SetId != '' AS CitationsRecorded,
    arrayCount(i -> has(k.CitedIds, i), e.ItemIds) AS CitedItems,
    arraySum(arrayMap((i, t) -> if(has(k.CitedIds, i), t, 0), e.ItemIds, e.ItemTokens)) AS CitedTokens,
    if(CitationsRecorded, e.EvidenceTokens - CitedTokens, 0) AS NeverCitedTokens,
    if(
        c.Unpriced = 1 OR c.SpanId = '',
        NULL,
        if(
            c.UncachedInputTokens > 0,
            c.CostInput / c.UncachedInputTokens,
            (c.CostInput + c.CostCacheRead + c.CostCacheWrite) / nullIf(c.InputTokens, 0)
        )
    ) AS InputUsdPerToken,
    NeverCitedTokens * InputUsdPerToken AS NeverCitedCost
FROM otel.llm_evidence AS e
LEFT JOIN (
    SELECT
        TraceId,
        SpanId,
        Endpoint,
        Provider,
        RequestModel,
        Team,
        Unpriced,
        InputTokens,
        UncachedInputTokens,
        CostInput,
        CostCacheRead,
        CostCacheWrite
    FROM otel.llm_calls
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
      AND TraceId IN (
        SELECT TraceId
        FROM otel.llm_evidence
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    )
) AS c ON c.TraceId = e.TraceId AND c.SpanId = e.SpanId
LEFT JOIN (
    SELECT
        SetId,
        groupUniqArrayArray(CitedIds) AS CitedIds
    FROM otel.llm_citations
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    GROUP BY SetId
) AS k ON k.SetId = e.SetId
WHERE e.Timestamp >= now() - toIntervalHour({since_hours:UInt32});

CREATE VIEW IF NOT EXISTS otel.v_evidence_waste_hourly  ON CLUSTER prod AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
    count() AS Calls,
    countIf(CitationsRecorded) AS CallsWithCitations,
    sum(Items) AS ItemsSent,
    sum(CitedItems) AS ItemsCited,
    sum(EvidenceTokens) AS EvidenceTokensSent,
    sum(CitedTokens) AS EvidenceTokensCited,
    sum(NeverCitedTokens) AS EvidenceTokensNeverCited,
    sumIf(EvidenceTokens, NOT CitationsRecorded) AS EvidenceTokensUnreported,
    sum(NeverCitedCost) AS NeverCitedUsd,
    EvidenceTokensCited / nullIf(EvidenceTokensCited + EvidenceTokensNeverCited, 0) AS CitedShare
FROM otel.v_evidence_calls(since_hours = {since_hours:UInt32})
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team;

CREATE TABLE IF NOT EXISTS otel.llm_budget_events_local  ON CLUSTER prod (
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
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Event, Budget, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_budget_events ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ServiceName LowCardinality(String),
    Event LowCardinality(String),
    Budget LowCardinality(String),
    Scope LowCardinality(String),
    ScopeValue String,
    Period LowCardinality(String),
    Threshold Nullable(Float64),
    Action LowCardinality(String),
    UsedUsd Nullable(Float64),
    LimitUsd Nullable(Float64),
    UsedTokens Nullable(Float64),
    LimitTokens Nullable(Float64),
    DowngradedTo LowCardinality(String),
    Model LowCardinality(String),
    Endpoint LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    User String
) ENGINE = Distributed('prod', 'otel', 'llm_budget_events_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_budget_events_mv  ON CLUSTER prod
TO otel.llm_budget_events_local
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
FROM otel.otel_traces_local
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

CREATE VIEW IF NOT EXISTS otel.v_budget_events  ON CLUSTER prod AS
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
FROM otel.llm_budget_events
ORDER BY Timestamp DESC;

CREATE TABLE IF NOT EXISTS otel.llm_anomaly_hourly_local  ON CLUSTER prod (
    Hour DateTime,
    Dimension LowCardinality(String),
    ServiceName LowCardinality(String),
    Key String,
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Throttled SimpleAggregateFunction(sum, UInt64),
    Unpriced SimpleAggregateFunction(sum, UInt64),
    CacheHitCalls SimpleAggregateFunction(sum, UInt64),
    CacheCalls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheEligibleTokens SimpleAggregateFunction(sum, UInt64),
    CacheShareSum SimpleAggregateFunction(sum, Float64),
    CacheShareSq SimpleAggregateFunction(sum, Float64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    DurationMsQuantiles AggregateFunction(quantiles(0.5, 0.95), Float64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Hour)
ORDER BY (Hour, Dimension, ServiceName, Key)
TTL Hour + toIntervalDay(180)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_anomaly_hourly ON CLUSTER prod (
    Hour DateTime,
    Dimension LowCardinality(String),
    ServiceName LowCardinality(String),
    Key String,
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Throttled SimpleAggregateFunction(sum, UInt64),
    Unpriced SimpleAggregateFunction(sum, UInt64),
    CacheHitCalls SimpleAggregateFunction(sum, UInt64),
    CacheCalls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheEligibleTokens SimpleAggregateFunction(sum, UInt64),
    CacheShareSum SimpleAggregateFunction(sum, Float64),
    CacheShareSq SimpleAggregateFunction(sum, Float64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    DurationMsQuantiles AggregateFunction(quantiles(0.5, 0.95), Float64)
) ENGINE = Distributed('prod', 'otel', 'llm_anomaly_hourly_local', rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_anomaly_hourly_mv  ON CLUSTER prod
TO otel.llm_anomaly_hourly_local
AS SELECT
    toStartOfHour(Timestamp) AS Hour,
    DimKey.1 AS Dimension,
    ServiceName,
    DimKey.2 AS Key,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS Errors,
    toUInt64(countIf(Throttled = 1 OR HttpStatus = 429)) AS Throttled,
    toUInt64(countIf(Unpriced = 1)) AS Unpriced,
    toUInt64(sum(CacheHit)) AS CacheHitCalls,
    toUInt64(countIf(EligibleTokens > 0)) AS CacheCalls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(EligibleTokens) AS CacheEligibleTokens,
    sum(CallShare) AS CacheShareSum,
    sum(CallShare * CallShare) AS CacheShareSq,
    sum(CostTotal) AS CostTotal,
    quantilesState(0.5, 0.95)(DurationMs) AS DurationMsQuantiles
FROM (
    SELECT
        *,
        greatest(InputTokens, CacheReadTokens) AS EligibleTokens,
        CacheReadTokens > 0 AS CacheHit,
        if(EligibleTokens > 0, CacheReadTokens / EligibleTokens, 0) AS CallShare
    FROM otel.llm_calls_local
)
ARRAY JOIN [('endpoint', Endpoint), ('model', RequestModel), ('feature', Feature), ('team', Team), ('user', User)] AS DimKey
WHERE DimKey.2 != ''
GROUP BY
    Hour,
    Dimension,
    ServiceName,
    Key;

CREATE TABLE IF NOT EXISTS otel.llm_anomaly_settings  ON CLUSTER prod (
    Id UInt8 DEFAULT 1,
    ScoreThreshold Float64 DEFAULT 5,
    ProportionZ Float64 DEFAULT 4,
    SpendFloorUsdPerHour Float64 DEFAULT 0.25,
    CallsFloorPerHour Float64 DEFAULT 50,
    ProportionFloor Float64 DEFAULT 0.1,
    NewEntityFloorUsd Float64 DEFAULT 1,
    DriftK Float64 DEFAULT 0.03,
    DriftH Float64 DEFAULT 0.3,
    DriftFloorUsdPerDay Float64 DEFAULT 5,
    RelearnDays UInt16 DEFAULT 7
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY Id;

CREATE VIEW IF NOT EXISTS otel.v_anomalies_at  ON CLUSTER prod AS
WITH
    (SELECT tuple(ScoreThreshold, ProportionZ, SpendFloorUsdPerHour, CallsFloorPerHour, ProportionFloor,
            NewEntityFloorUsd, DriftK, DriftH, DriftFloorUsdPerDay, RelearnDays)
     FROM otel.llm_anomaly_settings ORDER BY Id LIMIT 1) AS S,
    ifNull(S.1, 5) AS ScoreThreshold,
    ifNull(S.2, 4) AS ProportionZ,
    ifNull(S.3, 0.25) AS SpendFloor,
    ifNull(S.4, 50) AS CallsFloor,
    ifNull(S.5, 0.1) AS PropFloor,
    ifNull(S.6, 1) AS NewFloor,
    ifNull(S.7, 0.03) AS DriftK,
    ifNull(S.8, 0.3) AS DriftH,
    ifNull(S.9, 5) AS DriftFloor,
    ifNull(S.10, 7) AS RelearnDays,
    toStartOfHour({now:DateTime}) AS T,
    -- The series some detector could flag: each kind needs, within the days it judges, an
    -- hour spending SpendFloor (spend) or with CallsFloor calls (calls), 3 calls in 3 hours
    -- (every rate, and the per-call kinds, which need 20), NewFloor since first seen
    -- (new_entity) or a day spending DriftFloor (drift). A key below all of them (most users,
    -- most hours) would be densified to 1,008 hours and judged for nothing: 4 ms of CPU per
    -- series, 22 s for 5,000 users (benchmarks/panel_bench.py).
    judged AS (
        SELECT Dimension, ServiceName, Key
        FROM (
            SELECT
                *,
                sum(C) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour RANGE BETWEEN 7200 PRECEDING AND CURRENT ROW) AS C3,
                sum(Cost) OVER (PARTITION BY Dimension, ServiceName, Key, toDate(Hour)) AS DayCost
            FROM (
                SELECT Dimension, ServiceName, Key, Hour, sum(Calls) AS C, sum(CostTotal) AS Cost
                FROM otel.llm_anomaly_hourly
                WHERE Hour >= toStartOfDay({now:DateTime}) - INTERVAL 15 DAY
                    AND Hour <= {now:DateTime}
                GROUP BY
                    Dimension,
                    ServiceName,
                    Key,
                    Hour
            )
        )
        GROUP BY
            Dimension,
            ServiceName,
            Key
        HAVING max(Cost) >= SpendFloor OR max(C) >= CallsFloor OR max(C3) >= 3
            OR sum(Cost) >= NewFloor OR max(DayCost) >= DriftFloor
    ),
    series AS (
        SELECT
            Dimension,
            ServiceName,
            Key,
            Hour,
            if(Hour = toStartOfHour({now:DateTime}), greatest(dateDiff('second', Hour, {now:DateTime}), 300) / 3600, 1) AS Frac,
            Calls,
            Cost,
            Errors,
            Throttled,
            Unpriced,
            CacheHitCalls,
            CacheCalls,
            InputTokens,
            OutputTokens,
            CacheReadTokens,
            Eligible,
            ShareSum,
            ShareSq,
            P95
        FROM (
            SELECT
                Dimension,
                ServiceName,
                Key,
                Hour,
                toFloat64(sum(Calls)) AS Calls,
                sum(CostTotal) AS Cost,
                toFloat64(sum(Errors)) AS Errors,
                toFloat64(sum(Throttled)) AS Throttled,
                toFloat64(sum(Unpriced)) AS Unpriced,
                toFloat64(sum(CacheHitCalls)) AS CacheHitCalls,
                toFloat64(sum(CacheCalls)) AS CacheCalls,
                toFloat64(sum(InputTokens)) AS InputTokens,
                toFloat64(sum(OutputTokens)) AS OutputTokens,
                toFloat64(sum(CacheReadTokens)) AS CacheReadTokens,
                toFloat64(sum(CacheEligibleTokens)) AS Eligible,
                sum(CacheShareSum) AS ShareSum,
                sum(CacheShareSq) AS ShareSq,
                ifNotFinite(quantilesMerge(0.5, 0.95)(DurationMsQuantiles)[2], 0) AS P95
            FROM otel.llm_anomaly_hourly
            WHERE Hour >= toStartOfHour({now:DateTime}) - INTERVAL 42 DAY
                AND Hour <= {now:DateTime}
                AND (Dimension, ServiceName, Key) IN (SELECT Dimension, ServiceName, Key FROM judged)
            GROUP BY
                Dimension,
                ServiceName,
                Key,
                Hour
            ORDER BY
                Dimension,
                ServiceName,
                Key,
                Hour WITH FILL
                    FROM toStartOfHour({now:DateTime}) - INTERVAL 42 DAY
                    TO toStartOfHour({now:DateTime}) + INTERVAL 1 HOUR
                    STEP INTERVAL 1 HOUR
        )
    ),
    hours AS (
        SELECT
            Dimension,
            ServiceName,
            Key,
            Hour,
            Frac,
            Calls,
            Kind,
            if(IsRate, if(Use3, P0_3, P0_1), SExpected) AS Expected,
            if(IsRate, if(Use3, P1_3, P1_1), SObserved) AS Observed,
            if(IsRate, greatest(Z1, Z3), SScore) AS Score,
            if(IsRate, Ok1 OR Ok3, SFlag) AS Flag,
            if(IsRate AND Use3, if(Label = '', 'last 3 h', concat(Label, ', last 3 h')), Label) AS Metric,
            SSince AS Since
        FROM (
            SELECT
                *,
                -- the hour against the 168 before it (n: the calls the share is of)
                R.11 / greatest(R.12, 1) AS P1_1,
                R.13 / greatest(R.14, 1) AS P0_1,
                Sign * (P1_1 - P0_1) AS D1,
                R.27 AS N1,
                R.28 AS N0,
                least(greatest(P0_1, 0.5 / greatest(N0, 1)), 1 - 0.5 / greatest(N0, 1)) AS P0c_1,
                if(N1 > 0 AND N0 > 0,
                    if(Welch,
                        Sign * (R.19 / N1 - R.21 / N0)
                            / sqrt(greatest(R.20 / N1 - pow(R.19 / N1, 2), 0.0025) / N1
                                + greatest(R.22 / N0 - pow(R.21 / N0, 2), 0.0025) / N0),
                        sign(D1) * sqrt(greatest(2 * N1 * (if(P1_1 > 0, P1_1 * log(P1_1 / P0c_1), 0)
                            + if(P1_1 < 1, (1 - P1_1) * log((1 - P1_1) / (1 - P0c_1)), 0)), 0))),
                    0) AS Z1,
                N1 >= 1 AND N0 >= 20 AND Z1 >= ProportionZ AND D1 >= PropFloor AND D1 * N1 >= 3 AS Ok1,
                -- the 3 hours ending with it against the 168 before them
                R.15 / greatest(R.16, 1) AS P1_3,
                R.17 / greatest(R.18, 1) AS P0_3,
                Sign * (P1_3 - P0_3) AS D3,
                R.29 AS N1_3,
                R.30 AS N0_3,
                least(greatest(P0_3, 0.5 / greatest(N0_3, 1)), 1 - 0.5 / greatest(N0_3, 1)) AS P0c_3,
                if(N1_3 > 0 AND N0_3 > 0,
                    if(Welch,
                        Sign * (R.23 / N1_3 - R.25 / N0_3)
                            / sqrt(greatest(R.24 / N1_3 - pow(R.23 / N1_3, 2), 0.0025) / N1_3
                                + greatest(R.26 / N0_3 - pow(R.25 / N0_3, 2), 0.0025) / N0_3),
                        sign(D3) * sqrt(greatest(2 * N1_3 * (if(P1_3 > 0, P1_3 * log(P1_3 / P0c_3), 0)
                            + if(P1_3 < 1, (1 - P1_3) * log((1 - P1_3) / (1 - P0c_3)), 0)), 0))),
                    0) AS Z3,
                N1 >= 1 AND N1_3 >= 1 AND N0_3 >= 20 AND Z3 >= ProportionZ AND D3 >= PropFloor AND D3 * N1_3 >= 3 AS Ok3,
                Ok3 AND NOT Ok1 AS Use3
            FROM (
                SELECT
                    Dimension,
                    ServiceName,
                    Key,
                    Hour,
                    Frac,
                    Calls,
                    R,
                    R.1 AS Kind,
                    R.2 AS Label,
                    R.3 AS IsRate,
                    R.4 AS Welch,
                    R.5 AS Sign,
                    R.6 AS SExpected,
                    R.7 AS SObserved,
                    R.8 AS SScore,
                    R.9 AS SFlag,
                    R.10 AS SSince
                FROM (
                    SELECT
                        *,
                        lagInFrame(SpendZ, 1, 0.) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS PrevSpendZ,
                        lagInFrame(CallsZ, 1, 0.) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS PrevCallsZ
                    FROM (
                        SELECT
                            *,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.1, Base)) AS BSpend,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.2, Base)) AS BCalls,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.3, Base)) AS BCpc,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.4, Base)) AS BTpc,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.5, Base)) AS BP95,
                            arrayReduce('quantileExact', BSpend) AS MedSpend,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedSpend), BSpend)) AS MadSpend,
                            arrayReduce('quantileExact(0.9)', BSpend) AS Q90Spend,
                            arrayReduce('quantileExact', BCalls) AS MedCalls,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedCalls), BCalls)) AS MadCalls,
                            arrayReduce('quantileExact(0.9)', BCalls) AS Q90Calls,
                            arrayReduce('quantileExact', BCpc) AS MedCpc,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedCpc), BCpc)) AS MadCpc,
                            arrayReduce('quantileExact', BTpc) AS MedTpc,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedTpc), BTpc)) AS MadTpc,
                            arrayReduce('quantileExact', BP95) AS MedP95,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedP95), BP95)) AS MadP95,
                            Hour >= FirstSeen + INTERVAL 7 DAY AS Aged,
                            -- spend and calls: the scale is at least half the Poisson noise of the hour's
                            -- expected call count, so sparse series (a user at night) are not noisy
                            ifNotFinite(arrayAvg(BCalls), 0) AS MeanCalls,
                            ifNotFinite(arrayAvg(BCpc), 0) AS MeanCpc,
                            (SpendV - MedSpend) / greatest(1.4826 * MadSpend, 0.1 * MedSpend, 0.5 * (Q90Spend - MedSpend),
                                0.5 * MeanCpc * sqrt(MeanCalls + 1), 0.05) AS SpendZ,
                            (CallsV - MedCalls) / greatest(1.4826 * MadCalls, 0.1 * MedCalls, 0.5 * (Q90Calls - MedCalls),
                                0.5 * sqrt(MeanCalls + 1), 1) AS CallsZ,
                            if(isFinite(Cpc), (Cpc - MedCpc) / greatest(1.4826 * MadCpc, 0.1 * MedCpc, 1e-6), 0) AS CpcZ,
                            if(isFinite(Tpc), (Tpc - MedTpc) / greatest(1.4826 * MadTpc, 0.1 * MedTpc, 1), 0) AS TpcZ,
                            if(isFinite(P95x), (P95x - MedP95) / greatest(1.4826 * MadP95, 0.1 * MedP95, 1), 0) AS P95Z
                        FROM (
                            SELECT
                                *,
                                groupArray(tuple(SpendV, CallsV, Cpc, Tpc, P95x)) OVER wh AS Base,
                                sum(Calls) OVER w7 AS Calls7,
                                sum(CacheHitCalls) OVER w7 AS Hits7,
                                sum(CacheCalls) OVER w7 AS CacheCalls7,
                                sum(CacheCalls) OVER w3 AS CacheCalls_3,
                                sum(CacheCalls) OVER w73 AS CacheCalls7_3,
                                sum(CacheReadTokens) OVER w7 AS Read7,
                                sum(Eligible) OVER w7 AS Eligible7,
                                sum(Errors) OVER w7 AS Errors7,
                                sum(Throttled) OVER w7 AS Throttled7,
                                sum(Unpriced) OVER w7 AS Unpriced7,
                                sum(ShareSum) OVER w7 AS ShareSum7,
                                sum(ShareSq) OVER w7 AS ShareSq7,
                                sum(ShareSum) OVER w3 AS ShareSum_3,
                                sum(ShareSq) OVER w3 AS ShareSq_3,
                                sum(ShareSum) OVER w73 AS ShareSum7_3,
                                sum(ShareSq) OVER w73 AS ShareSq7_3,
                                sum(Calls) OVER w3 AS Calls_3,
                                sum(CacheHitCalls) OVER w3 AS Hits_3,
                                sum(CacheReadTokens) OVER w3 AS Read_3,
                                sum(Eligible) OVER w3 AS Eligible_3,
                                sum(Errors) OVER w3 AS Errors_3,
                                sum(Throttled) OVER w3 AS Throttled_3,
                                sum(Unpriced) OVER w3 AS Unpriced_3,
                                sum(Calls) OVER w73 AS Calls7_3,
                                sum(CacheHitCalls) OVER w73 AS Hits7_3,
                                sum(CacheReadTokens) OVER w73 AS Read7_3,
                                sum(Eligible) OVER w73 AS Eligible7_3,
                                sum(Errors) OVER w73 AS Errors7_3,
                                sum(Throttled) OVER w73 AS Throttled7_3,
                                sum(Unpriced) OVER w73 AS Unpriced7_3
                            FROM (
                                SELECT
                                    *,
                                    -- hours before the series' first call are no baseline (NaN is left out)
                                    if(Hour < FirstSeen, nan, Cost / Frac) AS SpendV,
                                    if(Hour < FirstSeen, nan, Calls / Frac) AS CallsV,
                                    if(Calls > 0, Cost / Calls, nan) AS Cpc,
                                    if(Calls > 0, (InputTokens + OutputTokens) / Calls, nan) AS Tpc,
                                    if(Calls > 0, P95, nan) AS P95x,
                                    min(if(Calls > 0, Hour, toDateTime('2106-01-01 00:00:00', 'UTC'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS FirstSeen
                                FROM series
                            )
                            WINDOW
                                wh AS (PARTITION BY Dimension, ServiceName, Key, toHour(Hour), toDayOfWeek(Hour) >= 6
                                       ORDER BY Hour ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING),
                                w7 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 168 PRECEDING AND 1 PRECEDING),
                                w3 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
                                w73 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 170 PRECEDING AND 3 PRECEDING)
                        )
                        -- the baselines need the 42 days, the medians only the hours judged (and the
                        -- one before, for PrevSpendZ): a third of the rows
                        WHERE Hour >= toStartOfHour({now:DateTime}) - INTERVAL 14 DAY - INTERVAL 1 HOUR
                    )
                    WHERE Hour >= toStartOfHour({now:DateTime}) - INTERVAL 14 DAY
                )
                -- (Kind, Label, IsRate, Welch, Sign, seasonal Expected, Observed, Score, Flag, Since,
                --  rate numerator/denominator: hour, 168 h before, 3 h, 168 h before those,
                --  per-call share sum/sum of squares and the calls the share is of: the same four windows)
                ARRAY JOIN [
                    -- spend and calls: two hours in a row (the first at z >= 3), or one at twice the threshold
                    tuple('spend', 'spend', 0, 0, 1., MedSpend, SpendV, SpendZ,
                        Aged AND length(BSpend) >= 4
                            AND SpendZ >= ScoreThreshold AND (PrevSpendZ >= 3 OR SpendZ >= 2 * ScoreThreshold)
                            AND (SpendV - MedSpend) * Frac >= SpendFloor
                            AND SpendV >= 1.5 * Q90Spend,
                        if(SpendZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour),
                        0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('calls', 'calls', 0, 0, 1., MedCalls, CallsV, CallsZ,
                        Aged AND length(BCalls) >= 4
                            AND CallsZ >= ScoreThreshold AND (PrevCallsZ >= 3 OR CallsZ >= 2 * ScoreThreshold)
                            AND (CallsV - MedCalls) * Frac >= CallsFloor
                            AND CallsV >= 1.5 * Q90Calls,
                        if(CallsZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour),
                        0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('cost_per_call', 'cost_per_call', 0, 0, 1., MedCpc, Cpc, CpcZ,
                        Aged AND length(BCpc) >= 4 AND Calls >= 20 AND isFinite(Cpc)
                            AND abs(CpcZ) >= ScoreThreshold AND abs(Cpc - MedCpc) * Calls >= SpendFloor,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('tokens_per_call', 'tokens_per_call', 0, 0, 1., MedTpc, Tpc, TpcZ,
                        Aged AND length(BTpc) >= 4 AND Calls >= 20 AND isFinite(Tpc)
                            AND abs(TpcZ) >= ScoreThreshold AND abs(Tpc - MedTpc) >= 0.5 * MedTpc,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('latency', 'p95 latency', 0, 0, 1., MedP95, P95x, P95Z,
                        Aged AND length(BP95) >= 4 AND Calls >= 20 AND isFinite(P95x)
                            AND P95Z >= ScoreThreshold AND P95x >= 1.5 * MedP95,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('cache_hit_rate', 'token share', 1, 1, -1., 0., 0., 0., 0, Hour,
                        CacheReadTokens, Eligible, Read7, Eligible7, Read_3, Eligible_3, Read7_3, Eligible7_3,
                        ShareSum, ShareSq, ShareSum7, ShareSq7, ShareSum_3, ShareSq_3, ShareSum7_3, ShareSq7_3,
                        CacheCalls, CacheCalls7, CacheCalls_3, CacheCalls7_3),
                    tuple('cache_hit_rate', 'request share', 1, 0, -1., 0., 0., 0., 0, Hour,
                        CacheHitCalls, CacheCalls, Hits7, CacheCalls7, Hits_3, CacheCalls_3, Hits7_3, CacheCalls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., CacheCalls, CacheCalls7, CacheCalls_3, CacheCalls7_3),
                    tuple('error_rate', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Errors, Calls, Errors7, Calls7, Errors_3, Calls_3, Errors7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3),
                    tuple('throttled_share', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Throttled, Calls, Throttled7, Calls7, Throttled_3, Calls_3, Throttled7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3),
                    tuple('unpriced_share', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Unpriced, Calls, Unpriced7, Calls7, Unpriced_3, Calls_3, Unpriced7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3)
                ] AS R
            )
        )
    ),
    episodes AS (
        SELECT
            Kind,
            Dimension,
            Key,
            ServiceName,
            min(Since) AS At,
            min(Hour) + INTERVAL 1 HOUR AS DetectedAt,
            max(Hour) AS LastSeen,
            avg(Expected) AS Expected,
            avg(Observed) AS Observed,
            max(Score) AS Score,
            max(Hour) >= T - INTERVAL 1 HOUR AS Open,
            any(Metric) AS Metric,
            count() AS FlaggedHours
        FROM (
            SELECT
                *,
                sum(NewEpisode) OVER (PARTITION BY Kind, Dimension, ServiceName, Key ORDER BY Hour ROWS UNBOUNDED PRECEDING) AS Episode
            FROM (
                SELECT
                    *,
                    dateDiff('hour', lagInFrame(Hour, 1, toDateTime(0, 'UTC')) OVER (PARTITION BY Kind, Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), Hour) > 4 AS NewEpisode
                FROM hours
                WHERE Flag
            )
        )
        GROUP BY
            Kind,
            Dimension,
            ServiceName,
            Key,
            Episode
    ),
    news AS (
        SELECT
            'new_entity' AS Kind,
            Dimension,
            Key,
            ServiceName,
            FirstSeen AS At,
            minIf(Hour, CumCost >= NewFloor) + INTERVAL 1 HOUR AS DetectedAt,
            maxIf(Hour, Calls > 0) AS LastSeen,
            0. AS Expected,
            max(CumCost) AS Observed,
            max(CumCost) / NewFloor AS Score,
            FirstSeen > T - toIntervalDay(RelearnDays) AS Open,
            'spend since first seen' AS Metric,
            toUInt64(countIf(Calls > 0)) AS FlaggedHours
        FROM (
            SELECT
                *,
                sum(Cost) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS UNBOUNDED PRECEDING) AS CumCost,
                min(if(Calls > 0, Hour, toDateTime('2106-01-01 00:00:00', 'UTC'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS FirstSeen
            FROM series
        )
        WHERE FirstSeen >= T - INTERVAL 14 DAY AND FirstSeen <= T
            -- the rollup is not back-filled: on a database upgraded to this file, keys
            -- count as new only once it holds 7 days of history
            AND FirstSeen >= (SELECT min(Hour) FROM otel.llm_anomaly_hourly) + INTERVAL 7 DAY
        GROUP BY
            Dimension,
            ServiceName,
            Key,
            FirstSeen
        HAVING max(CumCost) >= NewFloor
    ),
    drifts AS (
        SELECT
            'drift' AS Kind,
            Dimension,
            Key,
            ServiceName,
            toDateTime(argMax(RunStart, Day)) AS At,
            toDateTime(minIf(Day, Flag)) + INTERVAL 1 DAY AS DetectedAt,
            toDateTime(maxIf(Day, Flag)) + INTERVAL 23 HOUR AS LastSeen,
            argMax(Base, Day) AS Expected,
            argMax(Spend, Day) AS Observed,
            argMax(Cusum, Day) AS Score,
            argMax(Flag, Day) AS Open,
            'daily spend' AS Metric,
            toUInt64(countIf(Flag)) AS FlaggedHours
        FROM (
            SELECT
                *,
                C - least(0, MinC) AS Cusum,
                Cusum >= DriftH AND Spend - Base >= DriftFloor AS Flag,
                if(MinC >= 0, FirstDay, addDays(ArgMinC, 1)) AS RunStart
            FROM (
                SELECT
                    *,
                    min(C) OVER wd AS MinC,
                    argMin(Day, C) OVER wd AS ArgMinC,
                    min(Day) OVER wd AS FirstDay
                FROM (
                    SELECT
                        *,
                        sum(R - DriftK) OVER wd AS C
                    FROM (
                        SELECT
                            *,
                            lagInFrame(Spend, 7) OVER w14 AS Spend7,
                            lagInFrame(Spend, 14) OVER w14 AS Spend14,
                            -- the series' first day is usually partial: never a baseline
                            min(if(Spend > 0, Day, toDate('2149-01-01'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS SeriesFirstDay,
                            if(Spend7 > 0 AND Spend14 > 0 AND Day - 14 > SeriesFirstDay, (Spend7 + Spend14) / 2, 0) AS Base,
                            if(Base > 0 AND Spend > 0, log(Spend / Base), 0) AS R
                        FROM (
                            SELECT
                                Dimension,
                                ServiceName,
                                Key,
                                toDate(Hour) AS Day,
                                sum(Cost) AS Spend
                            FROM series
                            WHERE Hour < toStartOfDay(T)
                            GROUP BY
                                Dimension,
                                ServiceName,
                                Key,
                                Day
                        )
                        WINDOW w14 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS BETWEEN 14 PRECEDING AND CURRENT ROW)
                    )
                    WHERE Day >= toDate(T) - 28
                    WINDOW wd AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS UNBOUNDED PRECEDING)
                )
                WINDOW wd AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS UNBOUNDED PRECEDING)
            )
        )
        WHERE Base > 0
        GROUP BY
            Dimension,
            ServiceName,
            Key
        HAVING countIf(Flag) > 0 AND maxIf(Day, Flag) >= toDate(T) - 14
    ),
    found AS (
        SELECT * FROM episodes
        UNION ALL
        SELECT * FROM news
        UNION ALL
        SELECT * FROM drifts
    )
SELECT
    toLowCardinality(Kind) AS Kind,
    toLowCardinality(Dimension) AS Dimension,
    Key,
    toLowCardinality(toString(ServiceName)) AS ServiceName,
    toDateTime(At, 'UTC') AS At,
    -- Never later than the moment of the evaluation: an anomaly in the current hour is seen now.
    least(toDateTime(DetectedAt, 'UTC'), toDateTime({now:DateTime}, 'UTC')) AS DetectedAt,
    toDateTime(LastSeen, 'UTC') AS LastSeen,
    toFloat64(Expected) AS Expected,
    toFloat64(Observed) AS Observed,
    toFloat64(Score) AS Score,
    toUInt8(Open) AS Open,
    concat(
        multiIf(
            Kind = 'spend', concat('spend $', toString(round(Observed, 2)), '/h vs $', toString(round(Expected, 2)), ' expected'),
            Kind = 'calls', concat('calls ', toString(round(Observed)), '/h vs ', toString(round(Expected)), ' expected'),
            Kind = 'cost_per_call', concat('cost per call $', toString(round(Observed, 4)), ' vs $', toString(round(Expected, 4)), ' expected'),
            Kind = 'tokens_per_call', concat('tokens per call ', toString(round(Observed)), ' vs ', toString(round(Expected)), ' expected'),
            Kind = 'latency', concat('p95 latency ', toString(round(Observed)), ' ms vs ', toString(round(Expected)), ' ms expected'),
            Kind = 'new_entity', concat('new ', Dimension, ' ', Key, ': $', toString(round(Observed, 2)), ' since first seen, no calls in the 28 days before'),
            Kind = 'drift', concat('daily spend $', toString(round(Observed, 2)), ' vs $', toString(round(Expected, 2)), ' on the same weekday 1-2 weeks before, CUSUM ', toString(round(Score, 2))),
            concat(replaceAll(Kind, '_', ' '), if(Metric = '', '', concat(' (', Metric, ')')), ' ', toString(round(100 * Observed, 1)), '% vs ', toString(round(100 * Expected, 1)), '% expected')),
        if(Kind IN ('spend', 'calls', 'cost_per_call', 'tokens_per_call', 'latency') AND Expected > 0,
            concat(' (x', toString(round(Observed / Expected, 1)), ')'), ''),
        -- a new entity is open while it is new: how long it has been seen is no part of its story
        multiIf(Kind = 'new_entity', '',
            Kind = 'drift', concat(' for ', toString(dateDiff('day', At, LastSeen) + 1), ' days'),
            concat(' for ', toString(dateDiff('hour', At, LastSeen) + 1), ' h'))
    ) AS Explanation
FROM found
ORDER BY
    At DESC,
    Score DESC;

CREATE VIEW IF NOT EXISTS otel.v_anomalies  ON CLUSTER prod (
    Kind LowCardinality(String),
    Dimension LowCardinality(String),
    Key String,
    ServiceName LowCardinality(String),
    At DateTime('UTC'),
    DetectedAt DateTime('UTC'),
    LastSeen DateTime('UTC'),
    Expected Float64,
    Observed Float64,
    Score Float64,
    Open UInt8,
    Explanation String
) AS
WITH
    (SELECT tuple(ScoreThreshold, ProportionZ, SpendFloorUsdPerHour, CallsFloorPerHour, ProportionFloor,
            NewEntityFloorUsd, DriftK, DriftH, DriftFloorUsdPerDay, RelearnDays)
     FROM otel.llm_anomaly_settings ORDER BY Id LIMIT 1) AS S,
    ifNull(S.1, 5) AS ScoreThreshold,
    ifNull(S.2, 4) AS ProportionZ,
    ifNull(S.3, 0.25) AS SpendFloor,
    ifNull(S.4, 50) AS CallsFloor,
    ifNull(S.5, 0.1) AS PropFloor,
    ifNull(S.6, 1) AS NewFloor,
    ifNull(S.7, 0.03) AS DriftK,
    ifNull(S.8, 0.3) AS DriftH,
    ifNull(S.9, 5) AS DriftFloor,
    ifNull(S.10, 7) AS RelearnDays,
    toStartOfHour(now()) AS T,
    -- The series some detector could flag: each kind needs, within the days it judges, an
    -- hour spending SpendFloor (spend) or with CallsFloor calls (calls), 3 calls in 3 hours
    -- (every rate, and the per-call kinds, which need 20), NewFloor since first seen
    -- (new_entity) or a day spending DriftFloor (drift). A key below all of them (most users,
    -- most hours) would be densified to 1,008 hours and judged for nothing: 4 ms of CPU per
    -- series, 22 s for 5,000 users (benchmarks/panel_bench.py).
    judged AS (
        SELECT Dimension, ServiceName, Key
        FROM (
            SELECT
                *,
                sum(C) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour RANGE BETWEEN 7200 PRECEDING AND CURRENT ROW) AS C3,
                sum(Cost) OVER (PARTITION BY Dimension, ServiceName, Key, toDate(Hour)) AS DayCost
            FROM (
                SELECT Dimension, ServiceName, Key, Hour, sum(Calls) AS C, sum(CostTotal) AS Cost
                FROM otel.llm_anomaly_hourly
                WHERE Hour >= toStartOfDay(now()) - INTERVAL 15 DAY
                    AND Hour <= now()
                GROUP BY
                    Dimension,
                    ServiceName,
                    Key,
                    Hour
            )
        )
        GROUP BY
            Dimension,
            ServiceName,
            Key
        HAVING max(Cost) >= SpendFloor OR max(C) >= CallsFloor OR max(C3) >= 3
            OR sum(Cost) >= NewFloor OR max(DayCost) >= DriftFloor
    ),
    series AS (
        SELECT
            Dimension,
            ServiceName,
            Key,
            Hour,
            if(Hour = toStartOfHour(now()), greatest(dateDiff('second', Hour, now()), 300) / 3600, 1) AS Frac,
            Calls,
            Cost,
            Errors,
            Throttled,
            Unpriced,
            CacheHitCalls,
            CacheCalls,
            InputTokens,
            OutputTokens,
            CacheReadTokens,
            Eligible,
            ShareSum,
            ShareSq,
            P95
        FROM (
            SELECT
                Dimension,
                ServiceName,
                Key,
                Hour,
                toFloat64(sum(Calls)) AS Calls,
                sum(CostTotal) AS Cost,
                toFloat64(sum(Errors)) AS Errors,
                toFloat64(sum(Throttled)) AS Throttled,
                toFloat64(sum(Unpriced)) AS Unpriced,
                toFloat64(sum(CacheHitCalls)) AS CacheHitCalls,
                toFloat64(sum(CacheCalls)) AS CacheCalls,
                toFloat64(sum(InputTokens)) AS InputTokens,
                toFloat64(sum(OutputTokens)) AS OutputTokens,
                toFloat64(sum(CacheReadTokens)) AS CacheReadTokens,
                toFloat64(sum(CacheEligibleTokens)) AS Eligible,
                sum(CacheShareSum) AS ShareSum,
                sum(CacheShareSq) AS ShareSq,
                ifNotFinite(quantilesMerge(0.5, 0.95)(DurationMsQuantiles)[2], 0) AS P95
            FROM otel.llm_anomaly_hourly
            WHERE Hour >= toStartOfHour(now()) - INTERVAL 42 DAY
                AND Hour <= now()
                AND (Dimension, ServiceName, Key) IN (SELECT Dimension, ServiceName, Key FROM judged)
            GROUP BY
                Dimension,
                ServiceName,
                Key,
                Hour
            ORDER BY
                Dimension,
                ServiceName,
                Key,
                Hour WITH FILL
                    FROM toStartOfHour(now()) - INTERVAL 42 DAY
                    TO toStartOfHour(now()) + INTERVAL 1 HOUR
                    STEP INTERVAL 1 HOUR
        )
    ),
    hours AS (
        SELECT
            Dimension,
            ServiceName,
            Key,
            Hour,
            Frac,
            Calls,
            Kind,
            if(IsRate, if(Use3, P0_3, P0_1), SExpected) AS Expected,
            if(IsRate, if(Use3, P1_3, P1_1), SObserved) AS Observed,
            if(IsRate, greatest(Z1, Z3), SScore) AS Score,
            if(IsRate, Ok1 OR Ok3, SFlag) AS Flag,
            if(IsRate AND Use3, if(Label = '', 'last 3 h', concat(Label, ', last 3 h')), Label) AS Metric,
            SSince AS Since
        FROM (
            SELECT
                *,
                -- the hour against the 168 before it (n: the calls the share is of)
                R.11 / greatest(R.12, 1) AS P1_1,
                R.13 / greatest(R.14, 1) AS P0_1,
                Sign * (P1_1 - P0_1) AS D1,
                R.27 AS N1,
                R.28 AS N0,
                least(greatest(P0_1, 0.5 / greatest(N0, 1)), 1 - 0.5 / greatest(N0, 1)) AS P0c_1,
                if(N1 > 0 AND N0 > 0,
                    if(Welch,
                        Sign * (R.19 / N1 - R.21 / N0)
                            / sqrt(greatest(R.20 / N1 - pow(R.19 / N1, 2), 0.0025) / N1
                                + greatest(R.22 / N0 - pow(R.21 / N0, 2), 0.0025) / N0),
                        sign(D1) * sqrt(greatest(2 * N1 * (if(P1_1 > 0, P1_1 * log(P1_1 / P0c_1), 0)
                            + if(P1_1 < 1, (1 - P1_1) * log((1 - P1_1) / (1 - P0c_1)), 0)), 0))),
                    0) AS Z1,
                N1 >= 1 AND N0 >= 20 AND Z1 >= ProportionZ AND D1 >= PropFloor AND D1 * N1 >= 3 AS Ok1,
                -- the 3 hours ending with it against the 168 before them
                R.15 / greatest(R.16, 1) AS P1_3,
                R.17 / greatest(R.18, 1) AS P0_3,
                Sign * (P1_3 - P0_3) AS D3,
                R.29 AS N1_3,
                R.30 AS N0_3,
                least(greatest(P0_3, 0.5 / greatest(N0_3, 1)), 1 - 0.5 / greatest(N0_3, 1)) AS P0c_3,
                if(N1_3 > 0 AND N0_3 > 0,
                    if(Welch,
                        Sign * (R.23 / N1_3 - R.25 / N0_3)
                            / sqrt(greatest(R.24 / N1_3 - pow(R.23 / N1_3, 2), 0.0025) / N1_3
                                + greatest(R.26 / N0_3 - pow(R.25 / N0_3, 2), 0.0025) / N0_3),
                        sign(D3) * sqrt(greatest(2 * N1_3 * (if(P1_3 > 0, P1_3 * log(P1_3 / P0c_3), 0)
                            + if(P1_3 < 1, (1 - P1_3) * log((1 - P1_3) / (1 - P0c_3)), 0)), 0))),
                    0) AS Z3,
                N1 >= 1 AND N1_3 >= 1 AND N0_3 >= 20 AND Z3 >= ProportionZ AND D3 >= PropFloor AND D3 * N1_3 >= 3 AS Ok3,
                Ok3 AND NOT Ok1 AS Use3
            FROM (
                SELECT
                    Dimension,
                    ServiceName,
                    Key,
                    Hour,
                    Frac,
                    Calls,
                    R,
                    R.1 AS Kind,
                    R.2 AS Label,
                    R.3 AS IsRate,
                    R.4 AS Welch,
                    R.5 AS Sign,
                    R.6 AS SExpected,
                    R.7 AS SObserved,
                    R.8 AS SScore,
                    R.9 AS SFlag,
                    R.10 AS SSince
                FROM (
                    SELECT
                        *,
                        lagInFrame(SpendZ, 1, 0.) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS PrevSpendZ,
                        lagInFrame(CallsZ, 1, 0.) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS PrevCallsZ
                    FROM (
                        SELECT
                            *,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.1, Base)) AS BSpend,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.2, Base)) AS BCalls,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.3, Base)) AS BCpc,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.4, Base)) AS BTpc,
                            arrayFilter(x -> isFinite(x), arrayMap(t -> t.5, Base)) AS BP95,
                            arrayReduce('quantileExact', BSpend) AS MedSpend,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedSpend), BSpend)) AS MadSpend,
                            arrayReduce('quantileExact(0.9)', BSpend) AS Q90Spend,
                            arrayReduce('quantileExact', BCalls) AS MedCalls,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedCalls), BCalls)) AS MadCalls,
                            arrayReduce('quantileExact(0.9)', BCalls) AS Q90Calls,
                            arrayReduce('quantileExact', BCpc) AS MedCpc,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedCpc), BCpc)) AS MadCpc,
                            arrayReduce('quantileExact', BTpc) AS MedTpc,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedTpc), BTpc)) AS MadTpc,
                            arrayReduce('quantileExact', BP95) AS MedP95,
                            arrayReduce('quantileExact', arrayMap(x -> abs(x - MedP95), BP95)) AS MadP95,
                            Hour >= FirstSeen + INTERVAL 7 DAY AS Aged,
                            -- spend and calls: the scale is at least half the Poisson noise of the hour's
                            -- expected call count, so sparse series (a user at night) are not noisy
                            ifNotFinite(arrayAvg(BCalls), 0) AS MeanCalls,
                            ifNotFinite(arrayAvg(BCpc), 0) AS MeanCpc,
                            (SpendV - MedSpend) / greatest(1.4826 * MadSpend, 0.1 * MedSpend, 0.5 * (Q90Spend - MedSpend),
                                0.5 * MeanCpc * sqrt(MeanCalls + 1), 0.05) AS SpendZ,
                            (CallsV - MedCalls) / greatest(1.4826 * MadCalls, 0.1 * MedCalls, 0.5 * (Q90Calls - MedCalls),
                                0.5 * sqrt(MeanCalls + 1), 1) AS CallsZ,
                            if(isFinite(Cpc), (Cpc - MedCpc) / greatest(1.4826 * MadCpc, 0.1 * MedCpc, 1e-6), 0) AS CpcZ,
                            if(isFinite(Tpc), (Tpc - MedTpc) / greatest(1.4826 * MadTpc, 0.1 * MedTpc, 1), 0) AS TpcZ,
                            if(isFinite(P95x), (P95x - MedP95) / greatest(1.4826 * MadP95, 0.1 * MedP95, 1), 0) AS P95Z
                        FROM (
                            SELECT
                                *,
                                groupArray(tuple(SpendV, CallsV, Cpc, Tpc, P95x)) OVER wh AS Base,
                                sum(Calls) OVER w7 AS Calls7,
                                sum(CacheHitCalls) OVER w7 AS Hits7,
                                sum(CacheCalls) OVER w7 AS CacheCalls7,
                                sum(CacheCalls) OVER w3 AS CacheCalls_3,
                                sum(CacheCalls) OVER w73 AS CacheCalls7_3,
                                sum(CacheReadTokens) OVER w7 AS Read7,
                                sum(Eligible) OVER w7 AS Eligible7,
                                sum(Errors) OVER w7 AS Errors7,
                                sum(Throttled) OVER w7 AS Throttled7,
                                sum(Unpriced) OVER w7 AS Unpriced7,
                                sum(ShareSum) OVER w7 AS ShareSum7,
                                sum(ShareSq) OVER w7 AS ShareSq7,
                                sum(ShareSum) OVER w3 AS ShareSum_3,
                                sum(ShareSq) OVER w3 AS ShareSq_3,
                                sum(ShareSum) OVER w73 AS ShareSum7_3,
                                sum(ShareSq) OVER w73 AS ShareSq7_3,
                                sum(Calls) OVER w3 AS Calls_3,
                                sum(CacheHitCalls) OVER w3 AS Hits_3,
                                sum(CacheReadTokens) OVER w3 AS Read_3,
                                sum(Eligible) OVER w3 AS Eligible_3,
                                sum(Errors) OVER w3 AS Errors_3,
                                sum(Throttled) OVER w3 AS Throttled_3,
                                sum(Unpriced) OVER w3 AS Unpriced_3,
                                sum(Calls) OVER w73 AS Calls7_3,
                                sum(CacheHitCalls) OVER w73 AS Hits7_3,
                                sum(CacheReadTokens) OVER w73 AS Read7_3,
                                sum(Eligible) OVER w73 AS Eligible7_3,
                                sum(Errors) OVER w73 AS Errors7_3,
                                sum(Throttled) OVER w73 AS Throttled7_3,
                                sum(Unpriced) OVER w73 AS Unpriced7_3
                            FROM (
                                SELECT
                                    *,
                                    -- hours before the series' first call are no baseline (NaN is left out)
                                    if(Hour < FirstSeen, nan, Cost / Frac) AS SpendV,
                                    if(Hour < FirstSeen, nan, Calls / Frac) AS CallsV,
                                    if(Calls > 0, Cost / Calls, nan) AS Cpc,
                                    if(Calls > 0, (InputTokens + OutputTokens) / Calls, nan) AS Tpc,
                                    if(Calls > 0, P95, nan) AS P95x,
                                    min(if(Calls > 0, Hour, toDateTime('2106-01-01 00:00:00', 'UTC'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS FirstSeen
                                FROM series
                            )
                            WINDOW
                                wh AS (PARTITION BY Dimension, ServiceName, Key, toHour(Hour), toDayOfWeek(Hour) >= 6
                                       ORDER BY Hour ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING),
                                w7 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 168 PRECEDING AND 1 PRECEDING),
                                w3 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
                                w73 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 170 PRECEDING AND 3 PRECEDING)
                        )
                        -- the baselines need the 42 days, the medians only the hours judged (and the
                        -- one before, for PrevSpendZ): a third of the rows
                        WHERE Hour >= toStartOfHour(now()) - INTERVAL 14 DAY - INTERVAL 1 HOUR
                    )
                    WHERE Hour >= toStartOfHour(now()) - INTERVAL 14 DAY
                )
                -- (Kind, Label, IsRate, Welch, Sign, seasonal Expected, Observed, Score, Flag, Since,
                --  rate numerator/denominator: hour, 168 h before, 3 h, 168 h before those,
                --  per-call share sum/sum of squares and the calls the share is of: the same four windows)
                ARRAY JOIN [
                    -- spend and calls: two hours in a row (the first at z >= 3), or one at twice the threshold
                    tuple('spend', 'spend', 0, 0, 1., MedSpend, SpendV, SpendZ,
                        Aged AND length(BSpend) >= 4
                            AND SpendZ >= ScoreThreshold AND (PrevSpendZ >= 3 OR SpendZ >= 2 * ScoreThreshold)
                            AND (SpendV - MedSpend) * Frac >= SpendFloor
                            AND SpendV >= 1.5 * Q90Spend,
                        if(SpendZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour),
                        0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('calls', 'calls', 0, 0, 1., MedCalls, CallsV, CallsZ,
                        Aged AND length(BCalls) >= 4
                            AND CallsZ >= ScoreThreshold AND (PrevCallsZ >= 3 OR CallsZ >= 2 * ScoreThreshold)
                            AND (CallsV - MedCalls) * Frac >= CallsFloor
                            AND CallsV >= 1.5 * Q90Calls,
                        if(CallsZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour),
                        0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('cost_per_call', 'cost_per_call', 0, 0, 1., MedCpc, Cpc, CpcZ,
                        Aged AND length(BCpc) >= 4 AND Calls >= 20 AND isFinite(Cpc)
                            AND abs(CpcZ) >= ScoreThreshold AND abs(Cpc - MedCpc) * Calls >= SpendFloor,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('tokens_per_call', 'tokens_per_call', 0, 0, 1., MedTpc, Tpc, TpcZ,
                        Aged AND length(BTpc) >= 4 AND Calls >= 20 AND isFinite(Tpc)
                            AND abs(TpcZ) >= ScoreThreshold AND abs(Tpc - MedTpc) >= 0.5 * MedTpc,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('latency', 'p95 latency', 0, 0, 1., MedP95, P95x, P95Z,
                        Aged AND length(BP95) >= 4 AND Calls >= 20 AND isFinite(P95x)
                            AND P95Z >= ScoreThreshold AND P95x >= 1.5 * MedP95,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('cache_hit_rate', 'token share', 1, 1, -1., 0., 0., 0., 0, Hour,
                        CacheReadTokens, Eligible, Read7, Eligible7, Read_3, Eligible_3, Read7_3, Eligible7_3,
                        ShareSum, ShareSq, ShareSum7, ShareSq7, ShareSum_3, ShareSq_3, ShareSum7_3, ShareSq7_3,
                        CacheCalls, CacheCalls7, CacheCalls_3, CacheCalls7_3),
                    tuple('cache_hit_rate', 'request share', 1, 0, -1., 0., 0., 0., 0, Hour,
                        CacheHitCalls, CacheCalls, Hits7, CacheCalls7, Hits_3, CacheCalls_3, Hits7_3, CacheCalls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., CacheCalls, CacheCalls7, CacheCalls_3, CacheCalls7_3),
                    tuple('error_rate', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Errors, Calls, Errors7, Calls7, Errors_3, Calls_3, Errors7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3),
                    tuple('throttled_share', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Throttled, Calls, Throttled7, Calls7, Throttled_3, Calls_3, Throttled7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3),
                    tuple('unpriced_share', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Unpriced, Calls, Unpriced7, Calls7, Unpriced_3, Calls_3, Unpriced7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3)
                ] AS R
            )
        )
    ),
    episodes AS (
        SELECT
            Kind,
            Dimension,
            Key,
            ServiceName,
            min(Since) AS At,
            min(Hour) + INTERVAL 1 HOUR AS DetectedAt,
            max(Hour) AS LastSeen,
            avg(Expected) AS Expected,
            avg(Observed) AS Observed,
            max(Score) AS Score,
            max(Hour) >= T - INTERVAL 1 HOUR AS Open,
            any(Metric) AS Metric,
            count() AS FlaggedHours
        FROM (
            SELECT
                *,
                sum(NewEpisode) OVER (PARTITION BY Kind, Dimension, ServiceName, Key ORDER BY Hour ROWS UNBOUNDED PRECEDING) AS Episode
            FROM (
                SELECT
                    *,
                    dateDiff('hour', lagInFrame(Hour, 1, toDateTime(0, 'UTC')) OVER (PARTITION BY Kind, Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), Hour) > 4 AS NewEpisode
                FROM hours
                WHERE Flag
            )
        )
        GROUP BY
            Kind,
            Dimension,
            ServiceName,
            Key,
            Episode
    ),
    news AS (
        SELECT
            'new_entity' AS Kind,
            Dimension,
            Key,
            ServiceName,
            FirstSeen AS At,
            minIf(Hour, CumCost >= NewFloor) + INTERVAL 1 HOUR AS DetectedAt,
            maxIf(Hour, Calls > 0) AS LastSeen,
            0. AS Expected,
            max(CumCost) AS Observed,
            max(CumCost) / NewFloor AS Score,
            FirstSeen > T - toIntervalDay(RelearnDays) AS Open,
            'spend since first seen' AS Metric,
            toUInt64(countIf(Calls > 0)) AS FlaggedHours
        FROM (
            SELECT
                *,
                sum(Cost) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS UNBOUNDED PRECEDING) AS CumCost,
                min(if(Calls > 0, Hour, toDateTime('2106-01-01 00:00:00', 'UTC'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS FirstSeen
            FROM series
        )
        WHERE FirstSeen >= T - INTERVAL 14 DAY AND FirstSeen <= T
            -- the rollup is not back-filled: on a database upgraded to this file, keys
            -- count as new only once it holds 7 days of history
            AND FirstSeen >= (SELECT min(Hour) FROM otel.llm_anomaly_hourly) + INTERVAL 7 DAY
        GROUP BY
            Dimension,
            ServiceName,
            Key,
            FirstSeen
        HAVING max(CumCost) >= NewFloor
    ),
    drifts AS (
        SELECT
            'drift' AS Kind,
            Dimension,
            Key,
            ServiceName,
            toDateTime(argMax(RunStart, Day)) AS At,
            toDateTime(minIf(Day, Flag)) + INTERVAL 1 DAY AS DetectedAt,
            toDateTime(maxIf(Day, Flag)) + INTERVAL 23 HOUR AS LastSeen,
            argMax(Base, Day) AS Expected,
            argMax(Spend, Day) AS Observed,
            argMax(Cusum, Day) AS Score,
            argMax(Flag, Day) AS Open,
            'daily spend' AS Metric,
            toUInt64(countIf(Flag)) AS FlaggedHours
        FROM (
            SELECT
                *,
                C - least(0, MinC) AS Cusum,
                Cusum >= DriftH AND Spend - Base >= DriftFloor AS Flag,
                if(MinC >= 0, FirstDay, addDays(ArgMinC, 1)) AS RunStart
            FROM (
                SELECT
                    *,
                    min(C) OVER wd AS MinC,
                    argMin(Day, C) OVER wd AS ArgMinC,
                    min(Day) OVER wd AS FirstDay
                FROM (
                    SELECT
                        *,
                        sum(R - DriftK) OVER wd AS C
                    FROM (
                        SELECT
                            *,
                            lagInFrame(Spend, 7) OVER w14 AS Spend7,
                            lagInFrame(Spend, 14) OVER w14 AS Spend14,
                            -- the series' first day is usually partial: never a baseline
                            min(if(Spend > 0, Day, toDate('2149-01-01'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS SeriesFirstDay,
                            if(Spend7 > 0 AND Spend14 > 0 AND Day - 14 > SeriesFirstDay, (Spend7 + Spend14) / 2, 0) AS Base,
                            if(Base > 0 AND Spend > 0, log(Spend / Base), 0) AS R
                        FROM (
                            SELECT
                                Dimension,
                                ServiceName,
                                Key,
                                toDate(Hour) AS Day,
                                sum(Cost) AS Spend
                            FROM series
                            WHERE Hour < toStartOfDay(T)
                            GROUP BY
                                Dimension,
                                ServiceName,
                                Key,
                                Day
                        )
                        WINDOW w14 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS BETWEEN 14 PRECEDING AND CURRENT ROW)
                    )
                    WHERE Day >= toDate(T) - 28
                    WINDOW wd AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS UNBOUNDED PRECEDING)
                )
                WINDOW wd AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS UNBOUNDED PRECEDING)
            )
        )
        WHERE Base > 0
        GROUP BY
            Dimension,
            ServiceName,
            Key
        HAVING countIf(Flag) > 0 AND maxIf(Day, Flag) >= toDate(T) - 14
    ),
    found AS (
        SELECT * FROM episodes
        UNION ALL
        SELECT * FROM news
        UNION ALL
        SELECT * FROM drifts
    )
SELECT
    toLowCardinality(Kind) AS Kind,
    toLowCardinality(Dimension) AS Dimension,
    Key,
    toLowCardinality(toString(ServiceName)) AS ServiceName,
    toDateTime(At, 'UTC') AS At,
    -- Never later than the moment of the evaluation: an anomaly in the current hour is seen now.
    least(toDateTime(DetectedAt, 'UTC'), toDateTime(now(), 'UTC')) AS DetectedAt,
    toDateTime(LastSeen, 'UTC') AS LastSeen,
    toFloat64(Expected) AS Expected,
    toFloat64(Observed) AS Observed,
    toFloat64(Score) AS Score,
    toUInt8(Open) AS Open,
    concat(
        multiIf(
            Kind = 'spend', concat('spend $', toString(round(Observed, 2)), '/h vs $', toString(round(Expected, 2)), ' expected'),
            Kind = 'calls', concat('calls ', toString(round(Observed)), '/h vs ', toString(round(Expected)), ' expected'),
            Kind = 'cost_per_call', concat('cost per call $', toString(round(Observed, 4)), ' vs $', toString(round(Expected, 4)), ' expected'),
            Kind = 'tokens_per_call', concat('tokens per call ', toString(round(Observed)), ' vs ', toString(round(Expected)), ' expected'),
            Kind = 'latency', concat('p95 latency ', toString(round(Observed)), ' ms vs ', toString(round(Expected)), ' ms expected'),
            Kind = 'new_entity', concat('new ', Dimension, ' ', Key, ': $', toString(round(Observed, 2)), ' since first seen, no calls in the 28 days before'),
            Kind = 'drift', concat('daily spend $', toString(round(Observed, 2)), ' vs $', toString(round(Expected, 2)), ' on the same weekday 1-2 weeks before, CUSUM ', toString(round(Score, 2))),
            concat(replaceAll(Kind, '_', ' '), if(Metric = '', '', concat(' (', Metric, ')')), ' ', toString(round(100 * Observed, 1)), '% vs ', toString(round(100 * Expected, 1)), '% expected')),
        if(Kind IN ('spend', 'calls', 'cost_per_call', 'tokens_per_call', 'latency') AND Expected > 0,
            concat(' (x', toString(round(Observed / Expected, 1)), ')'), ''),
        -- a new entity is open while it is new: how long it has been seen is no part of its story
        multiIf(Kind = 'new_entity', '',
            Kind = 'drift', concat(' for ', toString(dateDiff('day', At, LastSeen) + 1), ' days'),
            concat(' for ', toString(dateDiff('hour', At, LastSeen) + 1), ' h'))
    ) AS Explanation
FROM found
ORDER BY
    At DESC,
    Score DESC;

CREATE VIEW IF NOT EXISTS otel.v_anomaly_contributors_at  ON CLUSTER prod AS
SELECT
    Kind,
    Dimension,
    Key,
    ServiceName,
    At,
    toLowCardinality(CDim) AS ContributorDimension,
    CKey AS ContributorKey,
    Share
FROM (
    SELECT
        Kind,
        Dimension,
        Key,
        ServiceName,
        At,
        CDim,
        argMax(CKey, Delta) AS CKey,
        toFloat64(max(Delta) / sumIf(Delta, Delta > 0)) AS Share
    FROM (
        SELECT
            Kind,
            Dimension,
            Key,
            ServiceName,
            At,
            d.1 AS CDim,
            d.2 AS CKey,
            sum(Signed) AS Delta
        FROM (
            SELECT
                f.Kind AS Kind,
                f.Dimension AS Dimension,
                f.Key AS Key,
                f.ServiceName AS ServiceName,
                f.At AS At,
                Pairs,
                if(c.Timestamp >= f.WinStart, 1, -1) * multiIf(
                    f.Kind = 'calls', 1,
                    f.Kind = 'error_rate', toFloat64(c.StatusCode = 'Error' OR c.ErrorType != ''),
                    f.Kind = 'throttled_share', toFloat64(c.Throttled = 1 OR c.HttpStatus = 429),
                    f.Kind = 'unpriced_share', toFloat64(c.Unpriced),
                    f.Kind = 'cache_hit_rate', toFloat64(greatest(c.InputTokens, c.CacheReadTokens) - c.CacheReadTokens),
                    c.CostTotal) AS Signed
            FROM (
                SELECT
                    *,
                    [('endpoint', Endpoint), ('model', RequestModel), ('feature', Feature), ('team', Team), ('user', User)] AS Pairs
                FROM otel.llm_calls
                WHERE Timestamp >= toStartOfHour({now:DateTime}) - INTERVAL 22 DAY
                    AND Timestamp < {now:DateTime}
            ) AS c
            ARRAY JOIN Pairs AS own
            INNER JOIN (
                SELECT
                    Kind,
                    Dimension,
                    Key,
                    ServiceName,
                    At,
                    if(Kind = 'drift', toStartOfDay(LastSeen), At) AS WinStart,
                    if(Kind = 'drift', toStartOfDay(LastSeen) + INTERVAL 1 DAY, least(LastSeen, At + INTERVAL 5 HOUR) + INTERVAL 1 HOUR) AS WinEnd
                FROM otel.v_anomalies_at(now = {now:DateTime})
            ) AS f ON c.ServiceName = f.ServiceName AND own.1 = f.Dimension AND own.2 = f.Key
            WHERE (c.Timestamp >= f.WinStart AND c.Timestamp < f.WinEnd)
                OR (c.Timestamp >= f.WinStart - INTERVAL 7 DAY AND c.Timestamp < f.WinEnd - INTERVAL 7 DAY)
        )
        ARRAY JOIN Pairs AS d
        WHERE d.1 != Dimension AND d.2 != ''
        GROUP BY
            Kind,
            Dimension,
            Key,
            ServiceName,
            At,
            CDim,
            CKey
    )
    GROUP BY
        Kind,
        Dimension,
        Key,
        ServiceName,
        At,
        CDim
    -- a dimension with one key explains nothing
    HAVING max(Delta) > 0 AND count() > 1
)
ORDER BY
    At DESC,
    Share DESC;

CREATE VIEW IF NOT EXISTS otel.v_anomaly_contributors  ON CLUSTER prod AS
SELECT
    Kind,
    Dimension,
    Key,
    ServiceName,
    At,
    toLowCardinality(CDim) AS ContributorDimension,
    CKey AS ContributorKey,
    Share
FROM (
    SELECT
        Kind,
        Dimension,
        Key,
        ServiceName,
        At,
        CDim,
        argMax(CKey, Delta) AS CKey,
        toFloat64(max(Delta) / sumIf(Delta, Delta > 0)) AS Share
    FROM (
        SELECT
            Kind,
            Dimension,
            Key,
            ServiceName,
            At,
            d.1 AS CDim,
            d.2 AS CKey,
            sum(Signed) AS Delta
        FROM (
            SELECT
                f.Kind AS Kind,
                f.Dimension AS Dimension,
                f.Key AS Key,
                f.ServiceName AS ServiceName,
                f.At AS At,
                Pairs,
                if(c.Timestamp >= f.WinStart, 1, -1) * multiIf(
                    f.Kind = 'calls', 1,
                    f.Kind = 'error_rate', toFloat64(c.StatusCode = 'Error' OR c.ErrorType != ''),
                    f.Kind = 'throttled_share', toFloat64(c.Throttled = 1 OR c.HttpStatus = 429),
                    f.Kind = 'unpriced_share', toFloat64(c.Unpriced),
                    f.Kind = 'cache_hit_rate', toFloat64(greatest(c.InputTokens, c.CacheReadTokens) - c.CacheReadTokens),
                    c.CostTotal) AS Signed
            FROM (
                SELECT
                    *,
                    [('endpoint', Endpoint), ('model', RequestModel), ('feature', Feature), ('team', Team), ('user', User)] AS Pairs
                FROM otel.llm_calls
                WHERE Timestamp >= toStartOfHour(now()) - INTERVAL 22 DAY
                    AND Timestamp < now()
            ) AS c
            ARRAY JOIN Pairs AS own
            INNER JOIN (
                SELECT
                    Kind,
                    Dimension,
                    Key,
                    ServiceName,
                    At,
                    if(Kind = 'drift', toStartOfDay(LastSeen), At) AS WinStart,
                    if(Kind = 'drift', toStartOfDay(LastSeen) + INTERVAL 1 DAY, least(LastSeen, At + INTERVAL 5 HOUR) + INTERVAL 1 HOUR) AS WinEnd
                FROM otel.v_anomalies
            ) AS f ON c.ServiceName = f.ServiceName AND own.1 = f.Dimension AND own.2 = f.Key
            WHERE (c.Timestamp >= f.WinStart AND c.Timestamp < f.WinEnd)
                OR (c.Timestamp >= f.WinStart - INTERVAL 7 DAY AND c.Timestamp < f.WinEnd - INTERVAL 7 DAY)
        )
        ARRAY JOIN Pairs AS d
        WHERE d.1 != Dimension AND d.2 != ''
        GROUP BY
            Kind,
            Dimension,
            Key,
            ServiceName,
            At,
            CDim,
            CKey
    )
    GROUP BY
        Kind,
        Dimension,
        Key,
        ServiceName,
        At,
        CDim
    -- a dimension with one key explains nothing
    HAVING max(Delta) > 0 AND count() > 1
)
ORDER BY
    At DESC,
    Share DESC;

CREATE VIEW IF NOT EXISTS otel.v_missed_caching  ON CLUSTER prod AS
SELECT
    g.ServiceName AS ServiceName,
    g.Provider AS Provider,
    g.RequestModel AS RequestModel,
    g.PrefixHash AS PrefixHash,
    g.Endpoints AS Endpoints,
    g.Teams AS Teams,
    g.Calls AS Calls,
    g.TotalInputTokens AS TotalInputTokens,
    g.InputCost AS InputCost,
    g.FirstSeen AS FirstSeen,
    g.LastSeen AS LastSeen,
    p.PrefixTokens AS PrefixTokens,
    nullIf(tupleElement(arrayFirst(r -> match(g.Provider, r.1) AND match(g.RequestModel, r.2),
        (SELECT groupArray((ProviderPattern, ModelPattern, MinCacheTokens))
         FROM (SELECT * FROM otel.v_cache_min_rules ORDER BY Rank))), 3), 0) AS MinCacheTokens,
    g.Repeats AS ExpectedReads,
    g.Calls - g.Repeats AS ExpectedWrites,
    coalesce(g.InputRate, k.InputRate) AS InputUsdPerToken,
    coalesce(r.ReadRate, k.ReadRate) AS CacheReadUsdPerToken,
    coalesce(r.PremiumRate, k.PremiumRate, 0) AS WritePremiumUsdPerToken,
    multiIf(r.ReadRate IS NOT NULL, 'recorded', k.ReadRate IS NOT NULL, 'catalogue', '') AS PriceBasis,
    ExpectedReads * PrefixTokens * (InputUsdPerToken - CacheReadUsdPerToken)
        - ExpectedWrites * PrefixTokens * WritePremiumUsdPerToken AS EstSavings,
    greatest(1, dateDiff('second', g.FirstSeen, g.LastSeen) / 86400) AS DaysSeen,
    EstSavings * 30 / DaysSeen AS EstSavingsPerMonth
FROM (
    SELECT
        ServiceName,
        Provider,
        RequestModel,
        PrefixHash,
        groupUniqArray(10)(Endpoint) AS Endpoints,
        groupUniqArray(10)(Team) AS Teams,
        count() AS Calls,
        sum(InputTokens) AS TotalInputTokens,
        sum(CostInput) AS InputCost,
        min(Timestamp) AS FirstSeen,
        max(Timestamp) AS LastSeen,
        -- Calls within 5 minutes of the previous call of the prefix: the gaps between its
        -- sorted call times (ms), one array per prefix rather than a window over every call.
        arrayCount(
            d -> d <= 300000,
            arrayPopFront(arrayDifference(arraySort(groupArray(toUnixTimestamp64Milli(Timestamp)))))
        ) AS Repeats,
        sum(CacheReadTokens) AS ReadTokens,
        sumIf(CostInput, NOT Unpriced) / nullIf(sumIf(UncachedInputTokens, NOT Unpriced), 0) AS InputRate
    FROM otel.llm_calls
    WHERE PrefixHash != ''
      AND Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    GROUP BY
        ServiceName,
        Provider,
        RequestModel,
        PrefixHash
    HAVING Calls >= 2
        AND ReadTokens = 0
) AS g
INNER JOIN (
    SELECT
        ServiceName,
        PrefixHash,
        max(PrefixTokens) AS PrefixTokens
    FROM otel.llm_prefix_tokens
    GROUP BY
        ServiceName,
        PrefixHash
) AS p ON p.ServiceName = g.ServiceName AND p.PrefixHash = g.PrefixHash
LEFT JOIN (
    -- What the model's own calls paid per cache-read token and per written token above
    -- the input price (NULL when it never read, or never wrote).
    SELECT
        Provider,
        RequestModel,
        sumIf(CostCacheRead, NOT Unpriced) / nullIf(sumIf(CacheReadTokens, NOT Unpriced), 0) AS ReadRate,
        sumIf(CostCacheWritePremium, NOT Unpriced) / nullIf(sumIf(CacheWriteTokens, NOT Unpriced), 0) AS PremiumRate
    FROM otel.llm_calls
    WHERE (CacheReadTokens > 0 OR CacheWriteTokens > 0)
      AND Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    GROUP BY
        Provider,
        RequestModel
) AS r ON r.Provider = g.Provider AND r.RequestModel = g.RequestModel
LEFT JOIN (
    -- The newest catalogue's base-tier price in force now, for a model the calls never
    -- show a cache price for (NULL without a sync). A write price of 0 is "no write".
    SELECT
        c.Provider AS Provider,
        c.RequestModel AS RequestModel,
        toNullable(any(p.InputMtok) / 1e6) AS InputRate,
        if(any(p.CacheReadPriced) = 1, toNullable(any(p.CacheReadMtok) / 1e6), NULL) AS ReadRate,
        toNullable(if(any(p.CacheWrite5mMtok) > 0, greatest(0, any(p.CacheWrite5mMtok) - any(p.InputMtok)), 0) / 1e6)
            AS PremiumRate
    FROM (
        SELECT DISTINCT
            Provider,
            RequestModel,
            ResponseModel,
            PriceProvider,
            PriceVariant
        FROM otel.llm_calls
        WHERE PrefixHash != ''
          AND Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    ) AS c
    INNER JOIN (
        SELECT *
        FROM otel.llm_price_refs
        WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
            AND ValidFrom <= now()
            AND now() < ValidUntil
    ) AS f
        ON f.PriceProvider = c.PriceProvider
        AND f.RequestModel = c.RequestModel
        AND f.ResponseModel = c.ResponseModel
        AND f.CallVariant = c.PriceVariant
    INNER JOIN (
        SELECT *
        FROM otel.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
            AND EffectiveFrom <= now()
            AND now() < EffectiveUntil
            AND InputTokensFrom = 0
    ) AS p ON p.Provider = f.Provider AND p.Model = f.Model AND p.Variant = f.Variant
    GROUP BY
        Provider,
        RequestModel
) AS k ON k.Provider = g.Provider AND k.RequestModel = g.RequestModel
WHERE p.PrefixTokens >= MinCacheTokens
    AND g.Repeats >= 1
    AND (EstSavings IS NULL OR EstSavings >= 0);

CREATE VIEW IF NOT EXISTS otel.v_cache_never_paid_back  ON CLUSTER prod AS
SELECT
    ServiceName,
    Provider,
    RequestModel,
    PrefixHash,
    Endpoint,
    groupUniqArray(10)(Endpoints) AS Endpoints,
    groupUniqArray(10)(WriteTeam) AS Teams,
    count() AS Writes,
    countIf(TtlS = 3600) AS Writes1h,
    sum(WrittenTokens) AS WrittenTokens,
    sum(WriteCost) AS WriteCost,
    sum(WritePremium) AS WritePremium,
    min(WriteAt) AS FirstWrite,
    max(WriteAt) AS LastWrite,
    sum(ReadsInTtl) AS Reads,
    max(LastRead) AS LastRead,
    avgIf(WriteBreakeven, WriteBreakeven > 0) AS BreakevenReads,
    sum(Loss) AS NetLoss
FROM (
    SELECT
        ServiceName,
        Provider,
        RequestModel,
        PrefixHash,
        Endpoint,
        any(WriteEndpoint) AS Endpoints,
        any(WriteTeam) AS WriteTeam,
        WriteSeq,
        any(SegmentTtlS) AS TtlS,
        sumIf(CacheWriteTokens, IsWrite) AS WrittenTokens,
        sumIf(CostCacheWrite, IsWrite) AS WriteCost,
        sumIf(CostCacheWritePremium, IsWrite) AS WritePremium,
        minIf(Timestamp, IsWrite) AS WriteAt,
        countIf(NOT IsWrite AND NOT Broken) AS ReadsInTtl,
        maxIf(Timestamp, NOT IsWrite AND NOT Broken) AS LastRead,
        maxIf(CacheBreakevenReads, IsWrite) AS WriteBreakeven,
        if(WriteBreakeven > 0, greatest(0, WritePremium * (1 - ReadsInTtl / WriteBreakeven)), WritePremium) AS Loss,
        maxIf(Timestamp, NOT Broken) + toIntervalSecond(TtlS) AS ExpiresAt
    FROM (
        SELECT
            *,
            max(GapS > SegmentTtlS) OVER (
                PARTITION BY ServiceName, Provider, RequestModel, PrefixHash, Endpoint, WriteSeq
                ORDER BY Timestamp, IsWrite DESC
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS Broken
        FROM (
            SELECT
                *,
                first_value(WriteTtlS) OVER s AS SegmentTtlS,
                first_value(CallEndpoint) OVER s AS WriteEndpoint,
                first_value(CallTeam) OVER s AS WriteTeam,
                dateDiff('millisecond', lagInFrame(Timestamp, 1, Timestamp) OVER s, Timestamp) / 1000 AS GapS
            FROM (
                SELECT
                    Timestamp,
                    ServiceName,
                    Provider,
                    RequestModel,
                    PrefixHash,
                    if(PrefixHash = '', c.Endpoint, '') AS Endpoint,
                    c.Endpoint AS CallEndpoint,
                    c.Team AS CallTeam,
                    CacheWriteTokens > 0 AS IsWrite,
                    CacheWriteTokens,
                    CostCacheWrite,
                    CostCacheWritePremium,
                    CacheBreakevenReads,
                    if(CacheWriteTtl IN ('1h', 'mixed') OR CacheWrite1hTokens > 0, 3600, 300) AS WriteTtlS,
                    sum(toUInt64(CacheWriteTokens > 0)) OVER (
                        PARTITION BY ServiceName, Provider, RequestModel, PrefixHash, if(PrefixHash = '', c.Endpoint, '')
                        ORDER BY Timestamp, CacheWriteTokens > 0 DESC
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                    ) AS WriteSeq
                FROM otel.llm_calls AS c
                WHERE (CacheWriteTokens > 0 OR CacheReadTokens > 0)
                  AND c.Timestamp >= now() - toIntervalHour({since_hours:UInt32})
                  -- Only prefixes written in the window: the reads of the others come
                  -- before any write (WriteSeq 0) and are dropped below anyway.
                  AND (ServiceName, Provider, RequestModel, PrefixHash, if(PrefixHash = '', c.Endpoint, '')) IN (
                      SELECT ServiceName, Provider, RequestModel, PrefixHash, if(PrefixHash = '', Endpoint, '')
                      FROM otel.llm_calls
                      WHERE CacheWriteTokens > 0
                        AND Timestamp >= now() - toIntervalHour({since_hours:UInt32})
                  )
            )
            WHERE WriteSeq > 0
            WINDOW s AS (
                PARTITION BY ServiceName, Provider, RequestModel, PrefixHash, Endpoint, WriteSeq
                ORDER BY Timestamp, IsWrite DESC
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            )
        )
    )
    GROUP BY
        ServiceName,
        Provider,
        RequestModel,
        PrefixHash,
        Endpoint,
        WriteSeq
    HAVING ExpiresAt < now()
        AND if(WriteBreakeven > 0, ReadsInTtl < WriteBreakeven, ReadsInTtl = 0)
)
GROUP BY
    ServiceName,
    Provider,
    RequestModel,
    PrefixHash,
    Endpoint;

CREATE VIEW IF NOT EXISTS otel.v_cache_hit_share_hourly  ON CLUSTER prod AS
SELECT
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(CallsWithInput) AS CallsWithInput,
    sum(CallsWithCacheRead) AS CallsWithCacheRead,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    CacheReadTokens / nullIf(InputTokens, 0) AS TokenHitRate,
    CallsWithCacheRead / nullIf(CallsWithInput, 0) AS RequestHitRate
FROM otel.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel;

CREATE TABLE IF NOT EXISTS otel.llm_foreign_calls_local  ON CLUSTER prod (
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
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, toStartOfHour(Timestamp), RequestModel, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(180)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_foreign_calls ON CLUSTER prod (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ParentSpanId String,
    ServiceName LowCardinality(String),
    Source LowCardinality(String),
    ScopeName LowCardinality(String),
    Provider LowCardinality(String),
    PriceProvider LowCardinality(String),
    Operation LowCardinality(String),
    RequestModel LowCardinality(String),
    ResponseModel LowCardinality(String),
    StatusCode LowCardinality(String),
    DurationMs Float64,
    InputTokens UInt64,
    OutputTokens UInt64,
    CacheReadTokens UInt64,
    CacheWriteTokens UInt64,
    ReasoningTokens UInt64,
    UncachedInputTokens UInt64,
    CostReported Nullable(Float64)
) ENGINE = Distributed('prod', 'otel', 'llm_foreign_calls_local', cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_foreign_calls_mv  ON CLUSTER prod
TO otel.llm_foreign_calls_local
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
FROM otel.otel_traces_local
WHERE ScopeName != 'otel_llmcost'
  AND SpanKind = 'Client'
  AND (SpanAttributes['gen_ai.request.model'] != '' OR SpanAttributes['gen_ai.response.model'] != '')
  AND (mapContains(SpanAttributes, 'gen_ai.usage.input_tokens')
       OR mapContains(SpanAttributes, 'gen_ai.usage.output_tokens')
       OR mapContains(SpanAttributes, 'gen_ai.usage.prompt_tokens')
       OR mapContains(SpanAttributes, 'gen_ai.usage.completion_tokens'));

CREATE VIEW IF NOT EXISTS otel.v_foreign_duplicates  ON CLUSTER prod AS
SELECT y.SpanId AS SpanId
FROM otel.llm_foreign_calls AS y
INNER JOIN (
    SELECT TraceId, SpanId, ParentSpanId, RequestModel,
           toUnixTimestamp64Nano(Timestamp) AS start_ns,
           start_ns + toInt64(DurationMs * 1e6) AS end_ns
    FROM otel.llm_calls
    WHERE Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32})) - INTERVAL 1 HOUR
      AND TraceId IN (
        SELECT TraceId
        FROM otel.llm_foreign_calls
        WHERE Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
      )
) AS c ON c.TraceId = y.TraceId
WHERE y.Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
  AND (c.SpanId = y.ParentSpanId
       OR c.ParentSpanId = y.SpanId
       OR (c.RequestModel = y.RequestModel
           AND c.start_ns <= toUnixTimestamp64Nano(y.Timestamp) + toInt64(y.DurationMs * 1e6)
           AND toUnixTimestamp64Nano(y.Timestamp) <= c.end_ns));

CREATE VIEW IF NOT EXISTS otel.v_foreign_calls  ON CLUSTER prod AS
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
        SELECT SpanId FROM otel.v_foreign_duplicates(since_hours = {since_hours:UInt32})
    ) AS Duplicate
FROM otel.llm_foreign_calls AS f
LEFT JOIN (
    SELECT *
    FROM otel.llm_price_refs
    WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
) AS m
    ON m.PriceProvider = f.PriceProvider
    AND m.RequestModel = f.RequestModel
    AND m.ResponseModel = f.ResponseModel
    AND m.CallVariant = ''
    AND f.Timestamp >= m.ValidFrom
    AND f.Timestamp < m.ValidUntil
LEFT JOIN (
    SELECT *
    FROM otel.llm_prices
    WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
) AS p
    ON p.Provider = m.Provider
    AND p.Model = m.Model
    AND p.Variant = m.Variant
    AND f.Timestamp >= p.EffectiveFrom
    AND f.Timestamp < p.EffectiveUntil
    AND f.InputTokens >= p.InputTokensFrom
    AND f.InputTokens < p.InputTokensUntil
WHERE f.Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}));

CREATE VIEW IF NOT EXISTS otel.v_calls_all  ON CLUSTER prod AS
SELECT
    Timestamp, TraceId, SpanId, ServiceName,
    toString('otel-llmcost') AS Source,
    toString(Provider) AS Provider,
    toString(RequestModel) AS RequestModel,
    toString(ResponseModel) AS ResponseModel,
    InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens, ReasoningTokens,
    toUInt8(Unpriced OR Implausible) AS Unpriced,
    if(Unpriced OR Implausible, NULL, CostTotal) AS CostUsd
FROM otel.llm_calls
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
FROM otel.v_foreign_calls(since_hours = {since_hours:UInt32})
WHERE NOT Duplicate;

CREATE VIEW IF NOT EXISTS otel.v_cost_by_source_daily  ON CLUSTER prod AS
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
FROM otel.v_calls_all(since_hours = {since_hours:UInt32})
GROUP BY Day, ServiceName, Source, Provider, RequestModel;

CREATE VIEW IF NOT EXISTS otel.v_prompt_component_cost  ON CLUSTER prod AS
SELECT
    ServiceName,
    Endpoint,
    Component,
    Calls,
    Tokens,
    Tokens / nullIf(PromptTokens, 0) AS TokenShare,
    CostUsd,
    CostUsd / nullIf(InputCostUsd, 0) AS CostShare,
    Tokens / Calls AS TokensPerCall
FROM (
    SELECT
        ServiceName,
        Endpoint,
        count() AS Calls,
        sum(CallPromptTokens) AS PromptTokens,
        sum(InputCost) AS InputCostUsd,
        sumForEach(CallTokens) AS ComponentTokens,
        sumForEach(arrayMap(t -> InputCost * t / CallPromptTokens, CallTokens)) AS ComponentCosts
    FROM (
        SELECT
            ServiceName,
            Endpoint,
            CostInput + CostCacheRead + CostCacheWrite AS InputCost,
            [PromptSystemTokens, PromptToolsTokens, PromptContextTokens, PromptHistoryTokens,
             PromptLatestTokens] AS CallTokens,
            arraySum(CallTokens) AS CallPromptTokens
        FROM otel.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          AND CallPromptTokens > 0
    )
    GROUP BY
        ServiceName,
        Endpoint
)
ARRAY JOIN
    ['system', 'tools', 'context', 'history', 'latest'] AS Component,
    ComponentTokens AS Tokens,
    ComponentCosts AS CostUsd;

CREATE VIEW IF NOT EXISTS otel.v_tool_schema_overhead  ON CLUSTER prod AS
SELECT
    ServiceName,
    Endpoint,
    count() AS CallsWithTools,
    sum(PromptToolsTokens) AS ToolsTokens,
    sum(PromptToolsTokens) / count() AS ToolsTokensPerCall,
    sum(PromptToolsTokens) / nullIf(sum(PromptTokens), 0) AS ToolsTokenShare,
    sum(InputCost * PromptToolsTokens / PromptTokens) AS ToolsCostUsd,
    sum(InputCost * PromptToolsTokens / PromptTokens) / nullIf(sum(InputCost), 0) AS ToolsCostShare
FROM (
    SELECT
        ServiceName,
        Endpoint,
        PromptToolsTokens,
        CostInput + CostCacheRead + CostCacheWrite AS InputCost,
        PromptSystemTokens + PromptToolsTokens + PromptContextTokens + PromptHistoryTokens
            + PromptLatestTokens AS PromptTokens
    FROM otel.llm_calls
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
      AND PromptToolsTokens > 0
)
GROUP BY
    ServiceName,
    Endpoint;

CREATE VIEW IF NOT EXISTS otel.v_session_history_growth  ON CLUSTER prod AS
SELECT
    ServiceName,
    Session,
    row_number() OVER w AS Turn,
    Timestamp,
    TraceId,
    Endpoint,
    InputTokens,
    PromptHistoryTokens AS HistoryTokens,
    toInt64(InputTokens) - toInt64(lagInFrame(InputTokens, 1, InputTokens) OVER w) AS InputTokensGrowth,
    CostInput + CostCacheRead + CostCacheWrite AS InputCostUsd,
    CostTotal AS CostUsd
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND Session != ''
WINDOW w AS (PARTITION BY ServiceName, Session ORDER BY Timestamp, SpanId
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

CREATE VIEW IF NOT EXISTS otel.v_output_by_endpoint  ON CLUSTER prod AS
SELECT
    ServiceName,
    Endpoint,
    count() AS Calls,
    countIf(FinishReason != '') AS CallsWithFinishReason,
    countIf(lower(FinishReason) IN ('length', 'max_tokens')) AS Truncated,
    Truncated / nullIf(CallsWithFinishReason, 0) AS TruncationRate,
    sum(OutputTokens) / count() AS AvgOutputTokens,
    quantile(0.95)(OutputTokens) AS P95OutputTokens,
    countIf(MaxTokens > 0) AS CallsWithMaxTokens,
    sumIf(OutputTokens, MaxTokens > 0) / nullIf(sumIf(MaxTokens, MaxTokens > 0), 0) AS MaxTokensUsedShare,
    avgIf(OutputTokens / MaxTokens, MaxTokens > 0) AS AvgMaxTokensUsedShare,
    sum(CostOutput) AS OutputCostUsd,
    sum(CostOutput) / nullIf(sum(CostTotal), 0) AS OutputCostShare
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Endpoint;

CREATE VIEW IF NOT EXISTS otel.v_unit_cost  ON CLUSTER prod AS
SELECT
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    count() AS Calls,
    countIf(Unpriced) AS UnpricedCalls,
    sum(InputTokens) AS TotalInputTokens,
    sum(OutputTokens) AS TotalOutputTokens,
    sum(CostTotal) AS CostUsd,
    sumIf(CostInput + CostCacheRead + CostCacheWrite, NOT Unpriced) * 1e6
        / nullIf(sumIf(InputTokens, NOT Unpriced), 0) AS UsdPer1MInput,
    sumIf(CostOutput, NOT Unpriced) * 1e6 / nullIf(sumIf(OutputTokens, NOT Unpriced), 0) AS UsdPer1MOutput,
    sumIf(CostTotal, NOT Unpriced) * 1e6
        / nullIf(sumIf(InputTokens + OutputTokens, NOT Unpriced), 0) AS UsdPer1MTokens,
    TotalInputTokens / nullIf(TotalOutputTokens, 0) AS InputOutputRatio
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Endpoint,
    Provider,
    RequestModel;

CREATE VIEW IF NOT EXISTS otel.v_cost_per_trace  ON CLUSTER prod AS
SELECT
    ServiceName,
    TraceId,
    any(Session) AS Session,
    min(Timestamp) AS Start,
    count() AS Calls,
    arraySort(groupUniqArray(Endpoint)) AS Endpoints,
    arraySort(groupUniqArray(RequestModel)) AS Models,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostUsd,
    countIf(Unpriced) AS UnpricedCalls,
    (max(toUnixTimestamp64Nano(Timestamp) + toInt64(DurationMs * 1e6)) - min(toUnixTimestamp64Nano(Timestamp)))
        / 1e6 AS SpanMs
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    TraceId;

CREATE VIEW IF NOT EXISTS otel.v_cost_per_session  ON CLUSTER prod AS
SELECT
    ServiceName,
    Session,
    uniqExact(TraceId) AS Traces,
    count() AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostUsd,
    sum(CostTotal) / uniqExact(TraceId) AS CostPerTraceUsd,
    countIf(Unpriced) AS UnpricedCalls,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND Session != ''
GROUP BY
    ServiceName,
    Session;

CREATE VIEW IF NOT EXISTS otel.v_tail_concentration  ON CLUSTER prod AS
SELECT
    ServiceName,
    Endpoint,
    count() AS Calls,
    toUInt64(ceil(Calls * 0.05)) AS TopCalls,
    sum(CostTotal) AS CostUsd,
    -- The TopCalls largest costs, whichever calls tie at the cut: one array per endpoint
    -- rather than a window over every call of the range ordered by cost.
    arraySum(arraySlice(arrayReverseSort(groupArray(CostTotal)), 1, TopCalls)) AS TopCostUsd,
    TopCostUsd / nullIf(CostUsd, 0) AS TopShare
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Endpoint;

CREATE VIEW IF NOT EXISTS otel.v_exact_duplicates  ON CLUSTER prod AS
SELECT
    ServiceName,
    RequestModel,
    RequestHash,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    groupUniqArray(10)(Team) AS Teams,
    count() AS Calls,
    Calls - 1 AS Repeats,
    sum(CostTotal) AS Spend,
    Spend - argMin(CostTotal, (Timestamp, SpanId)) AS RepeatSpend,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM otel.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND RequestHash != ''
  AND RequestHash IN (
      SELECT RequestHash
      FROM otel.llm_calls
      WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
        AND RequestHash != ''
      GROUP BY RequestHash
      HAVING count() >= 2
  )
GROUP BY
    ServiceName,
    RequestModel,
    RequestHash
HAVING Calls >= 2;

CREATE VIEW IF NOT EXISTS otel.v_near_duplicates  ON CLUSTER prod AS
WITH
    calls AS (
        SELECT
            ServiceName,
            RequestModel,
            PrefixHash,
            SimHash,
            RequestHash,
            Endpoint,
            Team,
            CostTotal,
            Timestamp,
            SpanId,
            -- The first call of its exact request (each call without a request hash is its
            -- own): what an exact-match response cache would still have paid for.
            RequestHash = ''
                OR row_number() OVER (
                    PARTITION BY ServiceName, RequestModel, RequestHash ORDER BY Timestamp, SpanId
                ) = 1 AS FirstOfRequest
        FROM otel.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          AND SimHash != 0
    ),
    bands AS (
        SELECT
            ServiceName,
            RequestModel,
            PrefixHash,
            SimHash,
            Band,
            bitAnd(bitShiftRight(SimHash, 16 * Band), 65535) AS BandKey
        FROM (
            SELECT DISTINCT
                ServiceName,
                RequestModel,
                PrefixHash,
                SimHash
            FROM calls
        )
        ARRAY JOIN [0, 1, 2, 3] AS Band
    ),
    anchors AS (
        SELECT
            a.ServiceName AS ServiceName,
            a.RequestModel AS RequestModel,
            a.PrefixHash AS PrefixHash,
            a.SimHash AS SimHash,
            min(b.SimHash) AS Anchor
        FROM bands AS a
        INNER JOIN bands AS b
            ON a.ServiceName = b.ServiceName
           AND a.RequestModel = b.RequestModel
           AND a.PrefixHash = b.PrefixHash
           AND a.Band = b.Band
           AND a.BandKey = b.BandKey
        WHERE bitCount(bitXor(a.SimHash, b.SimHash)) <= 3
        GROUP BY
            ServiceName,
            RequestModel,
            PrefixHash,
            SimHash
    )
SELECT
    ServiceName,
    RequestModel,
    PrefixHash,
    lower(leftPad(hex(Anchor), 16, '0')) AS Cluster,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    groupUniqArray(10)(Team) AS Teams,
    count() AS Calls,
    Calls - 1 AS Repeats,
    uniqExact(SimHash) AS Sketches,
    uniqExact(RequestHash) AS DistinctRequests,
    sum(CostTotal) AS Spend,
    Spend - argMin(CostTotal, (Timestamp, SpanId)) AS RepeatSpend,
    Spend - sumIf(CostTotal, FirstOfRequest) AS ExactRepeatSpend,
    RepeatSpend - ExactRepeatSpend AS NearOnlyRepeatSpend,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM calls
INNER JOIN anchors USING (ServiceName, RequestModel, PrefixHash, SimHash)
GROUP BY
    ServiceName,
    RequestModel,
    PrefixHash,
    Anchor
HAVING Calls >= 2;

CREATE TABLE IF NOT EXISTS otel.llm_routing_pairs  ON CLUSTER prod (
    Provider LowCardinality(String),
    FromModel String,
    ToModel String,
    -- A request is small when both hold: at most this many input and output tokens.
    MaxInputTokens UInt64 DEFAULT 1000,
    MaxOutputTokens UInt64 DEFAULT 250
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (Provider, FromModel);

CREATE VIEW IF NOT EXISTS otel.v_routing_pairs  ON CLUSTER prod AS
SELECT
    Provider,
    FromModel,
    ToModel,
    MaxInputTokens,
    MaxOutputTokens,
    'yours' AS Origin
FROM otel.llm_routing_pairs
WHERE ToModel != ''
UNION ALL
SELECT
    Provider,
    FromModel,
    ToModel,
    toUInt64(1000) AS MaxInputTokens,
    toUInt64(250) AS MaxOutputTokens,
    'default' AS Origin
FROM values(
    'Provider String, FromModel String, ToModel String',
    ('openai', 'gpt-4o', 'gpt-4o-mini'),
    ('openai', 'chatgpt-4o-latest', 'gpt-4o-mini'),
    ('openai', 'gpt-4-turbo', 'gpt-4o-mini'),
    ('openai', 'gpt-4', 'gpt-4o-mini'),
    ('openai', 'gpt-4.1', 'gpt-4.1-mini'),
    ('openai', 'gpt-4.1-mini', 'gpt-4.1-nano'),
    ('openai', 'gpt-5', 'gpt-5-mini'),
    ('openai', 'gpt-5-mini', 'gpt-5-nano'),
    ('openai', 'o1', 'o4-mini'),
    ('openai', 'o3', 'o4-mini'),
    ('anthropic', 'claude-opus-4-0', 'claude-sonnet-4-0'),
    ('anthropic', 'claude-opus-4-1', 'claude-sonnet-4-5'),
    ('anthropic', 'claude-sonnet-4-0', 'claude-3-5-haiku-latest'),
    ('anthropic', 'claude-sonnet-4-5', 'claude-haiku-4-5'),
    ('anthropic', 'claude-3-7-sonnet-latest', 'claude-3-5-haiku-latest'),
    ('anthropic', 'claude-3-5-sonnet', 'claude-3-5-haiku-latest'),
    ('google', 'gemini-2.5-pro', 'gemini-2.5-flash'),
    ('google', 'gemini-2.5-flash', 'gemini-2.5-flash-lite'),
    ('google', 'gemini-2.0-flash', 'gemini-2.0-flash-lite'),
    ('google', 'gemini-1.5-pro', 'gemini-1.5-flash'),
    ('groq', 'llama-3.3-70b-versatile', 'llama-3.1-8b-instant'),
    ('mistral', 'mistral-large', 'mistral-small-latest')
)
WHERE (Provider, FromModel) NOT IN (SELECT Provider, FromModel FROM otel.llm_routing_pairs);

CREATE VIEW IF NOT EXISTS otel.v_routing_opportunities  ON CLUSTER prod AS
SELECT
    ServiceName,
    Endpoint,
    Feature,
    Team,
    Provider,
    RequestModel,
    FromModel,
    ToModel,
    Origin,
    MaxInputTokens,
    MaxOutputTokens,
    count() AS Calls,
    countIf(Small) AS SmallCalls,
    SmallCalls / Calls AS SmallShare,
    sum(CostTotal) AS Spend,
    sumIf(CostTotal, Small) AS SmallSpend,
    min(TargetPriced) AS TargetPriced,
    if(TargetPriced = 1, sumIf(TargetCost, Small), NULL) AS EstSmallSpendOnTarget,
    SmallSpend - EstSmallSpendOnTarget AS EstSavings,
    minIf(Timestamp, Small) AS FirstSeen,
    maxIf(Timestamp, Small) AS LastSeen,
    greatest(1, dateDiff('second', FirstSeen, LastSeen) / 86400) AS DaysSeen,
    EstSavings * 30 / DaysSeen AS EstSavingsPerMonth
FROM (
    SELECT
        c.Timestamp AS Timestamp,
        c.ServiceName AS ServiceName,
        c.Endpoint AS Endpoint,
        c.Feature AS Feature,
        c.Team AS Team,
        c.PriceProvider AS Provider,
        c.RequestModel AS RequestModel,
        c.CostTotal AS CostTotal,
        r.FromModel AS FromModel,
        r.ToModel AS ToModel,
        r.Origin AS Origin,
        r.MaxInputTokens AS MaxInputTokens,
        r.MaxOutputTokens AS MaxOutputTokens,
        c.InputTokens <= r.MaxInputTokens AND c.OutputTokens <= r.MaxOutputTokens AS Small,
        t.Model != '' AS TargetPriced,
        (toInt64(c.UncachedInputTokens) * t.InputMtok
         + toInt64(c.CacheReadTokens) * t.CacheReadMtok
         + (toInt64(c.CacheWriteTokens) - least(toInt64(c.CacheWrite1hTokens), toInt64(c.CacheWriteTokens)))
             * t.CacheWrite5mMtok
         + least(toInt64(c.CacheWrite1hTokens), toInt64(c.CacheWriteTokens)) * t.CacheWrite1hMtok
         + (toInt64(c.OutputTokens) - least(toInt64(c.ReasoningTokens), toInt64(c.OutputTokens))) * t.OutputMtok
         + least(toInt64(c.ReasoningTokens), toInt64(c.OutputTokens)) * t.ReasoningMtok) / 1e6 AS TargetCost
    FROM (
        SELECT
            c.*,
            m.Model AS CatalogueModel
        FROM (
            SELECT *
            FROM otel.llm_calls
            WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
              AND NOT Unpriced
              AND NOT Implausible
              AND StatusCode != 'Error'
              -- Only models the pairs below can match, by their own name or by the
              -- catalogue model they resolve to, so that the joins see no other call (a
              -- wider set than the joins keep, tested on the model column alone: cheap).
              AND RequestModel IN (
                  SELECT FromModel
                  FROM otel.v_routing_pairs
                  UNION ALL
                  SELECT RequestModel
                  FROM otel.llm_price_refs
                  WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
                    AND (PriceProvider, Model) IN (SELECT Provider, FromModel FROM otel.v_routing_pairs)
              )
        ) AS c
        LEFT JOIN (
            SELECT *
            FROM otel.llm_price_refs
            WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
        ) AS m
            ON m.PriceProvider = c.PriceProvider
            AND m.RequestModel = c.RequestModel
            AND m.ResponseModel = c.ResponseModel
            AND m.CallVariant = c.PriceVariant
            AND c.Timestamp >= m.ValidFrom
            AND c.Timestamp < m.ValidUntil
    ) AS c
    INNER JOIN otel.v_routing_pairs AS r
        ON r.Provider = c.PriceProvider
        AND (r.FromModel = c.CatalogueModel OR r.FromModel = c.RequestModel)
    LEFT JOIN (
        SELECT *
        FROM otel.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
          AND Variant = ''
    ) AS t
        ON t.Provider = r.Provider
        AND t.Model = r.ToModel
        AND c.Timestamp >= t.EffectiveFrom
        AND c.Timestamp < t.EffectiveUntil
        AND c.InputTokens >= t.InputTokensFrom
        AND c.InputTokens < t.InputTokensUntil
    -- A model already the pair's target (a chain such as gpt-4.1 -> gpt-4.1-mini -> nano
    -- lists each step once) is never its own opportunity.
    WHERE r.ToModel NOT IN (c.CatalogueModel, c.RequestModel)
)
GROUP BY
    ServiceName,
    Endpoint,
    Feature,
    Team,
    Provider,
    RequestModel,
    FromModel,
    ToModel,
    Origin,
    MaxInputTokens,
    MaxOutputTokens;

CREATE VIEW IF NOT EXISTS otel.v_task_cost_by_model  ON CLUSTER prod AS
SELECT
    o.ServiceName AS ServiceName,
    if(o.Feature != '', o.Feature, c.Feature) AS Feature,
    if(o.Endpoint != '', o.Endpoint, c.Endpoint) AS Endpoint,
    if(o.Team != '', o.Team, c.Team) AS Team,
    c.Model AS Model,
    count() AS Tasks,
    sum(o.Success) AS SuccessfulTasks,
    SuccessfulTasks / Tasks AS SuccessRate,
    sum(c.CostTotal) AS CostTotal,
    CostTotal / nullIf(SuccessfulTasks, 0) AS CostPerSuccessfulTask
FROM (
    SELECT
        TaskKey,
        argMax(ServiceName, Timestamp) AS ServiceName,
        argMax(Success, Timestamp) AS Success,
        argMax(Feature, Timestamp) AS Feature,
        argMax(Endpoint, Timestamp) AS Endpoint,
        argMax(Team, Timestamp) AS Team
    FROM otel.llm_task_outcomes
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    GROUP BY TaskKey
) AS o
INNER JOIN (
    SELECT
        TaskKey,
        argMax(RequestModel, ModelCost) AS Model,
        sum(ModelCost) AS CostTotal,
        any(Feature) AS Feature,
        any(Endpoint) AS Endpoint,
        any(Team) AS Team
    FROM (
        SELECT
            if(TaskId != '', TaskId, TraceId) AS TaskKey,
            RequestModel,
            sum(CostTotal) AS ModelCost,
            any(Feature) AS Feature,
            any(Endpoint) AS Endpoint,
            any(Team) AS Team
        FROM otel.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32} + 24)
          -- Only tasks with an outcome in the window (the join below keeps no other):
          -- grouping every trace of the range is most of the cost otherwise.
          AND if(TaskId != '', TaskId, TraceId) IN (
              SELECT TaskKey
              FROM otel.llm_task_outcomes
              WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          )
        GROUP BY
            TaskKey,
            RequestModel
    )
    GROUP BY TaskKey
) AS c ON c.TaskKey = o.TaskKey
GROUP BY
    ServiceName,
    Feature,
    Endpoint,
    Team,
    Model;

CREATE VIEW IF NOT EXISTS otel.v_batch_opportunities  ON CLUSTER prod AS
SELECT
    ServiceName,
    Feature,
    Team,
    Provider,
    RequestModel,
    Reason,
    count() AS Calls,
    sum(CostTotal) AS Spend,
    sum(BatchCost) AS EstSpendAtBatchPrice,
    Spend - EstSpendAtBatchPrice AS EstSavings,
    1 - EstSpendAtBatchPrice / nullIf(Spend, 0) AS BatchDiscount,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen,
    greatest(1, dateDiff('second', FirstSeen, LastSeen) / 86400) AS DaysSeen,
    EstSavings * 30 / DaysSeen AS EstSavingsPerMonth
FROM (
    SELECT
        c.Timestamp AS Timestamp,
        c.ServiceName AS ServiceName,
        c.Feature AS Feature,
        c.Team AS Team,
        c.PriceProvider AS Provider,
        c.RequestModel AS RequestModel,
        if(c.Background = 1, 'marked background', 'outside any request') AS Reason,
        c.CostTotal AS CostTotal,
        c.CostTotal * BatchTokensCost / nullIf(StandardTokensCost, 0) AS BatchCost,
        toInt64(c.UncachedInputTokens) AS uncached,
        toInt64(c.CacheReadTokens) AS read,
        least(toInt64(c.CacheWrite1hTokens), toInt64(c.CacheWriteTokens)) AS write_1h,
        toInt64(c.CacheWriteTokens) - write_1h AS write_5m,
        least(toInt64(c.ReasoningTokens), toInt64(c.OutputTokens)) AS reasoning,
        toInt64(c.OutputTokens) - reasoning AS output,
        uncached * s.InputMtok + read * s.CacheReadMtok + write_5m * s.CacheWrite5mMtok
            + write_1h * s.CacheWrite1hMtok + output * s.OutputMtok + reasoning * s.ReasoningMtok
            AS StandardTokensCost,
        uncached * b.InputMtok + read * b.CacheReadMtok + write_5m * b.CacheWrite5mMtok
            + write_1h * b.CacheWrite1hMtok + output * b.OutputMtok + reasoning * b.ReasoningMtok
            AS BatchTokensCost
    FROM (
        SELECT *
        FROM otel.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          AND NOT Unpriced
          AND NOT Implausible
          AND CostTotal > 0
          AND PriceVariant NOT LIKE '%processing=batch%'
          AND ifNull(
              Background,
              Endpoint = ''
                  AND Stream = 0
                  AND ServiceName IN (
                      SELECT DISTINCT ServiceName
                      FROM otel.llm_calls
                      WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
                        AND Endpoint != ''
                  )
          ) = 1
    ) AS c
    INNER JOIN (
        SELECT *
        FROM otel.llm_price_refs
        WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
    ) AS m
        ON m.PriceProvider = c.PriceProvider
        AND m.RequestModel = c.RequestModel
        AND m.ResponseModel = c.ResponseModel
        AND m.CallVariant = c.PriceVariant
        AND c.Timestamp >= m.ValidFrom
        AND c.Timestamp < m.ValidUntil
    INNER JOIN (
        SELECT *
        FROM otel.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
          AND Variant = ''
    ) AS s
        ON s.Provider = m.Provider
        AND s.Model = m.Model
        AND c.Timestamp >= s.EffectiveFrom
        AND c.Timestamp < s.EffectiveUntil
        AND c.InputTokens >= s.InputTokensFrom
        AND c.InputTokens < s.InputTokensUntil
    INNER JOIN (
        SELECT *
        FROM otel.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
          AND Variant = 'processing=batch'
    ) AS b
        ON b.Provider = m.Provider
        AND b.Model = m.Model
        AND c.Timestamp >= b.EffectiveFrom
        AND c.Timestamp < b.EffectiveUntil
        AND c.InputTokens >= b.InputTokensFrom
        AND c.InputTokens < b.InputTokensUntil
)
WHERE BatchCost IS NOT NULL
GROUP BY
    ServiceName,
    Feature,
    Team,
    Provider,
    RequestModel,
    Reason;

CREATE VIEW IF NOT EXISTS otel.v_opportunities  ON CLUSTER prod AS
SELECT
    Kind,
    ServiceName,
    Key,
    Provider,
    Model,
    MonthlySavingUsd,
    SeenSavingUsd,
    DaysSeen,
    Evidence,
    Action
FROM (
    SELECT
        'missed_caching' AS Kind,
        ServiceName,
        arrayStringConcat(Endpoints, ', ') AS Key,
        Provider,
        RequestModel AS Model,
        EstSavingsPerMonth AS MonthlySavingUsd,
        EstSavings AS SeenSavingUsd,
        DaysSeen,
        format(
            '{} calls share a {}-token prompt prefix (cacheable from {} tokens); {} came within 5 minutes of the previous one, and none read from cache',
            Calls, PrefixTokens, MinCacheTokens, ExpectedReads
        ) AS Evidence,
        multiIf(
            Provider = 'anthropic', 'mark the end of the shared prefix with cache_control',
            Provider = 'openai', 'keep the shared prefix first and byte-identical, with one prompt_cache_key',
            Provider IN ('google', 'gcp.gemini', 'gcp.vertex_ai'), 'put the shared prefix in a context cache (client.caches.create)',
            'enable prompt caching for the shared prefix'
        ) AS Action
    FROM otel.v_missed_caching(since_hours = {since_hours:UInt32})
    WHERE LastSeen >= now() - toIntervalHour({since_hours:UInt32})
      AND EstSavingsPerMonth > 0

    UNION ALL

    SELECT
        'cache_not_paid_back' AS Kind,
        ServiceName,
        if(Endpoint != '', Endpoint, arrayStringConcat(arraySort(arrayDistinct(arrayFlatten(groupArray(Endpoints)))), ', ')) AS Key,
        Provider,
        RequestModel AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(NetLoss) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(FirstWrite), max(LastWrite)) / 86400) AS DaysSeen,
        format(
            '{} cache write{}{} read {} time{} in all, against a breakeven of {} reads each',
            sum(Writes), if(sum(Writes) = 1, '', 's'),
            if(sum(Writes1h) > 0, format(' ({} with a 1-hour TTL)', toString(sum(Writes1h))), ''),
            sum(Reads), if(sum(Reads) = 1, '', 's'),
            if(avgIf(BreakevenReads, BreakevenReads > 0) > 0, toString(round(avgIf(BreakevenReads, BreakevenReads > 0), 2)), 'unknown')
        ) AS Evidence,
        if(
            sum(Writes1h) > 0,
            'use the 5-minute cache TTL, or drop cache_control here',
            'drop cache_control from this prompt'
        ) AS Action
    FROM otel.v_cache_never_paid_back(since_hours = {since_hours:UInt32})
    WHERE LastWrite >= now() - toIntervalHour({since_hours:UInt32})
      AND NetLoss > 0
    GROUP BY
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
    HAVING SeenSavingUsd > 0

    UNION ALL

    SELECT
        'duplicate_requests' AS Kind,
        ServiceName,
        if(Endpoints[1] != '', Endpoints[1], '(no endpoint)') AS Key,
        '' AS Provider,
        RequestModel AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(RepeatSpend) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(FirstSeen), max(LastSeen)) / 86400) AS DaysSeen,
        format(
            '{} distinct request{} sent more than once ({} repeat{} in all), each answered anew',
            count(), if(count() = 1, '', 's'), sum(Repeats), if(sum(Repeats) = 1, '', 's')
        ) AS Evidence,
        'cache answers to identical requests, or stop the caller repeating them' AS Action
    FROM otel.v_exact_duplicates(since_hours = {since_hours:UInt32})
    GROUP BY
        ServiceName,
        Key,
        RequestModel
    HAVING SeenSavingUsd > 0

    UNION ALL

    SELECT
        'near_duplicates' AS Kind,
        ServiceName,
        if(Endpoints[1] != '', Endpoints[1], '(no endpoint)') AS Key,
        '' AS Provider,
        RequestModel AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(NearOnlyRepeatSpend) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(FirstSeen), max(LastSeen)) / 86400) AS DaysSeen,
        format(
            '{} calls in {} group{} of near-identical requests ({} distinct texts differing in case, spacing or a word)',
            sum(Calls), count(), if(count() = 1, '', 's'), sum(DistinctRequests)
        ) AS Evidence,
        'cache answers by normalized text (a semantic cache), once the words that differ are known not to change the answer' AS Action
    FROM otel.v_near_duplicates(since_hours = {since_hours:UInt32})
    WHERE DistinctRequests > 1
    GROUP BY
        ServiceName,
        Key,
        RequestModel
    HAVING SeenSavingUsd > 0

    UNION ALL

    SELECT
        'routing' AS Kind,
        ServiceName,
        if(Endpoint != '', Endpoint, Feature) AS Key,
        Provider,
        RequestModel AS Model,
        EstSavingsPerMonth AS MonthlySavingUsd,
        EstSavings AS SeenSavingUsd,
        DaysSeen,
        format(
            '{} of {} calls are small (at most {} input and {} output tokens) and cost ${}; on {} about ${}',
            SmallCalls, Calls, MaxInputTokens, MaxOutputTokens, toString(round(SmallSpend, 4)), ToModel,
            toString(round(EstSmallSpendOnTarget, 4))
        ) AS Evidence,
        format(
            'route small requests of {} from {} to {}, after comparing task success per model',
            Key, RequestModel, ToModel
        ) AS Action
    FROM otel.v_routing_opportunities(since_hours = {since_hours:UInt32})
    WHERE TargetPriced = 1
      AND EstSavings > 0

    UNION ALL

    SELECT
        'batch' AS Kind,
        ServiceName,
        if(Feature != '', Feature, '(no feature)') AS Key,
        Provider,
        RequestModel AS Model,
        EstSavingsPerMonth AS MonthlySavingUsd,
        EstSavings AS SeenSavingUsd,
        DaysSeen,
        format(
            '{} calls {} cost ${}; the {} Batch API price is {}% lower',
            Calls, if(Reason = 'marked background', 'marked background', 'made outside any request'),
            toString(round(Spend, 4)), Provider, toString(round(100 * BatchDiscount))
        ) AS Evidence,
        format('move {} to the {} Batch API', Key, Provider) AS Action
    FROM otel.v_batch_opportunities(since_hours = {since_hours:UInt32})
    WHERE EstSavings > 0

    UNION ALL

    SELECT
        'unused_evidence' AS Kind,
        ServiceName,
        Endpoint AS Key,
        '' AS Provider,
        '' AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(NeverCitedUsd) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(Hour), max(Hour)) / 86400) AS DaysSeen,
        format(
            '{}% of the retrieved evidence tokens of {} calls were never cited by the answer',
            toString(round(100 * sum(EvidenceTokensNeverCited) / nullIf(sum(EvidenceTokensCited) + sum(EvidenceTokensNeverCited), 0))),
            sum(CallsWithCitations)
        ) AS Evidence,
        'retrieve fewer or shorter chunks, or rerank them' AS Action
    FROM otel.v_evidence_waste_hourly(since_hours = {since_hours:UInt32})
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    GROUP BY
        ServiceName,
        Endpoint
    HAVING SeenSavingUsd > 0
)
ORDER BY MonthlySavingUsd DESC;

INSERT INTO otel.llm_cost_hourly (
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
FROM otel.llm_calls
WHERE (
    SELECT count()
    FROM otel.llm_cost_hourly
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

INSERT INTO otel.llm_cost_daily (
    Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    Calls,
    Errors,
    Throttled,
    Retries,
    Unpriced,
    Estimated,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheWriteTokens,
    ReasoningTokens,
    UncachedInputTokens,
    CostTotal,
    CostInput,
    CostOutput,
    CostCacheRead,
    CostCacheWrite,
    CostCacheWritePremium,
    CostSavings
)
SELECT
    toDate(Hour) AS Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    sum(Calls),
    sum(Errors),
    sum(Throttled),
    sum(Retries),
    sum(Unpriced),
    sum(Estimated),
    sum(InputTokens),
    sum(OutputTokens),
    sum(CacheReadTokens),
    sum(CacheWriteTokens),
    sum(ReasoningTokens),
    sum(UncachedInputTokens),
    sum(CostTotal),
    sum(CostInput),
    sum(CostOutput),
    sum(CostCacheRead),
    sum(CostCacheWrite),
    sum(CostCacheWritePremium),
    sum(CostSavings)
FROM otel.llm_cost_hourly
WHERE (SELECT count() FROM otel.llm_cost_daily) = 0
GROUP BY
    Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

INSERT INTO otel.llm_user_spend_daily (
    Day,
    ServiceName,
    User,
    Calls,
    InputTokens,
    OutputTokens,
    CostTotal
)
SELECT
    Day,
    ServiceName,
    User,
    sum(Calls),
    sum(InputTokens),
    sum(OutputTokens),
    sum(CostTotal)
FROM otel.llm_user_daily
WHERE User != ''
  AND (SELECT count() FROM otel.llm_user_spend_daily) = 0
GROUP BY
    Day,
    ServiceName,
    User;

CREATE TABLE IF NOT EXISTS otel.llm_foreign_cost_hourly_local  ON CLUSTER prod (
    Hour DateTime,
    ServiceName LowCardinality(String),
    Source LowCardinality(String),
    Provider LowCardinality(String),
    PriceProvider LowCardinality(String),
    RequestModel LowCardinality(String),
    ResponseModel LowCardinality(String),
    InputBand UInt64,
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    UncachedInputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Hour)
ORDER BY (Hour, ServiceName, Source, Provider, PriceProvider, RequestModel, ResponseModel, InputBand)
TTL Hour + toIntervalDay(180)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS otel.llm_foreign_cost_hourly ON CLUSTER prod (
    Hour DateTime,
    ServiceName LowCardinality(String),
    Source LowCardinality(String),
    Provider LowCardinality(String),
    PriceProvider LowCardinality(String),
    RequestModel LowCardinality(String),
    ResponseModel LowCardinality(String),
    InputBand UInt64,
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    UncachedInputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64)
) ENGINE = Distributed('prod', 'otel', 'llm_foreign_cost_hourly_local', rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS otel.llm_foreign_cost_hourly_mv  ON CLUSTER prod
TO otel.llm_foreign_cost_hourly_local
AS SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Source,
    Provider,
    PriceProvider,
    RequestModel,
    ResponseModel,
    arrayLast(b -> b <= f.InputTokens,
              CAST([0, 32001, 100001, 128001, 200000, 200001, 256001, 272001, 512001, 524289], 'Array(UInt64)')) AS InputBand,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error')) AS Errors,
    sum(f.InputTokens) AS InputTokens,
    sum(f.UncachedInputTokens) AS UncachedInputTokens,
    sum(f.CacheReadTokens) AS CacheReadTokens,
    sum(f.CacheWriteTokens) AS CacheWriteTokens,
    sum(f.OutputTokens) AS OutputTokens,
    sum(f.ReasoningTokens) AS ReasoningTokens
FROM otel.llm_foreign_calls_local AS f
GROUP BY
    Hour,
    ServiceName,
    Source,
    Provider,
    PriceProvider,
    RequestModel,
    ResponseModel,
    InputBand;

INSERT INTO otel.llm_foreign_cost_hourly
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Source,
    Provider,
    PriceProvider,
    RequestModel,
    ResponseModel,
    arrayLast(b -> b <= f.InputTokens,
              CAST([0, 32001, 100001, 128001, 200000, 200001, 256001, 272001, 512001, 524289], 'Array(UInt64)')) AS InputBand,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error')) AS Errors,
    sum(f.InputTokens) AS InputTokens,
    sum(f.UncachedInputTokens) AS UncachedInputTokens,
    sum(f.CacheReadTokens) AS CacheReadTokens,
    sum(f.CacheWriteTokens) AS CacheWriteTokens,
    sum(f.OutputTokens) AS OutputTokens,
    sum(f.ReasoningTokens) AS ReasoningTokens
FROM otel.llm_foreign_calls AS f
WHERE (SELECT count() FROM otel.llm_foreign_cost_hourly) = 0
GROUP BY
    Hour,
    ServiceName,
    Source,
    Provider,
    PriceProvider,
    RequestModel,
    ResponseModel,
    InputBand;

CREATE VIEW IF NOT EXISTS otel.v_foreign_spend_hourly  ON CLUSTER prod AS
SELECT
    k.Hour AS Hour,
    k.ServiceName AS ServiceName,
    k.Source AS Source,
    k.Provider AS Provider,
    k.RequestModel AS RequestModel,
    k.ResponseModel AS ResponseModel,
    k.InputBand AS InputBand,
    toUInt64(k.Calls) AS Calls,
    toUInt64(k.Errors) AS Errors,
    toUInt64(k.InputTokens) AS InputTokens,
    toUInt64(k.CacheReadTokens) AS CacheReadTokens,
    toUInt64(k.CacheWriteTokens) AS CacheWriteTokens,
    toUInt64(k.OutputTokens) AS OutputTokens,
    toUInt64(k.ReasoningTokens) AS ReasoningTokens,
    toUInt64(k.DuplicateCalls) AS DuplicateCalls,
    p.Model != '' AS Priced,
    toUInt64(if(Priced, 0, k.Calls)) AS UnpricedCalls,
    if(Priced,
       (k.UncachedInputTokens * p.InputMtok + k.CacheReadTokens * p.CacheReadMtok
        + k.CacheWriteTokens * p.CacheWrite5mMtok
        + (k.OutputTokens - k.ReasoningTokens) * p.OutputMtok + k.ReasoningTokens * p.ReasoningMtok) / 1e6,
       NULL) AS CostUsd
FROM (
    SELECT
        Hour, ServiceName, Source, Provider, PriceProvider, RequestModel, ResponseModel, InputBand,
        sum(Calls) AS Calls,
        sum(Errors) AS Errors,
        sum(InputTokens) AS InputTokens,
        sum(UncachedInputTokens) AS UncachedInputTokens,
        sum(CacheReadTokens) AS CacheReadTokens,
        sum(CacheWriteTokens) AS CacheWriteTokens,
        sum(OutputTokens) AS OutputTokens,
        sum(ReasoningTokens) AS ReasoningTokens,
        sum(DuplicateCalls) AS DuplicateCalls
    FROM (
        SELECT
            Hour, toString(ServiceName) AS ServiceName, toString(Source) AS Source,
            toString(Provider) AS Provider, toString(PriceProvider) AS PriceProvider,
            toString(RequestModel) AS RequestModel, toString(ResponseModel) AS ResponseModel, InputBand,
            toInt64(Calls) AS Calls,
            toInt64(Errors) AS Errors,
            toInt64(InputTokens) AS InputTokens,
            toInt64(UncachedInputTokens) AS UncachedInputTokens,
            toInt64(CacheReadTokens) AS CacheReadTokens,
            toInt64(CacheWriteTokens) AS CacheWriteTokens,
            toInt64(OutputTokens) AS OutputTokens,
            toInt64(ReasoningTokens) AS ReasoningTokens,
            toInt64(0) AS DuplicateCalls
        FROM otel.llm_foreign_cost_hourly
        WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
        UNION ALL
        -- the window's duplicates, subtracted
        SELECT
            toStartOfHour(x.Timestamp) AS Hour, toString(x.ServiceName) AS ServiceName,
            toString(x.Source) AS Source, toString(x.Provider) AS Provider,
            toString(x.PriceProvider) AS PriceProvider, toString(x.RequestModel) AS RequestModel,
            toString(x.ResponseModel) AS ResponseModel,
            arrayLast(b -> b <= x.InputTokens,
                      CAST([0, 32001, 100001, 128001, 200000, 200001, 256001, 272001, 512001, 524289], 'Array(UInt64)'))
                AS InputBand,
            -toInt64(count()) AS Calls,
            -toInt64(countIf(x.StatusCode = 'Error')) AS Errors,
            -toInt64(sum(x.InputTokens)) AS InputTokens,
            -toInt64(sum(x.UncachedInputTokens)) AS UncachedInputTokens,
            -toInt64(sum(x.CacheReadTokens)) AS CacheReadTokens,
            -toInt64(sum(x.CacheWriteTokens)) AS CacheWriteTokens,
            -toInt64(sum(x.OutputTokens)) AS OutputTokens,
            -toInt64(sum(x.ReasoningTokens)) AS ReasoningTokens,
            toInt64(count()) AS DuplicateCalls
        FROM otel.llm_foreign_calls AS x
        WHERE x.Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
          AND x.SpanId IN (
            SELECT SpanId FROM otel.v_foreign_duplicates(since_hours = {since_hours:UInt32})
          )
        GROUP BY Hour, ServiceName, Source, Provider, PriceProvider, RequestModel, ResponseModel, InputBand
    )
    GROUP BY Hour, ServiceName, Source, Provider, PriceProvider, RequestModel, ResponseModel, InputBand
    HAVING Calls > 0
) AS k
LEFT JOIN (
    SELECT *
    FROM otel.llm_price_refs
    WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
) AS m
    ON m.PriceProvider = k.PriceProvider
    AND m.RequestModel = k.RequestModel
    AND m.ResponseModel = k.ResponseModel
    AND m.CallVariant = ''
    AND k.Hour >= m.ValidFrom
    AND k.Hour < m.ValidUntil
LEFT JOIN (
    SELECT *
    FROM otel.llm_prices
    WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
) AS p
    ON p.Provider = m.Provider
    AND p.Model = m.Model
    AND p.Variant = m.Variant
    AND k.Hour >= p.EffectiveFrom
    AND k.Hour < p.EffectiveUntil
    AND k.InputBand >= p.InputTokensFrom
    AND k.InputBand < p.InputTokensUntil;

CREATE VIEW IF NOT EXISTS otel.v_spend_hourly  ON CLUSTER prod AS
SELECT
    Hour,
    toString(ServiceName) AS ServiceName,
    toString('otel-llmcost') AS Source,
    toString(Provider) AS Provider,
    toString(Endpoint) AS Endpoint,
    toString(RequestModel) AS RequestModel,
    toString(Feature) AS Feature,
    toString(Team) AS Team,
    toUInt64(sum(Calls)) AS Calls,
    toUInt64(sum(Errors)) AS Errors,
    toUInt64(sum(Unpriced)) AS UnpricedCalls,
    toUInt64(sum(InputTokens)) AS InputTokens,
    toUInt64(sum(CacheReadTokens)) AS CacheReadTokens,
    toUInt64(sum(OutputTokens)) AS OutputTokens,
    toFloat64(sum(CostTotal)) AS CostUsd,
    toFloat64(sum(CostSavings)) AS CostSavings
FROM otel.llm_cost_hourly
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY Hour, ServiceName, Provider, Endpoint, RequestModel, Feature, Team
UNION ALL
SELECT
    Hour,
    ServiceName,
    Source,
    Provider,
    '' AS Endpoint,
    RequestModel,
    '' AS Feature,
    '' AS Team,
    toUInt64(sum(Calls)) AS Calls,
    toUInt64(sum(Errors)) AS Errors,
    toUInt64(sum(UnpricedCalls)) AS UnpricedCalls,
    toUInt64(sum(InputTokens)) AS InputTokens,
    toUInt64(sum(CacheReadTokens)) AS CacheReadTokens,
    toUInt64(sum(OutputTokens)) AS OutputTokens,
    toFloat64(sum(ifNull(CostUsd, 0))) AS CostUsd,
    toFloat64(0) AS CostSavings
FROM otel.v_foreign_spend_hourly(since_hours = {since_hours:UInt32})
GROUP BY Hour, ServiceName, Source, Provider, RequestModel;

ALTER TABLE otel.llm_calls_local  ON CLUSTER prod
    MODIFY COLUMN Timestamp DateTime64(9) CODEC(Delta(8), T64('bit'), ZSTD(1)),
    MODIFY COLUMN ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Provider LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Operation LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Endpoint LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Feature LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Team LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN User String CODEC(ZSTD(3)),
    MODIFY COLUMN StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN HttpStatus UInt16 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN TtftMs Nullable(Float64) CODEC(ZSTD(1)),
    MODIFY COLUMN Stream UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN Unpriced UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN Estimated UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN Throttled UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN ThrottledAttempts UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RetryCount UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RetryAfterS Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN RateLimitRequestsRemaining Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RateLimitRequestsLimit Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RateLimitTokensRemaining Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RateLimitTokensLimit Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN CacheWriteTtl LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN CacheBreakevenReads Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN PriceSource LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceVersion LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceProvider LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceVariant LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN CostReported Nullable(Float64) CODEC(ZSTD(1)),
    MODIFY COLUMN CostReportedSource LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Tier LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Implausible UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN FinishReason LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN OriginalModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Background Nullable(UInt8) CODEC(T64, ZSTD(1));

CREATE TABLE IF NOT EXISTS otel.llm_unit_prices  ON CLUSTER prod (
    SyncId DateTime64(6),
    Provider LowCardinality(String),
    Model String,
    Variant LowCardinality(String),
    -- One row applies to a call when EffectiveFrom <= Timestamp < EffectiveUntil (UTC).
    EffectiveFrom DateTime,
    EffectiveUntil DateTime,
    InputAudioHours Nullable(Float64),
    InputMchars Nullable(Float64),
    TimeOfDay UInt8,
    Source LowCardinality(String),
    Version LowCardinality(String)
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (SyncId, Provider, Model, Variant, EffectiveFrom);

CREATE VIEW IF NOT EXISTS otel.v_unit_prices_current  ON CLUSTER prod AS
SELECT *
FROM otel.llm_unit_prices
WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs);

CREATE VIEW IF NOT EXISTS otel.v_calls_repriced  ON CLUSTER prod AS
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    Endpoint,
    Feature,
    Team,
    PriceVariant,
    InputTokens,
    OutputTokens,
    Unpriced AS RecordedUnpriced,
    CostTotal AS RecordedCost,
    PriceSource AS RecordedSource,
    PriceVersion AS RecordedVersion,
    CatalogueProvider,
    CatalogueModel,
    CatalogueSource,
    CatalogueVersion,
    CataloguePriced,
    -- An implausible call is never priced, by the app or here.
    if(CataloguePriced AND NOT Implausible,
       (uncached_text * InputMtok + a_unc * ifNull(InputAudioMtok, 0) + i_unc * ifNull(InputImageMtok, 0)
        + read_text * CacheReadMtok + a_read * ifNull(a_read_rate, 0) + i_read * ifNull(i_read_rate, 0)
        + write_5m * CacheWrite5mMtok + write_1h * CacheWrite1hMtok
        + out_text * OutputMtok + reasoning * ReasoningMtok
        + a_out * ifNull(OutputAudioMtok, 0) + i_out * ifNull(OutputImageMtok, 0)) / 1e6
       + audio_s * ifNull(InputAudioHours, 0) / 3600 + chars * ifNull(InputMchars, 0) / 1e6,
       0) AS CatalogueCost
FROM (
    SELECT
        c.Timestamp AS Timestamp,
        c.TraceId AS TraceId,
        c.SpanId AS SpanId,
        c.ServiceName AS ServiceName,
        c.Provider AS Provider,
        c.RequestModel AS RequestModel,
        c.ResponseModel AS ResponseModel,
        c.Endpoint AS Endpoint,
        c.Feature AS Feature,
        c.Team AS Team,
        c.PriceVariant AS PriceVariant,
        c.InputTokens AS InputTokens,
        c.OutputTokens AS OutputTokens,
        c.Unpriced AS Unpriced,
        c.Implausible AS Implausible,
        c.CostTotal AS CostTotal,
        c.PriceSource AS PriceSource,
        c.PriceVersion AS PriceVersion,
        p.Model != '' AS token_row,
        if(token_row, p.Provider, u.Provider) AS CatalogueProvider,
        if(token_row, p.Model, u.Model) AS CatalogueModel,
        if(token_row, p.Source, u.Source) AS CatalogueSource,
        if(token_row, p.Version, u.Version) AS CatalogueVersion,
        -- Units a call was billed by other than tokens: none when it failed.
        c.StatusCode = 'Error' OR c.ErrorType != '' AS failed,
        if(failed, 0, c.AudioSeconds) AS audio_s,
        if(failed, 0, c.InputCharacters) AS chars,
        c.InputTokens + c.OutputTokens + c.CacheReadTokens + c.CacheWriteTokens > 0 AS counts_tokens,
        (token_row OR (u.Model != '' AND NOT counts_tokens))
            AND (audio_s = 0 OR u.InputAudioHours IS NOT NULL)
            AND (chars = 0 OR u.InputMchars IS NOT NULL)
            AND NOT (c.Unpriced AND NOT counts_tokens AND audio_s = 0 AND chars = 0) AS CataloguePriced,
        u.InputAudioHours AS InputAudioHours,
        u.InputMchars AS InputMchars,
        p.InputMtok AS InputMtok,
        p.OutputMtok AS OutputMtok,
        p.CacheReadMtok AS CacheReadMtok,
        p.CacheWrite5mMtok AS CacheWrite5mMtok,
        p.CacheWrite1hMtok AS CacheWrite1hMtok,
        p.ReasoningMtok AS ReasoningMtok,
        p.InputAudioMtok AS InputAudioMtok,
        p.OutputAudioMtok AS OutputAudioMtok,
        p.InputImageMtok AS InputImageMtok,
        p.OutputImageMtok AS OutputImageMtok,
        -- Token parts, signed so that no subtraction can wrap around.
        toInt64(c.UncachedInputTokens) AS uncached0,
        toInt64(c.CacheReadTokens) AS read0,
        least(toInt64(c.CacheWrite1hTokens), toInt64(c.CacheWriteTokens)) AS write_1h,
        toInt64(c.CacheWriteTokens) - write_1h AS write_5m,
        least(toInt64(c.ReasoningTokens), toInt64(c.OutputTokens)) AS reasoning,
        toInt64(c.OutputTokens) - reasoning AS out0,
        -- Audio, then image, move from the text parts to their own prices where the model
        -- has them: uncached at the modality's input price; cached at its cache-read price,
        -- or at the input price when the model has no cache-read price at all.
        least(toInt64(c.CacheAudioReadTokens), read0) AS a_read_n,
        if(p.InputAudioMtok IS NULL, 0, least(greatest(toInt64(c.InputAudioTokens) - a_read_n, 0), uncached0)) AS a_unc,
        if(p.InputAudioMtok IS NULL, NULL,
           if(p.CacheAudioReadMtok IS NOT NULL, p.CacheAudioReadMtok,
              if(p.CacheReadPriced = 0, p.InputAudioMtok, NULL))) AS a_read_rate,
        if(a_read_rate IS NULL, 0, a_read_n) AS a_read,
        uncached0 - a_unc AS uncached1,
        read0 - a_read AS read1,
        least(toInt64(c.CacheImageReadTokens), read1) AS i_read_n,
        if(p.InputImageMtok IS NULL, 0, least(greatest(toInt64(c.InputImageTokens) - i_read_n, 0), uncached1)) AS i_unc,
        if(p.InputImageMtok IS NULL, NULL,
           if(p.CacheImageReadMtok IS NOT NULL, p.CacheImageReadMtok,
              if(p.CacheReadPriced = 0, p.InputImageMtok, NULL))) AS i_read_rate,
        if(i_read_rate IS NULL, 0, i_read_n) AS i_read,
        uncached1 - i_unc AS uncached_text,
        read1 - i_read AS read_text,
        if(p.OutputAudioMtok IS NULL, 0, least(toInt64(c.OutputAudioTokens), out0)) AS a_out,
        if(p.OutputImageMtok IS NULL, 0, least(toInt64(c.OutputImageTokens), out0 - a_out)) AS i_out,
        out0 - a_out - i_out AS out_text
    FROM otel.llm_calls AS c
    LEFT JOIN (
        SELECT *
        FROM otel.llm_price_refs
        WHERE SyncId = (SELECT max(SyncId) FROM otel.llm_price_syncs)
    ) AS m
        ON m.PriceProvider = c.PriceProvider
        AND m.RequestModel = c.RequestModel
        AND m.ResponseModel = c.ResponseModel
        AND m.CallVariant = c.PriceVariant
        AND c.Timestamp >= m.ValidFrom
        AND c.Timestamp < m.ValidUntil
    LEFT JOIN otel.v_prices_current AS p
        ON p.Provider = if({target_provider:String} = '', m.Provider, {target_provider:String})
        AND p.Model = if({target_model:String} = '', m.Model, {target_model:String})
        AND p.Variant = if({target_model:String} = '', m.Variant, '')
        AND c.Timestamp >= p.EffectiveFrom
        AND c.Timestamp < p.EffectiveUntil
        AND c.InputTokens >= p.InputTokensFrom
        AND c.InputTokens < p.InputTokensUntil
    LEFT JOIN otel.v_unit_prices_current AS u
        ON u.Provider = if({target_provider:String} = '', m.Provider, {target_provider:String})
        AND u.Model = if({target_model:String} = '', m.Model, {target_model:String})
        AND u.Variant = if({target_model:String} = '', m.Variant, '')
        AND c.Timestamp >= u.EffectiveFrom
        AND c.Timestamp < u.EffectiveUntil
);

CREATE VIEW IF NOT EXISTS otel.v_cost_repriced_daily  ON CLUSTER prod AS
SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Provider,
    RequestModel,
    Endpoint,
    Team,
    count() AS Calls,
    sum(RecordedCost) AS RecordedCostUsd,
    sumIf(CatalogueCost, CataloguePriced) AS CatalogueCostUsd,
    countIf(RecordedUnpriced AND CataloguePriced) AS NewlyPricedCalls,
    sumIf(CatalogueCost, RecordedUnpriced AND CataloguePriced) AS NewlyPricedCostUsd,
    -- Recorded unpriced and still without a price: before any `prices sync` there is no
    -- catalogue, and a call priced when recorded is not "unpriced" for want of one.
    countIf(RecordedUnpriced AND NOT CataloguePriced) AS StillUnpricedCalls,
    -- A cent-fraction tolerance: float noise must not count as a price change.
    countIf(NOT RecordedUnpriced AND CataloguePriced
            AND abs(CatalogueCost - RecordedCost) > 1e-9 + 1e-9 * RecordedCost) AS RepricedCalls,
    sumIf(CatalogueCost - RecordedCost, NOT RecordedUnpriced AND CataloguePriced) AS RepricingDeltaUsd,
    groupUniqArray(RecordedVersion) AS RecordedVersions,
    any(CatalogueVersion) AS CatalogueVersion
FROM otel.v_calls_repriced(target_provider = '', target_model = '')
GROUP BY Day, ServiceName, Provider, RequestModel, Endpoint, Team;

CREATE VIEW IF NOT EXISTS otel.v_user_calls  ON CLUSTER prod AS
SELECT
    Timestamp,
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
    User,
    toUInt64(1) AS Calls,
    InputTokens,
    OutputTokens,
    CostTotal
FROM otel.llm_calls
WHERE User != '';

