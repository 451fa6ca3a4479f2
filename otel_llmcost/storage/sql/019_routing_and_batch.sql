-- Routing and batch opportunities (issue 20, items 3 and 4): spend that a cheaper model
-- of the same provider, or the provider's Batch API, would have cut, and the cost per
-- successful task per model that says whether the cheaper model does the job.
--
-- Views follow the rules of 016: parameterized by {since_hours:UInt32}, reading only the
-- calls of the last since_hours hours. Target prices come from the newest price catalogue
-- (`otel-llmcost prices sync`; the demo runs it): without one these views are empty, and
-- `otel-llmcost opportunities` says so.
--
-- A call's cost on another price (a cheaper model, the batch variant) is the text part
-- of pricing.formula (v_calls_repriced in 009 has the full form, audio and image
-- included): uncached input, cache read, 5-minute and 1-hour cache writes, output and
-- reasoning tokens at the catalogue's rates, the price tier picked by the call's input
-- tokens. It uses the call's own token counts: another model's tokenizer would count a
-- little differently, so these figures are estimates, named so in every column.

-- Routing pairs: which cheaper model to price a model's small requests on. Your rows
-- here replace the defaults of v_routing_pairs for the same (Provider, FromModel); a
-- row with ToModel = '' switches the default off. Provider and model ids are the price
-- catalogue's (genai-prices: `SELECT DISTINCT Provider, Model FROM v_prices_current`); FromModel also matches the
-- requested model id as the app sent it.
CREATE TABLE IF NOT EXISTS {database}.llm_routing_pairs {cluster} (
    Provider LowCardinality(String),
    FromModel String,
    ToModel String,
    -- A request is small when both hold: at most this many input and output tokens.
    MaxInputTokens UInt64 DEFAULT 1000,
    MaxOutputTokens UInt64 DEFAULT 250
) ENGINE = {merge_tree}
ORDER BY (Provider, FromModel);

-- The pairs in force: yours, then the defaults you did not replace. The defaults pair
-- each flagship with the small model of its own family and generation, the move the
-- providers' own guides suggest for short, simple requests.
CREATE VIEW IF NOT EXISTS {database}.v_routing_pairs {cluster} AS
SELECT
    Provider,
    FromModel,
    ToModel,
    MaxInputTokens,
    MaxOutputTokens,
    'yours' AS Origin
FROM {database}.llm_routing_pairs
WHERE ToModel != ''
UNION ALL
SELECT
    Provider,
    FromModel,
    ToModel,
    toUInt64(1000) AS MaxInputTokens,
    toUInt64(250) AS MaxOutputTokens,
    'default' AS Origin
FROM values(
    'Provider String, FromModel String, ToModel String',
    ('openai', 'gpt-4o', 'gpt-4o-mini'),
    ('openai', 'chatgpt-4o-latest', 'gpt-4o-mini'),
    ('openai', 'gpt-4-turbo', 'gpt-4o-mini'),
    ('openai', 'gpt-4', 'gpt-4o-mini'),
    ('openai', 'gpt-4.1', 'gpt-4.1-mini'),
    ('openai', 'gpt-4.1-mini', 'gpt-4.1-nano'),
    ('openai', 'gpt-5', 'gpt-5-mini'),
    ('openai', 'gpt-5-mini', 'gpt-5-nano'),
    ('openai', 'o1', 'o4-mini'),
    ('openai', 'o3', 'o4-mini'),
    ('anthropic', 'claude-opus-4-0', 'claude-sonnet-4-0'),
    ('anthropic', 'claude-opus-4-1', 'claude-sonnet-4-5'),
    ('anthropic', 'claude-sonnet-4-0', 'claude-3-5-haiku-latest'),
    ('anthropic', 'claude-sonnet-4-5', 'claude-haiku-4-5'),
    ('anthropic', 'claude-3-7-sonnet-latest', 'claude-3-5-haiku-latest'),
    ('anthropic', 'claude-3-5-sonnet', 'claude-3-5-haiku-latest'),
    ('google', 'gemini-2.5-pro', 'gemini-2.5-flash'),
    ('google', 'gemini-2.5-flash', 'gemini-2.5-flash-lite'),
    ('google', 'gemini-2.0-flash', 'gemini-2.0-flash-lite'),
    ('google', 'gemini-1.5-pro', 'gemini-1.5-flash'),
    ('groq', 'llama-3.3-70b-versatile', 'llama-3.1-8b-instant'),
    ('mistral', 'mistral-large', 'mistral-small-latest')
)
WHERE (Provider, FromModel) NOT IN (SELECT Provider, FromModel FROM {database}.llm_routing_pairs);

