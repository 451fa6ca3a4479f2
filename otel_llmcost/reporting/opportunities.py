"""``otel-llmcost opportunities``: what to change to spend less, largest saving first.

The items come from ``v_opportunities`` (``storage/sql/020_opportunities_ranked.sql``)
through ``sql/opportunities.sql``; every estimate is made in SQL, so the dashboard, the
report and this command say the same thing. Here the rows only become JSON objects
(:data:`JSON_KEYS`, snake_case) and a table.

Routing and batch items need the price catalogue (``otel-llmcost prices sync``):
:func:`catalogue_synced` tells the command whether to say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import anomalies, reports

# The list output and the --kind check are the anomalies command's, for the same contract.
to_json = anomalies.to_json

# v_opportunities.Kind, in the order docs/views.md explains them.
KINDS = (
    "missed_caching",
    "cache_not_paid_back",
    "duplicate_requests",
    "near_duplicates",
    "routing",
    "batch",
    "unused_evidence",
)
# The kinds whose saving is priced from the catalogue rather than from recorded costs.
CATALOGUE_KINDS = ("routing", "batch")
_COLUMN_KEYS = {
    "Kind": "kind",
    "ServiceName": "service",
    "Key": "key",
    "Provider": "provider",
    "Model": "model",
    "MonthlySavingUsd": "monthly_saving_usd",
    "SeenSavingUsd": "seen_saving_usd",
    "DaysSeen": "days_seen",
    "Evidence": "evidence",
    "Action": "action",
}
JSON_KEYS = tuple(_COLUMN_KEYS.values())
TABLE_COLUMNS = ("kind", "key", "model", "monthly_saving_usd", "evidence", "action")
_NUMBERS = ("monthly_saving_usd", "seen_saving_usd", "days_seen")


def check_kinds(kinds: Sequence[str]) -> list[str]:
    return anomalies.check_kinds(kinds, KINDS)


def query(
    client: Any, *, database: str = "otel", since_hours: int = 24 * 7, kinds: Sequence[str] = (), limit: int = 50
) -> list[dict[str, Any]]:
    """The items active in the last ``since_hours`` hours, largest monthly saving first."""
    report = reports.run(
        client,
        "opportunities",
        database=database,
        since_hours=since_hours,
        limit=limit,
        parameters={"kinds": check_kinds(kinds)},
    )
    return [to_object(dict(zip(report.columns, row, strict=True))) for row in report.rows]


def catalogue_synced(client: Any, *, database: str = "otel") -> bool:
    """Whether a price catalogue was ever synced: without one, routing and batch list nothing."""
    rows = client.query(f"SELECT count() FROM {database}.llm_price_syncs").result_rows
    return bool(rows and rows[0][0])


def to_object(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, key in _COLUMN_KEYS.items():
        value = row.get(column)
        if key in _NUMBERS:
            out[key] = round(float(value), 6) if value is not None else None
        else:
            out[key] = "" if value is None else str(value)
    return out


def as_report(objects: Sequence[dict[str, Any]], *, columns: Sequence[str] = JSON_KEYS) -> reports.Report:
    """The objects as a report (table or CSV), columns named as in the view so the terminal
    formats money and text by name."""
    names = {key: column for column, key in _COLUMN_KEYS.items()}
    rows = [tuple(obj[c] for c in columns) for obj in objects]
    title = reports.query("opportunities").title
    return reports.Report(title=title, columns=[names[c] for c in columns], rows=rows, name="opportunities")
