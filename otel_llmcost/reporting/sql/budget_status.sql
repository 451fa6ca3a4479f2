-- title: Budgets: current period
-- Spend from the spans in ClickHouse against the limits written by `otel-llmcost budgets --sync`;
-- budgets with no spend this period are not listed.
SELECT
    Budget AS budget,
    if(Scope = 'global', 'global', concat(Scope, '=', ScopeValue)) AS scope,
    Period AS period,
    toDate(PeriodStart) AS since,
    UsedUsd AS used_usd,
    LimitUsd AS limit_usd,
    UsedShare AS used_share,
    BurnRateUsdPerDay AS usd_per_day,
    ProjectedExhaustion AS exhausted_by
FROM {db}.v_budget_status
ORDER BY
    Budget,
    ScopeValue
LIMIT {limit:UInt32}
