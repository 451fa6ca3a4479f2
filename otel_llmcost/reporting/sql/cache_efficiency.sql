-- title: Prompt cache efficiency
-- Share of input tokens read from cache (HitRate) and of requests that read from it (RequestHitRate), savings, and the write premium paid (unknown for models without a price).
SELECT
    t.ServiceName AS ServiceName,
    t.Endpoint AS Endpoint,
    t.RequestModel AS RequestModel,
    t.InputTokens AS InputTokens,
    t.CacheReadTokens AS CacheReadTokens,
    t.CacheWriteTokens AS CacheWriteTokens,
    round(t.CacheReadTokens / nullIf(t.InputTokens, 0), 4) AS HitRate,
    round(r.HitCalls / nullIf(r.InputCalls, 0), 4) AS RequestHitRate,
    -- A model without a price saved and paid an unknown amount, never $0.
    if(t.UnpricedCalls = t.Calls, NULL, round(t.Savings, 6)) AS SavingsUsd,
    if(t.UnpricedCalls = t.Calls, NULL, round(t.WritePremium, 6)) AS WritePremiumUsd
FROM (
    SELECT
        ServiceName,
        Endpoint,
        RequestModel,
        sum(InputTokens) AS InputTokens,
        sum(CacheReadTokens) AS CacheReadTokens,
        sum(CacheWriteTokens) AS CacheWriteTokens,
        sum(Calls) AS Calls,
        sum(UnpricedCalls) AS UnpricedCalls,
        sum(CostSavings) AS Savings,
        sum(CostCacheWritePremium) AS WritePremium
    FROM {db}.v_cache_efficiency
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    GROUP BY
        ServiceName,
        Endpoint,
        RequestModel
) AS t
LEFT JOIN (
    SELECT
        ServiceName,
        Endpoint,
        RequestModel,
        sum(CallsWithInput) AS InputCalls,
        sum(CallsWithCacheRead) AS HitCalls
    FROM {db}.v_cache_hit_share_hourly
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    GROUP BY
        ServiceName,
        Endpoint,
        RequestModel
) AS r ON r.ServiceName = t.ServiceName AND r.Endpoint = t.Endpoint AND r.RequestModel = t.RequestModel
ORDER BY InputTokens DESC
LIMIT {limit:UInt32}
