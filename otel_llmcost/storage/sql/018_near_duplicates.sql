-- Repeated requests, exact and near (issue 20, item 5), read from the llm_calls columns
-- of 002: RequestHash (the whole request) and SimHash (a 64-bit SimHash of the normalized
-- last user message, otel_llmcost/instrumentation/similarity.py; hashes, never content).
--
-- Both views are parameterized by {since_hours:UInt32} and read only the calls of the
-- last since_hours hours (Timestamp reaches the partition key, so older days are never
-- read): `SELECT * FROM otel.v_near_duplicates(since_hours = 24)`.
--
-- RepeatSpend is everything a group spent after its first call (by time): what a
-- response cache (exact) or a semantic cache (near) would have saved.

-- Identical requests (same request hash) in the window: v_duplicate_requests (011) over the
-- last since_hours hours only. Most requests are sent once: the hashes seen twice or more
-- are found first, reading that one column, and only their calls are aggregated (a
-- per-group state for every distinct request made this view take seconds at 2M calls).
CREATE VIEW IF NOT EXISTS {database}.v_exact_duplicates {cluster} AS
SELECT
    ServiceName,
    RequestModel,
    RequestHash,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    groupUniqArray(10)(Team) AS Teams,
    count() AS Calls,
    Calls - 1 AS Repeats,
    sum(CostTotal) AS Spend,
    Spend - argMin(CostTotal, (Timestamp, SpanId)) AS RepeatSpend,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND RequestHash != ''
  AND RequestHash IN (
      SELECT RequestHash
      FROM {database}.llm_calls
      WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
        AND RequestHash != ''
      GROUP BY RequestHash
      HAVING count() >= 2
  )
GROUP BY
    ServiceName,
    RequestModel,
    RequestHash
HAVING Calls >= 2;

-- Near-duplicate requests: calls of one service and model with the same prompt prefix
-- (PrefixHash: system prompt, tools and every message but the last; '' when there is
-- none) whose last user messages have sketches at most 3 of 64 bits apart
-- (bitCount(bitXor(a, b)) <= 3; NEAR_BITS in similarity.py). The same prefix keeps a
-- "tell me more" of one conversation apart from that of another.
--
-- Candidate pairs come from LSH banding: each distinct sketch is split into 4 bands of 16
-- bits, and only sketches that share a band exactly are compared. Two sketches within 3
-- bits differ in at most 3 bands, so by pigeonhole they share at least one: no pair
-- within the distance is missed, and unrelated sketches (1 in 16,384 share a band by
-- chance) are never compared.
--
-- Clusters: each sketch joins its anchor, the smallest sketch within 3 bits of it (itself
-- included); one cluster per anchor. Every call is in exactly one cluster (spend is never
-- counted twice), and every sketch of a cluster is within 3 bits of its anchor; a chain
-- a ~ b ~ c whose ends are farther apart can split into two clusters.
--
-- Per cluster (with two calls or more): its endpoints, calls, distinct sketches and
-- distinct exact requests (more than 1: repeats that v_exact_duplicates cannot see), spend,
-- RepeatSpend (spend after the cluster's first call: what a semantic cache would have saved),
-- ExactRepeatSpend (the part an exact-match cache saves too: spend after the first call of
-- each exact request), NearOnlyRepeatSpend (the rest: only a semantic cache saves it) and
-- first and last call. Calls without a sketch (no user text last, hashing
-- off, rows from before the upgrade) are not counted. What it does not catch: the same
-- question in other words (see docs/views.md).
CREATE VIEW IF NOT EXISTS {database}.v_near_duplicates {cluster} AS
WITH
    calls AS (
        SELECT
            ServiceName,
            RequestModel,
            PrefixHash,
            SimHash,
            RequestHash,
            Endpoint,
            Team,
            CostTotal,
            Timestamp,
            SpanId,
            -- The first call of its exact request (each call without a request hash is its
            -- own): what an exact-match response cache would still have paid for.
            RequestHash = ''
                OR row_number() OVER (
                    PARTITION BY ServiceName, RequestModel, RequestHash ORDER BY Timestamp, SpanId
                ) = 1 AS FirstOfRequest
        FROM {database}.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          AND SimHash != 0
    ),
    bands AS (
        SELECT
            ServiceName,
            RequestModel,
            PrefixHash,
            SimHash,
            Band,
            bitAnd(bitShiftRight(SimHash, 16 * Band), 65535) AS BandKey
        FROM (
            SELECT DISTINCT
                ServiceName,
                RequestModel,
                PrefixHash,
                SimHash
            FROM calls
        )
        ARRAY JOIN [0, 1, 2, 3] AS Band
    ),
    anchors AS (
        SELECT
            a.ServiceName AS ServiceName,
            a.RequestModel AS RequestModel,
            a.PrefixHash AS PrefixHash,
            a.SimHash AS SimHash,
            min(b.SimHash) AS Anchor
        FROM bands AS a
        INNER JOIN bands AS b
            ON a.ServiceName = b.ServiceName
           AND a.RequestModel = b.RequestModel
           AND a.PrefixHash = b.PrefixHash
           AND a.Band = b.Band
           AND a.BandKey = b.BandKey
        WHERE bitCount(bitXor(a.SimHash, b.SimHash)) <= 3
        GROUP BY
            ServiceName,
            RequestModel,
            PrefixHash,
            SimHash
    )
SELECT
    ServiceName,
    RequestModel,
    PrefixHash,
    lower(leftPad(hex(Anchor), 16, '0')) AS Cluster,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    groupUniqArray(10)(Team) AS Teams,
    count() AS Calls,
    Calls - 1 AS Repeats,
    uniqExact(SimHash) AS Sketches,
    uniqExact(RequestHash) AS DistinctRequests,
    sum(CostTotal) AS Spend,
    Spend - argMin(CostTotal, (Timestamp, SpanId)) AS RepeatSpend,
    Spend - sumIf(CostTotal, FirstOfRequest) AS ExactRepeatSpend,
    RepeatSpend - ExactRepeatSpend AS NearOnlyRepeatSpend,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM calls
INNER JOIN anchors USING (ServiceName, RequestModel, PrefixHash, SimHash)
GROUP BY
    ServiceName,
    RequestModel,
    PrefixHash,
    Anchor
HAVING Calls >= 2;
