-- Budgets beside spend. Enforcement lives in the app (otel_llmcost.budgets, counters in
-- memory or Redis); this table holds the limits, written by `otel-llmcost budgets --sync`
-- from the budgets file with each budget's current period (computed in the configured time
-- zone, stored in UTC). The latest row of a budget wins, so re-syncing never needs a delete.
CREATE TABLE IF NOT EXISTS {database}.llm_budgets {cluster} (
    Name LowCardinality(String),
    Scope LowCardinality(String),
    Match String,
    Period LowCardinality(String),
    TimeZone LowCardinality(String),
    PeriodStart DateTime64(3, 'UTC'),
    PeriodEnd DateTime64(3, 'UTC'),
    LimitUsd Float64,
    UpdatedAt DateTime64(3, 'UTC')
) ENGINE = {merge_tree}
ORDER BY (Name, UpdatedAt);

-- Each budget's current period, per scope value (every user, feature, team or endpoint
-- separately; one row for a global budget): spend so far from llm_calls, the limit, the
-- burn rate per day since the period started and the projected exhaustion (NULL when the
-- limit outlasts the period; now when already spent). Calls with no value for the
-- budget's scope do not count, as in the app. Budgets with no spend yet have no row.
CREATE VIEW IF NOT EXISTS {database}.v_budget_status {cluster} AS
SELECT
    Budget,
    Scope,
    ScopeValue,
    Period,
    PeriodStart,
    PeriodEnd,
    LimitUsd,
    UsedUsd,
    Calls,
    UsedUsd / nullIf(LimitUsd, 0) AS UsedShare,
    UsedUsd * 86400 / greatest(dateDiff('second', PeriodStart, now64(3, 'UTC')), 60) AS BurnRateUsdPerDay,
    multiIf(
        UsedUsd >= LimitUsd, now64(3, 'UTC'),
        BurnRateUsdPerDay <= 0, NULL,
        now64(3, 'UTC') + toIntervalSecond(toInt64((LimitUsd - UsedUsd) / BurnRateUsdPerDay * 86400)) < PeriodEnd,
        now64(3, 'UTC') + toIntervalSecond(toInt64((LimitUsd - UsedUsd) / BurnRateUsdPerDay * 86400)),
        NULL
    ) AS ProjectedExhaustion
FROM
(
    SELECT
        b.Name AS Budget,
        b.Scope AS Scope,
        multiIf(
            b.Scope = 'user', c.User,
            b.Scope = 'feature', c.Feature,
            b.Scope = 'team', c.Team,
            b.Scope = 'endpoint', c.Endpoint,
            ''
        ) AS ScopeValue,
        b.Period AS Period,
        b.PeriodStart AS PeriodStart,
        b.PeriodEnd AS PeriodEnd,
        any(b.LimitUsd) AS LimitUsd,
        sum(c.CostTotal) AS UsedUsd,
        count() AS Calls
    FROM
    (
        SELECT
            Name,
            argMax(Scope, UpdatedAt) AS Scope,
            argMax(Match, UpdatedAt) AS Match,
            argMax(Period, UpdatedAt) AS Period,
            argMax(PeriodStart, UpdatedAt) AS PeriodStart,
            argMax(PeriodEnd, UpdatedAt) AS PeriodEnd,
            argMax(LimitUsd, UpdatedAt) AS LimitUsd
        FROM {database}.llm_budgets
        GROUP BY Name
    ) AS b
    CROSS JOIN {database}.llm_calls AS c
    WHERE c.Timestamp >= b.PeriodStart
        AND c.Timestamp < b.PeriodEnd
        AND (b.Scope = 'global' OR ScopeValue != '')
        AND (b.Match = '' OR ScopeValue = b.Match)
    GROUP BY Budget, Scope, ScopeValue, Period, PeriodStart, PeriodEnd
);
