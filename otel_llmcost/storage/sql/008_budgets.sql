-- Budgets beside spend. Enforcement lives in the app (otel_llmcost.budgets, counters in
-- memory or Redis); this table holds the limits, written by `otel-llmcost budgets --sync`
-- from the budgets file with each budget's current period (computed in the configured time
-- zone, stored in UTC). The latest row of a budget wins, so re-syncing never needs a delete.
-- LimitTokens is the limit of a token-denominated budget (0: none).
CREATE TABLE IF NOT EXISTS {database}.llm_budgets {cluster} (
    Name LowCardinality(String),
    Scope LowCardinality(String),
    Match String,
    Period LowCardinality(String),
    TimeZone LowCardinality(String),
    PeriodStart DateTime64(3, 'UTC'),
    PeriodEnd DateTime64(3, 'UTC'),
    LimitUsd Float64,
    UpdatedAt DateTime64(3, 'UTC'),
    LimitTokens UInt64
) ENGINE = {merge_tree}
ORDER BY (Name, UpdatedAt);

-- Each budget's current period, computed from now(), so a dashboard stays right after
-- midnight without a re-sync. While the synced period is still running it is used as
-- written (exact across DST changes); once it has ended the period is rolled forward from
-- now() in the budget's time zone, taken as the UTC offset of the synced start (a local
-- midnight; an offset of -12 h reads as +12 h, and a DST change since the sync moves the
-- boundary by an hour until the next sync). ClickHouse needs a constant time zone argument,
-- hence the offset rather than toStartOfDay(now(), TimeZone).
CREATE VIEW IF NOT EXISTS {database}.v_budget_periods {cluster} AS
SELECT
    Name AS Budget,
    Scope,
    Match,
    Period,
    TimeZone,
    LimitUsd,
    LimitTokens,
    multiIf(
        now64(3, 'UTC') < SyncedEnd, SyncedStart,
        Period = 'day', toDateTime64(toStartOfDay(LocalNow), 3, 'UTC') - toIntervalSecond(OffsetS),
        Period = 'week', toDateTime64(toMonday(LocalNow), 3, 'UTC') - toIntervalSecond(OffsetS),
        toDateTime64(toStartOfMonth(LocalNow), 3, 'UTC') - toIntervalSecond(OffsetS)
    ) AS PeriodStart,
    multiIf(
        now64(3, 'UTC') < SyncedEnd, SyncedEnd,
        Period = 'day', PeriodStart + toIntervalDay(1),
        Period = 'week', PeriodStart + toIntervalDay(7),
        toDateTime64(addMonths(toStartOfMonth(LocalNow), 1), 3, 'UTC') - toIntervalSecond(OffsetS)
    ) AS PeriodEnd,
    SyncedAt AS UpdatedAt
FROM
(
    SELECT
        Name,
        argMax(Scope, UpdatedAt) AS Scope,
        argMax(Match, UpdatedAt) AS Match,
        argMax(Period, UpdatedAt) AS Period,
        argMax(TimeZone, UpdatedAt) AS TimeZone,
        argMax(PeriodStart, UpdatedAt) AS SyncedStart,
        argMax(PeriodEnd, UpdatedAt) AS SyncedEnd,
        argMax(LimitUsd, UpdatedAt) AS LimitUsd,
        argMax(LimitTokens, UpdatedAt) AS LimitTokens,
        max(UpdatedAt) AS SyncedAt,
        (86400 - toUnixTimestamp(toDateTime(SyncedStart)) % 86400) % 86400 AS EastOfUtcS,
        if(EastOfUtcS > 14 * 3600, EastOfUtcS - 86400, EastOfUtcS) AS OffsetS,
        toDateTime(now64(3, 'UTC') + toIntervalSecond(OffsetS), 'UTC') AS LocalNow
    FROM {database}.llm_budgets
    GROUP BY Name
);

