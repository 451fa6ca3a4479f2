-- Savings opportunities: spend that caching, deduplication or trimming retrieved
-- evidence could avoid.
--
-- llm_calls (002) stays the one source of tokens and dollars; the small evidence and
-- citation tables hold only what it lacks (ids and counts) and the views join them to
-- it. Extractions are total, as in 002: a malformed attribute gives an empty array or
-- a zero, never an exception that would fail the insert into otel_traces.

-- Missed caching (v_missed_caching) is in 014_caching_opportunities.sql, beside the
-- other caching views that need the prefix tokens and the providers' minimums of 006.

-- Identical requests (same request hash) in the last since_hours hours
-- (`v_duplicate_requests(since_hours = 24)`: only the window's calls are read, issue 22):
-- RepeatSpend is everything spent after the first one, i.e. what a response cache would
-- have saved. v_exact_duplicates (018) adds the teams.
CREATE VIEW IF NOT EXISTS {database}.v_duplicate_requests {cluster} AS
SELECT
    ServiceName,
    RequestModel,
    RequestHash,
    groupUniqArray(10)(Endpoint) AS Endpoints,
    count() AS Calls,
    Calls - 1 AS Repeats,
    sum(CostTotal) AS Spend,
    Spend - argMin(CostTotal, Timestamp) AS RepeatSpend,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND RequestHash != ''
GROUP BY
    ServiceName,
    RequestModel,
    RequestHash
HAVING Calls >= 2;

-- Evidence the app declared for a call (otel_llmcost.signals.evidence): one row per LLM span
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

-- Citations: one row per llmcost.citations span (signals.evidence.record_citations), recorded
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
--
-- Both views take the window in hours and read only its evidence, calls and citations
-- (`v_evidence_waste_hourly(since_hours = 168)`; issue 22): citations are recorded after
-- their call, so those of a call in the window are in it too.
CREATE VIEW IF NOT EXISTS {database}.v_evidence_calls {cluster} AS
SELECT
    e.Timestamp AS Timestamp,
    e.ServiceName AS ServiceName,
    c.Endpoint AS Endpoint,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    c.Team AS Team,
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
        Team,
        Unpriced,
        InputTokens,
        UncachedInputTokens,
        CostInput,
        CostCacheRead,
        CostCacheWrite
    FROM {database}.llm_calls
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
      AND TraceId IN (
        SELECT TraceId
        FROM {database}.llm_evidence
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    )
) AS c ON c.TraceId = e.TraceId AND c.SpanId = e.SpanId
LEFT JOIN (
    SELECT
        SetId,
        groupUniqArrayArray(CitedIds) AS CitedIds
    FROM {database}.llm_citations
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    GROUP BY SetId
) AS k ON k.SetId = e.SetId
WHERE e.Timestamp >= now() - toIntervalHour({since_hours:UInt32});

-- Evidence tokens sent vs cited per endpoint, model, team and hour, and the dollars spent on
-- evidence no answer cited. CitedShare is over the calls whose citations were
-- recorded (Unreported tokens are the rest).
CREATE VIEW IF NOT EXISTS {database}.v_evidence_waste_hourly {cluster} AS
SELECT
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team,
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
FROM {database}.v_evidence_calls(since_hours = {since_hours:UInt32})
GROUP BY
    Hour,
    ServiceName,
    Endpoint,
    RequestModel,
    Team;
