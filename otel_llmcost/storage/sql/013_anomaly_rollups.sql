-- Hourly anomaly detectors (docs/views.md, "Anomalies"). One narrow rollup per
-- (Dimension, Key, ServiceName, Hour) over the five dimensions, fed from llm_calls;
-- every detector reads only that rollup, bounded to the 42 days before "now"
-- (the 14 days shown + a baseline of at most 28 days). Contributors read the
-- calls of anomalous series in the 22 days before "now".
-- Needs ClickHouse >= 24.6: parameterized views that pass their parameter on to
-- another (24.2-24.4, ClickHouse#54916, #65889); tested on chdb 4.4 (ClickHouse 26.9).
-- {as_of_now:V} is V's query with now() for its {now} parameter, and the
-- as-of-now twin of each view it reads (storage/migrations.py).

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
    CacheCalls SimpleAggregateFunction(sum, UInt64),
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
-- cache-eligible input is InputTokens; a call "hits" when it read any cache. Cache
-- rates count only calls with input (CacheCalls): a failed or throttled call read
-- nothing, and is no cache miss.
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
    toUInt64(countIf(EligibleTokens > 0)) AS CacheCalls,
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

-- Anomalies as of {now}. One parameterized view, its steps as CTEs:
--  series: the dense hourly series of the 42 days before {now}, per (Dimension,
--    ServiceName, Key); hours without calls are rows of zeros. The hour holding {now}
--    is partial: Frac is the share of it elapsed, and its counts are pro-rated by it.
--  hours: one row per (series, hour, kind) judged by a detector over the 14 days
--    before {now}; Flag says whether it is anomalous. Seasonal kinds (spend, calls,
--    cost and tokens per call, p95 latency) compare the hour with the same hour of day
--    on the 8 previous days of the same type (weekday or weekend; ~1.6 weeks of
--    weekdays, 4 weeks of weekends), by median and MAD: Score = (observed - median) /
--    max(1.4826 MAD, 10% of median, a small unit floor). Rates (cache hit token and
--    request share, error rate, throttled and unpriced share) test the hour, and the 3
--    hours ending with it, against the 168 hours before, with n = calls so low traffic
--    is judged by significance: a signed likelihood-ratio z for shares of calls, a
--    Welch z of the per-call cache share for the token share. The rates are one ARRAY
--    JOIN row each and share one formula, so the planner analyses it once.
--  episodes: flagged hours of one kind and series (a gap of more than 4 hours starts
--    a new one); news: keys with no calls in the 28 days before their first call,
--    spending NewEntityFloorUsd or more; drifts: CUSUM over the log ratio of each
--    complete day's spend to the mean of the same weekday 1 and 2 weeks before
--    (k = DriftK, flagged at DriftH).
-- Planning, not data, is what this view costs (~0.5 s on chdb as of now): so the steps
-- are CTEs of one view rather than views of their own (a parameterized view is
-- analysed twice), and what moved in each anomaly is v_anomaly_contributors_at (a view
-- reading this one twice would be planned twice).
CREATE VIEW IF NOT EXISTS {database}.v_anomalies_at {cluster} AS
WITH
    (SELECT tuple(ScoreThreshold, ProportionZ, SpendFloorUsdPerHour, CallsFloorPerHour, ProportionFloor,
            NewEntityFloorUsd, DriftK, DriftH, DriftFloorUsdPerDay, RelearnDays)
     FROM {database}.llm_anomaly_settings ORDER BY Id LIMIT 1) AS S,
    ifNull(S.1, 5) AS ScoreThreshold,
    ifNull(S.2, 4) AS ProportionZ,
    ifNull(S.3, 0.25) AS SpendFloor,
    ifNull(S.4, 50) AS CallsFloor,
    ifNull(S.5, 0.1) AS PropFloor,
    ifNull(S.6, 1) AS NewFloor,
    ifNull(S.7, 0.03) AS DriftK,
    ifNull(S.8, 0.3) AS DriftH,
    ifNull(S.9, 5) AS DriftFloor,
    ifNull(S.10, 7) AS RelearnDays,
    toStartOfHour({now:DateTime}) AS T,
    -- The series some detector could flag: each kind needs, within the days it judges, an
    -- hour spending SpendFloor (spend) or with CallsFloor calls (calls), 3 calls in 3 hours
    -- (every rate, and the per-call kinds, which need 20), NewFloor since first seen
    -- (new_entity) or a day spending DriftFloor (drift). A key below all of them (most users,
    -- most hours) would be densified to 1,008 hours and judged for nothing: 4 ms of CPU per
    -- series, 22 s for 5,000 users (benchmarks/panel_bench.py).
    judged AS (
        SELECT Dimension, ServiceName, Key
        FROM (
            SELECT
                *,
                sum(C) OVER (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour RANGE BETWEEN 7200 PRECEDING AND CURRENT ROW) AS C3,
                sum(Cost) OVER (PARTITION BY Dimension, ServiceName, Key, toDate(Hour)) AS DayCost
            FROM (
                SELECT Dimension, ServiceName, Key, Hour, sum(Calls) AS C, sum(CostTotal) AS Cost
                FROM {database}.llm_anomaly_hourly
                WHERE Hour >= toStartOfDay({now:DateTime}) - INTERVAL 15 DAY
                    AND Hour <= {now:DateTime}
                GROUP BY
                    Dimension,
                    ServiceName,
                    Key,
                    Hour
            )
        )
        GROUP BY
            Dimension,
            ServiceName,
            Key
        HAVING max(Cost) >= SpendFloor OR max(C) >= CallsFloor OR max(C3) >= 3
            OR sum(Cost) >= NewFloor OR max(DayCost) >= DriftFloor
    ),
    series AS (
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
            CacheCalls,
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
                toFloat64(sum(CacheCalls)) AS CacheCalls,
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
                AND (Dimension, ServiceName, Key) IN (SELECT Dimension, ServiceName, Key FROM judged)
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
        )
    ),
    hours AS (
        SELECT
            Dimension,
            ServiceName,
            Key,
            Hour,
            Frac,
            Calls,
            Kind,
            if(IsRate, if(Use3, P0_3, P0_1), SExpected) AS Expected,
            if(IsRate, if(Use3, P1_3, P1_1), SObserved) AS Observed,
            if(IsRate, greatest(Z1, Z3), SScore) AS Score,
            if(IsRate, Ok1 OR Ok3, SFlag) AS Flag,
            if(IsRate AND Use3, if(Label = '', 'last 3 h', concat(Label, ', last 3 h')), Label) AS Metric,
            SSince AS Since
        FROM (
            SELECT
                *,
                -- the hour against the 168 before it (n: the calls the share is of)
                R.11 / greatest(R.12, 1) AS P1_1,
                R.13 / greatest(R.14, 1) AS P0_1,
                Sign * (P1_1 - P0_1) AS D1,
                R.27 AS N1,
                R.28 AS N0,
                least(greatest(P0_1, 0.5 / greatest(N0, 1)), 1 - 0.5 / greatest(N0, 1)) AS P0c_1,
                if(N1 > 0 AND N0 > 0,
                    if(Welch,
                        Sign * (R.19 / N1 - R.21 / N0)
                            / sqrt(greatest(R.20 / N1 - pow(R.19 / N1, 2), 0.0025) / N1
                                + greatest(R.22 / N0 - pow(R.21 / N0, 2), 0.0025) / N0),
                        sign(D1) * sqrt(greatest(2 * N1 * (if(P1_1 > 0, P1_1 * log(P1_1 / P0c_1), 0)
                            + if(P1_1 < 1, (1 - P1_1) * log((1 - P1_1) / (1 - P0c_1)), 0)), 0))),
                    0) AS Z1,
                N1 >= 1 AND N0 >= 20 AND Z1 >= ProportionZ AND D1 >= PropFloor AND D1 * N1 >= 3 AS Ok1,
                -- the 3 hours ending with it against the 168 before them
                R.15 / greatest(R.16, 1) AS P1_3,
                R.17 / greatest(R.18, 1) AS P0_3,
                Sign * (P1_3 - P0_3) AS D3,
                R.29 AS N1_3,
                R.30 AS N0_3,
                least(greatest(P0_3, 0.5 / greatest(N0_3, 1)), 1 - 0.5 / greatest(N0_3, 1)) AS P0c_3,
                if(N1_3 > 0 AND N0_3 > 0,
                    if(Welch,
                        Sign * (R.23 / N1_3 - R.25 / N0_3)
                            / sqrt(greatest(R.24 / N1_3 - pow(R.23 / N1_3, 2), 0.0025) / N1_3
                                + greatest(R.26 / N0_3 - pow(R.25 / N0_3, 2), 0.0025) / N0_3),
                        sign(D3) * sqrt(greatest(2 * N1_3 * (if(P1_3 > 0, P1_3 * log(P1_3 / P0c_3), 0)
                            + if(P1_3 < 1, (1 - P1_3) * log((1 - P1_3) / (1 - P0c_3)), 0)), 0))),
                    0) AS Z3,
                N1 >= 1 AND N1_3 >= 1 AND N0_3 >= 20 AND Z3 >= ProportionZ AND D3 >= PropFloor AND D3 * N1_3 >= 3 AS Ok3,
                Ok3 AND NOT Ok1 AS Use3
            FROM (
                SELECT
                    Dimension,
                    ServiceName,
                    Key,
                    Hour,
                    Frac,
                    Calls,
                    R,
                    R.1 AS Kind,
                    R.2 AS Label,
                    R.3 AS IsRate,
                    R.4 AS Welch,
                    R.5 AS Sign,
                    R.6 AS SExpected,
                    R.7 AS SObserved,
                    R.8 AS SScore,
                    R.9 AS SFlag,
                    R.10 AS SSince
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
                            if(isFinite(Cpc), (Cpc - MedCpc) / greatest(1.4826 * MadCpc, 0.1 * MedCpc, 1e-6), 0) AS CpcZ,
                            if(isFinite(Tpc), (Tpc - MedTpc) / greatest(1.4826 * MadTpc, 0.1 * MedTpc, 1), 0) AS TpcZ,
                            if(isFinite(P95x), (P95x - MedP95) / greatest(1.4826 * MadP95, 0.1 * MedP95, 1), 0) AS P95Z
                        FROM (
                            SELECT
                                *,
                                groupArray(tuple(SpendV, CallsV, Cpc, Tpc, P95x)) OVER wh AS Base,
                                sum(Calls) OVER w7 AS Calls7,
                                sum(CacheHitCalls) OVER w7 AS Hits7,
                                sum(CacheCalls) OVER w7 AS CacheCalls7,
                                sum(CacheCalls) OVER w3 AS CacheCalls_3,
                                sum(CacheCalls) OVER w73 AS CacheCalls7_3,
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
                                FROM series
                            )
                            WINDOW
                                wh AS (PARTITION BY Dimension, ServiceName, Key, toHour(Hour), toDayOfWeek(Hour) >= 6
                                       ORDER BY Hour ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING),
                                w7 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 168 PRECEDING AND 1 PRECEDING),
                                w3 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
                                w73 AS (PARTITION BY Dimension, ServiceName, Key ORDER BY Hour ROWS BETWEEN 170 PRECEDING AND 3 PRECEDING)
                        )
                        -- the baselines need the 42 days, the medians only the hours judged (and the
                        -- one before, for PrevSpendZ): a third of the rows
                        WHERE Hour >= toStartOfHour({now:DateTime}) - INTERVAL 14 DAY - INTERVAL 1 HOUR
                    )
                    WHERE Hour >= toStartOfHour({now:DateTime}) - INTERVAL 14 DAY
                )
                -- (Kind, Label, IsRate, Welch, Sign, seasonal Expected, Observed, Score, Flag, Since,
                --  rate numerator/denominator: hour, 168 h before, 3 h, 168 h before those,
                --  per-call share sum/sum of squares and the calls the share is of: the same four windows)
                ARRAY JOIN [
                    -- spend and calls: two hours in a row (the first at z >= 3), or one at twice the threshold
                    tuple('spend', 'spend', 0, 0, 1., MedSpend, SpendV, SpendZ,
                        Aged AND length(BSpend) >= 4
                            AND SpendZ >= ScoreThreshold AND (PrevSpendZ >= 3 OR SpendZ >= 2 * ScoreThreshold)
                            AND (SpendV - MedSpend) * Frac >= SpendFloor
                            AND SpendV >= 1.5 * Q90Spend,
                        if(SpendZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour),
                        0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('calls', 'calls', 0, 0, 1., MedCalls, CallsV, CallsZ,
                        Aged AND length(BCalls) >= 4
                            AND CallsZ >= ScoreThreshold AND (PrevCallsZ >= 3 OR CallsZ >= 2 * ScoreThreshold)
                            AND (CallsV - MedCalls) * Frac >= CallsFloor
                            AND CallsV >= 1.5 * Q90Calls,
                        if(CallsZ < 2 * ScoreThreshold, Hour - INTERVAL 1 HOUR, Hour),
                        0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('cost_per_call', 'cost_per_call', 0, 0, 1., MedCpc, Cpc, CpcZ,
                        Aged AND length(BCpc) >= 4 AND Calls >= 20 AND isFinite(Cpc)
                            AND abs(CpcZ) >= ScoreThreshold AND abs(Cpc - MedCpc) * Calls >= SpendFloor,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('tokens_per_call', 'tokens_per_call', 0, 0, 1., MedTpc, Tpc, TpcZ,
                        Aged AND length(BTpc) >= 4 AND Calls >= 20 AND isFinite(Tpc)
                            AND abs(TpcZ) >= ScoreThreshold AND abs(Tpc - MedTpc) >= 0.5 * MedTpc,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('latency', 'p95 latency', 0, 0, 1., MedP95, P95x, P95Z,
                        Aged AND length(BP95) >= 4 AND Calls >= 20 AND isFinite(P95x)
                            AND P95Z >= ScoreThreshold AND P95x >= 1.5 * MedP95,
                        Hour, 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.),
                    tuple('cache_hit_rate', 'token share', 1, 1, -1., 0., 0., 0., 0, Hour,
                        CacheReadTokens, Eligible, Read7, Eligible7, Read_3, Eligible_3, Read7_3, Eligible7_3,
                        ShareSum, ShareSq, ShareSum7, ShareSq7, ShareSum_3, ShareSq_3, ShareSum7_3, ShareSq7_3,
                        CacheCalls, CacheCalls7, CacheCalls_3, CacheCalls7_3),
                    tuple('cache_hit_rate', 'request share', 1, 0, -1., 0., 0., 0., 0, Hour,
                        CacheHitCalls, CacheCalls, Hits7, CacheCalls7, Hits_3, CacheCalls_3, Hits7_3, CacheCalls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., CacheCalls, CacheCalls7, CacheCalls_3, CacheCalls7_3),
                    tuple('error_rate', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Errors, Calls, Errors7, Calls7, Errors_3, Calls_3, Errors7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3),
                    tuple('throttled_share', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Throttled, Calls, Throttled7, Calls7, Throttled_3, Calls_3, Throttled7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3),
                    tuple('unpriced_share', '', 1, 0, 1., 0., 0., 0., 0, Hour,
                        Unpriced, Calls, Unpriced7, Calls7, Unpriced_3, Calls_3, Unpriced7_3, Calls7_3,
                        0., 0., 0., 0., 0., 0., 0., 0., Calls, Calls7, Calls_3, Calls7_3)
                ] AS R
            )
        )
    ),
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
                FROM hours
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
            FROM series
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
                            FROM series
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
        SELECT * FROM episodes
        UNION ALL
        SELECT * FROM news
        UNION ALL
        SELECT * FROM drifts
    )
