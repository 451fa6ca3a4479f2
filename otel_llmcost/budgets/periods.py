"""Budget periods: a day, a week (from Monday) or a month, in the budgets' time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def period_bounds(period: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime, str]:
    """(start, end, key) of the period containing ``now``, in local time of ``tz``."""
    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "day":
        start, end, key = day, day + timedelta(days=1), day.strftime("%Y-%m-%d")
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        iso = start.isocalendar()
        end, key = start + timedelta(days=7), f"{iso[0]}-W{iso[1]:02d}"
    elif period == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        key = start.strftime("%Y-%m")
    else:
        raise ValueError(f"unknown period {period!r}")
    # Wall-clock midnights, made aware in the zone (correct across DST changes).
    return start.replace(tzinfo=tz), end.replace(tzinfo=tz), key
