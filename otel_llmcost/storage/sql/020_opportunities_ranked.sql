-- One ranked list of what to change to spend less (issue 20, item 7): every savings view
-- as rows of one shape, each with its size in dollars per month, the evidence behind it
-- and the action, for `otel-llmcost opportunities`, the report, the HTML report and the
-- Opportunities dashboard section.
--
-- v_opportunities(since_hours = N): items active in the last N hours (their last call,
-- write or repeat within the window; duplicates, routing, batch and evidence read only the
-- window's calls). MonthlySavingUsd is each source view's estimate
-- scaled to 30 days from the span its evidence covers (at least one day); SeenSavingUsd
-- is the unscaled figure over that span. Items can overlap (a repeated request may also
-- be a missed cache hit, a background job may also be routable): rank them, do not add
-- them up. Only positive savings are listed.
--
-- Kinds, their source and the evidence each carries:
--   missed_caching       v_missed_caching         a shared prefix above the provider's minimum, never cached
--   cache_not_paid_back  v_cache_never_paid_back  cache writes read fewer times than their breakeven
--   duplicate_requests   v_exact_duplicates       identical requests, per endpoint and model
--   near_duplicates      v_near_duplicates        near-identical requests, only what an exact cache misses
--   routing              v_routing_opportunities  small requests on a model with a cheaper sibling
--   batch                v_batch_opportunities    work no user waits for, at the Batch API discount
--   unused_evidence      v_evidence_waste_hourly  retrieved evidence no answer cited
CREATE VIEW IF NOT EXISTS {database}.v_opportunities {cluster} AS
SELECT
    Kind,
    ServiceName,
    Key,
    Provider,
    Model,
    MonthlySavingUsd,
    SeenSavingUsd,
    DaysSeen,
    Evidence,
    Action
FROM (
    SELECT
        'missed_caching' AS Kind,
        ServiceName,
        arrayStringConcat(Endpoints, ', ') AS Key,
        Provider,
        RequestModel AS Model,
        EstSavingsPerMonth AS MonthlySavingUsd,
        EstSavings AS SeenSavingUsd,
        DaysSeen,
        format(
            '{} calls share a {}-token prompt prefix (cacheable from {} tokens); {} came within 5 minutes of the previous one, and none read from cache',
            Calls, PrefixTokens, MinCacheTokens, ExpectedReads
        ) AS Evidence,
        multiIf(
            Provider = 'anthropic', 'mark the end of the shared prefix with cache_control',
            Provider = 'openai', 'keep the shared prefix first and byte-identical, with one prompt_cache_key',
            Provider IN ('google', 'gcp.gemini', 'gcp.vertex_ai'), 'put the shared prefix in a context cache (client.caches.create)',
            'enable prompt caching for the shared prefix'
        ) AS Action
    FROM {database}.v_missed_caching(since_hours = {since_hours:UInt32})
    WHERE LastSeen >= now() - toIntervalHour({since_hours:UInt32})
      AND EstSavingsPerMonth > 0

    UNION ALL

    SELECT
        'cache_not_paid_back' AS Kind,
        ServiceName,
        if(Endpoint != '', Endpoint, arrayStringConcat(arraySort(arrayDistinct(arrayFlatten(groupArray(Endpoints)))), ', ')) AS Key,
        Provider,
        RequestModel AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(NetLoss) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(FirstWrite), max(LastWrite)) / 86400) AS DaysSeen,
        format(
            '{} cache write{}{} read {} time{} in all, against a breakeven of {} reads each',
            sum(Writes), if(sum(Writes) = 1, '', 's'),
            if(sum(Writes1h) > 0, format(' ({} with a 1-hour TTL)', toString(sum(Writes1h))), ''),
            sum(Reads), if(sum(Reads) = 1, '', 's'),
            if(avgIf(BreakevenReads, BreakevenReads > 0) > 0, toString(round(avgIf(BreakevenReads, BreakevenReads > 0), 2)), 'unknown')
        ) AS Evidence,
        if(
            sum(Writes1h) > 0,
            'use the 5-minute cache TTL, or drop cache_control here',
            'drop cache_control from this prompt'
        ) AS Action
    FROM {database}.v_cache_never_paid_back(since_hours = {since_hours:UInt32})
    WHERE LastWrite >= now() - toIntervalHour({since_hours:UInt32})
      AND NetLoss > 0
    GROUP BY
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
    HAVING SeenSavingUsd > 0

    UNION ALL

    SELECT
        'duplicate_requests' AS Kind,
        ServiceName,
        if(Endpoints[1] != '', Endpoints[1], '(no endpoint)') AS Key,
        '' AS Provider,
        RequestModel AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(RepeatSpend) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(FirstSeen), max(LastSeen)) / 86400) AS DaysSeen,
        format(
            '{} distinct request{} sent more than once ({} repeat{} in all), each answered anew',
            count(), if(count() = 1, '', 's'), sum(Repeats), if(sum(Repeats) = 1, '', 's')
        ) AS Evidence,
        'cache answers to identical requests, or stop the caller repeating them' AS Action
    FROM {database}.v_exact_duplicates(since_hours = {since_hours:UInt32})
    GROUP BY
        ServiceName,
        Key,
        RequestModel
    HAVING SeenSavingUsd > 0

    UNION ALL

    SELECT
        'near_duplicates' AS Kind,
        ServiceName,
        if(Endpoints[1] != '', Endpoints[1], '(no endpoint)') AS Key,
        '' AS Provider,
        RequestModel AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(NearOnlyRepeatSpend) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(FirstSeen), max(LastSeen)) / 86400) AS DaysSeen,
        format(
            '{} calls in {} group{} of near-identical requests ({} distinct texts differing in case, spacing or a word)',
            sum(Calls), count(), if(count() = 1, '', 's'), sum(DistinctRequests)
        ) AS Evidence,
        'cache answers by normalized text (a semantic cache), once the words that differ are known not to change the answer' AS Action
    FROM {database}.v_near_duplicates(since_hours = {since_hours:UInt32})
    WHERE DistinctRequests > 1
    GROUP BY
        ServiceName,
        Key,
        RequestModel
    HAVING SeenSavingUsd > 0

    UNION ALL

    SELECT
        'routing' AS Kind,
        ServiceName,
        if(Endpoint != '', Endpoint, Feature) AS Key,
        Provider,
        RequestModel AS Model,
        EstSavingsPerMonth AS MonthlySavingUsd,
        EstSavings AS SeenSavingUsd,
        DaysSeen,
        format(
            '{} of {} calls are small (at most {} input and {} output tokens) and cost ${}; on {} about ${}',
            SmallCalls, Calls, MaxInputTokens, MaxOutputTokens, toString(round(SmallSpend, 4)), ToModel,
            toString(round(EstSmallSpendOnTarget, 4))
        ) AS Evidence,
        format(
            'route small requests of {} from {} to {}, after comparing task success per model',
            Key, RequestModel, ToModel
        ) AS Action
    FROM {database}.v_routing_opportunities(since_hours = {since_hours:UInt32})
    WHERE TargetPriced = 1
      AND EstSavings > 0

    UNION ALL

    SELECT
        'batch' AS Kind,
        ServiceName,
        if(Feature != '', Feature, '(no feature)') AS Key,
        Provider,
        RequestModel AS Model,
        EstSavingsPerMonth AS MonthlySavingUsd,
        EstSavings AS SeenSavingUsd,
        DaysSeen,
        format(
            '{} calls {} cost ${}; the {} Batch API price is {}% lower',
            Calls, if(Reason = 'marked background', 'marked background', 'made outside any request'),
            toString(round(Spend, 4)), Provider, toString(round(100 * BatchDiscount))
        ) AS Evidence,
        format('move {} to the {} Batch API', Key, Provider) AS Action
    FROM {database}.v_batch_opportunities(since_hours = {since_hours:UInt32})
    WHERE EstSavings > 0

    UNION ALL

    SELECT
        'unused_evidence' AS Kind,
        ServiceName,
        Endpoint AS Key,
        '' AS Provider,
        '' AS Model,
        SeenSavingUsd * 30 / DaysSeen AS MonthlySavingUsd,
        sum(NeverCitedUsd) AS SeenSavingUsd,
        greatest(1, dateDiff('second', min(Hour), max(Hour)) / 86400) AS DaysSeen,
        format(
            '{}% of the retrieved evidence tokens of {} calls were never cited by the answer',
            toString(round(100 * sum(EvidenceTokensNeverCited) / nullIf(sum(EvidenceTokensCited) + sum(EvidenceTokensNeverCited), 0))),
            sum(CallsWithCitations)
        ) AS Evidence,
        'retrieve fewer or shorter chunks, or rerank them' AS Action
    FROM {database}.v_evidence_waste_hourly(since_hours = {since_hours:UInt32})
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    GROUP BY
        ServiceName,
        Endpoint
    HAVING SeenSavingUsd > 0
)
ORDER BY MonthlySavingUsd DESC;
