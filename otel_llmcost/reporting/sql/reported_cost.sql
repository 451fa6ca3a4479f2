-- title: Provider-reported cost against ours
-- Where a gateway returned the billed cost: calls that disagree with our price by more than
-- 2%, and reported spend on models we cannot price.
SELECT
    Provider,
    RequestModel,
    ReportedSource,
    sum(Calls) AS Calls,
    sum(ReportedCostUsd) AS ReportedCostUsd,
    sum(ComputedCostUsd) AS ComputedCostUsd,
    sum(DisagreeingCalls) AS DisagreeingCalls,
    sum(UnpricedCalls) AS UnpricedCalls,
    sum(TotalDifferenceUsd) AS DifferenceUsd,
    max(MaxAbsDifferenceUsd) AS MaxAbsDifferenceUsd
FROM {db}.v_cost_reported_disagreements
WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY Provider, RequestModel, ReportedSource
ORDER BY DisagreeingCalls + UnpricedCalls DESC, abs(DifferenceUsd) DESC
LIMIT {limit:UInt32}
