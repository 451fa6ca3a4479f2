-- App-side signals: token waste on retrieved evidence, and prefix stability.
--
-- llm_calls (002) stays the one source of tokens and dollars; the small tables here
-- hold only what it lacks (evidence ids, citations, prefix lengths) and the views
-- join them to it. Extractions are total, as in 002: a malformed attribute gives an
-- empty array or a zero, never an exception that would fail the insert into otel_traces.

-- Evidence the app declared for a call (otel_llmcost.retrieval): one row per LLM span
-- that carried a set. Ids and tokens are parallel JSON arrays (how the collector and
-- our exporter store list attributes); if a cut value left them unequal, the items are
-- dropped and only the total remains, rather than pairing ids with the wrong counts.
CREATE TABLE IF NOT EXISTS {database}.llm_evidence {cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    SetId String CODEC(ZSTD(1)),
    ItemIds Array(String) CODEC(ZSTD(1)),
    ItemTokens Array(UInt64) CODEC(ZSTD(1)),
    EvidenceTokens UInt64
) ENGINE = {merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SetId, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_evidence_mv {cluster}
TO {database}.llm_evidence
AS WITH
    JSONExtract(SpanAttributes['llmcost.evidence.ids'], 'Array(String)') AS RawIds,
    JSONExtract(SpanAttributes['llmcost.evidence.tokens'], 'Array(UInt64)') AS RawTokens
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['llmcost.evidence.set_id'] AS SetId,
    if(length(RawIds) = length(RawTokens), RawIds, []) AS ItemIds,
    if(length(RawIds) = length(RawTokens), RawTokens, []) AS ItemTokens,
    greatest(toUInt64OrZero(SpanAttributes['llmcost.evidence.total_tokens']), arraySum(ItemTokens)) AS EvidenceTokens
FROM {database}.otel_traces
WHERE ScopeName = 'otel_llmcost'
  AND SpanAttributes['gen_ai.operation.name'] != ''
  AND SpanAttributes['llmcost.evidence.set_id'] != '';

-- Citations: one row per llmcost.citations span (retrieval.record_citations), recorded
-- after the LLM span ended, so they join to the call through the set id.
CREATE TABLE IF NOT EXISTS {database}.llm_citations {cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    SetId String CODEC(ZSTD(1)),
    CitedIds Array(String) CODEC(ZSTD(1))
) ENGINE = {merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SetId, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_citations_mv {cluster}
TO {database}.llm_citations
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['llmcost.evidence.set_id'] AS SetId,
    JSONExtract(SpanAttributes['llmcost.evidence.cited_ids'], 'Array(String)') AS CitedIds
FROM {database}.otel_traces
WHERE ScopeName = 'otel_llmcost'
  AND SpanName = 'llmcost.citations'
  AND SpanAttributes['llmcost.evidence.set_id'] != '';

-- One row per call with evidence: what was sent, what was cited, and what the
-- never-cited part cost. Citations recorded twice for a set are merged.
--
-- Dollars are an approximation: evidence tokens are an offline tiktoken count (exact
-- for OpenAI models, an estimate for others), priced at the call's own input rate.
-- Retrieved evidence changes with every question, so it sits after any cached prefix
-- and is billed at the uncached rate: CostInput / UncachedInputTokens. When the whole
-- prompt came from cache (no uncached tokens) the call's blended input rate is used.
-- Unpriced calls have no rate: NULL, never $0. Calls whose citations were never
-- recorded count as sent, but neither as cited nor as never-cited.
CREATE VIEW IF NOT EXISTS {database}.v_evidence_calls {cluster} AS
SELECT
    e.Timestamp AS Timestamp,
    e.ServiceName AS ServiceName,
    c.Endpoint AS Endpoint,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    e.TraceId AS TraceId,
    e.SpanId AS SpanId,
    e.SetId AS SetId,
    length(e.ItemIds) AS Items,
    e.EvidenceTokens AS EvidenceTokens,
    k.SetId != '' AS CitationsRecorded,
    arrayCount(i -> has(k.CitedIds, i), e.ItemIds) AS CitedItems,
    arraySum(arrayMap((i, t) -> if(has(k.CitedIds, i), t, 0), e.ItemIds, e.ItemTokens)) AS CitedTokens,
    if(CitationsRecorded, e.EvidenceTokens - CitedTokens, 0) AS NeverCitedTokens,
    if(
        c.Unpriced = 1 OR c.SpanId = '',
        NULL,
        if(
            c.UncachedInputTokens > 0,
            c.CostInput / c.UncachedInputTokens,
            (c.CostInput + c.CostCacheRead + c.CostCacheWrite) / nullIf(c.InputTokens, 0)
        )
    ) AS InputUsdPerToken,
    NeverCitedTokens * InputUsdPerToken AS NeverCitedCost
FROM {database}.llm_evidence AS e
LEFT JOIN (
    SELECT
        TraceId,
        SpanId,
        Endpoint,
        Provider,
        RequestModel,
        Unpriced,
        InputTokens,
        UncachedInputTokens,
        CostInput,
        CostCacheRead,
        CostCacheWrite
    FROM {database}.llm_calls
    WHERE TraceId IN (SELECT TraceId FROM {database}.llm_evidence)
) AS c ON c.TraceId = e.TraceId AND c.SpanId = e.SpanId
LEFT JOIN (
    SELECT
        SetId,
        groupUniqArrayArray(CitedIds) AS CitedIds
    FROM {database}.llm_citations
    GROUP BY SetId
) AS k ON k.SetId = e.SetId;

-- Evidence tokens sent vs cited per endpoint and hour, and the dollars spent on
-- evidence no answer cited. CitedShare is over the calls whose citations were
-- recorded (Unreported tokens are the rest).
CREATE VIEW IF NOT EXISTS {database}.v_evidence_waste_hourly {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Endpoint,
    count() AS Calls,
    countIf(CitationsRecorded) AS CallsWithCitations,
    sum(Items) AS ItemsSent,
    sum(CitedItems) AS ItemsCited,
    sum(EvidenceTokens) AS EvidenceTokensSent,
    sum(CitedTokens) AS EvidenceTokensCited,
    sum(NeverCitedTokens) AS EvidenceTokensNeverCited,
    sumIf(EvidenceTokens, NOT CitationsRecorded) AS EvidenceTokensUnreported,
    sum(NeverCitedCost) AS NeverCitedUsd,
    EvidenceTokensCited / nullIf(EvidenceTokensCited + EvidenceTokensNeverCited, 0) AS CitedShare
FROM {database}.v_evidence_calls
GROUP BY
    Hour,
    ServiceName,
    Endpoint;

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
CREATE VIEW IF NOT EXISTS {database}.v_cache_min_tokens {cluster} AS
WITH [
    ('^anthropic$', 'opus-4-[56]|haiku-4-5', 4096),
    ('^anthropic$', 'sonnet-4-6|haiku', 2048),
    ('^anthropic$', '', 1024),
    ('^(openai|azure.ai.openai)$', '', 1024),
    ('^gcp[.](gemini|vertex_ai)$', 'pro', 4096),
    ('^gcp[.](gemini|vertex_ai)$', '', 1024)
] AS Rules
SELECT
    Provider,
    RequestModel,
    nullIf(
        tupleElement(arrayFirst(r -> match(Provider, tupleElement(r, 1)) AND match(RequestModel, tupleElement(r, 2)), Rules), 3),
        0
    ) AS MinCacheTokens
FROM (
    SELECT DISTINCT
        Provider,
        RequestModel
    FROM {database}.llm_calls
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
    m.MinCacheTokens AS MinCacheTokens,
    s.TopPrefixTokens >= m.MinCacheTokens AS PrefixCacheable,
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
) AS s
LEFT JOIN {database}.v_cache_min_tokens AS m ON m.Provider = s.Provider AND m.RequestModel = s.RequestModel;
