-- title: Unpriced calls
-- Models with no known price: their cost is unknown, not zero. Ours (v_unpriced_calls) and
-- other instrumentations' calls we did not trace (v_foreign_spend_hourly).
SELECT
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    max(LastSeen) AS LastSeen
FROM (
    SELECT
        toString(ServiceName) AS ServiceName,
        toString(Provider) AS Provider,
        toString(RequestModel) AS RequestModel,
        toString(ResponseModel) AS ResponseModel,
        toUInt64(Calls) AS Calls,
        toUInt64(InputTokens) AS InputTokens,
        toUInt64(OutputTokens) AS OutputTokens,
        toDateTime(LastSeen) AS LastSeen
    FROM {db}.v_unpriced_calls
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    UNION ALL
    SELECT
        ServiceName,
        Provider,
        RequestModel,
        ResponseModel,
        UnpricedCalls AS Calls,
        InputTokens,
        OutputTokens,
        -- the hour's end, at most now: the rollup keeps no call times
        least(Hour + INTERVAL 1 HOUR, now()) AS LastSeen
    FROM {db}.v_foreign_spend_hourly(since_hours = {since_hours:UInt32})
    WHERE UnpricedCalls > 0
)
GROUP BY
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel
ORDER BY Calls DESC
LIMIT {limit:UInt32}
