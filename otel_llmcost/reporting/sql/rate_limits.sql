-- title: Rate-limit pressure
-- Throttled (429) share, retries and the lowest remaining request/token budget per model.
SELECT
    ServiceName,
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(ThrottledCalls) AS ThrottledCalls,
    round(ThrottledCalls / Calls, 4) AS ThrottledShare,
    sum(Retries) AS Retries,
    min(MinRequestsRemaining) AS MinRequestsRemaining,
    min(MinTokensRemaining) AS MinTokensRemaining,
    round(min(MinRequestsHeadroom), 4) AS MinRequestsHeadroom
FROM {db}.v_rate_limit_pressure
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Provider,
    RequestModel
ORDER BY ThrottledShare DESC, Calls DESC
LIMIT {limit:UInt32}
