-- The price catalogue and what it says about recorded calls (otel_llmcost.pricing.catalogue).
--
-- `otel-llmcost prices sync` writes a full copy of the catalogue per sync; every view
-- reads the newest sync listed in llm_price_syncs, which is written last, so a sync
-- cut short is never half-read. Prices are USD per million tokens, Float64 like the
-- costs in llm_calls (see 002 for why not Decimal).

CREATE TABLE IF NOT EXISTS {database}.llm_prices {cluster} (
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
) ENGINE = {merge_tree}
ORDER BY (SyncId, Provider, Model, Variant, EffectiveFrom, InputTokensFrom);

-- Which catalogue rows price each distinct (PriceProvider, RequestModel, ResponseModel,
-- PriceVariant) recorded in llm_calls, and when: model-id matching is genai-prices'
-- logic (prefixes, regexes) and the override file's, which SQL cannot run, so `sync`
-- resolves each recorded combination with the same pricer that prices live calls.
CREATE TABLE IF NOT EXISTS {database}.llm_price_refs {cluster} (
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
) ENGINE = {merge_tree}
ORDER BY (SyncId, PriceProvider, RequestModel, ResponseModel, CallVariant, ValidFrom);

CREATE TABLE IF NOT EXISTS {database}.llm_price_syncs {cluster} (
    SyncId DateTime64(6),
    DatabaseVersion LowCardinality(String),
    OverrideFile String,
    OverrideVersion String,
    Prices UInt64,
    Refs UInt64
) ENGINE = {merge_tree}
ORDER BY SyncId;

-- The newest complete catalogue, for browsing (`otel-llmcost query`) and dashboards.
CREATE VIEW IF NOT EXISTS {database}.v_prices_current {cluster} AS
SELECT *
FROM {database}.llm_prices
WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs);

-- Every call, priced by the newest catalogue at the call's own date.
--   target_provider = '', target_model = '': by the catalogue row that prices the model
--     the call used (repricing: unpriced calls priced since, corrected prices);
--   otherwise: as if the call had gone to that catalogue model's standard price (a
--     what-if by model swap, with the call's own token counts: a model with another
--     tokenizer or cache behaviour would have counted differently, so it is an estimate).
-- The formula is otel_llmcost.pricing.formula's, in SQL; the tests check both against one
-- table of hand-computed cases, and this view against the pricer on every token shape.
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
        + a_out * ifNull(OutputAudioMtok, 0) + i_out * ifNull(OutputImageMtok, 0)) / 1e6,
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
        p.Provider AS CatalogueProvider,
        p.Model AS CatalogueModel,
        p.Source AS CatalogueSource,
        p.Version AS CatalogueVersion,
        p.Model != '' AS CataloguePriced,
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
    LEFT JOIN (
        SELECT *
        FROM {database}.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
    ) AS p
        ON p.Provider = if({target_provider:String} = '', m.Provider, {target_provider:String})
        AND p.Model = if({target_model:String} = '', m.Model, {target_model:String})
        AND p.Variant = if({target_model:String} = '', m.Variant, '')
        AND c.Timestamp >= p.EffectiveFrom
        AND c.Timestamp < p.EffectiveUntil
        AND c.InputTokens >= p.InputTokensFrom
        AND c.InputTokens < p.InputTokensUntil
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

-- What the host says it billed (llmcost.cost.reported) against our price, per call.
-- Tolerance, in one place: 2% of the reported amount, and never less than $0.000001
-- (rounding of the reported figure). Calls we could not price are listed, not flagged.
CREATE VIEW IF NOT EXISTS {database}.v_cost_reported_vs_computed {cluster} AS
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
FROM {database}.llm_calls
WHERE CostReported IS NOT NULL;

CREATE VIEW IF NOT EXISTS {database}.v_cost_reported_disagreements {cluster} AS
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
FROM {database}.v_cost_reported_vs_computed
GROUP BY Day, ServiceName, Provider, RequestModel, ReportedSource, Endpoint, Team;
