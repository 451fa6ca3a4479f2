-- Cost per successful task: task outcomes (signals.outcomes) beside the spend of
-- their calls. Views follow the rules stated in 004.

-- Task outcomes: one row per span named 'llmcost.task' (outcomes.record_outcome).
-- TaskKey is the task id, or the trace id when the task carried no id, which is
-- the same key llm_calls rows are grouped by in v_task_outcomes.

CREATE TABLE IF NOT EXISTS {database}.llm_task_outcomes {cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    TaskId String CODEC(ZSTD(1)),
    TaskKey String CODEC(ZSTD(1)),
    Success UInt8,
    Endpoint LowCardinality(String),
    Feature LowCardinality(String),
    Team LowCardinality(String),
    User String CODEC(ZSTD(1)),
    DurationMs Float64
) ENGINE = {merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, TaskKey, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_task_outcomes_mv {cluster}
TO {database}.llm_task_outcomes
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['llmcost.task.id'] AS TaskId,
    if(TaskId != '', TaskId, TraceId) AS TaskKey,
    lower(SpanAttributes['llmcost.task.success']) IN ('true', '1') AS Success,
    SpanAttributes['llmcost.endpoint'] AS Endpoint,
    SpanAttributes['llmcost.feature'] AS Feature,
    SpanAttributes['llmcost.team'] AS Team,
    SpanAttributes['llmcost.user'] AS User,
    Duration / 1e6 AS DurationMs
FROM {database}.otel_traces
WHERE SpanName = 'llmcost.task';

-- One row per task with a recorded outcome, with the cost of its LLM calls.
-- Calls belong to a task by llmcost.task.id, or by trace id when they carry none.
-- A task recorded twice keeps its latest outcome.
--
-- Both views take the window in hours and read only the outcomes recorded in it
-- (`v_task_outcomes(since_hours = 168)`), so their cost follows the window asked for,
-- never the retention (issue 22). A task's calls are read from a day before the window
-- too, since a task starts before its outcome is recorded (as v_task_cost_by_model, 019):
-- import an evaluation graded more than a day after its run with the run's `timestamp`.
CREATE VIEW IF NOT EXISTS {database}.v_task_outcomes {cluster} AS
SELECT
    o.TaskKey AS TaskKey,
    o.RecordedAt AS Timestamp,
    o.ServiceName AS ServiceName,
    o.Success AS Success,
    if(o.Feature != '', o.Feature, c.Feature) AS Feature,
    if(o.Endpoint != '', o.Endpoint, c.Endpoint) AS Endpoint,
    if(o.Team != '', o.Team, c.Team) AS Team,
    c.Calls AS Calls,
    c.InputTokens AS InputTokens,
    c.OutputTokens AS OutputTokens,
    c.CostTotal AS CostTotal
FROM (
    SELECT
        TaskKey,
        max(Timestamp) AS RecordedAt,
        argMax(ServiceName, Timestamp) AS ServiceName,
        argMax(Success, Timestamp) AS Success,
        argMax(Feature, Timestamp) AS Feature,
        argMax(Endpoint, Timestamp) AS Endpoint,
        argMax(Team, Timestamp) AS Team
    FROM {database}.llm_task_outcomes
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    GROUP BY TaskKey
) AS o
LEFT JOIN (
    SELECT
        if(TaskId != '', TaskId, TraceId) AS TaskKey,
        count() AS Calls,
        sum(InputTokens) AS InputTokens,
        sum(OutputTokens) AS OutputTokens,
        sum(CostTotal) AS CostTotal,
        any(Feature) AS Feature,
        any(Endpoint) AS Endpoint,
        any(Team) AS Team
    FROM {database}.llm_calls
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32} + 24)
      AND if(TaskId != '', TaskId, TraceId) IN (
        SELECT TaskKey
        FROM {database}.llm_task_outcomes
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    )
    GROUP BY TaskKey
) AS c ON o.TaskKey = c.TaskKey;

-- Cost per successful task counts the spend of failed tasks too: that is the
-- price of each success. Tasks recorded in the last since_hours hours, as v_task_outcomes.
CREATE VIEW IF NOT EXISTS {database}.v_cost_per_successful_task {cluster} AS
SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    Feature,
    Endpoint,
    Team,
    count() AS Tasks,
    sum(Success) AS SuccessfulTasks,
    SuccessfulTasks / Tasks AS SuccessRate,
    sum(CostTotal) AS CostTotal,
    CostTotal / nullIf(SuccessfulTasks, 0) AS CostPerSuccessfulTask
FROM {database}.v_task_outcomes(since_hours = {since_hours:UInt32})
GROUP BY
    Day,
    ServiceName,
    Feature,
    Endpoint,
    Team;
