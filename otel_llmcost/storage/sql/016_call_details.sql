-- What the spans carry beyond cost and tokens (issue 20, items 2 and 6): prompt anatomy,
-- finish reason, max_tokens and the call as part of a trace and a session, read from the
-- llm_calls columns of 002.
--
-- Every view here is parameterized by {since_hours:UInt32} and reads only the calls of
-- the last since_hours hours (Timestamp reaches the partition key, so older days are
-- never read): `SELECT * FROM otel.v_output_by_endpoint(since_hours = 24)`.
--
-- A call's input cost is every input-side part of its price:
-- CostInput + CostCacheRead + CostCacheWrite (uncached, cache-read and cache-written
-- input tokens; output and reasoning are CostOutput).

-- Dollars per prompt component (system, tools, context, history, latest) per endpoint:
-- each call's input cost split in proportion to its components' tokens (the anatomy
-- estimate, whose components add up to the prompt), summed per component. Only calls
-- with a prompt anatomy (some component > 0) count. TokenShare is the component's share
-- of the measured prompt tokens (for 'system': the system-prompt share), CostShare its
-- share of the measured calls' input cost.
CREATE VIEW IF NOT EXISTS {database}.v_prompt_component_cost {cluster} AS
SELECT
    ServiceName,
    Endpoint,
    Component,
    Calls,
    Tokens,
    Tokens / nullIf(PromptTokens, 0) AS TokenShare,
    CostUsd,
    CostUsd / nullIf(InputCostUsd, 0) AS CostShare,
    Tokens / Calls AS TokensPerCall
FROM (
    SELECT
        ServiceName,
        Endpoint,
        count() AS Calls,
        sum(CallPromptTokens) AS PromptTokens,
        sum(InputCost) AS InputCostUsd,
        sumForEach(CallTokens) AS ComponentTokens,
        sumForEach(arrayMap(t -> InputCost * t / CallPromptTokens, CallTokens)) AS ComponentCosts
    FROM (
        SELECT
            ServiceName,
            Endpoint,
            CostInput + CostCacheRead + CostCacheWrite AS InputCost,
            [PromptSystemTokens, PromptToolsTokens, PromptContextTokens, PromptHistoryTokens,
             PromptLatestTokens] AS CallTokens,
            arraySum(CallTokens) AS CallPromptTokens
        FROM {database}.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          AND CallPromptTokens > 0
    )
    GROUP BY
        ServiceName,
        Endpoint
)
ARRAY JOIN
    ['system', 'tools', 'context', 'history', 'latest'] AS Component,
    ComponentTokens AS Tokens,
    ComponentCosts AS CostUsd;

-- Tool-schema overhead per endpoint: how many calls sent tool definitions, their tokens
-- per such call, their share of those calls' prompt tokens, and the input dollars they
-- cost (the call's input cost times the tools' share of its prompt).
CREATE VIEW IF NOT EXISTS {database}.v_tool_schema_overhead {cluster} AS
SELECT
    ServiceName,
    Endpoint,
    count() AS CallsWithTools,
    sum(PromptToolsTokens) AS ToolsTokens,
    sum(PromptToolsTokens) / count() AS ToolsTokensPerCall,
    sum(PromptToolsTokens) / nullIf(sum(PromptTokens), 0) AS ToolsTokenShare,
    sum(InputCost * PromptToolsTokens / PromptTokens) AS ToolsCostUsd,
    sum(InputCost * PromptToolsTokens / PromptTokens) / nullIf(sum(InputCost), 0) AS ToolsCostShare
FROM (
    SELECT
        ServiceName,
        Endpoint,
        PromptToolsTokens,
        CostInput + CostCacheRead + CostCacheWrite AS InputCost,
        PromptSystemTokens + PromptToolsTokens + PromptContextTokens + PromptHistoryTokens
            + PromptLatestTokens AS PromptTokens
    FROM {database}.llm_calls
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
      AND PromptToolsTokens > 0
)
GROUP BY
    ServiceName,
    Endpoint;