SELECT
    toLowCardinality(Kind) AS Kind,
    toLowCardinality(Dimension) AS Dimension,
    Key,
    toLowCardinality(toString(ServiceName)) AS ServiceName,
    toDateTime(At, 'UTC') AS At,
    -- Never later than the moment of the evaluation: an anomaly in the current hour is seen now.
    least(toDateTime(DetectedAt, 'UTC'), toDateTime({now:DateTime}, 'UTC')) AS DetectedAt,
    toDateTime(LastSeen, 'UTC') AS LastSeen,
    toFloat64(Expected) AS Expected,
    toFloat64(Observed) AS Observed,
    toFloat64(Score) AS Score,
    toUInt8(Open) AS Open,
    concat(
        multiIf(
            Kind = 'spend', concat('spend $', toString(round(Observed, 2)), '/h vs $', toString(round(Expected, 2)), ' expected'),
            Kind = 'calls', concat('calls ', toString(round(Observed)), '/h vs ', toString(round(Expected)), ' expected'),
            Kind = 'cost_per_call', concat('cost per call $', toString(round(Observed, 4)), ' vs $', toString(round(Expected, 4)), ' expected'),
            Kind = 'tokens_per_call', concat('tokens per call ', toString(round(Observed)), ' vs ', toString(round(Expected)), ' expected'),
            Kind = 'latency', concat('p95 latency ', toString(round(Observed)), ' ms vs ', toString(round(Expected)), ' ms expected'),
            Kind = 'new_entity', concat('new ', Dimension, ' ', Key, ': $', toString(round(Observed, 2)), ' since first seen, no calls in the 28 days before'),
            Kind = 'drift', concat('daily spend $', toString(round(Observed, 2)), ' vs $', toString(round(Expected, 2)), ' on the same weekday 1-2 weeks before, CUSUM ', toString(round(Score, 2))),
            concat(replaceAll(Kind, '_', ' '), if(Metric = '', '', concat(' (', Metric, ')')), ' ', toString(round(100 * Observed, 1)), '% vs ', toString(round(100 * Expected, 1)), '% expected')),
        if(Kind IN ('spend', 'calls', 'cost_per_call', 'tokens_per_call', 'latency') AND Expected > 0,
            concat(' (x', toString(round(Observed / Expected, 1)), ')'), ''),
        -- a new entity is open while it is new: how long it has been seen is no part of its story
        multiIf(Kind = 'new_entity', '',
            Kind = 'drift', concat(' for ', toString(dateDiff('day', At, LastSeen) + 1), ' days'),
            concat(' for ', toString(dateDiff('hour', At, LastSeen) + 1), ' h'))
    ) AS Explanation
