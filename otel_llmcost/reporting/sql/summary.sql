-- title: Summary
-- The window asked for and what it holds: spend, calls, cache savings and unpriced calls
-- (v_spend_hourly: ours and other instrumentations' calls, each once; the sum of the
-- spend_by_endpoint report), open anomalies (v_anomalies), the three endpoints that cost most
-- and the three largest savings opportunities (v_opportunities).
SELECT
    toStartOfHour(now() - toIntervalHour({since_hours:UInt32})) AS WindowStart,
    now() AS WindowEnd,
    e.FirstHour AS FirstHour,
    e.LastHour AS LastHour,
    e.Calls AS Calls,
    e.CostUsd AS CostUsd,
    e.CacheSavingsUsd AS CacheSavingsUsd,
    e.UnpricedCalls AS UnpricedCalls,
    (SELECT count() FROM {db}.v_anomalies WHERE Open = 1) AS OpenAnomalies,
    e.TopEndpoints AS TopEndpoints,
    (
        SELECT groupArray((Kind, Key, MonthlySavingUsd))
        FROM (
            SELECT Kind, Key, MonthlySavingUsd
            FROM {db}.v_opportunities(since_hours = {since_hours:UInt32})
            ORDER BY MonthlySavingUsd DESC
            LIMIT 3
        )
    ) AS TopOpportunities
FROM (
    SELECT
        sum(EndpointCalls) AS Calls,
        sum(EndpointCost) AS CostUsd,
        sum(EndpointSavings) AS CacheSavingsUsd,
        sum(EndpointUnpriced) AS UnpricedCalls,
        min(EndpointFirstHour) AS FirstHour,
        max(EndpointLastHour) AS LastHour,
        arraySlice(arrayReverseSort(x -> x.3, groupArray((ServiceName, Endpoint, EndpointCost))), 1, 3) AS TopEndpoints
    FROM (
        SELECT
            ServiceName,
            Endpoint,
            sum(Calls) AS EndpointCalls,
            sum(CostUsd) AS EndpointCost,
            sum(CostSavings) AS EndpointSavings,
            sum(UnpricedCalls) AS EndpointUnpriced,
            min(Hour) AS EndpointFirstHour,
            max(Hour) AS EndpointLastHour
        FROM {db}.v_spend_hourly(since_hours = {since_hours:UInt32})
        GROUP BY
            ServiceName,
            Endpoint
    )
) AS e
LIMIT {limit:UInt32}
