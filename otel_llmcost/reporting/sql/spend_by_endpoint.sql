-- title: Spend by endpoint
-- Total cost, calls and latency per service and endpoint.
SELECT
    ServiceName,
    Endpoint,
    sum(Calls) AS Calls,
    sum(Errors) AS Errors,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    round(sum(CostTotal), 6) AS CostUsd,
    round(sum(CostTotal) / nullIf(Calls, 0), 6) AS CostPerCallUsd,
    round(max(DurationMsP99), 1) AS WorstHourP99Ms
FROM {db}.v_cost_by_endpoint_hourly
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Endpoint
ORDER BY CostUsd DESC
LIMIT {limit:UInt32}
