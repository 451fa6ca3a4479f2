-- title: What the calls would have cost on {target_provider}/{target_model}
-- Each call's own token counts at the target's price in force on the call's date: an estimate
-- (another model tokenizes and caches differently). Needs `otel-llmcost prices sync`.
SELECT
    Provider,
    RequestModel,
    count() AS Calls,
    sum(RecordedCost) AS RecordedCostUsd,
    sumIf(CatalogueCost, CataloguePriced) AS WhatIfCostUsd,
    WhatIfCostUsd - RecordedCostUsd AS DifferenceUsd,
    countIf(NOT CataloguePriced) AS CallsWithoutTargetPrice,
    countIf(RecordedUnpriced) AS CallsRecordedUnpriced
FROM {db}.v_calls_repriced(target_provider = {target_provider:String}, target_model = {target_model:String})
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY Provider, RequestModel
ORDER BY RecordedCostUsd DESC
LIMIT {limit:UInt32}
