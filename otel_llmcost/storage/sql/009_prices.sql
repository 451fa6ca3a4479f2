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

-- v_calls_repriced and v_cost_repriced_daily (every call priced by the newest catalogue,
-- and recorded against catalogue cost per day) are in 026_audio_units.sql: they also read
-- llm_unit_prices, the prices in units other than tokens, which that file creates.

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
