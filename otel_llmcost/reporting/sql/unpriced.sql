-- title: Unpriced calls
-- Models with no known price: their cost is unknown, not zero.
SELECT
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    max(LastSeen) AS LastSeen
FROM {db}.v_unpriced_calls
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel
ORDER BY Calls DESC
LIMIT {limit:UInt32}
