-- Audio calls priced in units other than tokens (issue 23): whisper-1 by the hour of input
-- audio, tts-1 and tts-1-hd by the million input characters (genai-prices' input_audio_hours
-- / audio_hours and input_mchars; otel_llmcost.pricing.formula). llm_calls records the units
-- (AudioSeconds, InputCharacters: columns of 002_calls.sql, where the materialized view that
-- fills them lives), and `otel-llmcost prices sync` writes their prices here, so repricing
-- prices such a call instead of listing it as unpriced or as a price change.
--
-- The unit prices get a table of their own rather than columns of llm_prices: a model priced
-- only per hour or per character has no token price, and the views that price tokens from
-- llm_prices (routing targets, caching, other instrumentations' calls) must not take it for
-- a model whose tokens are free. Prices are USD per hour of input audio and per million
-- input characters (genai-prices' unit sizes), Float64 like llm_prices; NULL where the
-- model has no price in that unit.
CREATE TABLE IF NOT EXISTS {database}.llm_unit_prices {cluster} (
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
) ENGINE = {merge_tree}
ORDER BY (SyncId, Provider, Model, Variant, EffectiveFrom);

-- The unit prices of the newest complete catalogue, as v_prices_current is its token prices.
CREATE VIEW IF NOT EXISTS {database}.v_unit_prices_current {cluster} AS
SELECT *
FROM {database}.llm_unit_prices
WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs);

-- Every call, priced by the newest catalogue at the call's own date.
--   target_provider = '', target_model = '': by the catalogue row that prices the model
--     the call used (repricing: unpriced calls priced since, corrected prices);
--   otherwise: as if the call had gone to that catalogue model's standard price (a
--     what-if by model swap, with the call's own token counts: a model with another
--     tokenizer or cache behaviour would have counted differently, so it is an estimate).
-- The formula is otel_llmcost.pricing.formula's, in SQL; the tests check both against one
-- table of hand-computed cases, and this view against the pricer on every token shape.
-- Units other than tokens (AudioSeconds, InputCharacters; a failed call billed none) are
-- priced from llm_unit_prices, as input. A call is CataloguePriced only when every unit it
-- counts has a price: tokens need a token price (an llm_prices row), seconds and characters
-- theirs, so a speech call on a model priced by tokens alone stays unpriced, never $0. A
-- call recorded unpriced that counted nothing (the response reported no usage) has
-- nothing a catalogue could price: it stays unpriced too.
CREATE VIEW IF NOT EXISTS {database}.v_calls_repriced {cluster} AS
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
    FROM {database}.llm_calls AS c
    LEFT JOIN (
        SELECT *
        FROM {database}.llm_price_refs
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
    ) AS m
        ON m.PriceProvider = c.PriceProvider
        AND m.RequestModel = c.RequestModel
        AND m.ResponseModel = c.ResponseModel
        AND m.CallVariant = c.PriceVariant
        AND c.Timestamp >= m.ValidFrom
        AND c.Timestamp < m.ValidUntil
    LEFT JOIN {database}.v_prices_current AS p
        ON p.Provider = if({target_provider:String} = '', m.Provider, {target_provider:String})
        AND p.Model = if({target_model:String} = '', m.Model, {target_model:String})
        AND p.Variant = if({target_model:String} = '', m.Variant, '')
        AND c.Timestamp >= p.EffectiveFrom
        AND c.Timestamp < p.EffectiveUntil
        AND c.InputTokens >= p.InputTokensFrom
        AND c.InputTokens < p.InputTokensUntil
    LEFT JOIN {database}.v_unit_prices_current AS u
        ON u.Provider = if({target_provider:String} = '', m.Provider, {target_provider:String})
        AND u.Model = if({target_model:String} = '', m.Model, {target_model:String})
        AND u.Variant = if({target_model:String} = '', m.Variant, '')
        AND c.Timestamp >= u.EffectiveFrom
        AND c.Timestamp < u.EffectiveUntil
);

-- Recorded cost against the newest catalogue, per day and model: spend recorded unpriced
-- that has a price now, calls whose price changed since they were recorded, and the
-- difference (what a repricing would add to or take off the recorded totals).
CREATE VIEW IF NOT EXISTS {database}.v_cost_repriced_daily {cluster} AS
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
FROM {database}.v_calls_repriced(target_provider = '', target_model = '')
GROUP BY Day, ServiceName, Provider, RequestModel, Endpoint, Team;
