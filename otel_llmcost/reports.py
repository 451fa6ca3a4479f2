"""Named report queries over the SQL views, for ``otel-llmcost report`` and the like.

Each report reads one view (never the raw span maps) and takes its time window as a
server-side query parameter (``{since_hours:UInt32}``): user input never becomes SQL
text. The only interpolated name is the database, checked as a strict identifier.

ClickHouse resolves an alias before a column of the same name, so an expression that
reuses an aggregated name (``sum(Calls) AS Calls``) must use the alias outside any
aggregate (``x / Calls``), never ``sum(Calls)`` again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from otel_llmcost.migrations import _check_identifier


@dataclass(frozen=True)
class Report:
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    name: str = ""
    description: str = field(default="", compare=False)


def _run(
    client: Any,
    *,
    name: str,
    title: str,
    description: str,
    sql: str,
    since_hours: int,
    database: str,
    limit: int,
    parameters: dict[str, Any] | None = None,
) -> Report:
    if isinstance(since_hours, bool) or not isinstance(since_hours, int) or since_hours <= 0:
        raise ValueError(f"since_hours must be a positive integer, got {since_hours!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    _check_identifier("database", database)
    sql = sql.replace("{db}", database)
    parameters = {**(parameters or {}), "since_hours": since_hours, "limit": limit}
    result = client.query(sql, parameters=parameters)
    columns = list(result.column_names)
    if not columns:  # chdb returns no column names for an empty result
        columns = [row[0] for row in client.query(f"DESCRIBE ({sql})", parameters=parameters).result_rows]
    return Report(
        title=title,
        columns=columns,
        rows=[tuple(r) for r in result.result_rows],
        name=name,
        description=description,
    )


def spend_by_endpoint(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="spend_by_endpoint",
        title="Spend by endpoint",
        description="Total cost, calls and latency per service and endpoint.",
        sql="""
SELECT
    ServiceName,
    Endpoint,
    sum(Calls) AS Calls,
    sum(Errors) AS Errors,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    round(sum(CostTotal), 6) AS CostUsd,
    round(sum(CostTotal) / nullIf(Calls, 0), 6) AS CostPerCallUsd,
    round(max(DurationMsP99), 1) AS WorstHourP99Ms
