"""Budget status: used, limit, burn rate and projected exhaustion of each budget's current
period, from the live counters (:func:`statuses`) or, for ClickHouse, the limits written
beside the spend of the spans (:func:`sync_limits` and the ``v_budget_status`` view).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ..storage import check_identifier
from .config import Budget, BudgetConfig
from .periods import period_bounds
from .stores import KEY_PREFIX, NANO, MemoryStore, RedisStore

LIMIT_COLUMNS = ("Name", "Scope", "Match", "Period", "TimeZone", "PeriodStart", "PeriodEnd", "LimitUsd", "UpdatedAt")


@dataclass
class BudgetStatus:
    name: str
    scope: str
    scope_value: str
    period: str
    period_start: datetime
    period_end: datetime
    limit_usd: float
    used_usd: float
    reserved_usd: float
    burn_rate_usd_per_day: float
    projected_exhaustion: datetime | None  # None: not before the period resets


def _status(
    budget: Budget, value: str, start: datetime, end: datetime, now: datetime, used: float, reserved: float
) -> BudgetStatus:
    elapsed_days = max((now - start).total_seconds(), 60.0) / 86_400
    rate = used / elapsed_days
    exhaustion: datetime | None = None
    if used >= budget.limit_usd:
        exhaustion = now
    elif rate > 0:
        when = now + timedelta(days=(budget.limit_usd - used) / rate)
        exhaustion = when if when < end else None
    return BudgetStatus(
        name=budget.name,
        scope=budget.scope,
        scope_value=value,
        period=budget.period,
        period_start=start,
        period_end=end,
        limit_usd=budget.limit_usd,
        used_usd=used,
        reserved_usd=reserved,
        burn_rate_usd_per_day=rate,
        projected_exhaustion=exhaustion,
    )


def status_rows(statuses: Iterable[BudgetStatus]) -> list[tuple[Any, ...]]:
    """Rows for the CLI table (same order as :data:`STATUS_COLUMNS`)."""
    return [
        (
            s.name,
            "global" if s.scope == "global" else f"{s.scope}={s.scope_value}",
            s.period,
            s.period_start.date().isoformat(),
            s.used_usd,
            s.limit_usd,
            s.used_usd / s.limit_usd if s.limit_usd else None,
            s.burn_rate_usd_per_day,
            s.projected_exhaustion.isoformat(timespec="minutes") if s.projected_exhaustion else None,
        )
        for s in statuses
    ]


STATUS_COLUMNS = [
    "budget",
    "scope",
    "period",
    "since",
    "used_usd",
    "limit_usd",
    "used_share",
    "usd_per_day",
    "exhausted_by",
]


def statuses(config: BudgetConfig, store: MemoryStore | RedisStore, tz: ZoneInfo, now: datetime) -> list[BudgetStatus]:
    """The status of every counter of every budget in its current period."""
    now_ms = int(now.timestamp() * 1000)
    out = []
    for budget in config.budgets:
        start, end, period_key = period_bounds(budget.period, now, tz)
        prefix = f"{KEY_PREFIX}{budget.name}:{period_key}:"
        if budget.scope == "global":
            values = [""]
        elif budget.match is not None:
            values = [budget.match]
        else:
            values = sorted(k[len(prefix) :] for k in store.keys(prefix))
        for value in values:
            used, reserved = store.read(prefix + value, now_ms)
            out.append(_status(budget, value, start, end, now, used / NANO, reserved / NANO))
    return out


def limit_rows(config: BudgetConfig, now: datetime) -> list[list[Any]]:
    """``llm_budgets`` rows: each budget's limit and its current period, in UTC."""
    tz = ZoneInfo(config.timezone)
    stamp = now.astimezone(timezone.utc).replace(tzinfo=None)
    rows = []
    for budget in config.budgets:
        start, end, _ = period_bounds(budget.period, now, tz)
        utc = (start.astimezone(timezone.utc).replace(tzinfo=None), end.astimezone(timezone.utc).replace(tzinfo=None))
        rows.append(
            [
                budget.name,
                budget.scope,
                budget.match or "",
                budget.period,
                config.timezone,
                *utc,
                budget.limit_usd,
                stamp,
            ]
        )
    return rows


def sync_limits(client: Any, config: BudgetConfig, *, database: str, now: datetime | None = None) -> int:
    """Write the budgets' limits and current periods to ``llm_budgets`` (the latest row wins)."""
    check_identifier("database", database)
    rows = limit_rows(config, now or datetime.now(tz=timezone.utc))
    if rows:
        client.insert(f"{database}.llm_budgets", rows, column_names=list(LIMIT_COLUMNS))
    return len(rows)
