-- title: Repeated identical requests
-- The 10 costliest requests sent more than once byte for byte (same request hash);
-- RepeatSpend, all but the first call, is what a response cache would have saved.
SELECT
    ServiceName,
    RequestModel,
    RequestHash,
    arrayStringConcat(Endpoints, ', ') AS Endpoints,
    Calls,
    round(Spend, 6) AS SpendUsd,
    round(RepeatSpend, 6) AS RepeatSpendUsd,
    FirstSeen,
    LastSeen
FROM {db}.v_exact_duplicates(since_hours = {since_hours:UInt32})
ORDER BY RepeatSpendUsd DESC, Calls DESC, RequestHash
LIMIT least({limit:UInt32}, 10)
