-- title: Near-duplicate requests
-- Calls with the same prompt prefix whose last user messages differ at most in case,
-- punctuation, spacing or a word or two of a long text (similarity sketches within 3 of 64
-- bits), the 20 costliest first: RepeatSpend is what a semantic cache would have saved.
-- Requests are the distinct exact requests of a cluster: more than 1 are repeats that exact
-- matching misses. The same question in other words is not caught.
SELECT
    ServiceName,
    RequestModel,
    Cluster,
    arrayStringConcat(Endpoints, ', ') AS Endpoints,
    Calls,
    DistinctRequests AS Requests,
    round(Spend, 6) AS SpendUsd,
    round(RepeatSpend, 6) AS RepeatSpendUsd,
    FirstSeen,
    LastSeen
FROM {db}.v_near_duplicates(since_hours = {since_hours:UInt32})
ORDER BY RepeatSpendUsd DESC, Calls DESC, Cluster
LIMIT least({limit:UInt32}, 20)
