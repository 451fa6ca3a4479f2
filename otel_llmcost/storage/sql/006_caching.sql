-- Prompt caching: hit rates and savings, writes that never paid back, and whether
-- a prompt prefix is stable and long enough to cache. Views follow the rules of 004;
-- extractions from otel_traces are total, as in 002.

-- HitRate = cache read tokens / input tokens (input tokens include cached ones
-- for every provider, see otel_llmcost/pricing/usage.py). CostSavings is what the instrumentation
-- computed (cost without caching minus actual cost), so it already nets out
-- the write premium; CostCacheWritePremium is shown apart to see what caching
-- costs before it pays back.
CREATE VIEW IF NOT EXISTS {database}.v_cache_efficiency {cluster} AS
SELECT
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    Team,
    sum(Calls) AS Calls,
    sum(Unpriced) AS UnpricedCalls,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    CacheReadTokens / nullIf(InputTokens, 0) AS HitRate,
    sum(CostCacheRead) AS CostCacheRead,
    sum(CostCacheWrite) AS CostCacheWrite,
    sum(CostCacheWritePremium) AS CostCacheWritePremium,
    sum(CostSavings) AS CostSavings
FROM {database}.llm_cost_hourly
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    Team;

-- Cache writes that never paid back: v_cache_never_paid_back in 014_caching_opportunities.sql.

-- Tokens of each prompt prefix (system, tools, every message but the last: what
-- llmcost.prompt.prefix_hash covers), counted by prompt anatomy. A hash names one
-- prefix, so one maximum per hash and day is all the views need; calls where anatomy
-- was sampled out or off just add nothing.
CREATE TABLE IF NOT EXISTS {database}.llm_prefix_tokens {cluster} (
    Day Date,
    ServiceName LowCardinality(String),
    PrefixHash String,
    PrefixTokens SimpleAggregateFunction(max, UInt64)
) ENGINE = {aggregating_merge_tree}
PARTITION BY toYYYYMM(Day)
ORDER BY (ServiceName, PrefixHash, Day)
TTL Day + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_prefix_tokens_mv {cluster}
TO {database}.llm_prefix_tokens
AS SELECT
    toDate(Timestamp) AS Day,
    ServiceName,
    SpanAttributes['llmcost.prompt.prefix_hash'] AS PrefixHash,
    max(toUInt64OrZero(SpanAttributes['llmcost.prompt.prefix_tokens'])) AS PrefixTokens
FROM {database}.otel_traces
WHERE ScopeName = 'otel_llmcost'
  AND SpanAttributes['gen_ai.operation.name'] != ''
  AND SpanAttributes['llmcost.prompt.prefix_hash'] != ''
  AND SpanAttributes['llmcost.prompt.prefix_tokens'] != ''
GROUP BY
    Day,
    ServiceName,
    PrefixHash;

-- The smallest prompt prefix each provider caches, in this one place; first match of
-- (provider regex, model regex) wins, no match is NULL (unknown, e.g. other hosts).
-- Sources, as published in November 2026:
--   OpenAI: platform.openai.com/docs/guides/prompt-caching - prompts of 1024 tokens
--     or more, for every model that caches.
--   Anthropic: docs.anthropic.com/en/docs/build-with-claude/prompt-caching - 4096 for
--     Claude Opus 4.5/4.6 and Haiku 4.5; 2048 for Sonnet 4.6 and Haiku 3/3.5; 1024 for
--     the others (Sonnet 3.7/4/4.5, Opus 4/4.1).
--   Google: ai.google.dev/gemini-api/docs/caching - implicit caching from 1024 tokens
--     on Flash models, 4096 on Pro models (2.5 and 3).
-- Rank orders the rules. A view needing the minimum of its own rows' models computes it
-- with the lookup below, over these rules only: joining a list of every recorded model
-- would read the whole history to answer for the models of one window.
CREATE VIEW IF NOT EXISTS {database}.v_cache_min_rules {cluster} AS
SELECT
    tupleElement(Rule, 1) AS Rank,
    tupleElement(Rule, 2) AS ProviderPattern,
    tupleElement(Rule, 3) AS ModelPattern,
    tupleElement(Rule, 4) AS MinCacheTokens
FROM (
    SELECT arrayJoin([
        (1, '^anthropic$', 'opus-4-[56]|haiku-4-5', 4096),
        (2, '^anthropic$', 'sonnet-4-6|haiku', 2048),
        (3, '^anthropic$', '', 1024),
        (4, '^(openai|azure.ai.openai)$', '', 1024),
        (5, '^gcp[.](gemini|vertex_ai)$', 'pro', 4096),
        (6, '^gcp[.](gemini|vertex_ai)$', '', 1024)
    ]) AS Rule
);

