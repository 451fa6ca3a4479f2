-- title: Spend anomalies
-- Endpoints whose daily spend is >= 2 sigma and >= 1.3x their prior 7-day mean.
SELECT
    Day,
    ServiceName,
    Endpoint,
    round(Spend, 6) AS SpendUsd,
    round(PriorMean, 6) AS PriorMeanUsd,
    round(ZScore, 2) AS ZScore
FROM {db}.v_spend_anomalies_daily
WHERE Flagged
    AND Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
ORDER BY
    Day DESC,
    SpendUsd DESC
LIMIT {limit:UInt32}
