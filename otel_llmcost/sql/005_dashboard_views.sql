-- Views the Grafana dashboards (dashboards/) need beyond 004. Same rules as 004:
-- they read llm_calls and the rollups, never the attribute maps of otel_traces,
-- and take no parameters (filter them by time from outside).

-- Failed calls by error type and HTTP status, hourly: the "what is failing" view.
-- A call counts when its span status is Error or it carries error.type (a call
-- that succeeded after SDK retries has neither, and is counted in Retries of
-- v_rate_limit_pressure instead).
CREATE VIEW IF NOT EXISTS {database}.v_errors_hourly {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Team,
    ErrorType,
    HttpStatus,
    count() AS Calls,
    countIf(Throttled = 1 OR HttpStatus = 429) AS ThrottledCalls,
    sum(RetryCount) AS Retries,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE StatusCode = 'Error' OR ErrorType != ''
GROUP BY
    Hour,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Team,
    ErrorType,
    HttpStatus;
