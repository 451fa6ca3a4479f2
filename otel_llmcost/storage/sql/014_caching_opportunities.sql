-- Caching views that tell the truth (issue 20): missed caching judged on the shared
-- prefix against the provider's minimum (v_cache_min_tokens of 006, the one place for
-- the minimums) with the saving caching would bring, cache writes judged against the
-- breakeven the instrumentation recorded (llmcost.cache.breakeven_reads), and the hit
-- rate as a share of requests beside the share of tokens. Views follow the rules of 004.
--
-- v_missed_caching and v_cache_never_paid_back take the window in hours and read only
-- its calls, as the views of 016 do (`v_missed_caching(since_hours = 168)`): their cost
-- follows the window asked for, never the retention. A prefix or write is judged on the
-- calls of the window; rates from recorded calls too, with the catalogue as the fallback.
--
-- The cache lifetime these views assume: 5 minutes (Anthropic's default TTL, OpenAI's
-- shortest retention), 1 hour for a write with a 1-hour TTL (llmcost.cache.write_ttl
-- '1h' or 'mixed').

-- Prompt prefixes (system, tools, every message but the last: llmcost.prompt.prefix_hash)
-- sent at least twice, never read from cache, whose own tokens (prompt anatomy,
-- llm_prefix_tokens) reach the provider's minimum cacheable size, with what caching
-- them would have saved. A prefix whose length or provider minimum is unknown is not
-- listed: nothing says it could be cached.
--
-- ExpectedReads: calls that came within 5 minutes of the previous call of the same
-- prefix (they would have read the cache); ExpectedWrites: the others (they would have
-- written it). EstSavings = ExpectedReads * PrefixTokens * (input - cache-read price)
-- - ExpectedWrites * PrefixTokens * write premium, over the calls seen; per month it is
-- scaled to 30 days from the span seen (at least one day, as the prefix_stability report).
-- Prices per token, in this order: what the recorded calls paid (input: the prefix's own
-- calls, CostInput / UncachedInputTokens; cache read and write premium: the model's calls
-- that read or wrote), else the newest price catalogue (`otel-llmcost prices sync`). No
-- cache-read price anywhere: EstSavings is NULL (unknown), and the prefix is still listed.
-- Only prefixes with a repeat within 5 minutes and a saving that is not negative are listed.
CREATE VIEW IF NOT EXISTS {database}.v_missed_caching {cluster} AS
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
         FROM (SELECT * FROM {database}.v_cache_min_rules ORDER BY Rank))), 3), 0) AS MinCacheTokens,
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
    FROM {database}.llm_calls
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
    FROM {database}.llm_prefix_tokens
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
    FROM {database}.llm_calls
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
        FROM {database}.llm_calls
        WHERE PrefixHash != ''
          AND Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    ) AS c
    INNER JOIN (
        SELECT *
        FROM {database}.llm_price_refs
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
            AND ValidFrom <= now()
            AND now() < ValidUntil
    ) AS f
        ON f.PriceProvider = c.PriceProvider
        AND f.RequestModel = c.RequestModel
        AND f.ResponseModel = c.ResponseModel
        AND f.CallVariant = c.PriceVariant
    INNER JOIN (
        SELECT *
        FROM {database}.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
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

-- Cache writes that did not pay back: the write premium is recovered only after
-- llmcost.cache.breakeven_reads reads (0.28 for Anthropic's 5-minute writes, 1.11 for
-- 1-hour ones: a 1-hour write read once still loses money). One row per prefix (and
-- for writes with no prefix, a single-message prompt with cache_control, per endpoint)
-- summing its writes whose reads within their lifetime stayed below the breakeven.
--
-- A write's reads: the later calls of the same prefix (service, provider and model; for
-- prefix-less writes, prefix-less calls of the same endpoint) that read from cache,
-- before the next write and with no gap longer than the write's TTL (a read refreshes
-- it). Prefix-less reads are matched by endpoint only, so a loss there is, if anything,
-- under-reported. A write is judged once its cache has expired (the last read or write
-- plus the TTL is past). A write recorded without a breakeven (unpriced, or from an older
-- release) is listed when it was never read. NetLoss = premium - reads * premium /
-- breakeven: the premium not yet paid back by the reads.
CREATE VIEW IF NOT EXISTS {database}.v_cache_never_paid_back {cluster} AS
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
                FROM {database}.llm_calls AS c
                WHERE (CacheWriteTokens > 0 OR CacheReadTokens > 0)
                  AND c.Timestamp >= now() - toIntervalHour({since_hours:UInt32})
                  -- Only prefixes written in the window: the reads of the others come
                  -- before any write (WriteSeq 0) and are dropped below anyway.
                  AND (ServiceName, Provider, RequestModel, PrefixHash, if(PrefixHash = '', c.Endpoint, '')) IN (
                      SELECT ServiceName, Provider, RequestModel, PrefixHash, if(PrefixHash = '', Endpoint, '')
                      FROM {database}.llm_calls
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

-- The hit rate two ways, per hour, endpoint and model: TokenHitRate (cache-read tokens /
-- input tokens, as v_cache_efficiency's HitRate) and RequestHitRate (calls that read
-- anything from cache / calls with input). They differ: a long answer on a short cached
-- prefix counts fully in the request share and little in the token share. Calls with no
-- input tokens (failed, throttled) are no miss and left out of both shares. Read from the
-- hourly rollup (003), whose key holds this grouping.
CREATE VIEW IF NOT EXISTS {database}.v_cache_hit_share_hourly {cluster} AS
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
FROM {database}.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel;
