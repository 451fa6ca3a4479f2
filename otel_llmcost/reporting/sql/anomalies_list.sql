-- title: Anomalies
-- What the detectors flagged (v_anomalies): open ones and those seen in the window, newest first, each with its explanation.
SELECT
    Kind,
    Dimension,
    Key,
    ServiceName,
    At,
    DetectedAt,
    LastSeen,
    Expected,
    Observed,
    Score,
    Open,
    Explanation
FROM {db}.v_anomalies
WHERE (LastSeen >= now() - toIntervalSecond({since_seconds:UInt32}) OR Open = 1)
    AND ({open_only:UInt8} = 0 OR Open = 1)
    AND (empty({kinds:Array(String)}) OR has({kinds:Array(String)}, toString(Kind)))
    AND ({dimension:String} = '' OR Dimension = {dimension:String})
ORDER BY
    DetectedAt DESC,
    Score DESC
LIMIT {limit:UInt32}
