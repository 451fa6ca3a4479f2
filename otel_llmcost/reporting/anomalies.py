"""``otel-llmcost anomalies``: what the detectors flagged, for people (a table) and machines (JSON, CSV).

The rows come from ``v_anomalies`` (``storage/sql``) through ``sql/anomalies_list.sql``,
and who moved each from ``v_anomaly_contributors``; nothing here detects anything. The
same rows feed the Anomalies dashboard, the alert rules and the ``anomalies`` report,
so every interface says the same thing.

JSON is a list of objects, one per anomaly, with snake_case keys (:data:`JSON_KEYS`);
times are ISO 8601 UTC ending in ``Z``, ``open`` is a boolean and ``contributors`` a
list of ``{dimension, key, share}``, largest share first; the explanation ends with
them. No anomaly: an empty list.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from . import anomaly_text, reports

# What a detector may report (v_anomalies.Kind).
KINDS = (
    "spend",
    "calls",
    "cost_per_call",
    "tokens_per_call",
    "cache_hit_rate",
    "error_rate",
    "throttled_share",
    "latency",
    "unpriced_share",
    "new_entity",
    "drift",
)
JSON_KEYS = (
    "kind",
    "dimension",
    "key",
    "service",
    "at",
    "detected_at",
    "last_seen",
    "expected",
    "observed",
    "score",
    "open",
    "explanation",
    "contributors",
)
# The view's columns, in the order of sql/anomalies_list.sql, and the key each becomes.
_COLUMN_KEYS = {
    "Kind": "kind",
    "Dimension": "dimension",
    "Key": "key",
    "ServiceName": "service",
    "At": "at",
    "DetectedAt": "detected_at",
    "LastSeen": "last_seen",
    "Expected": "expected",
    "Observed": "observed",
    "Score": "score",
    "Open": "open",
    "Explanation": "explanation",
}
TABLE_COLUMNS = ("kind", "dimension", "key", "service", "at", "open", "expected", "observed", "score", "explanation")
DEFAULT_SINCE = "7d"
MAX_SINCE = dt.timedelta(days=3650)

_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(text: str) -> dt.timedelta:
    """``30m``, ``6h``, ``2d`` or ``1w`` (also combined: ``1d12h``) as a positive timedelta."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not cleaned or not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"--since must be a duration like 30m, 6h, 2d or 1w, got {text!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"--since must be longer than zero, got {text!r}")
    if seconds > MAX_SINCE.total_seconds():
        raise ValueError(f"--since must be at most {MAX_SINCE.days} days, got {text!r}")
    return dt.timedelta(seconds=seconds)


def check_kinds(kinds: Sequence[str], known: Sequence[str] = KINDS) -> list[str]:
    """``kinds`` without repeats, or a ValueError naming those not in ``known`` (the
    detectors' kinds by default; ``otel-llmcost opportunities`` passes its own)."""
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise ValueError(f"unknown --kind {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
    return list(dict.fromkeys(kinds))


def query(
    client: Any,
    *,
    database: str = "otel",
    since: dt.timedelta = dt.timedelta(days=7),
    open_only: bool = False,
    kinds: Sequence[str] = (),
    dimension: str | None = None,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """The anomalies seen within ``since`` (or still open), newest first, as JSON-ready objects."""
    report = reports.run(
        client,
        "anomalies_list",
        database=database,
        limit=limit,
        parameters={
            "since_seconds": max(1, int(since.total_seconds())),
            "open_only": int(open_only),
            "kinds": check_kinds(kinds),
            "dimension": dimension or "",
        },
    )
    rows = [dict(zip(report.columns, row, strict=True)) for row in report.rows]
    by_anomaly = reports.contributors_by_anomaly(client, rows, database=database)
    return [to_object(row, by_anomaly.get(anomaly_text.identity(row), [])) for row in rows]


def iso_utc(value: Any) -> str | None:
    """A DateTime('UTC') as ``2026-07-01T13:00:00Z`` (chdb and HTTP return naive UTC or aware)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def to_object(row: dict[str, Any], contributors: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """One ``v_anomalies`` row and its contributors as the JSON object of the contract."""
    out: dict[str, Any] = {}
    for column, key in _COLUMN_KEYS.items():
        value = row.get(column)
        if key in ("at", "detected_at", "last_seen"):
            out[key] = iso_utc(value)
        elif key in ("expected", "observed", "score"):
            out[key] = _number(value)
        elif key == "open":
            out[key] = bool(value)
        else:
            out[key] = "" if value is None else str(value)
    out["explanation"] = anomaly_text.explanation(out["explanation"], contributors)
    out["contributors"] = [{**c, "share": _number(c.get("share"))} for c in contributors]
    return out


def to_json(objects: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(objects), indent=2, ensure_ascii=False) + "\n"


def as_report(objects: Sequence[dict[str, Any]], *, columns: Sequence[str] = JSON_KEYS) -> reports.Report:
    """The objects as a report (table or CSV): contributors as one text cell, open as yes/no."""
    rows = []
    for obj in objects:
        row = []
        for column in columns:
            value = obj[column]
            if column == "contributors":
                value = anomaly_text.contributors_text(value)
            elif column == "open":
                value = "yes" if value else "no"
            row.append(value)
        rows.append(tuple(row))
    title = reports.query("anomalies_list").title
    return reports.Report(title=title, columns=list(columns), rows=rows, name="anomalies")
