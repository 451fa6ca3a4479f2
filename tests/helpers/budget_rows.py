"""Budgets in ClickHouse for tests: limits in ``llm_budgets`` and spans carrying the budget
events the instrumentation records, written as the collector writes them (rows in
otel_traces, so llm_calls_mv and llm_budget_events_mv run)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.helpers.span_rows import trace_row

BUDGET_COLUMNS = ["Name", "Scope", "Match", "Period", "TimeZone", "PeriodStart", "PeriodEnd", "LimitUsd", "UpdatedAt"]
DATABASE = "otel"


def utc(when: dt.datetime) -> dt.datetime:
    """Naive UTC, as llm_budgets stores it."""
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)


def limit_row(
    name: str,
    limit_usd: float,
    start: dt.datetime,
    end: dt.datetime,
    *,
    scope: str = "global",
    match: str = "",
    period: str = "day",
    tz: str = "UTC",
    limit_tokens: int = 0,
    synced: dt.datetime | None = None,
) -> list[Any]:
    """One llm_budgets row, as `otel-llmcost budgets --sync` writes it (plus LimitTokens)."""
    synced = synced or dt.datetime.now(dt.timezone.utc)
    return [name, scope, match, period, tz, utc(start), utc(end), limit_usd, utc(synced), limit_tokens]


def insert_limits(client: Any, rows: list[list[Any]]) -> None:
    client.insert(f"{DATABASE}.llm_budgets", rows, column_names=[*BUDGET_COLUMNS, "LimitTokens"])


def budget_event(event: str, **attributes: Any) -> tuple[str, dict[str, str]]:
    """(name, attributes) of a span event: ``budget_event("refused", name="per-user", used_usd=1.2)``
    is ``llmcost.budget.refused`` with ``llmcost.budget.name`` and ``llmcost.budget.used_usd``."""
    return f"llmcost.budget.{event}", {f"llmcost.budget.{k}": str(v) for k, v in attributes.items()}


def call_span(
    when: dt.datetime,
    cost: float,
    *,
    service: str,
    events: list[tuple[str, dict[str, str]]] | None = None,
    model: str = "gpt-4o",
    input_tokens: int = 1000,
    output_tokens: int = 100,
    **attribution: str,
) -> list[Any]:
    """An LLM call of otel-llmcost's scope costing ``cost``; ``attribution`` as
    ``user="alice", feature="search"`` (the llmcost.* attribution keys)."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "llmcost.cost.total": repr(cost),
    }
    attrs.update({f"llmcost.{k}": v for k, v in attribution.items()})
    return trace_row(int(when.timestamp() * 1e9), attrs, service=service, name=f"chat {model}", events=events or ())


# --- the dashboards' demo database ------------------------------------------------------------

DEMO_SERVICE = "support-bot"
DEMO_BUDGETS = ("support-daily", "support-per-user", "support-weekly-tokens", "support-monthly")


def add_demo_budgets(client: Any, now: dt.datetime | None = None) -> None:
    """Budgets and budget events for the dashboards' database, once (a second call is a no-op).

    Today: `support-per-user` ($1/day per user) at 97% for u-alice (refuse), 30% for u-bob;
    `support-daily` ($10/day on the support-desk feature) at 88% (downgrade);
    `support-weekly-tokens` (40 000 tokens a week) at 80.5% (notify); `support-monthly`
    ($500, global) far from its limit. Events: a
    threshold crossing, a downgrade, a refusal and two unchecked calls in the last minutes.
    """
    (count,) = client.query(
        f"SELECT count() FROM {DATABASE}.llm_budgets WHERE Name = {{n:String}}", parameters={"n": DEMO_BUDGETS[0]}
    ).result_rows[0]
    if count:
        return
    now = now or dt.datetime.now(dt.timezone.utc)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - dt.timedelta(days=day.weekday())
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    insert_limits(
        client,
        [
            limit_row("support-daily", 10.0, day, day + dt.timedelta(days=1), match="support-desk", scope="feature"),
            limit_row("support-per-user", 1.0, day, day + dt.timedelta(days=1), scope="user"),
            limit_row(
                "support-weekly-tokens",
                0.0,
                week,
                week + dt.timedelta(days=7),
                scope="feature",
                match="support-desk",
                period="week",
                limit_tokens=40_000,
            ),
            limit_row("support-monthly", 500.0, month, next_month, period="month"),
        ],
    )
    # Spread over the day so far (at least a minute ago, never before midnight).
    elapsed = max((now - day).total_seconds() - 60, 1)
    at = [day + dt.timedelta(seconds=elapsed * f) for f in (0.2, 0.4, 0.6, 0.8, 0.95)]
    ctx = {"service": DEMO_SERVICE, "feature": "support-desk", "endpoint": "POST /support", "team": "support"}
    rows = [
        call_span(at[0], 4.00, **ctx, input_tokens=10_000, output_tokens=2_000),
        call_span(at[1], 3.53, **ctx, input_tokens=10_000, output_tokens=2_000),
        call_span(at[2], 0.30, user="u-bob", **ctx, input_tokens=5_000, output_tokens=1_000),
        call_span(
            at[3],
            0.52,
            user="u-alice",
            **ctx,
            input_tokens=1_000,
            events=[
                budget_event(
                    "threshold_crossed",
                    name="support-daily",
                    scope="feature",
                    scope_value="support-desk",
                    period="day",
                    threshold=0.85,
                    action="downgrade",
                    used_usd=8.53,
                    limit_usd=10,
                )
            ],
        ),  # fmt: skip
        call_span(
            at[4],
            0.45,
            user="u-alice",
            **ctx,
            model="gpt-4o-mini",
            input_tokens=1_000,
            events=[
                budget_event(
                    "downgraded",
                    name="support-daily",
                    scope="feature",
                    scope_value="support-desk",
                    period="day",
                    threshold=0.85,
                    action="downgrade",
                    used_usd=8.80,
                    limit_usd=10,
                    downgraded_to="gpt-4o-mini",
                )
            ],
        ),  # fmt: skip
        call_span(
            now - dt.timedelta(minutes=2),
            0.0,
            user="u-alice",
            **ctx,
            input_tokens=0,
            output_tokens=0,
            events=[
                budget_event(
                    "refused",
                    name="support-per-user",
                    scope="user",
                    scope_value="u-alice",
                    period="day",
                    threshold=0.95,
                    action="refuse",
                    used_usd=0.97,
                    limit_usd=1,
                )
            ],
        ),  # fmt: skip
    ]
    rows += [
        call_span(now - dt.timedelta(minutes=m), 0.0, user="u-dan", **ctx, input_tokens=0, output_tokens=0,
                  events=[budget_event("unchecked", name="support-daily", scope="feature", scope_value="support-desk",
                                       period="day")])
        for m in (3, 1)
    ]  # fmt: skip
    from tests.helpers.chdb import insert_spans

    insert_spans(client, rows)
