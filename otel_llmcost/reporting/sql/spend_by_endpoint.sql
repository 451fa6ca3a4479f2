-- title: Spend by endpoint
-- Total cost, calls and latency per service and endpoint. Calls traced by another
-- instrumentation (and not by us) carry no endpoint: they are the '' row of their service
-- (v_spend_hourly); latency is our calls' (v_cost_by_endpoint_hourly).
SELECT
    s.ServiceName AS ServiceName,
    s.Endpoint AS Endpoint,
    s.Calls AS Calls,
    s.Errors AS Errors,
    s.InputTokens AS InputTokens,
    s.OutputTokens AS OutputTokens,
    s.UnpricedCalls AS UnpricedCalls,
    if(s.UnpricedCalls = s.Calls, NULL, round(s.Cost, 6)) AS CostUsd,
    round(s.Cost / nullIf(s.Calls - s.UnpricedCalls, 0), 6) AS CostPerCallUsd,
    l.WorstHourP99Ms AS WorstHourP99Ms
FROM (
    SELECT
        ServiceName,
        Endpoint,
        sum(Calls) AS Calls,
        sum(Errors) AS Errors,
        sum(InputTokens) AS InputTokens,
        sum(OutputTokens) AS OutputTokens,
        sum(UnpricedCalls) AS UnpricedCalls,
        sum(CostUsd) AS Cost
    FROM {db}.v_spend_hourly(since_hours = {since_hours:UInt32})
    GROUP BY
        ServiceName,
        Endpoint
) AS s
LEFT JOIN (
    SELECT
        toString(ServiceName) AS ServiceName,
        toString(Endpoint) AS Endpoint,
        round(max(DurationMsP99), 1) AS WorstHourP99Ms
    FROM {db}.v_cost_by_endpoint_hourly
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    GROUP BY
        ServiceName,
        Endpoint
) AS l
    ON l.ServiceName = s.ServiceName AND l.Endpoint = s.Endpoint
ORDER BY s.Cost DESC
LIMIT {limit:UInt32}
