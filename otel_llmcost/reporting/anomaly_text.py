"""How an anomaly's contributors read, in one place for the CLI, JSON and the report.

``v_anomalies`` explains what moved and by how much; ``v_anomaly_contributors`` says
who moved it (a view apart: joining them in SQL would plan the detectors twice). The
two meet here, on the anomaly's identity (kind, dimension, key, service, start).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

# The columns that identify one anomaly in both views.
IDENTITY = ("Kind", "Dimension", "Key", "ServiceName", "At")


def identity(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(column) for column in IDENTITY)


def group_contributors(rows: Iterable[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """``v_anomaly_contributors`` rows by anomaly, largest share first."""
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        share = row.get("Share")
        grouped[identity(row)].append(
            {
                "dimension": str(row.get("ContributorDimension", "")),
                "key": str(row.get("ContributorKey", "")),
                "share": float(share) if isinstance(share, (int, float)) and share == share else None,
            }
        )
    for contributors in grouped.values():
        contributors.sort(key=lambda c: -(c["share"] or 0.0))
    return grouped


def contributors_text(contributors: Sequence[dict[str, Any]]) -> str:
    """``user u-1 96%, model gpt-4o 100%``: who moved the series, by share of the change."""
    parts = []
    for c in contributors:
        share = c.get("share")
        parts.append(f"{c['dimension']} {c['key']}" + (f" {share:.0%}" if isinstance(share, float) else ""))
    return ", ".join(parts)


def explanation(text: str, contributors: Sequence[dict[str, Any]]) -> str:
    """The view's explanation, then who moved it."""
    return f"{text}; {contributors_text(contributors)}" if contributors else text
