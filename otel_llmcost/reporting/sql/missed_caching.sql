-- title: Missed caching opportunities
-- Prompt prefixes sent repeatedly (>= 1024 input tokens) that were never read from cache.
SELECT
    ServiceName,
    RequestModel,
    PrefixHash,
    arrayStringConcat(Endpoints, ', ') AS Endpoints,
    Calls,
    TotalInputTokens AS InputTokens,
    round(InputCost, 6) AS InputCostUsd,
    LastSeen
FROM {db}.v_missed_caching
WHERE LastSeen >= now() - toIntervalHour({since_hours:UInt32})
ORDER BY InputCostUsd DESC
LIMIT {limit:UInt32}
