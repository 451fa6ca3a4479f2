-- title: Spend by model
-- Cost and tokens per provider and requested model: ours and other instrumentations' calls,
-- each once (v_spend_hourly). CostUsd is empty when no call of the model has a price.
SELECT
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(UnpricedCalls) AS UnpricedCalls,
    if(UnpricedCalls = Calls, NULL, round(sum(CostUsd), 6)) AS CostUsd,
    round(sum(CostSavings), 6) AS CacheSavingsUsd,
    arrayStringConcat(arraySort(groupUniqArray(Source)), ', ') AS Sources
FROM {db}.v_spend_hourly(since_hours = {since_hours:UInt32})
GROUP BY
    Provider,
    RequestModel
ORDER BY ifNull(CostUsd, 0) DESC, Calls DESC
LIMIT {limit:UInt32}
