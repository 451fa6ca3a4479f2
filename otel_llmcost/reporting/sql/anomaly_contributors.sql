-- title: Anomaly contributors
-- What moved in the anomalies that started at or after a moment (v_anomaly_contributors): per other dimension, the key with the largest share of the change.
SELECT
    Kind,
    Dimension,
    Key,
    ServiceName,
    At,
    ContributorDimension,
    ContributorKey,
    Share
FROM {db}.v_anomaly_contributors
WHERE At >= {since_at:DateTime('UTC')}
ORDER BY Share DESC
LIMIT {limit:UInt32}
