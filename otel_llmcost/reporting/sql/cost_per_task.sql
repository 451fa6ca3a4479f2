-- title: Cost per successful task
-- All spend of recorded tasks (failed ones included) divided by the successful ones.
SELECT
    ServiceName,
    Feature,
    count() AS Tasks,
    sum(Success) AS SuccessfulTasks,
    round(sum(Success) / count(), 4) AS SuccessRate,
    round(sum(CostTotal), 6) AS CostUsd,
    round(sum(CostTotal) / nullIf(sum(Success), 0), 6) AS CostPerSuccessUsd
FROM {db}.v_task_outcomes(since_hours = {since_hours:UInt32})
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Feature
ORDER BY CostUsd DESC
LIMIT {limit:UInt32}
