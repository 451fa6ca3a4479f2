-- The calls behind the Top users panel (issue 22, item 6): one row per call with a user,
-- with its hour and the dimensions the dashboards filter on. Summing these rows gives
-- what v_cost_by_user_hourly (004) gives for any grouping, without its grouping by hour,
-- service, endpoint, model, team and user first: with thousands of users that grouping
-- holds nearly one row per call and is most of the panel's cost (2 s of CPU for 2.3M
-- calls against 0.3 s). Filter on Hour (or Timestamp) and group as needed:
-- `SELECT User, Team, sum(Calls), sum(CostTotal) FROM otel.v_user_calls WHERE Hour >= ... GROUP BY User, Team`.
-- Calls without a user are left out, as in v_cost_by_user_hourly.
CREATE VIEW IF NOT EXISTS {database}.v_user_calls {cluster} AS
SELECT
    Timestamp,
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
    User,
    toUInt64(1) AS Calls,
    InputTokens,
    OutputTokens,
    CostTotal
FROM {database}.llm_calls
WHERE User != '';
