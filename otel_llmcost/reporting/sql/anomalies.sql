-- title: Anomalies
-- What the detectors flagged (v_anomalies), newest first: kind, what moved, since when, expected against observed, and why.
SELECT
    Kind,
    Dimension,
    Key,
    ServiceName,
    At,
    if(Open = 1, 'open', 'closed') AS State,
    round(Expected, 6) AS Expected,
    round(Observed, 6) AS Observed,
    round(Score, 2) AS Score,
    Explanation
FROM {db}.v_anomalies
WHERE LastSeen >= now() - toIntervalHour({since_hours:UInt32})
    OR Open = 1
ORDER BY
    DetectedAt DESC,
    Score DESC
LIMIT {limit:UInt32}
