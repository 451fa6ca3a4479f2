-- One typed row per GenAI client span, extracted once at insert time so that
-- dashboards, views and the CLI never parse the attribute maps of otel_traces.
--
-- Every extraction below is total (the *OrZero / *OrNull family, ifNotFinite):
-- a malformed attribute must give a zero or NULL, never an exception, because
-- an exception in a materialized view fails the insert into otel_traces itself.
--
-- Money is Float64, not Decimal: the source is already a binary double (a span
-- attribute), so Decimal adds no exactness, while Float64 keeps sum/avg/quantile
-- native and the summation error (~1e-16 relative) is far below a cent.
-- Rate-limit numbers are Nullable(Int64), not a -1 sentinel: most calls carry no
-- headers, and min()/max() skip NULLs, so "lowest remaining" stays correct.
--
-- Codecs (issue 22, item 3; benchmarks/storage_bytes.py, compressed bytes per row at 1M
-- calls after OPTIMIZE FINAL: 93.0 -> 85.9 in all; 025_compact_calls.sql gives older tables
-- the same). Every column keeps its type: every view, rollup and reader sees the same values.
-- - Timestamp: Delta(8), T64('bit'), ZSTD(1). The key sorts by hour, so deltas jump back
--   an hour between groups; T64 packs the bits that vary (5.9 -> 4.6 B).
-- - integers and flags: T64, ZSTD(1) (the rate-limit columns 8.2 -> 4.4 B: LZ4 before);
--   LowCardinality columns: ZSTD(1) on the dictionary keys (a model 0.64 -> 0.34 B).
-- - ids and hashes stay hex String, ZSTD(1): random hex is 4 bits a digit, which ZSTD
--   reaches (TraceId 15.9 B for 16 bytes of entropy); FixedString(16) of unhex() saves 0.4 B
--   and would break the joins with otel_traces. ZSTD(3) is larger here.
-- - money and DurationMs stay Float64, ZSTD(1). Measured: Decimal64(9) with T64 (exact sums
--   to the nano-dollar) stores the five cost columns in 9.8 B instead of 16.4, and
--   nanoseconds in an integer DurationMs in 3.9 B instead of 7.3; but a type change reaches
--   every view, rollup state (sum and quantiles of Float64) and Python reader (Decimal).
--   Gorilla and FPC do worse (CostTotal 6.9 and 7.2 B against 5.5: prices are inexact
--   binary fractions, so every mantissa bit of a cost varies). ALP, lossless (bit for bit,
--   checked), gives what Decimal gives with no type change: the costs 9.8 B, DurationMs
--   4.1 B; it is beta in ClickHouse 26.9 (enable_alp_codec) and older servers reject it,
--   so it waits until it is generally available: then one MODIFY COLUMN per column.

CREATE TABLE IF NOT EXISTS {database}.llm_calls {cluster} (
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
) ENGINE = {merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Endpoint, toStartOfHour(Timestamp), RequestModel, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_calls_mv {cluster}
TO {database}.llm_calls
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
FROM {database}.otel_traces
-- Only otel-llmcost's own spans: other GenAI instrumentations (and SDKs that trace
-- themselves, as anthropic 2.x does under the global tracer provider) emit a second
-- span per call with gen_ai.* attributes but no cost, which would double-count calls.
WHERE ScopeName = 'otel_llmcost'
  AND SpanAttributes['gen_ai.operation.name'] != '';
