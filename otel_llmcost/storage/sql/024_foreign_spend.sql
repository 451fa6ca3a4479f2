-- Foreign calls (015) in the spend people read: the overview's totals and spend by endpoint,
-- model, feature and team (dashboards/llm-cost-overview.json) and the summary, spend and
-- unpriced reports (reporting/sql) read v_spend_hourly below, which is our rollup plus the
-- foreign calls we did not trace ourselves, each call once.
--
-- Why a rollup of foreign calls, priced at read time, and a read-time anti-join for the
-- duplicates only:
--   * A foreign call has no price when it is inserted (prices come from `prices sync`, which
--     may run later and re-resolve models), so its cost cannot be summed at insert time like
--     llm_calls' CostTotal. What can be summed is its tokens: cost is linear in them for a
--     given catalogue row, so the sums per (model, hour, price tier) priced at read time give
--     exactly the per-call total. llm_foreign_cost_hourly keeps those sums.
--   * The catalogue row also depends on the call's input tokens (tiers: Gemini and Claude
--     above 200k, GPT above 272k, ...). InputBand is the highest tier start at or below the
--     call's InputTokens, from the fixed list below (every InputTokensFrom genai-prices has;
--     tests/storage/test_foreign_spend.py fails when a new genai-prices adds one). A band
--     never straddles a tier, so it picks the call's own row. Price windows start at whole
--     hours (dated prices start at 00:00 UTC), so the hour picks the call's own dates too.
--   * A duplicate (a foreign span of a call we traced too, v_foreign_calls.Duplicate) can
--     only be told at read time. The rollup counts it; v_foreign_spend_hourly subtracts the
--     duplicates of the window, found among the window's raw foreign calls joined to our
--     calls of the same traces (llm_calls' TraceId bloom filter), never beyond the window.
--   * Budgets stay ours only: they are enforced in the app on the calls it sees.

-- InputBand: the highest tier start <= InputTokens, from this list (the same in all three places
-- below: the materialized view, the back-fill and v_foreign_spend_hourly; a test checks it):
--   [0, 32001, 100001, 128001, 200000, 200001, 256001, 272001, 512001, 524289]

CREATE TABLE IF NOT EXISTS {database}.llm_foreign_cost_hourly {cluster} (
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
) ENGINE = {aggregating_merge_tree}
PARTITION BY toYYYYMM(Hour)
ORDER BY (Hour, ServiceName, Source, Provider, PriceProvider, RequestModel, ResponseModel, InputBand)
TTL Hour + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_foreign_cost_hourly_mv {cluster}
TO {database}.llm_foreign_cost_hourly
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
FROM {database}.llm_foreign_calls AS f
GROUP BY
    Hour,
    ServiceName,
    Source,
    Provider,
    PriceProvider,
    RequestModel,
    ResponseModel,
    InputBand;

-- A database that already holds foreign calls (015 came first) gets them rolled up once: this
-- runs only while the rollup is empty, so a new database and a second application add nothing.
INSERT INTO {database}.llm_foreign_cost_hourly
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
FROM {database}.llm_foreign_calls AS f
WHERE (SELECT count() FROM {database}.llm_foreign_cost_hourly) = 0
GROUP BY
    Hour,
    ServiceName,
    Source,
    Provider,
    PriceProvider,
    RequestModel,
    ResponseModel,
    InputBand;

-- Foreign calls of the last since_hours (from the start of that hour), duplicates left out,
-- per hour, source, model and price tier, priced by the newest catalogue like
-- v_foreign_calls: CostUsd NULL and UnpricedCalls = Calls where the model has no catalogue
-- row (never $0). The duplicates are v_foreign_duplicates' of the window.
CREATE VIEW IF NOT EXISTS {database}.v_foreign_spend_hourly {cluster} AS
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
        FROM {database}.llm_foreign_cost_hourly
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
        FROM {database}.llm_foreign_calls AS x
        WHERE x.Timestamp >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
          AND x.SpanId IN (
            SELECT SpanId FROM {database}.v_foreign_duplicates(since_hours = {since_hours:UInt32})
          )
        GROUP BY Hour, ServiceName, Source, Provider, PriceProvider, RequestModel, ResponseModel, InputBand
    )
    GROUP BY Hour, ServiceName, Source, Provider, PriceProvider, RequestModel, ResponseModel, InputBand
    HAVING Calls > 0
) AS k
LEFT JOIN (
    SELECT *
    FROM {database}.llm_price_refs
    WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
) AS m
    ON m.PriceProvider = k.PriceProvider
    AND m.RequestModel = k.RequestModel
    AND m.ResponseModel = k.ResponseModel
    AND m.CallVariant = ''
    AND k.Hour >= m.ValidFrom
    AND k.Hour < m.ValidUntil
LEFT JOIN (
    SELECT *
    FROM {database}.llm_prices
    WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
) AS p
    ON p.Provider = m.Provider
    AND p.Model = m.Model
    AND p.Variant = m.Variant
    AND k.Hour >= p.EffectiveFrom
    AND k.Hour < p.EffectiveUntil
    AND k.InputBand >= p.InputTokensFrom
    AND k.InputBand < p.InputTokensUntil;

-- Spend of the last since_hours (from the start of that hour), every call once: ours from the
-- rollup (Source 'otel-llmcost', with endpoint, feature and team) and the foreign calls of
-- v_foreign_spend_hourly (their Source; Endpoint, Feature and Team '' as no attribution
-- reaches another instrumentation's spans). CostUsd is the priced spend; UnpricedCalls the
-- calls it leaves out (cost unknown, not zero).
CREATE VIEW IF NOT EXISTS {database}.v_spend_hourly {cluster} AS
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
FROM {database}.llm_cost_hourly
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
FROM {database}.v_foreign_spend_hourly(since_hours = {since_hours:UInt32})
GROUP BY Hour, ServiceName, Source, Provider, RequestModel;
