"""Scripted rows of ``v_anomalies`` and ``v_anomaly_contributors``, in the views' exact
shape, for exact-format tests.

The detectors (``storage/sql``) build both views; the CLI, the report, the dashboard and
the alert rules only read them. Tests that check how a row is shown (JSON keys, ISO
times, booleans, contributors, terminal escaping, filters) replace the views with tables
of the same columns holding the rows below, so the expected output is known exactly.
The scripted tables live in a database of their own (:func:`install`), never in place
of the detectors' views.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DATABASE = "otel"

# The contract: column name and ClickHouse type, in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Kind", "LowCardinality(String)"),
    ("Dimension", "LowCardinality(String)"),
    ("Key", "String"),
    ("ServiceName", "LowCardinality(String)"),
    ("At", "DateTime('UTC')"),
    ("DetectedAt", "DateTime('UTC')"),
    ("LastSeen", "DateTime('UTC')"),
    ("Expected", "Float64"),
    ("Observed", "Float64"),
    ("Score", "Float64"),
    ("Open", "UInt8"),
    ("Explanation", "String"),
)
# v_anomaly_contributors: one row per (anomaly, other dimension).
CONTRIBUTOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Kind", "LowCardinality(String)"),
    ("Dimension", "LowCardinality(String)"),
    ("Key", "String"),
    ("ServiceName", "LowCardinality(String)"),
    ("At", "DateTime('UTC')"),
    ("ContributorDimension", "LowCardinality(String)"),
    ("ContributorKey", "String"),
    ("Share", "Float64"),
)

HOSTILE_KEY = "[bold]user[/bold]\x1b[31m\u202e"


def hour(now: dt.datetime | None = None) -> dt.datetime:
    """The start of the current UTC hour (naive, as chdb returns DateTime('UTC'))."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0, tzinfo=None)


def scripted_rows(now: dt.datetime | None = None) -> list[tuple[Any, ...]]:
    """Newest first: two open anomalies of the last hours, closed ones of past days, one too old.

    Each row is a ``v_anomalies`` row followed by its contributors, ``(dimension, key, share)``."""
    h = hour(now)
    ago = dt.timedelta
    return [
        (
            "spend",
            "endpoint",
            "POST /translate",
            "billing-worker",
            h - ago(hours=2),
            h - ago(hours=1),
            h,
            0.10,
            2.40,
            9.5,
            1,
            "spend 2.40 USD/h against 0.10 expected (x24.0) for 2 h; user user-batch: 96% of the rise",
            [("user", "user-batch", 0.96), ("model", "claude-sonnet-4-20250514", 1.0)],
        ),
        (
            "cache_hit_rate",
            "endpoint",
            "POST /kb",
            "billing-worker",
            h - ago(hours=1),
            h - ago(hours=1),
            h,
            0.80,
            0.05,
            6.1,
            1,
            "cache hit rate 5% against 80% expected for 1 h",
            [],
        ),
        (
            "error_rate",
            "model",
            HOSTILE_KEY,
            "it's-a-service",
            h - ago(hours=30),
            h - ago(hours=29),
            h - ago(hours=27),
            0.01,
            0.2,
            4.2,
            0,
            "error rate 20% against 1% expected for 3 h; it's [red]closed[/red]",
            [("endpoint", "POST /chat", 0.7)],
        ),
        (
            "new_entity",
            "model",
            "acme-finetune-7b",
            "llmcost-demo",
            h - ago(days=3),
            h - ago(days=3),
            h - ago(days=2),
            0.0,
            55.0,
            3.0,
            0,
            "new model acme-finetune-7b spent 55.00 USD/day (floor 10.00)",
            [],
        ),
        (
            "drift",
            "feature",
            "summaries",
            "llmcost-demo",
            h - ago(days=6),
            h - ago(days=5),
            h - ago(days=4),
            1.0,
            1.6,
            3.5,
            0,
            "spend drifted +60% over 6 days",
            [("model", "gpt-4o", 0.8)],
        ),
        (
            "calls",
            "team",
            "finance",
            "llmcost-demo",
            h - ago(days=10),
            h - ago(days=10),
            h - ago(days=9),
            100.0,
            400.0,
            5.0,
            0,
            "calls 400/h against 100 expected for 1 h",
            [],
        ),
    ]


def create_tables(client: Any, database: str = DATABASE) -> None:
    for table, columns in (("v_anomalies", COLUMNS), ("v_anomaly_contributors", CONTRIBUTOR_COLUMNS)):
        client.command(f"DROP TABLE IF EXISTS {database}.{table}")
        names = ", ".join(f"{name} {kind}" for name, kind in columns)
        client.command(f"CREATE TABLE {database}.{table} ({names}) ENGINE = MergeTree ORDER BY tuple()")


def install(client: Any, rows: list[tuple[Any, ...]] | None = None, database: str = DATABASE) -> None:
    """Replace both views by tables holding ``rows`` (default: the scripted ones) and their contributors."""
    create_tables(client, database)
    rows = scripted_rows() if rows is None else rows
    anomalies = [row[: len(COLUMNS)] for row in rows]
    contributors = [(*row[:4], row[4], *c) for row in rows for c in row[len(COLUMNS)]]
    if anomalies:
        client.insert(f"{database}.v_anomalies", anomalies, column_names=[name for name, _ in COLUMNS])
    if contributors:
        client.insert(
            f"{database}.v_anomaly_contributors", contributors, column_names=[name for name, _ in CONTRIBUTOR_COLUMNS]
        )


def view_exists(client: Any, database: str = DATABASE) -> bool:
    return bool(client.command(f"EXISTS TABLE {database}.v_anomalies"))


def is_scripted(client: Any, database: str = DATABASE) -> bool:
    """Whether ``v_anomalies`` is this module's table (not the detectors' view)."""
    rows = client.query(
        "SELECT engine FROM system.tables WHERE database = {d:String} AND name = 'v_anomalies'",
        parameters={"d": database},
    ).result_rows
    return bool(rows) and rows[0][0] != "View"
