-- Fill llm_cost_daily and llm_user_spend_daily (003_rollups.sql) for the days recorded
-- before them, from the rollups that hold the same sums at a finer grain (llm_cost_hourly,
-- llm_user_daily) and far fewer rows than llm_calls.
--
-- Each runs only while its table is empty: a new database (nothing to read) and a
-- second application (already filled) add nothing. chdb has a single writer, so no insert
-- lands between the migrations and this; on a ClickHouse server, run `otel-llmcost
-- migrate` before the collector writes (as 022_rollup_backfill.sql).
INSERT INTO {database}.llm_cost_daily (
    Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    Calls,
    Errors,
    Throttled,
    Retries,
    Unpriced,
    Estimated,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheWriteTokens,
    ReasoningTokens,
    UncachedInputTokens,
    CostTotal,
    CostInput,
    CostOutput,
    CostCacheRead,
    CostCacheWrite,
    CostCacheWritePremium,
    CostSavings
)
SELECT
    toDate(Hour) AS Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team,
    sum(Calls),
    sum(Errors),
    sum(Throttled),
    sum(Retries),
    sum(Unpriced),
    sum(Estimated),
    sum(InputTokens),
    sum(OutputTokens),
    sum(CacheReadTokens),
    sum(CacheWriteTokens),
    sum(ReasoningTokens),
    sum(UncachedInputTokens),
    sum(CostTotal),
    sum(CostInput),
    sum(CostOutput),
    sum(CostCacheRead),
    sum(CostCacheWrite),
    sum(CostCacheWritePremium),
    sum(CostSavings)
FROM {database}.llm_cost_hourly
WHERE (SELECT count() FROM {database}.llm_cost_daily) = 0
GROUP BY
    Day,
    ServiceName,
    Provider,
    Endpoint,
    RequestModel,
    Feature,
    Team;

INSERT INTO {database}.llm_user_spend_daily (
    Day,
    ServiceName,
    User,
    Calls,
    InputTokens,
    OutputTokens,
    CostTotal
)
SELECT
    Day,
    ServiceName,
    User,
    sum(Calls),
    sum(InputTokens),
    sum(OutputTokens),
    sum(CostTotal)
FROM {database}.llm_user_daily
WHERE User != ''
  AND (SELECT count() FROM {database}.llm_user_spend_daily) = 0
GROUP BY
    Day,
    ServiceName,
    User;
