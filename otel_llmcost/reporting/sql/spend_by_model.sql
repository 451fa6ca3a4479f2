-- title: Spend by model
-- Cost and tokens per provider and requested model.
SELECT
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(Unpriced) AS UnpricedCalls,
    round(sum(CostTotal), 6) AS CostUsd,
    round(sum(CostSavings), 6) AS CacheSavingsUsd
FROM {db}.v_cost_hourly
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    Provider,
    RequestModel
ORDER BY CostUsd DESC
LIMIT {limit:UInt32}