-- Each budget's current period, per scope value (every user, feature, team, endpoint or
-- session separately; one row for a global budget): spend and tokens so far from
-- llm_calls, the limit, the burn rate per day since the period started, the projected
-- exhaustion (NULL when the limit outlasts the period; now when already spent), the
-- headroom and the spend the burn rate projects for the whole period; for token budgets
-- (LimitTokens > 0) the tokens used against that limit too. Calls with no value
-- for the budget's scope do not count, as in the app. Budgets with no spend yet have no row.
--
-- Only the partitions of the current periods are read: the scalar subquery is a constant
-- by the time ClickHouse selects parts, so `Timestamp >= earliest period start` prunes
-- every older day of llm_calls (PARTITION BY toDate(Timestamp)) however long the
-- retention. llm_calls is the left side, so only the small budgets list is held in memory.
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
        LimitUsd <= 0, NULL,
        UsedUsd >= LimitUsd, now64(3, 'UTC'),
        BurnRateUsdPerDay <= 0, NULL,
        now64(3, 'UTC') + toIntervalSecond(toInt64((LimitUsd - UsedUsd) / BurnRateUsdPerDay * 86400)) < PeriodEnd,
        now64(3, 'UTC') + toIntervalSecond(toInt64((LimitUsd - UsedUsd) / BurnRateUsdPerDay * 86400)),
        NULL
    ) AS ProjectedExhaustion,
    -- Added after the columns above (the CLI reads those by name and position).
    -- NULL for a budget without a USD limit (token-denominated only), and likewise for tokens.
    if(LimitUsd > 0, LimitUsd - UsedUsd, NULL) AS HeadroomUsd,
    HeadroomUsd / nullIf(LimitUsd, 0) AS HeadroomShare,
    BurnRateUsdPerDay * dateDiff('second', PeriodStart, PeriodEnd) / 86400 AS ProjectedUsdAtPeriodEnd,
    UsedTokens,
    LimitTokens,
    UsedTokens / nullIf(LimitTokens, 0) AS UsedTokenShare,
    if(LimitTokens > 0, toInt64(LimitTokens) - toInt64(UsedTokens), NULL) AS HeadroomTokens,
    -- The larger of the USD and token shares: what the alert thresholds compare.
    greatest(ifNull(UsedShare, 0), ifNull(UsedTokenShare, 0)) AS LimitShare,
    LastCallAt
FROM
(
    SELECT
        b.Budget AS Budget,
        b.Scope AS Scope,
        multiIf(
            b.Scope = 'user', c.User,
            b.Scope = 'feature', c.Feature,
            b.Scope = 'team', c.Team,
            b.Scope = 'endpoint', c.Endpoint,
            b.Scope = 'session', c.Session,
            b.Scope = 'tier', c.Tier,
            ''
        ) AS ScopeValue,
        b.Period AS Period,
        b.PeriodStart AS PeriodStart,
        b.PeriodEnd AS PeriodEnd,
        any(b.LimitUsd) AS LimitUsd,
        any(b.LimitTokens) AS LimitTokens,
        sum(c.CostTotal) AS UsedUsd,
        -- Implausible usage is kept as reported but never charged (as by the app's budgets).
        sumIf(c.InputTokens + c.OutputTokens, NOT c.Implausible) AS UsedTokens,
        count() AS Calls,
        max(c.Timestamp) AS LastCallAt
    FROM {database}.llm_calls AS c
    CROSS JOIN {database}.v_budget_periods AS b
    WHERE c.Timestamp >= (SELECT min(PeriodStart) FROM {database}.v_budget_periods)
        AND c.Timestamp < (SELECT max(PeriodEnd) FROM {database}.v_budget_periods)
        AND c.Timestamp >= b.PeriodStart
        AND c.Timestamp < b.PeriodEnd
        AND (b.Scope = 'global' OR ScopeValue != '')
        AND (b.Match = '' OR ScopeValue = b.Match)
    GROUP BY Budget, Scope, ScopeValue, Period, PeriodStart, PeriodEnd
);
