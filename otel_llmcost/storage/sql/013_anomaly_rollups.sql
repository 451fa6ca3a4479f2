-- Hourly anomaly detectors (docs/views.md, "Anomalies"). One narrow rollup per
-- (Dimension, Key, ServiceName, Hour) over the five dimensions, fed from llm_calls;
-- every detector reads only that rollup, bounded to the 42 days before "now"
-- (the 14 days shown + a baseline of at most 28 days). Contributors read
-- llm_calls for at most 6 anomalous hours and the same hours 7 days earlier.
-- Needs ClickHouse >= 24.6: parameterized views that pass their parameter on to
-- another (24.2-24.4, ClickHouse#54916, #65889) and take an expression such as now()
-- as argument (ClickHouse#63502); tested on chdb 4.4 (ClickHouse 26.9).

CREATE TABLE IF NOT EXISTS {database}.llm_anomaly_hourly {cluster} (
    Hour DateTime,
    Dimension LowCardinality(String),
    ServiceName LowCardinality(String),
    Key String,
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Throttled SimpleAggregateFunction(sum, UInt64),
    Unpriced SimpleAggregateFunction(sum, UInt64),
    CacheHitCalls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheEligibleTokens SimpleAggregateFunction(sum, UInt64),
    CacheShareSum SimpleAggregateFunction(sum, Float64),
    CacheShareSq SimpleAggregateFunction(sum, Float64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    DurationMsQuantiles AggregateFunction(quantiles(0.5, 0.95), Float64)
) ENGINE = {aggregating_merge_tree}
PARTITION BY toYYYYMM(Hour)
ORDER BY (Hour, Dimension, ServiceName, Key)
TTL Hour + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

-- InputTokens include the cache reads (as in v_cache_efficiency), so the
-- cache-eligible input is InputTokens; a call "hits" when it read any cache.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_anomaly_hourly_mv {cluster}
TO {database}.llm_anomaly_hourly
AS SELECT
    toStartOfHour(Timestamp) AS Hour,
    DimKey.1 AS Dimension,
    ServiceName,
    DimKey.2 AS Key,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS Errors,
    toUInt64(countIf(Throttled = 1 OR HttpStatus = 429)) AS Throttled,
    toUInt64(countIf(Unpriced = 1)) AS Unpriced,
    toUInt64(sum(CacheHit)) AS CacheHitCalls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(EligibleTokens) AS CacheEligibleTokens,
    sum(CallShare) AS CacheShareSum,
    sum(CallShare * CallShare) AS CacheShareSq,
    sum(CostTotal) AS CostTotal,
    quantilesState(0.5, 0.95)(DurationMs) AS DurationMsQuantiles
FROM (
    SELECT
        *,
        greatest(InputTokens, CacheReadTokens) AS EligibleTokens,
        CacheReadTokens > 0 AS CacheHit,
        if(EligibleTokens > 0, CacheReadTokens / EligibleTokens, 0) AS CallShare
    FROM {database}.llm_calls
)
ARRAY JOIN [('endpoint', Endpoint), ('model', RequestModel), ('feature', Feature), ('team', Team), ('user', User)] AS DimKey
WHERE DimKey.2 != ''
GROUP BY
    Hour,
    Dimension,
    ServiceName,
    Key;

-- Thresholds of the detectors, one row; edit with ALTER TABLE ... UPDATE or
-- TRUNCATE + INSERT. Defaults are documented in docs/views.md.
CREATE TABLE IF NOT EXISTS {database}.llm_anomaly_settings {cluster} (
    Id UInt8 DEFAULT 1,
    ScoreThreshold Float64 DEFAULT 5,
    ProportionZ Float64 DEFAULT 4,
    SpendFloorUsdPerHour Float64 DEFAULT 0.25,
    CallsFloorPerHour Float64 DEFAULT 50,
    ProportionFloor Float64 DEFAULT 0.1,
    NewEntityFloorUsd Float64 DEFAULT 1,
    DriftK Float64 DEFAULT 0.03,
    DriftH Float64 DEFAULT 0.3,
    DriftFloorUsdPerDay Float64 DEFAULT 5,
    RelearnDays UInt16 DEFAULT 7
) ENGINE = {merge_tree}
ORDER BY Id;

-- Dense hourly series of the 42 days before {now}, per (Dimension, ServiceName, Key);
-- hours without calls are rows of zeros. The hour holding {now} is partial: Frac
-- is the share of it elapsed, and the counts of that hour are pro-rated by it.
CREATE VIEW IF NOT EXISTS {database}.v_anomaly_series_at {cluster} AS
SELECT
    Dimension,
    ServiceName,
    Key,
    Hour,
    if(Hour = toStartOfHour({now:DateTime}), greatest(dateDiff('second', Hour, {now:DateTime}), 300) / 3600, 1) AS Frac,
    Calls,
    Cost,
    Errors,
    Throttled,
    Unpriced,
    CacheHitCalls,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    Eligible,
    ShareSum,
    ShareSq,
    P95
FROM (
    SELECT
        Dimension,
        ServiceName,
        Key,
        Hour,
        toFloat64(sum(Calls)) AS Calls,
        sum(CostTotal) AS Cost,
        toFloat64(sum(Errors)) AS Errors,
        toFloat64(sum(Throttled)) AS Throttled,
        toFloat64(sum(Unpriced)) AS Unpriced,
        toFloat64(sum(CacheHitCalls)) AS CacheHitCalls,
        toFloat64(sum(InputTokens)) AS InputTokens,
        toFloat64(sum(OutputTokens)) AS OutputTokens,
        toFloat64(sum(CacheReadTokens)) AS CacheReadTokens,
        toFloat64(sum(CacheEligibleTokens)) AS Eligible,
        sum(CacheShareSum) AS ShareSum,
        sum(CacheShareSq) AS ShareSq,
        ifNotFinite(quantilesMerge(0.5, 0.95)(DurationMsQuantiles)[2], 0) AS P95
    FROM {database}.llm_anomaly_hourly
    WHERE Hour >= toStartOfHour({now:DateTime}) - INTERVAL 42 DAY
        AND Hour <= {now:DateTime}
    GROUP BY
        Dimension,
        ServiceName,
        Key,
        Hour
    ORDER BY
        Dimension,
        ServiceName,
        Key,
        Hour WITH FILL
            FROM toStartOfHour({now:DateTime}) - INTERVAL 42 DAY
            TO toStartOfHour({now:DateTime}) + INTERVAL 1 HOUR
            STEP INTERVAL 1 HOUR
);

-- One row per (series, hour, kind) judged by a detector, over the 14 days before
-- {now}: Flag says whether it is anomalous. Hourly kinds compare the hour with the
-- same hour of day on the 8 previous days of the same type (weekday or weekend;
-- ~1.6 weeks of weekdays, 4 weeks of weekends), by median and MAD:
-- Score = (observed - median) / max(1.4826 MAD, 10% of median, a small unit floor).
-- Rates use a two-proportion z between the hour and the 168 hours before it
-- (n = calls: low traffic is judged by significance). Needs 7 days of series age.
CREATE VIEW IF NOT EXISTS {database}.v_anomaly_hours_at {cluster} AS
WITH
    (SELECT tuple(ScoreThreshold, ProportionZ, SpendFloorUsdPerHour, CallsFloorPerHour, ProportionFloor)
     FROM {database}.llm_anomaly_settings ORDER BY Id LIMIT 1) AS S,
    ifNull(S.1, 5) AS ScoreThreshold,
    ifNull(S.2, 4) AS ProportionZ,
    ifNull(S.3, 0.25) AS SpendFloor,
    ifNull(S.4, 50) AS CallsFloor,
    ifNull(S.5, 0.1) AS PropFloor
SELECT
    Dimension,
    ServiceName,
    Key,
    Hour,
    Frac,
    Calls,
    K.1 AS Kind,
    K.2 AS Expected,
    K.3 AS Observed,
    K.4 AS Score,
    K.5 AS Flag,
    K.6 AS Metric,
    K.7 AS Since
FROM (
    SELECT
        *,
        lagInFrame(SpendZ, 1, 0.) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS PrevSpendZ,
        lagInFrame(CallsZ, 1, 0.) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS PrevCallsZ
    FROM (
    SELECT
        *,
        arrayFilter(x -> isFinite(x), arrayMap(t -> t.1, Base)) AS BSpend,
        arrayFilter(x -> isFinite(x), arrayMap(t -> t.2, Base)) AS BCalls,
        arrayFilter(x -> isFinite(x), arrayMap(t -> t.3, Base)) AS BCpc,
        arrayFilter(x -> isFinite(x), arrayMap(t -> t.4, Base)) AS BTpc,
        arrayFilter(x -> isFinite(x), arrayMap(t -> t.5, Base)) AS BP95,
        arrayReduce('quantileExact', BSpend) AS MedSpend,
        arrayReduce('quantileExact', arrayMap(x -> abs(x - MedSpend), BSpend)) AS MadSpend,
        arrayReduce('quantileExact(0.9)', BSpend) AS Q90Spend,
        arrayReduce('quantileExact', BCalls) AS MedCalls,
        arrayReduce('quantileExact', arrayMap(x -> abs(x - MedCalls), BCalls)) AS MadCalls,
        arrayReduce('quantileExact(0.9)', BCalls) AS Q90Calls,
        arrayReduce('quantileExact', BCpc) AS MedCpc,
        arrayReduce('quantileExact', arrayMap(x -> abs(x - MedCpc), BCpc)) AS MadCpc,
        arrayReduce('quantileExact', BTpc) AS MedTpc,
        arrayReduce('quantileExact', arrayMap(x -> abs(x - MedTpc), BTpc)) AS MadTpc,
        arrayReduce('quantileExact', BP95) AS MedP95,
        arrayReduce('quantileExact', arrayMap(x -> abs(x - MedP95), BP95)) AS MadP95,
        Hour >= FirstSeen + INTERVAL 7 DAY AS Aged,
        -- spend and calls: the scale is at least half the Poisson noise of the hour's
        -- expected call count, so sparse series (a user at night) are not noisy
        ifNotFinite(arrayAvg(BCalls), 0) AS MeanCalls,
        ifNotFinite(arrayAvg(BCpc), 0) AS MeanCpc,
        (SpendV - MedSpend) / greatest(1.4826 * MadSpend, 0.1 * MedSpend, 0.5 * (Q90Spend - MedSpend),
            0.5 * MeanCpc * sqrt(MeanCalls + 1), 0.05) AS SpendZ,
        (CallsV - MedCalls) / greatest(1.4826 * MadCalls, 0.1 * MedCalls, 0.5 * (Q90Calls - MedCalls),
            0.5 * sqrt(MeanCalls + 1), 1) AS CallsZ,
        -- share tests over the hour and over the 3 hours ending with it, against the
        -- 168 hours before (n = calls), positive when the share moved the bad way:
        -- signed likelihood-ratio z for counts of calls, Welch z of the per-call
        -- cache share for the token share
        CacheReadTokens / greatest(Eligible, 1) AS P1Tok,
        Read7 / greatest(Eligible7, 1) AS P0Tok,
        -(P1Tok - P0Tok) AS DTok,
        if(Calls > 0 AND Calls7 > 0, -((ShareSum / greatest(Calls, 1)) - (ShareSum7 / greatest(Calls7, 1))) / sqrt(greatest(ShareSq / greatest(Calls, 1) - (ShareSum / greatest(Calls, 1)) * (ShareSum / greatest(Calls, 1)), 0.0025) / Calls + greatest(ShareSq7 / greatest(Calls7, 1) - (ShareSum7 / greatest(Calls7, 1)) * (ShareSum7 / greatest(Calls7, 1)), 0.0025) / Calls7), 0) AS ZTok,
        Calls >= 1 AND Calls7 >= 20 AND ZTok >= ProportionZ AND DTok >= PropFloor AND DTok * Calls >= 3 AS OkTok,
        Read_3 / greatest(Eligible_3, 1) AS P1Tok3,
        Read7_3 / greatest(Eligible7_3, 1) AS P0Tok3,
        -(P1Tok3 - P0Tok3) AS DTok3,
        if(Calls_3 > 0 AND Calls7_3 > 0, -((ShareSum_3 / greatest(Calls_3, 1)) - (ShareSum7_3 / greatest(Calls7_3, 1))) / sqrt(greatest(ShareSq_3 / greatest(Calls_3, 1) - (ShareSum_3 / greatest(Calls_3, 1)) * (ShareSum_3 / greatest(Calls_3, 1)), 0.0025) / Calls_3 + greatest(ShareSq7_3 / greatest(Calls7_3, 1) - (ShareSum7_3 / greatest(Calls7_3, 1)) * (ShareSum7_3 / greatest(Calls7_3, 1)), 0.0025) / Calls7_3), 0) AS ZTok3,
        Calls >= 1 AND Calls_3 >= 1 AND Calls7_3 >= 20 AND ZTok3 >= ProportionZ AND DTok3 >= PropFloor AND DTok3 * Calls_3 >= 3 AS OkTok3,
        CacheHitCalls / greatest(Calls, 1) AS P1Req,
        Hits7 / greatest(Calls7, 1) AS P0Req,
        -(P1Req - P0Req) AS DReq,
        if(Calls > 0 AND Calls7 > 0, sign(DReq) * sqrt(greatest(2 * Calls * (if(P1Req > 0, P1Req * log(P1Req / least(greatest(P0Req, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1))), 0) + if(P1Req < 1, (1 - P1Req) * log((1 - P1Req) / (1 - least(greatest(P0Req, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1)))), 0)), 0)), 0) AS ZReq,
        Calls >= 1 AND Calls7 >= 20 AND ZReq >= ProportionZ AND DReq >= PropFloor AND DReq * Calls >= 3 AS OkReq,
        Hits_3 / greatest(Calls_3, 1) AS P1Req3,
        Hits7_3 / greatest(Calls7_3, 1) AS P0Req3,
        -(P1Req3 - P0Req3) AS DReq3,
        if(Calls_3 > 0 AND Calls7_3 > 0, sign(DReq3) * sqrt(greatest(2 * Calls_3 * (if(P1Req3 > 0, P1Req3 * log(P1Req3 / least(greatest(P0Req3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1))), 0) + if(P1Req3 < 1, (1 - P1Req3) * log((1 - P1Req3) / (1 - least(greatest(P0Req3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1)))), 0)), 0)), 0) AS ZReq3,
        Calls >= 1 AND Calls_3 >= 1 AND Calls7_3 >= 20 AND ZReq3 >= ProportionZ AND DReq3 >= PropFloor AND DReq3 * Calls_3 >= 3 AS OkReq3,
        Errors / greatest(Calls, 1) AS P1Err,
        Errors7 / greatest(Calls7, 1) AS P0Err,
        (P1Err - P0Err) AS DErr,
        if(Calls > 0 AND Calls7 > 0, sign(DErr) * sqrt(greatest(2 * Calls * (if(P1Err > 0, P1Err * log(P1Err / least(greatest(P0Err, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1))), 0) + if(P1Err < 1, (1 - P1Err) * log((1 - P1Err) / (1 - least(greatest(P0Err, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1)))), 0)), 0)), 0) AS ZErr,
        Calls >= 1 AND Calls7 >= 20 AND ZErr >= ProportionZ AND DErr >= PropFloor AND DErr * Calls >= 3 AS OkErr,
        Errors_3 / greatest(Calls_3, 1) AS P1Err3,
        Errors7_3 / greatest(Calls7_3, 1) AS P0Err3,
        (P1Err3 - P0Err3) AS DErr3,
        if(Calls_3 > 0 AND Calls7_3 > 0, sign(DErr3) * sqrt(greatest(2 * Calls_3 * (if(P1Err3 > 0, P1Err3 * log(P1Err3 / least(greatest(P0Err3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1))), 0) + if(P1Err3 < 1, (1 - P1Err3) * log((1 - P1Err3) / (1 - least(greatest(P0Err3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1)))), 0)), 0)), 0) AS ZErr3,
        Calls >= 1 AND Calls_3 >= 1 AND Calls7_3 >= 20 AND ZErr3 >= ProportionZ AND DErr3 >= PropFloor AND DErr3 * Calls_3 >= 3 AS OkErr3,
        Throttled / greatest(Calls, 1) AS P1Thr,
        Throttled7 / greatest(Calls7, 1) AS P0Thr,
        (P1Thr - P0Thr) AS DThr,
        if(Calls > 0 AND Calls7 > 0, sign(DThr) * sqrt(greatest(2 * Calls * (if(P1Thr > 0, P1Thr * log(P1Thr / least(greatest(P0Thr, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1))), 0) + if(P1Thr < 1, (1 - P1Thr) * log((1 - P1Thr) / (1 - least(greatest(P0Thr, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1)))), 0)), 0)), 0) AS ZThr,
        Calls >= 1 AND Calls7 >= 20 AND ZThr >= ProportionZ AND DThr >= PropFloor AND DThr * Calls >= 3 AS OkThr,
        Throttled_3 / greatest(Calls_3, 1) AS P1Thr3,
        Throttled7_3 / greatest(Calls7_3, 1) AS P0Thr3,
        (P1Thr3 - P0Thr3) AS DThr3,
        if(Calls_3 > 0 AND Calls7_3 > 0, sign(DThr3) * sqrt(greatest(2 * Calls_3 * (if(P1Thr3 > 0, P1Thr3 * log(P1Thr3 / least(greatest(P0Thr3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1))), 0) + if(P1Thr3 < 1, (1 - P1Thr3) * log((1 - P1Thr3) / (1 - least(greatest(P0Thr3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1)))), 0)), 0)), 0) AS ZThr3,
        Calls >= 1 AND Calls_3 >= 1 AND Calls7_3 >= 20 AND ZThr3 >= ProportionZ AND DThr3 >= PropFloor AND DThr3 * Calls_3 >= 3 AS OkThr3,
        Unpriced / greatest(Calls, 1) AS P1Unp,
        Unpriced7 / greatest(Calls7, 1) AS P0Unp,
        (P1Unp - P0Unp) AS DUnp,
        if(Calls > 0 AND Calls7 > 0, sign(DUnp) * sqrt(greatest(2 * Calls * (if(P1Unp > 0, P1Unp * log(P1Unp / least(greatest(P0Unp, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1))), 0) + if(P1Unp < 1, (1 - P1Unp) * log((1 - P1Unp) / (1 - least(greatest(P0Unp, 0.5 / greatest(Calls7, 1)), 1 - 0.5 / greatest(Calls7, 1)))), 0)), 0)), 0) AS ZUnp,
        Calls >= 1 AND Calls7 >= 20 AND ZUnp >= ProportionZ AND DUnp >= PropFloor AND DUnp * Calls >= 3 AS OkUnp,
        Unpriced_3 / greatest(Calls_3, 1) AS P1Unp3,
        Unpriced7_3 / greatest(Calls7_3, 1) AS P0Unp3,
        (P1Unp3 - P0Unp3) AS DUnp3,
        if(Calls_3 > 0 AND Calls7_3 > 0, sign(DUnp3) * sqrt(greatest(2 * Calls_3 * (if(P1Unp3 > 0, P1Unp3 * log(P1Unp3 / least(greatest(P0Unp3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1))), 0) + if(P1Unp3 < 1, (1 - P1Unp3) * log((1 - P1Unp3) / (1 - least(greatest(P0Unp3, 0.5 / greatest(Calls7_3, 1)), 1 - 0.5 / greatest(Calls7_3, 1)))), 0)), 0)), 0) AS ZUnp3,
        Calls >= 1 AND Calls_3 >= 1 AND Calls7_3 >= 20 AND ZUnp3 >= ProportionZ AND DUnp3 >= PropFloor AND DUnp3 * Calls_3 >= 3 AS OkUnp3
    FROM (
        SELECT
            *,
            groupArray(tuple(SpendV, CallsV, Cpc, Tpc, P95x)) OVER wh AS Base,
            sum(Calls) OVER w7 AS Calls7,
            sum(CacheHitCalls) OVER w7 AS Hits7,
            sum(CacheReadTokens) OVER w7 AS Read7,
            sum(Eligible) OVER w7 AS Eligible7,
            sum(Errors) OVER w7 AS Errors7,
            sum(Throttled) OVER w7 AS Throttled7,
            sum(Unpriced) OVER w7 AS Unpriced7,
            sum(ShareSum) OVER w7 AS ShareSum7,
            sum(ShareSq) OVER w7 AS ShareSq7,
            sum(ShareSum) OVER w3 AS ShareSum_3,
            sum(ShareSq) OVER w3 AS ShareSq_3,
            sum(ShareSum) OVER w73 AS ShareSum7_3,
            sum(ShareSq) OVER w73 AS ShareSq7_3,
            sum(Calls) OVER w3 AS Calls_3,
            sum(CacheHitCalls) OVER w3 AS Hits_3,
            sum(CacheReadTokens) OVER w3 AS Read_3,
            sum(Eligible) OVER w3 AS Eligible_3,
            sum(Errors) OVER w3 AS Errors_3,
            sum(Throttled) OVER w3 AS Throttled_3,
            sum(Unpriced) OVER w3 AS Unpriced_3,
            sum(Calls) OVER w73 AS Calls7_3,
            sum(CacheHitCalls) OVER w73 AS Hits7_3,
            sum(CacheReadTokens) OVER w73 AS Read7_3,
            sum(Eligible) OVER w73 AS Eligible7_3,
            sum(Errors) OVER w73 AS Errors7_3,
            sum(Throttled) OVER w73 AS Throttled7_3,
            sum(Unpriced) OVER w73 AS Unpriced7_3
        FROM (
            SELECT
                *,
                -- hours before the series' first call are no baseline (NaN is left out)
                if(Hour < FirstSeen, nan, Cost / Frac) AS SpendV,
                if(Hour < FirstSeen, nan, Calls / Frac) AS CallsV,
                if(Calls > 0, Cost / Calls, nan) AS Cpc,
                if(Calls > 0, (InputTokens + OutputTokens) / Calls, nan) AS Tpc,
                if(Calls > 0, P95, nan) AS P95x,
                min(if(Calls > 0, Hour, toDateTime('2106-01-01 00:00:00', 'UTC'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS FirstSeen
            FROM {database}.v_anomaly_series_at(now = {now:DateTime})
        )
        WINDOW
            wh AS (PARTITION BY Dimension, ServiceName, Key, toHour(Hour), toDayOfWeek(Hour) >= 6
                   ORDER BY Hour ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING),
            w7 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 168 PRECEDING AND 1 PRECEDING),
            w3 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
            w73 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 170 PRECEDING AND 3 PRECEDING)
    )
    )
)
ARRAY JOIN [
    -- spend and calls: two hours in a row (the first at z >= 3), or one at twice the threshold
    tuple('spend', MedSpend, SpendV, SpendZ,
        Aged AND length(BSpend) >= 4
            AND SpendZ >= ScoreThreshold AND (PrevSpendZ >= 3 OR SpendZ >= 2 * ScoreThreshold)
            AND (SpendV - MedSpend) * Frac >= SpendFloor
            AND SpendV >= 1.5 * Q90Spend, 'spend', if(SpendZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour)),
    tuple('calls', MedCalls, CallsV, CallsZ,
        Aged AND length(BCalls) >= 4
            AND CallsZ >= ScoreThreshold AND (PrevCallsZ >= 3 OR CallsZ >= 2 * ScoreThreshold)
            AND (CallsV - MedCalls) * Frac >= CallsFloor
            AND CallsV >= 1.5 * Q90Calls, 'calls', if(CallsZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour)),
    tuple('cost_per_call', MedCpc, Cpc,
        if(isFinite(Cpc), (Cpc - MedCpc) / greatest(1.4826 * MadCpc, 0.1 * MedCpc, 1e-6), 0),
        Aged AND length(BCpc) >= 4 AND Calls >= 20 AND isFinite(Cpc)
            AND abs(Cpc - MedCpc) / greatest(1.4826 * MadCpc, 0.1 * MedCpc, 1e-6) >= ScoreThreshold
            AND abs(Cpc - MedCpc) * Calls >= SpendFloor, 'cost_per_call', Hour),
    tuple('tokens_per_call', MedTpc, Tpc,
        if(isFinite(Tpc), (Tpc - MedTpc) / greatest(1.4826 * MadTpc, 0.1 * MedTpc, 1), 0),
        Aged AND length(BTpc) >= 4 AND Calls >= 20 AND isFinite(Tpc)
            AND abs(Tpc - MedTpc) / greatest(1.4826 * MadTpc, 0.1 * MedTpc, 1) >= ScoreThreshold
            AND abs(Tpc - MedTpc) >= 0.5 * MedTpc, 'tokens_per_call', Hour),
    tuple('latency', MedP95, P95x,
        if(isFinite(P95x), (P95x - MedP95) / greatest(1.4826 * MadP95, 0.1 * MedP95, 1), 0),
        Aged AND length(BP95) >= 4 AND Calls >= 20 AND isFinite(P95x)
            AND (P95x - MedP95) / greatest(1.4826 * MadP95, 0.1 * MedP95, 1) >= ScoreThreshold
            AND P95x >= 1.5 * MedP95, 'p95 latency', Hour),
    tuple('cache_hit_rate', if(OkTok3 AND NOT OkTok, P0Tok3, P0Tok), if(OkTok3 AND NOT OkTok, P1Tok3, P1Tok),
        greatest(ZTok, ZTok3), OkTok OR OkTok3, if(OkTok3 AND NOT OkTok, 'token share, last 3 h', 'token share'), Hour),
    tuple('cache_hit_rate', if(OkReq3 AND NOT OkReq, P0Req3, P0Req), if(OkReq3 AND NOT OkReq, P1Req3, P1Req),
        greatest(ZReq, ZReq3), OkReq OR OkReq3, if(OkReq3 AND NOT OkReq, 'request share, last 3 h', 'request share'), Hour),
    tuple('error_rate', if(OkErr3 AND NOT OkErr, P0Err3, P0Err), if(OkErr3 AND NOT OkErr, P1Err3, P1Err),
        greatest(ZErr, ZErr3), OkErr OR OkErr3, if(OkErr3 AND NOT OkErr, 'error rate, last 3 h', 'error rate'), Hour),
    tuple('throttled_share', if(OkThr3 AND NOT OkThr, P0Thr3, P0Thr), if(OkThr3 AND NOT OkThr, P1Thr3, P1Thr),
        greatest(ZThr, ZThr3), OkThr OR OkThr3, if(OkThr3 AND NOT OkThr, 'throttled share, last 3 h', 'throttled share'), Hour),
    tuple('unpriced_share', if(OkUnp3 AND NOT OkUnp, P0Unp3, P0Unp), if(OkUnp3 AND NOT OkUnp, P1Unp3, P1Unp),
        greatest(ZUnp, ZUnp3), OkUnp OR OkUnp3, if(OkUnp3 AND NOT OkUnp, 'unpriced share, last 3 h', 'unpriced share'), Hour)
] AS K
WHERE Hour >= toStartOfHour({now:DateTime}) - INTERVAL 14 DAY;

-- Anomalies as of {now}: flagged hours of one kind and series grouped into episodes
-- (a gap of more than 3 hours starts a new one), plus new entities (a key with no
-- calls in the 28 days before its first call, spending NewEntityFloorUsd or more) and
-- drift (CUSUM over the log ratio of each complete day's spend to the mean of the same
-- weekday 1 and 2 weeks before, k = DriftK, flagged at DriftH). Contributors: the
-- other dimensions' keys by share of the delta between the first (up to 6) anomalous
-- hours and the same hours 7 days before, read from llm_calls.
CREATE VIEW IF NOT EXISTS {database}.v_anomalies_at {cluster} AS
WITH
    (SELECT tuple(NewEntityFloorUsd, DriftK, DriftH, DriftFloorUsdPerDay, RelearnDays)
     FROM {database}.llm_anomaly_settings ORDER BY Id LIMIT 1) AS S,
    ifNull(S.1, 1) AS NewFloor,
    ifNull(S.2, 0.03) AS DriftK,
    ifNull(S.3, 0.3) AS DriftH,
    ifNull(S.4, 5) AS DriftFloor,
    ifNull(S.5, 7) AS RelearnDays,
    toStartOfHour({now:DateTime}) AS T,
    episodes AS (
        SELECT
            Kind,
            Dimension,
            Key,
            ServiceName,
            min(Since) AS At,
            min(Hour) + INTERVAL 1 HOUR AS DetectedAt,
            max(Hour) AS LastSeen,
            avg(Expected) AS Expected,
            avg(Observed) AS Observed,
            max(Score) AS Score,
            max(Hour) >= T - INTERVAL 1 HOUR AS Open,
            any(Metric) AS Metric,
            count() AS FlaggedHours
        FROM (
            SELECT
                *,
                sum(NewEpisode) OVER (PARTITION BY Kind, Dimension, ServiceName, Key ORDER BY Hour ROWS UNBOUNDED PRECEDING) AS Episode
            FROM (
                SELECT
                    *,
                    dateDiff('hour', lagInFrame(Hour, 1, toDateTime(0, 'UTC')) OVER (PARTITION BY Kind, Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), Hour) > 4 AS NewEpisode
                FROM {database}.v_anomaly_hours_at(now = {now:DateTime})
                WHERE Flag
            )
        )
        GROUP BY
            Kind,
            Dimension,
            ServiceName,
            Key,
            Episode
    ),
    news AS (
        SELECT
            'new_entity' AS Kind,
            Dimension,
            Key,
            ServiceName,
            FirstSeen AS At,
            minIf(Hour, CumCost >= NewFloor) + INTERVAL 1 HOUR AS DetectedAt,
            maxIf(Hour, Calls > 0) AS LastSeen,
            0. AS Expected,
            max(CumCost) AS Observed,
            max(CumCost) / NewFloor AS Score,
            FirstSeen > T - toIntervalDay(RelearnDays) AS Open,
            'spend since first seen' AS Metric,
            toUInt64(countIf(Calls > 0)) AS FlaggedHours
        FROM (
            SELECT
                *,
                sum(Cost) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS UNBOUNDED PRECEDING) AS CumCost,
                min(if(Calls > 0, Hour, toDateTime('2106-01-01 00:00:00', 'UTC'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS FirstSeen
            FROM {database}.v_anomaly_series_at(now = {now:DateTime})
        )
        WHERE FirstSeen >= T - INTERVAL 14 DAY AND FirstSeen <= T
            -- the rollup is not back-filled: on a database upgraded to this file, keys
            -- count as new only once it holds 7 days of history
            AND FirstSeen >= (SELECT min(Hour) FROM {database}.llm_anomaly_hourly) + INTERVAL 7 DAY
        GROUP BY
            Dimension,
            ServiceName,
            Key,
            FirstSeen
        HAVING max(CumCost) >= NewFloor
    ),
    drifts AS (
        SELECT
            'drift' AS Kind,
            Dimension,
            Key,
            ServiceName,
            toDateTime(argMax(RunStart, Day)) AS At,
            toDateTime(minIf(Day, Flag)) + INTERVAL 1 DAY AS DetectedAt,
            toDateTime(maxIf(Day, Flag)) + INTERVAL 23 HOUR AS LastSeen,
            argMax(Base, Day) AS Expected,
            argMax(Spend, Day) AS Observed,
            argMax(Cusum, Day) AS Score,
            argMax(Flag, Day) AS Open,
            'daily spend' AS Metric,
            toUInt64(countIf(Flag)) AS FlaggedHours
        FROM (
            SELECT
                *,
                C - least(0, MinC) AS Cusum,
                Cusum >= DriftH AND Spend - Base >= DriftFloor AS Flag,
                if(MinC >= 0, FirstDay, addDays(ArgMinC, 1)) AS RunStart
            FROM (
                SELECT
                    *,
                    min(C) OVER wd AS MinC,
                    argMin(Day, C) OVER wd AS ArgMinC,
                    min(Day) OVER wd AS FirstDay
                FROM (
                    SELECT
                        *,
                        sum(R - DriftK) OVER wd AS C
                    FROM (
                        SELECT
                            *,
                            lagInFrame(Spend, 7) OVER w14 AS Spend7,
                            lagInFrame(Spend, 14) OVER w14 AS Spend14,
                            -- the series' first day is usually partial: never a baseline
                            min(if(Spend > 0, Day, toDate('2149-01-01'))) OVER (PARTITION BY Dimension, ServiceName, Key) AS SeriesFirstDay,
                            if(Spend7 > 0 AND Spend14 > 0 AND Day - 14 > SeriesFirstDay, (Spend7 + Spend14) / 2, 0) AS Base,
                            if(Base > 0 AND Spend > 0, log(Spend / Base), 0) AS R
                        FROM (
                            SELECT
                                Dimension,
                                ServiceName,
                                Key,
                                toDate(Hour) AS Day,
                                sum(Cost) AS Spend
                            FROM {database}.v_anomaly_series_at(now = {now:DateTime})
                            WHERE Hour < toStartOfDay(T)
                            GROUP BY
                                Dimension,
                                ServiceName,
                                Key,
                                Day
                        )
                        WINDOW w14 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS BETWEEN 14 PRECEDING AND CURRENT ROW)
                    )
                    WHERE Day >= toDate(T) - 28
                    WINDOW wd AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS UNBOUNDED PRECEDING)
                )
                WINDOW wd AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Day ROWS UNBOUNDED PRECEDING)
            )
        )
        WHERE Base > 0
        GROUP BY
            Dimension,
            ServiceName,
            Key
        HAVING countIf(Flag) > 0 AND maxIf(Day, Flag) >= toDate(T) - 14
    ),
    found AS (
        SELECT *, cityHash64(Kind, Dimension, ServiceName, Key, At) AS Id FROM (
            SELECT * FROM episodes
            UNION ALL
            SELECT * FROM news
            UNION ALL
            SELECT * FROM drifts
        )
    ),
    contributions AS (
        SELECT
            Id,
            groupArray(3)(tuple(CDim, CKey, Share)) AS Contributors
        FROM (
            SELECT
                Id,
                CDim,
                argMax(CKey, Delta) AS CKey,
                max(Delta) / nullIf(sumIf(Delta, Delta > 0), 0) AS Share
            FROM (
                SELECT
                    f.Id AS Id,
                    d.1 AS CDim,
                    d.2 AS CKey,
                    sum(if(c.Timestamp >= f.WinStart, 1, -1) * multiIf(
                        f.Kind = 'calls', 1,
                        f.Kind = 'error_rate', toFloat64(c.StatusCode = 'Error' OR c.ErrorType != ''),
                        f.Kind = 'throttled_share', toFloat64(c.Throttled = 1 OR c.HttpStatus = 429),
                        f.Kind = 'unpriced_share', toFloat64(c.Unpriced),
                        f.Kind = 'cache_hit_rate', toFloat64(greatest(c.InputTokens, c.CacheReadTokens) - c.CacheReadTokens),
                        c.CostTotal)) AS Delta
                FROM {database}.llm_calls AS c
                ARRAY JOIN [('endpoint', c.Endpoint), ('model', c.RequestModel), ('feature', c.Feature), ('team', c.Team), ('user', c.User)] AS d
                INNER JOIN (
                    SELECT
                        Id,
                        Kind,
                        Dimension,
                        Key,
                        ServiceName,
                        if(Kind = 'drift', toStartOfDay(LastSeen), At) AS WinStart,
                        if(Kind = 'drift', toStartOfDay(LastSeen) + INTERVAL 1 DAY, least(LastSeen, At + INTERVAL 5 HOUR) + INTERVAL 1 HOUR) AS WinEnd
                    FROM found
                ) AS f ON c.ServiceName = f.ServiceName
                WHERE c.Timestamp >= toStartOfHour({now:DateTime}) - INTERVAL 22 DAY
                    -- only the days (partitions) of the windows and of their baselines
                    AND toDate(c.Timestamp) IN (
                        SELECT arrayJoin([toDate(S0), toDate(S1), toDate(S0 - INTERVAL 7 DAY), toDate(S1 - INTERVAL 7 DAY)])
                        FROM (
                            SELECT
                                if(Kind = 'drift', toStartOfDay(LastSeen), At) AS S0,
                                if(Kind = 'drift', LastSeen, least(LastSeen, At + INTERVAL 5 HOUR)) AS S1
                            FROM found
                        )
                    )
                    AND c.Timestamp < {now:DateTime}
                    AND ((c.Timestamp >= f.WinStart AND c.Timestamp < f.WinEnd)
                        OR (c.Timestamp >= f.WinStart - INTERVAL 7 DAY AND c.Timestamp < f.WinEnd - INTERVAL 7 DAY))
                    AND multiIf(f.Dimension = 'endpoint', c.Endpoint, f.Dimension = 'model', c.RequestModel,
                        f.Dimension = 'feature', c.Feature, f.Dimension = 'team', c.Team, c.User) = f.Key
                    AND d.1 != f.Dimension
                    AND d.2 != ''
                GROUP BY
                    Id,
                    CDim,
                    CKey
            )
            GROUP BY
                Id,
                CDim
            -- a dimension with one key explains nothing
            HAVING max(Delta) > 0 AND count() > 1
            ORDER BY Share DESC
        )
        GROUP BY Id
    )
SELECT
    toLowCardinality(f.Kind) AS Kind,
    toLowCardinality(f.Dimension) AS Dimension,
    f.Key AS Key,
    toLowCardinality(toString(f.ServiceName)) AS ServiceName,
    toDateTime(f.At, 'UTC') AS At,
    -- Never later than the moment of the evaluation: an anomaly in the current hour is seen now.
    least(toDateTime(f.DetectedAt, 'UTC'), toDateTime({now:DateTime}, 'UTC')) AS DetectedAt,
    toDateTime(f.LastSeen, 'UTC') AS LastSeen,
    toFloat64(f.Expected) AS Expected,
    toFloat64(f.Observed) AS Observed,
    toFloat64(f.Score) AS Score,
    toUInt8(f.Open) AS Open,
    concat(
        multiIf(
            f.Kind = 'spend', concat('spend $', toString(round(f.Observed, 2)), '/h vs $', toString(round(f.Expected, 2)), ' expected'),
            f.Kind = 'calls', concat('calls ', toString(round(f.Observed)), '/h vs ', toString(round(f.Expected)), ' expected'),
            f.Kind = 'cost_per_call', concat('cost per call $', toString(round(f.Observed, 4)), ' vs $', toString(round(f.Expected, 4)), ' expected'),
            f.Kind = 'tokens_per_call', concat('tokens per call ', toString(round(f.Observed)), ' vs ', toString(round(f.Expected)), ' expected'),
            f.Kind = 'latency', concat('p95 latency ', toString(round(f.Observed)), ' ms vs ', toString(round(f.Expected)), ' ms expected'),
            f.Kind = 'new_entity', concat('new ', f.Dimension, ' ', f.Key, ': $', toString(round(f.Observed, 2)), ' since first seen, no calls in the 28 days before'),
            f.Kind = 'drift', concat('daily spend $', toString(round(f.Observed, 2)), ' vs $', toString(round(f.Expected, 2)), ' on the same weekday 1-2 weeks before, CUSUM ', toString(round(f.Score, 2))),
            concat(replaceAll(f.Kind, '_', ' '), ' (', f.Metric, ') ', toString(round(100 * f.Observed, 1)), '% vs ', toString(round(100 * f.Expected, 1)), '% expected')),
        if(f.Kind IN ('spend', 'calls', 'cost_per_call', 'tokens_per_call', 'latency') AND f.Expected > 0,
            concat(' (x', toString(round(f.Observed / f.Expected, 1)), ')'), ''),
        ' for ', toString(dateDiff('hour', f.At, f.LastSeen) + 1), ' h',
        if(empty(c.Contributors), '',
            concat('; ', arrayStringConcat(arrayMap(t -> concat(t.1, ' ', t.2, ' ', toString(round(100 * t.3)), '%'), c.Contributors), ', ')))
    ) AS Explanation,
    CAST(arrayMap(t -> tuple(t.1, t.2, ifNull(toFloat64(t.3), 0)), c.Contributors), 'Array(Tuple(String, String, Float64))') AS Contributors
FROM found AS f
LEFT JOIN contributions AS c ON f.Id = c.Id
ORDER BY
    At DESC,
    Score DESC;

-- The anomalies of the last 14 days as of now (the contract read by the CLI, the
-- dashboards and the alerts).
CREATE VIEW IF NOT EXISTS {database}.v_anomalies {cluster} AS
SELECT *
FROM {database}.v_anomalies_at(now = now());