-- Routing opportunity per endpoint, feature and model: of the calls on a model with a
-- routing pair, the small ones (both token bounds of the pair hold), what they cost, and
-- what they would have cost on the pair's cheaper model at its catalogue price in force
-- on the call's date. EstSavings is recorded spend minus that estimate, so a negotiated
-- price on the expensive model counts as paid; per month it is scaled to 30 days from the
-- span seen (at least one day, as v_missed_caching). Calls that failed, were unpriced or
-- implausible are left out. TargetPriced = 0: the cheaper model is not in the catalogue
-- (no sync yet, or a pair naming an unknown model) and EstSavings is NULL.
-- Whether the cheaper model does the job is for v_task_cost_by_model to say, per endpoint.
CREATE VIEW IF NOT EXISTS {database}.v_routing_opportunities {cluster} AS
SELECT
    ServiceName,
    Endpoint,
    Feature,
    Team,
    Provider,
    RequestModel,
    FromModel,
    ToModel,
    Origin,
    MaxInputTokens,
    MaxOutputTokens,
    count() AS Calls,
    countIf(Small) AS SmallCalls,
    SmallCalls / Calls AS SmallShare,
    sum(CostTotal) AS Spend,
    sumIf(CostTotal, Small) AS SmallSpend,
    min(TargetPriced) AS TargetPriced,
    if(TargetPriced = 1, sumIf(TargetCost, Small), NULL) AS EstSmallSpendOnTarget,
    SmallSpend - EstSmallSpendOnTarget AS EstSavings,
    minIf(Timestamp, Small) AS FirstSeen,
    maxIf(Timestamp, Small) AS LastSeen,
    greatest(1, dateDiff('second', FirstSeen, LastSeen) / 86400) AS DaysSeen,
    EstSavings * 30 / DaysSeen AS EstSavingsPerMonth
FROM (
    SELECT
        c.Timestamp AS Timestamp,
        c.ServiceName AS ServiceName,
        c.Endpoint AS Endpoint,
        c.Feature AS Feature,
        c.Team AS Team,
        c.PriceProvider AS Provider,
        c.RequestModel AS RequestModel,
        c.CostTotal AS CostTotal,
        r.FromModel AS FromModel,
        r.ToModel AS ToModel,
        r.Origin AS Origin,
        r.MaxInputTokens AS MaxInputTokens,
        r.MaxOutputTokens AS MaxOutputTokens,
        c.InputTokens <= r.MaxInputTokens AND c.OutputTokens <= r.MaxOutputTokens AS Small,
        t.Model != '' AS TargetPriced,
        (toInt64(c.UncachedInputTokens) * t.InputMtok
         + toInt64(c.CacheReadTokens) * t.CacheReadMtok
         + (toInt64(c.CacheWriteTokens) - least(toInt64(c.CacheWrite1hTokens), toInt64(c.CacheWriteTokens)))
             * t.CacheWrite5mMtok
         + least(toInt64(c.CacheWrite1hTokens), toInt64(c.CacheWriteTokens)) * t.CacheWrite1hMtok
         + (toInt64(c.OutputTokens) - least(toInt64(c.ReasoningTokens), toInt64(c.OutputTokens))) * t.OutputMtok
         + least(toInt64(c.ReasoningTokens), toInt64(c.OutputTokens)) * t.ReasoningMtok) / 1e6 AS TargetCost
    FROM (
        SELECT
            c.*,
            m.Model AS CatalogueModel
        FROM (
            SELECT *
            FROM {database}.llm_calls
            WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
              AND NOT Unpriced
              AND NOT Implausible
              AND StatusCode != 'Error'
              -- Only models the pairs below can match, by their own name or by the
              -- catalogue model they resolve to, so that the joins see no other call (a
              -- wider set than the joins keep, tested on the model column alone: cheap).
              AND RequestModel IN (
                  SELECT FromModel
                  FROM {database}.v_routing_pairs
                  UNION ALL
                  SELECT RequestModel
                  FROM {database}.llm_price_refs
                  WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
                    AND (PriceProvider, Model) IN (SELECT Provider, FromModel FROM {database}.v_routing_pairs)
              )
        ) AS c
        LEFT JOIN (
            SELECT *
            FROM {database}.llm_price_refs
            WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
        ) AS m
            ON m.PriceProvider = c.PriceProvider
            AND m.RequestModel = c.RequestModel
            AND m.ResponseModel = c.ResponseModel
            AND m.CallVariant = c.PriceVariant
            AND c.Timestamp >= m.ValidFrom
            AND c.Timestamp < m.ValidUntil
    ) AS c
    INNER JOIN {database}.v_routing_pairs AS r
        ON r.Provider = c.PriceProvider
        AND (r.FromModel = c.CatalogueModel OR r.FromModel = c.RequestModel)
    LEFT JOIN (
        SELECT *
        FROM {database}.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
          AND Variant = ''
    ) AS t
        ON t.Provider = r.Provider
        AND t.Model = r.ToModel
        AND c.Timestamp >= t.EffectiveFrom
        AND c.Timestamp < t.EffectiveUntil
        AND c.InputTokens >= t.InputTokensFrom
        AND c.InputTokens < t.InputTokensUntil
    -- A model already the pair's target (a chain such as gpt-4.1 -> gpt-4.1-mini -> nano
    -- lists each step once) is never its own opportunity.
    WHERE r.ToModel NOT IN (c.CatalogueModel, c.RequestModel)
)
GROUP BY
    ServiceName,
    Endpoint,
    Feature,
    Team,
    Provider,
    RequestModel,
    FromModel,
    ToModel,
    Origin,
    MaxInputTokens,
    MaxOutputTokens;

