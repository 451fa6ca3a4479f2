-- title: Missed caching opportunities
-- Shared prompt prefixes at or above the provider's minimum cacheable size, repeated within the cache lifetime and never read from cache, with the estimated saving if cached.
SELECT
    ServiceName,
    RequestModel,
    PrefixHash,
    arrayStringConcat(Endpoints, ', ') AS Endpoints,
    Calls,
    PrefixTokens,
    MinCacheTokens,
    ExpectedReads,
    round(EstSavings, 6) AS EstSavingsUsd,
    round(EstSavingsPerMonth, 6) AS EstSavingsPerMonthUsd,
    PriceBasis,
    LastSeen
FROM {db}.v_missed_caching(since_hours = {since_hours:UInt32})
WHERE LastSeen >= now() - toIntervalHour({since_hours:UInt32})
ORDER BY EstSavingsPerMonthUsd DESC NULLS LAST
LIMIT {limit:UInt32}
