-- title: Recorded cost against the current price catalogue
-- Per model: spend recorded unpriced that has a price now, and calls whose price changed since
-- they were recorded (empty until `otel-llmcost prices sync`).
SELECT
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    -- Unknown, never $0: recorded when every call was recorded unpriced, catalogue when
    -- the catalogue still prices none of them.
    if(NewlyPricedCalls + StillUnpricedCalls = Calls, NULL, sum(RecordedCostUsd)) AS RecordedCostUsd,
    if(StillUnpricedCalls = Calls, NULL, sum(CatalogueCostUsd)) AS CatalogueCostUsd,
    sum(NewlyPricedCalls) AS NewlyPricedCalls,
    sum(NewlyPricedCostUsd) AS NewlyPricedCostUsd,
    sum(StillUnpricedCalls) AS StillUnpricedCalls,
    sum(RepricedCalls) AS RepricedCalls,
    sum(RepricingDeltaUsd) AS RepricingDeltaUsd
FROM {db}.v_cost_repriced_daily
WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
  AND (SELECT count() FROM {db}.llm_price_syncs) > 0
GROUP BY Provider, RequestModel
HAVING NewlyPricedCalls + StillUnpricedCalls + RepricedCalls > 0
ORDER BY abs(RepricingDeltaUsd) + NewlyPricedCostUsd DESC
LIMIT {limit:UInt32}
