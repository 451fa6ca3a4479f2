-- title: Prompt cache efficiency
-- Share of input tokens read from cache, savings, and the write premium paid.
SELECT
    ServiceName,
    Endpoint,
    RequestModel,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    round(CacheReadTokens / nullIf(InputTokens, 0), 4) AS HitRate,
    round(sum(CostSavings), 6) AS SavingsUsd,
    round(sum(CostCacheWritePremium), 6) AS WritePremiumUsd
FROM {db}.v_cache_efficiency
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Endpoint,
    RequestModel
ORDER BY InputTokens DESC
LIMIT {limit:UInt32}