-- Cost per successful task per model: tasks with a recorded outcome in the window, each
-- attributed to the model it spent most on, with all its spend (failed tasks included:
-- their cost is the price of each success, as v_cost_per_successful_task). Put the
-- expensive and the cheaper model of a routing pair side by side per endpoint before
-- routing: a cheaper model whose tasks fail more may cost more per success. A task's
-- calls are read from a day before the window too, since a task can start before its
-- outcome's window does.
CREATE VIEW IF NOT EXISTS {database}.v_task_cost_by_model {cluster} AS
SELECT
    o.ServiceName AS ServiceName,
    if(o.Feature != '', o.Feature, c.Feature) AS Feature,
    if(o.Endpoint != '', o.Endpoint, c.Endpoint) AS Endpoint,
    if(o.Team != '', o.Team, c.Team) AS Team,
    c.Model AS Model,
    count() AS Tasks,
    sum(o.Success) AS SuccessfulTasks,
    SuccessfulTasks / Tasks AS SuccessRate,
    sum(c.CostTotal) AS CostTotal,
    CostTotal / nullIf(SuccessfulTasks, 0) AS CostPerSuccessfulTask
FROM (
    SELECT
        TaskKey,
        argMax(ServiceName, Timestamp) AS ServiceName,
        argMax(Success, Timestamp) AS Success,
        argMax(Feature, Timestamp) AS Feature,
        argMax(Endpoint, Timestamp) AS Endpoint,
        argMax(Team, Timestamp) AS Team
    FROM {database}.llm_task_outcomes
    WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
    GROUP BY TaskKey
) AS o
INNER JOIN (
    SELECT
        TaskKey,
        argMax(RequestModel, ModelCost) AS Model,
        sum(ModelCost) AS CostTotal,
        any(Feature) AS Feature,
        any(Endpoint) AS Endpoint,
        any(Team) AS Team
    FROM (
        SELECT
            if(TaskId != '', TaskId, TraceId) AS TaskKey,
            RequestModel,
            sum(CostTotal) AS ModelCost,
            any(Feature) AS Feature,
            any(Endpoint) AS Endpoint,
            any(Team) AS Team
        FROM {database}.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32} + 24)
          -- Only tasks with an outcome in the window (the join below keeps no other):
          -- grouping every trace of the range is most of the cost otherwise.
          AND if(TaskId != '', TaskId, TraceId) IN (
              SELECT TaskKey
              FROM {database}.llm_task_outcomes
              WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          )
        GROUP BY
            TaskKey,
            RequestModel
    )
    GROUP BY TaskKey
) AS c ON c.TaskKey = o.TaskKey
GROUP BY
    ServiceName,
    Feature,
    Endpoint,
    Team,
    Model;