-- History growth: one row per call of a session (llmcost.session, the Session column),
-- numbered by time within the session (Turn 1 is the session's first call inside the
-- window), with its input tokens, its history tokens (anatomy) and the growth in input
-- tokens over the previous turn. Calls without a session are not listed.
CREATE VIEW IF NOT EXISTS {database}.v_session_history_growth {cluster} AS
SELECT
    ServiceName,
    Session,
    row_number() OVER w AS Turn,
    Timestamp,
    TraceId,
    Endpoint,
    InputTokens,
    PromptHistoryTokens AS HistoryTokens,
    toInt64(InputTokens) - toInt64(lagInFrame(InputTokens, 1, InputTokens) OVER w) AS InputTokensGrowth,
    CostInput + CostCacheRead + CostCacheWrite AS InputCostUsd,
    CostTotal AS CostUsd
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND Session != ''
WINDOW w AS (PARTITION BY ServiceName, Session ORDER BY Timestamp, SpanId
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- The output side per endpoint: how often the answer was cut at the token limit
-- (FinishReason 'length' (OpenAI) or 'max_tokens' (Anthropic, Gemini's MAX_TOKENS), any
-- case), output tokens per call, and output as a share of max_tokens over the calls that
-- set one (how much of the budget asked for is used). TruncationRate is over the calls
-- that recorded a finish reason; calls without one are counted in Calls only.
CREATE VIEW IF NOT EXISTS {database}.v_output_by_endpoint {cluster} AS
SELECT
    ServiceName,
    Endpoint,
    count() AS Calls,
    countIf(FinishReason != '') AS CallsWithFinishReason,
    countIf(lower(FinishReason) IN ('length', 'max_tokens')) AS Truncated,
    Truncated / nullIf(CallsWithFinishReason, 0) AS TruncationRate,
    sum(OutputTokens) / count() AS AvgOutputTokens,
    quantile(0.95)(OutputTokens) AS P95OutputTokens,
    countIf(MaxTokens > 0) AS CallsWithMaxTokens,
    sumIf(OutputTokens, MaxTokens > 0) / nullIf(sumIf(MaxTokens, MaxTokens > 0), 0) AS MaxTokensUsedShare,
    avgIf(OutputTokens / MaxTokens, MaxTokens > 0) AS AvgMaxTokensUsedShare,
    sum(CostOutput) AS OutputCostUsd,
    sum(CostOutput) / nullIf(sum(CostTotal), 0) AS OutputCostShare
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Endpoint;

-- Effective prices per endpoint and model: what the priced calls paid per million input,
-- output and all tokens (after cache discounts and write premiums), and the input:output
-- token ratio. Unpriced calls count in Calls and UnpricedCalls but not in the prices.
CREATE VIEW IF NOT EXISTS {database}.v_unit_cost {cluster} AS
SELECT
    ServiceName,
    Endpoint,
    Provider,
    RequestModel,
    count() AS Calls,
    countIf(Unpriced) AS UnpricedCalls,
    sum(InputTokens) AS TotalInputTokens,
    sum(OutputTokens) AS TotalOutputTokens,
    sum(CostTotal) AS CostUsd,
    sumIf(CostInput + CostCacheRead + CostCacheWrite, NOT Unpriced) * 1e6
        / nullIf(sumIf(InputTokens, NOT Unpriced), 0) AS UsdPer1MInput,
    sumIf(CostOutput, NOT Unpriced) * 1e6 / nullIf(sumIf(OutputTokens, NOT Unpriced), 0) AS UsdPer1MOutput,
    sumIf(CostTotal, NOT Unpriced) * 1e6
        / nullIf(sumIf(InputTokens + OutputTokens, NOT Unpriced), 0) AS UsdPer1MTokens,
    TotalInputTokens / nullIf(TotalOutputTokens, 0) AS InputOutputRatio
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Endpoint,
    Provider,
    RequestModel;

-- Cost per trace (one end-to-end request: every LLM call under the same TraceId), with
-- its calls, endpoints and models, its session (if any) and the time from its first call's
-- start to its last call's end.
CREATE VIEW IF NOT EXISTS {database}.v_cost_per_trace {cluster} AS
SELECT
    ServiceName,
    TraceId,
    any(Session) AS Session,
    min(Timestamp) AS Start,
    count() AS Calls,
    arraySort(groupUniqArray(Endpoint)) AS Endpoints,
    arraySort(groupUniqArray(RequestModel)) AS Models,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostUsd,
    countIf(Unpriced) AS UnpricedCalls,
    (max(toUnixTimestamp64Nano(Timestamp) + toInt64(DurationMs * 1e6)) - min(toUnixTimestamp64Nano(Timestamp)))
        / 1e6 AS SpanMs
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    TraceId;

-- Cost per session (llmcost.session): its traces (requests), calls, tokens and cost, and
-- the first and last call. Calls without a session are not listed.
CREATE VIEW IF NOT EXISTS {database}.v_cost_per_session {cluster} AS
SELECT
    ServiceName,
    Session,
    uniqExact(TraceId) AS Traces,
    count() AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CostTotal) AS CostUsd,
    sum(CostTotal) / uniqExact(TraceId) AS CostPerTraceUsd,
    countIf(Unpriced) AS UnpricedCalls,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
  AND Session != ''
GROUP BY
    ServiceName,
    Session;

-- Tail concentration per endpoint: the share of its cost spent by its costliest 5% of
-- requests (ceil(5% of the calls), at least one call; a request here is one LLM call, as
-- an endpoint's calls are its requests to the provider). 0.05 is an even spread; near 1
-- a few calls are the bill.
CREATE VIEW IF NOT EXISTS {database}.v_tail_concentration {cluster} AS
SELECT
    ServiceName,
    Endpoint,
    count() AS Calls,
    toUInt64(ceil(Calls * 0.05)) AS TopCalls,
    sum(CostTotal) AS CostUsd,
    -- The TopCalls largest costs, whichever calls tie at the cut: one array per endpoint
    -- rather than a window over every call of the range ordered by cost.
    arraySum(arraySlice(arrayReverseSort(groupArray(CostTotal)), 1, TopCalls)) AS TopCostUsd,
    TopCostUsd / nullIf(CostUsd, 0) AS TopShare
FROM {database}.llm_calls
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Endpoint;
