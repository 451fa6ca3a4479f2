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

LIMIT_COLUMNS = (
    "Name",
    "Scope",
    "Match",
    "Period",
    "TimeZone",
    "PeriodStart",
    "PeriodEnd",
    "LimitUsd",
    "UpdatedAt",
    "LimitTokens",
)


@dataclass
class BudgetStatus:
    """One counter's current period. USD budgets fill the ``*_usd`` fields, token budgets
    (``unit == "tokens"``) the ``*_tokens`` ones and ``burn_rate_tokens_per_day``."""

    name: str
    scope: str
    scope_value: str
    period: str
    period_start: datetime
    period_end: datetime
    limit_usd: float | None
    used_usd: float | None
    reserved_usd: float | None
    burn_rate_usd_per_day: float | None
    projected_exhaustion: datetime | None  # None: not before the period resets
    unit: str = "usd"
    limit_tokens: int | None = None
    used_tokens: int | None = None
    reserved_tokens: int | None = None
    burn_rate_tokens_per_day: float | None = None

    @property
    def used_share(self) -> float | None:
        limit, used = (
            (self.limit_tokens, self.used_tokens) if self.unit == "tokens" else (self.limit_usd, self.used_usd)
        )
        return used / limit if limit and used is not None else None


def projected_exhaustion(
    limit: float, used: float, rate_per_day: float, now: datetime, end: datetime
) -> datetime | None:
    """When spend at ``rate_per_day`` reaches ``limit``: ``now`` if it has, None if not before ``end``.

    Compared in days before any datetime is built: a tiny rate against a large remainder
    is 1e20 days away, which ``timedelta`` cannot hold (it overflowed here before)."""
    if used >= limit:
        return now
    if not rate_per_day > 0:
        return None
    days_left = (limit - used) / rate_per_day
    if not days_left < (end - now).total_seconds() / 86_400:  # also inf and nan
        return None
    return now + timedelta(days=days_left)


def _status(
    budget: Budget, value: str, start: datetime, end: datetime, now: datetime, used: int, reserved: int
) -> BudgetStatus:
    elapsed_days = max((now - start).total_seconds(), 60.0) / 86_400
    tokens = budget.unit == "tokens"
    amount = float(used) if tokens else used / NANO
    rate = amount / elapsed_days
    exhaustion = projected_exhaustion(budget.limit, amount, rate, now, end)
    return BudgetStatus(
        name=budget.name,
        scope=budget.scope,
        scope_value=value,
        period=budget.period,
        period_start=start,
        period_end=end,
        limit_usd=None if tokens else budget.limit,
        used_usd=None if tokens else amount,
        reserved_usd=None if tokens else reserved / NANO,
        burn_rate_usd_per_day=None if tokens else rate,
        projected_exhaustion=exhaustion,
        unit=budget.unit,
        limit_tokens=budget.limit_tokens,
        used_tokens=used if tokens else None,
        reserved_tokens=reserved if tokens else None,
        burn_rate_tokens_per_day=rate if tokens else None,
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
            s.used_tokens,
            s.limit_tokens,
            s.used_share,
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
    "used_tokens",
    "limit_tokens",
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
            out.append(_status(budget, value, start, end, now, used, reserved))
    return out


def limit_rows(config: BudgetConfig, now: datetime) -> list[list[Any]]:
    """``llm_budgets`` rows: each budget's limit and its current period, in UTC (a token
    budget has LimitUsd 0 and its LimitTokens; v_budget_status compares each it has)."""
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
                budget.limit_usd or 0.0,
                stamp,
                budget.limit_tokens or 0,
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
