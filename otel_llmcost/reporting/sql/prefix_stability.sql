-- title: Prefix stability: does prompt caching pay?
-- Share of calls on the most common prompt prefix, distinct prefixes per hour, the prefix's
-- tokens against the provider's minimum cacheable size, and why caching does or does not pay.
SELECT
    t.ServiceName AS ServiceName,
    t.Endpoint AS Endpoint,
    t.Provider AS Provider,
    t.RequestModel AS RequestModel,
    t.Calls AS Calls,
    round(t.TopPrefixShare, 4) AS TopPrefixShare,
    round(h.PrefixesPerHour, 1) AS PrefixesPerHour,
    t.TopPrefixTokens AS PrefixTokens,
    h.MinCacheTokens AS MinCacheTokens,
    round(t.HitRate, 4) AS HitRate,
    round(t.SavingsPerDay, 6) AS SavingsPerDayUsd
FROM (
    SELECT
        ServiceName,
        Endpoint,
        Provider,
        RequestModel,
        sum(PrefixCalls) AS Calls,
        maxIf(PrefixCalls, PrefixHash != '') / Calls AS TopPrefixShare,
        argMaxIf(Tokens, PrefixCalls, PrefixHash != '') AS TopPrefixTokens,
        sum(CacheRead) / nullIf(sum(Input), 0) AS HitRate,
        sum(Savings) / greatest(1, (dateDiff('hour', min(FirstHour), max(LastHour)) + 1) / 24) AS SavingsPerDay
    FROM (
        SELECT
            ServiceName,
            Endpoint,
            Provider,
            RequestModel,
            PrefixHash,
            sum(Calls) AS PrefixCalls,
            max(PrefixTokens) AS Tokens,
            sum(InputTokens) AS Input,
            sum(CacheReadTokens) AS CacheRead,
            sum(CostSavings) AS Savings,
            min(Hour) AS FirstHour,
            max(Hour) AS LastHour
        FROM {db}.v_prefix_calls_hourly
        WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
        GROUP BY
            ServiceName,
            Endpoint,
            Provider,
            RequestModel,
            PrefixHash
    )
    GROUP BY
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
) AS t
LEFT JOIN (
    SELECT
        ServiceName,
        Endpoint,
        Provider,
        RequestModel,
        avgIf(DistinctPrefixes, DistinctPrefixes > 0) AS PrefixesPerHour,
        any(MinCacheTokens) AS MinCacheTokens
    FROM {db}.v_prefix_stability_hourly
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    GROUP BY
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
) AS h ON h.ServiceName = t.ServiceName AND h.Endpoint = t.Endpoint
    AND h.Provider = t.Provider AND h.RequestModel = t.RequestModel
ORDER BY Calls DESC
LIMIT {limit:UInt32}