-- The minimum per recorded provider and model (a listing; the views use the lookup:
--   nullIf(tupleElement(arrayFirst(r -> match(Provider, r.1) AND match(RequestModel, r.2),
--       (SELECT groupArray((ProviderPattern, ModelPattern, MinCacheTokens)) FROM
--        (SELECT * FROM v_cache_min_rules ORDER BY Rank))), 3), 0)).
CREATE VIEW IF NOT EXISTS {database}.v_cache_min_tokens {cluster} AS
SELECT
    Provider,
    RequestModel,
    nullIf(tupleElement(arrayFirst(r -> match(Provider, r.1) AND match(RequestModel, r.2),
        (SELECT groupArray((ProviderPattern, ModelPattern, MinCacheTokens))
         FROM (SELECT * FROM {database}.v_cache_min_rules ORDER BY Rank))), 3), 0) AS MinCacheTokens
FROM (
    SELECT DISTINCT
        Provider,
        RequestModel
    FROM {database}.llm_cost_daily
);

-- Calls per prompt prefix, hour and endpoint: the building block of prefix
-- stability. PrefixHash '' is calls with no prefix at all (one message, no system
-- prompt or tools): nothing there to cache. PrefixTokens is NULL when unknown.
CREATE VIEW IF NOT EXISTS {database}.v_prefix_calls_hourly {cluster} AS
SELECT
    toStartOfHour(c.Timestamp) AS Hour,
    c.ServiceName AS ServiceName,
    c.Endpoint AS Endpoint,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    c.PrefixHash AS PrefixHash,
    count() AS Calls,
    nullIf(max(p.PrefixTokens), 0) AS PrefixTokens,
    sum(c.InputTokens) AS InputTokens,
    sum(c.CacheReadTokens) AS CacheReadTokens,
    sum(c.CacheWriteTokens) AS CacheWriteTokens,
    sum(c.CostSavings) AS CostSavings,
    sum(c.CostCacheWritePremium) AS CostCacheWritePremium
FROM {database}.llm_calls AS c
LEFT JOIN (
    SELECT
        ServiceName,
        PrefixHash,
        max(PrefixTokens) AS PrefixTokens
    FROM {database}.llm_prefix_tokens
    GROUP BY
        ServiceName,
        PrefixHash
) AS p ON p.ServiceName = c.ServiceName AND p.PrefixHash = c.PrefixHash
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    PrefixHash;

-- Prefix stability per endpoint, model and hour: how many distinct prefixes, the
-- share of calls on the most common one, and whether that prefix reaches the
-- provider's minimum cacheable size.
CREATE VIEW IF NOT EXISTS {database}.v_prefix_stability_hourly {cluster} AS
SELECT
    s.Hour AS Hour,
    s.ServiceName AS ServiceName,
    s.Endpoint AS Endpoint,
    s.Provider AS Provider,
    s.RequestModel AS RequestModel,
    s.AllCalls AS Calls,
    s.DistinctPrefixes AS DistinctPrefixes,
    s.TopPrefixCalls AS TopPrefixCalls,
    s.TopPrefixCalls / s.AllCalls AS TopPrefixShare,
    s.TopPrefixTokens AS TopPrefixTokens,
    nullIf(tupleElement(arrayFirst(r -> match(s.Provider, r.1) AND match(s.RequestModel, r.2),
        (SELECT groupArray((ProviderPattern, ModelPattern, MinCacheTokens))
         FROM (SELECT * FROM {database}.v_cache_min_rules ORDER BY Rank))), 3), 0) AS MinCacheTokens,
    s.TopPrefixTokens >= MinCacheTokens AS PrefixCacheable,
    s.AllInputTokens AS InputTokens,
    s.AllCacheReadTokens AS CacheReadTokens,
    s.AllCacheReadTokens / nullIf(s.AllInputTokens, 0) AS HitRate,
    s.AllCostSavings AS CostSavings
FROM (
    SELECT
        Hour,
        ServiceName,
        Endpoint,
        Provider,
        RequestModel,
        sum(Calls) AS AllCalls,
        uniqExactIf(PrefixHash, PrefixHash != '') AS DistinctPrefixes,
        maxIf(Calls, PrefixHash != '') AS TopPrefixCalls,
        argMaxIf(PrefixTokens, Calls, PrefixHash != '') AS TopPrefixTokens,
        sum(InputTokens) AS AllInputTokens,
        sum(CacheReadTokens) AS AllCacheReadTokens,
        sum(CostSavings) AS AllCostSavings
    FROM {database}.v_prefix_calls_hourly
    GROUP BY
        Hour,
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
) AS s;