FROM found
ORDER BY
    At DESC,
    Score DESC;

-- The anomalies of the last 14 days as of now (the contract read by the CLI, the
-- dashboards and the alerts): the query of v_anomalies_at with now() for {now}. A
-- plain view, not v_anomalies_at(now = now()): that is analysed twice, 0.9 s not 0.5.
-- Its columns are declared (the contract; a test holds them equal to the query's):
-- without them CREATE analyses the query, 0.5 s of every migration.
CREATE VIEW IF NOT EXISTS {database}.v_anomalies {cluster} (
    Kind LowCardinality(String),
    Dimension LowCardinality(String),
    Key String,
    ServiceName LowCardinality(String),
    At DateTime('UTC'),
    DetectedAt DateTime('UTC'),
    LastSeen DateTime('UTC'),
    Expected Float64,
    Observed Float64,
    Score Float64,
    Open UInt8,
    Explanation String
) AS
{as_of_now:v_anomalies_at};

-- What moved in each anomaly of v_anomalies_at({now}): for every other dimension, the
-- key with the largest share of the delta between the anomaly's first (up to 6) hours
-- and the same hours 7 days before (a drift: its last flagged day against the day a
-- week before), one row per (anomaly, dimension). The delta is of what the kind
-- measures: cost, calls, errors, throttled or unpriced calls, or uncached input
-- tokens. Reads llm_calls of the 22 days before {now} only, and only the calls of
-- anomalous series (a hash join on service, dimension and key).
CREATE VIEW IF NOT EXISTS {database}.v_anomaly_contributors_at {cluster} AS
SELECT
    Kind,
    Dimension,
    Key,
    ServiceName,
    At,
    toLowCardinality(CDim) AS ContributorDimension,
    CKey AS ContributorKey,
    Share
FROM (
    SELECT
        Kind,
        Dimension,
        Key,
        ServiceName,
        At,
        CDim,
        argMax(CKey, Delta) AS CKey,
        toFloat64(max(Delta) / sumIf(Delta, Delta > 0)) AS Share
    FROM (
        SELECT
            Kind,
            Dimension,
            Key,
            ServiceName,
            At,
            d.1 AS CDim,
            d.2 AS CKey,
            sum(Signed) AS Delta
        FROM (
            SELECT
                f.Kind AS Kind,
                f.Dimension AS Dimension,
                f.Key AS Key,
                f.ServiceName AS ServiceName,
                f.At AS At,
                Pairs,
                if(c.Timestamp >= f.WinStart, 1, -1) * multiIf(
                    f.Kind = 'calls', 1,
                    f.Kind = 'error_rate', toFloat64(c.StatusCode = 'Error' OR c.ErrorType != ''),
                    f.Kind = 'throttled_share', toFloat64(c.Throttled = 1 OR c.HttpStatus = 429),
                    f.Kind = 'unpriced_share', toFloat64(c.Unpriced),
                    f.Kind = 'cache_hit_rate', toFloat64(greatest(c.InputTokens, c.CacheReadTokens) - c.CacheReadTokens),
                    c.CostTotal) AS Signed
            FROM (
                SELECT
                    *,
                    [('endpoint', Endpoint), ('model', RequestModel), ('feature', Feature), ('team', Team), ('user', User)] AS Pairs
                FROM {database}.llm_calls
                WHERE Timestamp >= toStartOfHour({now:DateTime}) - INTERVAL 22 DAY
                    AND Timestamp < {now:DateTime}
            ) AS c
            ARRAY JOIN Pairs AS own
            INNER JOIN (
                SELECT
                    Kind,
                    Dimension,
                    Key,
                    ServiceName,
                    At,
                    if(Kind = 'drift', toStartOfDay(LastSeen), At) AS WinStart,
                    if(Kind = 'drift', toStartOfDay(LastSeen) + INTERVAL 1 DAY, least(LastSeen, At + INTERVAL 5 HOUR) + INTERVAL 1 HOUR) AS WinEnd
                FROM {database}.v_anomalies_at(now = {now:DateTime})
            ) AS f ON c.ServiceName = f.ServiceName AND own.1 = f.Dimension AND own.2 = f.Key
            WHERE (c.Timestamp >= f.WinStart AND c.Timestamp < f.WinEnd)
                OR (c.Timestamp >= f.WinStart - INTERVAL 7 DAY AND c.Timestamp < f.WinEnd - INTERVAL 7 DAY)
        )
        ARRAY JOIN Pairs AS d
        WHERE d.1 != Dimension AND d.2 != ''
        GROUP BY
            Kind,
            Dimension,
            Key,
            ServiceName,
            At,
            CDim,
            CKey
    )
    GROUP BY
        Kind,
        Dimension,
        Key,
        ServiceName,
        At,
        CDim
    -- a dimension with one key explains nothing
    HAVING max(Delta) > 0 AND count() > 1
)
ORDER BY
    At DESC,
    Share DESC;

-- The contributors of v_anomalies: v_anomaly_contributors_at as of now (reading v_anomalies).
CREATE VIEW IF NOT EXISTS {database}.v_anomaly_contributors {cluster} AS
{as_of_now:v_anomaly_contributors_at};