FROM {db}.v_cost_by_endpoint_hourly
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Endpoint
ORDER BY CostUsd DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def spend_by_model(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="spend_by_model",
        title="Spend by model",
        description="Cost and tokens per provider and requested model.",
        sql="""
SELECT
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(Unpriced) AS UnpricedCalls,
    round(sum(CostTotal), 6) AS CostUsd,
    round(sum(CostSavings), 6) AS CacheSavingsUsd
FROM {db}.v_cost_hourly
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    Provider,
    RequestModel
ORDER BY CostUsd DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def cache_efficiency(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="cache_efficiency",
        title="Prompt cache efficiency",
        description="Share of input tokens read from cache, savings, and the write premium paid.",
        sql="""
SELECT
    ServiceName,
    Endpoint,
    RequestModel,
    sum(InputTokens) AS InputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    round(CacheReadTokens / nullIf(InputTokens, 0), 4) AS HitRate,
    round(sum(CostSavings), 6) AS SavingsUsd,
    round(sum(CostCacheWritePremium), 6) AS WritePremiumUsd
FROM {db}.v_cache_efficiency
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Endpoint,
    RequestModel
ORDER BY InputTokens DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def missed_caching(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="missed_caching",
        title="Missed caching opportunities",
        description="Prompt prefixes sent repeatedly (>= 1024 input tokens) that were never read from cache.",
        sql="""
SELECT
    ServiceName,
    RequestModel,
    PrefixHash,
    arrayStringConcat(Endpoints, ', ') AS Endpoints,
    Calls,
    TotalInputTokens AS InputTokens,
    round(InputCost, 6) AS InputCostUsd,
    LastSeen
FROM {db}.v_missed_caching
WHERE LastSeen >= now() - toIntervalHour({since_hours:UInt32})
ORDER BY InputCostUsd DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def rate_limits(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="rate_limits",
        title="Rate-limit pressure",
        description="Throttled (429) share, retries and the lowest remaining request/token budget per model.",
        sql="""
SELECT
    ServiceName,
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(ThrottledCalls) AS ThrottledCalls,
    round(ThrottledCalls / Calls, 4) AS ThrottledShare,
    sum(Retries) AS Retries,
    min(MinRequestsRemaining) AS MinRequestsRemaining,
    min(MinTokensRemaining) AS MinTokensRemaining,
    round(min(MinRequestsHeadroom), 4) AS MinRequestsHeadroom
FROM {db}.v_rate_limit_pressure
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Provider,
    RequestModel
ORDER BY ThrottledShare DESC, Calls DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def anomalies(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="anomalies",
        title="Spend anomalies",
        description="Endpoints whose daily spend is >= 2 sigma and >= 1.3x their prior 7-day mean.",
        sql="""
SELECT
    Day,
    ServiceName,
    Endpoint,
    round(Spend, 6) AS SpendUsd,
    round(PriorMean, 6) AS PriorMeanUsd,
    round(ZScore, 2) AS ZScore
FROM {db}.v_spend_anomalies_daily
WHERE Flagged
    AND Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
ORDER BY
    Day DESC,
    SpendUsd DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def unpriced(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="unpriced",
        title="Unpriced calls",
        description="Models with no known price: their cost is unknown, not zero.",
        sql="""
SELECT
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel,
    sum(Calls) AS Calls,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    max(LastSeen) AS LastSeen
FROM {db}.v_unpriced_calls
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Provider,
    RequestModel,
    ResponseModel
ORDER BY Calls DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def cost_per_task(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="cost_per_task",
        title="Cost per successful task",
        description="All spend of recorded tasks (failed ones included) divided by the successful ones.",
        sql="""
SELECT
    ServiceName,
    Feature,
    count() AS Tasks,
    sum(Success) AS SuccessfulTasks,
    round(sum(Success) / count(), 4) AS SuccessRate,
    round(sum(CostTotal), 6) AS CostUsd,
    round(sum(CostTotal) / nullIf(sum(Success), 0), 6) AS CostPerSuccessUsd
FROM {db}.v_task_outcomes
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY
    ServiceName,
    Feature
ORDER BY CostUsd DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def evidence_waste(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="evidence_waste",
        title="Retrieved evidence: sent vs cited",
        description=(
            "Evidence tokens sent and cited per endpoint, and the input dollars spent on evidence no answer cited"
            " (calls whose citations were recorded)."
        ),
        sql="""
SELECT
    ServiceName,
    Endpoint,
    sum(Calls) AS Calls,
    sum(CallsWithCitations) AS CallsWithCitations,
    sum(ItemsSent) AS Items,
    sum(ItemsCited) AS ItemsCited,
    sum(EvidenceTokensSent) AS TokensSent,
    sum(EvidenceTokensCited) AS TokensCited,
    sum(EvidenceTokensNeverCited) AS TokensNeverCited,
    round(TokensCited / nullIf(TokensCited + TokensNeverCited, 0), 4) AS CitedShare,
    round(sum(NeverCitedUsd), 6) AS NeverCitedUsd
FROM {db}.v_evidence_waste_hourly
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Endpoint
ORDER BY NeverCitedUsd DESC, TokensSent DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def prefix_stability(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    """Per endpoint and model: how stable the prompt prefix is, whether it is long enough to
    cache, and one line (:func:`otel_llmcost.prefix_verdict.explain`) on why caching pays or not."""
    from .prefix_verdict import explain

    report = _run(
        client,
        name="prefix_stability",
        title="Prefix stability: does prompt caching pay?",
        description=(
            "Share of calls on the most common prompt prefix, distinct prefixes per hour, the prefix's tokens"
            " against the provider's minimum cacheable size, and why caching does or does not pay."
        ),
        sql="""
SELECT
    t.ServiceName AS ServiceName,
    t.Endpoint AS Endpoint,
    t.Provider AS Provider,
    t.RequestModel AS RequestModel,
    t.Calls AS Calls,
    round(t.TopPrefixShare, 4) AS TopPrefixShare,
    round(h.PrefixesPerHour, 1) AS PrefixesPerHour,
    t.TopPrefixTokens AS PrefixTokens,
    h.MinCacheTokens AS MinCacheTokens,
    round(t.HitRate, 4) AS HitRate,
    round(t.SavingsPerDay, 6) AS SavingsPerDayUsd
FROM (
    SELECT
        ServiceName,
        Endpoint,
        Provider,
        RequestModel,
        sum(PrefixCalls) AS Calls,
        maxIf(PrefixCalls, PrefixHash != '') / Calls AS TopPrefixShare,
        argMaxIf(Tokens, PrefixCalls, PrefixHash != '') AS TopPrefixTokens,
        sum(CacheRead) / nullIf(sum(Input), 0) AS HitRate,
        sum(Savings) / greatest(1, (dateDiff('hour', min(FirstHour), max(LastHour)) + 1) / 24) AS SavingsPerDay
    FROM (
        SELECT
            ServiceName,
            Endpoint,
            Provider,
            RequestModel,
            PrefixHash,
            sum(Calls) AS PrefixCalls,
            max(PrefixTokens) AS Tokens,
            sum(InputTokens) AS Input,
            sum(CacheReadTokens) AS CacheRead,
            sum(CostSavings) AS Savings,
            min(Hour) AS FirstHour,
            max(Hour) AS LastHour
        FROM {db}.v_prefix_calls_hourly
        WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
        GROUP BY
            ServiceName,
            Endpoint,
            Provider,
            RequestModel,
            PrefixHash
    )
    GROUP BY
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
) AS t
LEFT JOIN (
    SELECT
        ServiceName,
        Endpoint,
        Provider,
        RequestModel,
        avgIf(DistinctPrefixes, DistinctPrefixes > 0) AS PrefixesPerHour,
        any(MinCacheTokens) AS MinCacheTokens
    FROM {db}.v_prefix_stability_hourly
    WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
    GROUP BY
        ServiceName,
        Endpoint,
        Provider,
        RequestModel
) AS h ON h.ServiceName = t.ServiceName AND h.Endpoint = t.Endpoint
    AND h.Provider = t.Provider AND h.RequestModel = t.RequestModel
ORDER BY Calls DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )
    rows = [(*row, explain(dict(zip(report.columns, row, strict=True)))) for row in report.rows]
    return replace(report, columns=[*report.columns, "Why"], rows=rows)


def repricing(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="repricing",
        title="Recorded cost against the current price catalogue",
        description="Per model: spend recorded unpriced that has a price now, and calls whose price "
        "changed since they were recorded (empty until `otel-llmcost prices sync`).",
        sql="""
SELECT
    Provider,
    RequestModel,
    sum(Calls) AS Calls,
    sum(RecordedCostUsd) AS RecordedCostUsd,
    sum(CatalogueCostUsd) AS CatalogueCostUsd,
    sum(NewlyPricedCalls) AS NewlyPricedCalls,
    sum(NewlyPricedCostUsd) AS NewlyPricedCostUsd,
    sum(StillUnpricedCalls) AS StillUnpricedCalls,
    sum(RepricedCalls) AS RepricedCalls,
    sum(RepricingDeltaUsd) AS RepricingDeltaUsd
FROM {db}.v_cost_repriced_daily
WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
  AND (SELECT count() FROM {db}.llm_price_syncs) > 0
GROUP BY Provider, RequestModel
HAVING NewlyPricedCalls + StillUnpricedCalls + RepricedCalls > 0
ORDER BY abs(RepricingDeltaUsd) + NewlyPricedCostUsd DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def reported_cost(client: Any, *, since_hours: int = 24, database: str = "otel", limit: int = 50) -> Report:
    return _run(
        client,
        name="reported_cost",
        title="Provider-reported cost against ours",
        description="Where a gateway returned the billed cost: calls that disagree with our price by more "
        "than 2%, and reported spend on models we cannot price.",
        sql="""
SELECT
    Provider,
    RequestModel,
    ReportedSource,
    sum(Calls) AS Calls,
    sum(ReportedCostUsd) AS ReportedCostUsd,
    sum(ComputedCostUsd) AS ComputedCostUsd,
    sum(DisagreeingCalls) AS DisagreeingCalls,
    sum(UnpricedCalls) AS UnpricedCalls,
    sum(TotalDifferenceUsd) AS DifferenceUsd,
    max(MaxAbsDifferenceUsd) AS MaxAbsDifferenceUsd
FROM {db}.v_cost_reported_disagreements
WHERE Day >= toDate(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY Provider, RequestModel, ReportedSource
ORDER BY DisagreeingCalls + UnpricedCalls DESC, abs(DifferenceUsd) DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
    )


def what_if(
    client: Any,
    target_provider: str,
    target_model: str,
    *,
    since_hours: int = 24 * 30,
    database: str = "otel",
    limit: int = 50,
) -> Report:
    """Past calls priced on another catalogue model (its standard price at each call's date)."""
    return _run(
        client,
        name="what_if",
        title=f"What the calls would have cost on {target_provider}/{target_model}",
        description="Each call's own token counts at the target's price in force on the call's date: an "
        "estimate (another model tokenizes and caches differently). Needs `otel-llmcost prices sync`.",
        sql="""
SELECT
    Provider,
    RequestModel,
    count() AS Calls,
    sum(RecordedCost) AS RecordedCostUsd,
    sumIf(CatalogueCost, CataloguePriced) AS WhatIfCostUsd,
    WhatIfCostUsd - RecordedCostUsd AS DifferenceUsd,
    countIf(NOT CataloguePriced) AS CallsWithoutTargetPrice,
    countIf(RecordedUnpriced) AS CallsRecordedUnpriced
FROM {db}.v_calls_repriced(target_provider = {target_provider:String}, target_model = {target_model:String})
WHERE Timestamp >= now() - toIntervalHour({since_hours:UInt32})
GROUP BY Provider, RequestModel
ORDER BY RecordedCostUsd DESC
LIMIT {limit:UInt32}""",
        since_hours=since_hours,
        database=database,
        limit=limit,
        parameters={"target_provider": target_provider, "target_model": target_model},
    )


ReportFn = Callable[..., Report]

ALL_REPORTS: Sequence[ReportFn] = (
    spend_by_endpoint,
    spend_by_model,
    cache_efficiency,
    missed_caching,
    rate_limits,
    anomalies,
    unpriced,
    cost_per_task,
    evidence_waste,
    prefix_stability,
    repricing,
    reported_cost,
)

REPORTS: dict[str, ReportFn] = {fn.__name__: fn for fn in ALL_REPORTS}


def run_all(client: Any, *, since_hours: int = 24, database: str = "otel") -> list[Report]:
    return [fn(client, since_hours=since_hours, database=database) for fn in ALL_REPORTS]
