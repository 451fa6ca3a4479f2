"""Hourly call rows for the anomaly detector tests: spans with past timestamps, as the
collector writes them, so llm_calls and the anomaly rollup fill through the MVs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.helpers.span_rows import call_row


def hour_start() -> datetime:
    """The start of the current UTC hour, naive (as ClickHouse DateTime('UTC') reads back)."""
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0, tzinfo=None)


def calls_in_hour(
    service: str,
    hour: datetime,
    n: int,
    *,
    cost_each: float,
    endpoint: str = "/e",
    user: str = "u1",
    input_tokens: int = 1000,
    cache_read: int = 0,
) -> list[list[Any]]:
    """``n`` calls spread over ``hour`` (naive UTC), each costing ``cost_each``."""
    start_ns = int(hour.replace(tzinfo=timezone.utc).timestamp()) * 10**9
    step = 3600 * 10**9 // max(n, 1)
    return [
        call_row(
            service,
            start_ns + i * step + 1,
            endpoint=endpoint,
            user=user,
            cost_total=cost_each,
            gen_ai_usage_input_tokens=input_tokens,
            gen_ai_usage_cache_read_input_tokens=cache_read,
        )
        for i in range(n)
    ]


def history(service: str, now: datetime, days: int, **kwargs: Any) -> list[list[Any]]:
    """Every hour of the ``days`` days before ``now`` (a whole hour) with the same calls."""
    rows: list[list[Any]] = []
    for h in range(days * 24, 0, -1):
        rows += calls_in_hour(service, now - timedelta(hours=h), **kwargs)
    return rows