-- Batch opportunity: calls no user waits for, priced at the provider's Batch API
-- discount (the catalogue's `processing=batch` variant of the call's own model: 50% at
-- OpenAI, Anthropic, Google, Mistral and Groq). A call is batch-eligible when the app
-- marked it background (llmcost.attributes(background=True)), or, unmarked, when it ran
-- outside any request (no endpoint), did not stream (a stream is someone reading), and
-- its service records endpoints for other calls in the window (so "no endpoint" means
-- "outside a request", not "endpoints never set up"). background=False keeps a call out.
-- The batch cost keeps what the call paid and applies the catalogue's discount to it:
-- CostTotal * (its tokens at the batch price / its tokens at the standard price), so a
-- negotiated price is discounted, not replaced. A model with no batch price (none listed,
-- or no sync yet) is not listed. Calls already on the batch variant are never listed.
CREATE VIEW IF NOT EXISTS {database}.v_batch_opportunities {cluster} AS
SELECT
    ServiceName,
    Feature,
    Team,
    Provider,
    RequestModel,
    Reason,
    count() AS Calls,
    sum(CostTotal) AS Spend,
    sum(BatchCost) AS EstSpendAtBatchPrice,
    Spend - EstSpendAtBatchPrice AS EstSavings,
    1 - EstSpendAtBatchPrice / nullIf(Spend, 0) AS BatchDiscount,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen,
    greatest(1, dateDiff('second', FirstSeen, LastSeen) / 86400) AS DaysSeen,
    EstSavings * 30 / DaysSeen AS EstSavingsPerMonth
FROM (
    SELECT
        c.Timestamp AS Timestamp,
        c.ServiceName AS ServiceName,
        c.Feature AS Feature,
        c.Team AS Team,
        c.PriceProvider AS Provider,
        c.RequestModel AS RequestModel,
        if(c.Background = 1, 'marked background', 'outside any request') AS Reason,
        c.CostTotal AS CostTotal,
        c.CostTotal * BatchTokensCost / nullIf(StandardTokensCost, 0) AS BatchCost,
        toInt64(c.UncachedInputTokens) AS uncached,
        toInt64(c.CacheReadTokens) AS read,
        least(toInt64(c.CacheWrite1hTokens), toInt64(c.CacheWriteTokens)) AS write_1h,
        toInt64(c.CacheWriteTokens) - write_1h AS write_5m,
        least(toInt64(c.ReasoningTokens), toInt64(c.OutputTokens)) AS reasoning,
        toInt64(c.OutputTokens) - reasoning AS output,
        uncached * s.InputMtok + read * s.CacheReadMtok + write_5m * s.CacheWrite5mMtok
            + write_1h * s.CacheWrite1hMtok + output * s.OutputMtok + reasoning * s.ReasoningMtok
            AS StandardTokensCost,
        uncached * b.InputMtok + read * b.CacheReadMtok + write_5m * b.CacheWrite5mMtok
            + write_1h * b.CacheWrite1hMtok + output * b.OutputMtok + reasoning * b.ReasoningMtok
            AS BatchTokensCost
    FROM (
        SELECT *
        FROM {database}.llm_calls
        WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
          AND NOT Unpriced
          AND NOT Implausible
          AND CostTotal > 0
          AND PriceVariant NOT LIKE '%processing=batch%'
          AND ifNull(
              Background,
              Endpoint = ''
                  AND Stream = 0
                  AND ServiceName IN (
                      SELECT DISTINCT ServiceName
                      FROM {database}.llm_calls
                      WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
                        AND Endpoint != ''
                  )
          ) = 1
    ) AS c
    INNER JOIN (
        SELECT *
        FROM {database}.llm_price_refs
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
    ) AS m
        ON m.PriceProvider = c.PriceProvider
        AND m.RequestModel = c.RequestModel
        AND m.ResponseModel = c.ResponseModel
        AND m.CallVariant = c.PriceVariant
        AND c.Timestamp >= m.ValidFrom
        AND c.Timestamp < m.ValidUntil
    INNER JOIN (
        SELECT *
        FROM {database}.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
          AND Variant = ''
    ) AS s
        ON s.Provider = m.Provider
        AND s.Model = m.Model
        AND c.Timestamp >= s.EffectiveFrom
        AND c.Timestamp < s.EffectiveUntil
        AND c.InputTokens >= s.InputTokensFrom
        AND c.InputTokens < s.InputTokensUntil
    INNER JOIN (
        SELECT *
        FROM {database}.llm_prices
        WHERE SyncId = (SELECT max(SyncId) FROM {database}.llm_price_syncs)
          AND Variant = 'processing=batch'
    ) AS b
        ON b.Provider = m.Provider
        AND b.Model = m.Model
        AND c.Timestamp >= b.EffectiveFrom
        AND c.Timestamp < b.EffectiveUntil
        AND c.InputTokens >= b.InputTokensFrom
        AND c.InputTokens < b.InputTokensUntil
)
WHERE BatchCost IS NOT NULL
GROUP BY
    ServiceName,
    Feature,
    Team,
    Provider,
    RequestModel,
    Reason;
