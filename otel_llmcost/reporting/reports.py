"""Named report queries over the SQL views, for ``otel-llmcost report`` and the like.

Each report is one file in ``sql/``: a ``-- title:`` line, a description in the
comment lines after it, then one query that reads the views (never the raw span
maps). The time window and row limit are server-side query parameters
(``{since_hours:UInt32}``, ``{limit:UInt32}``): user input never becomes SQL text.
The only interpolated name is the database (``{db}``), checked as a strict identifier.

ClickHouse resolves an alias before a column of the same name, so an expression that
reuses an aggregated name (``sum(Calls) AS Calls``) must use the alias outside any
aggregate (``x / Calls``), never ``sum(Calls)`` again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from ..storage import check_identifier
from . import anomaly_text, safe_query
from .prefix_verdict import explain

SQL_DIR = Path(__file__).with_name("sql")
_PARAMETER = re.compile(r"\{(\w+):\w+(?:\([^)]*\))?\}")


@dataclass(frozen=True)
class Report:
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    name: str = ""
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class ReportQuery:
    """One ``sql/<name>.sql`` file: its title, description and query."""

    name: str
    title: str
    description: str
    sql: str

    @property
    def parameters(self) -> frozenset[str]:
        return frozenset(_PARAMETER.findall(self.sql))


@cache
def query(name: str) -> ReportQuery:
    """The report query ``name`` (``sql/<name>.sql``)."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no report named {name!r}")
    title = ""
    description: list[str] = []
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not body and line.startswith("-- title:"):
            title = line.removeprefix("-- title:").strip()
        elif not body and line.startswith("--"):
            description.append(line.removeprefix("--").strip())
        else:
            body.append(line)
    return ReportQuery(name, title, " ".join(description), "\n".join(body).strip())


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def run(
    client: Any,
    name: str,
    *,
    database: str = "otel",
    since_hours: int = 24,
    limit: int = 50,
    parameters: Mapping[str, Any] | None = None,
) -> Report:
    """Run the report ``name`` and return its rows, with the post-processing it defines."""
    report_query = query(name)
    check_identifier("database", database)
    values: dict[str, Any] = {
        **_DEFAULT_PARAMETERS.get(name, {}),
        **(parameters or {}),
        "since_hours": _positive("since_hours", since_hours),
        "limit": _positive("limit", limit),
    }
    wanted = {key: value for key, value in values.items() if key in report_query.parameters}
    sql = report_query.sql.replace("{db}", database)
    result = client.query(sql, parameters=wanted)
    columns = list(result.column_names) or _empty_result_columns(client, sql, wanted)
    report = Report(
        title=report_query.title.format(**values) if "{" in report_query.title else report_query.title,
        columns=columns,
        rows=[tuple(r) for r in result.result_rows],
        name=name,
        description=report_query.description,
    )
    post = _POST_PROCESSING.get(name)
    return post(report, client, database) if post is not None else report


def _described_columns(client: Any, sql: str, **query_options: Any) -> list[str]:
    """The column names of a query, from ``DESCRIBE``, which plans it without running it:
    chdb returns no column names with an empty result."""
    described = client.query(f"DESCRIBE (\n{sql.strip().rstrip(';')}\n)", **query_options)
    return [str(row[0]) for row in described.result_rows]


# DESCRIBE plans the query again (0.5-1 s for the anomaly views): the columns of a report's
# query text are asked once per process.
_COLUMNS_OF_EMPTY: dict[tuple[str, str], list[str]] = {}


def _empty_result_columns(client: Any, sql: str, parameters: Mapping[str, Any]) -> list[str]:
    key = (sql, repr(sorted(parameters)))
    if key not in _COLUMNS_OF_EMPTY:
        _COLUMNS_OF_EMPTY[key] = _described_columns(client, sql, parameters=parameters)
    return list(_COLUMNS_OF_EMPTY[key])


def _with_verdicts(report: Report, client: Any, database: str) -> Report:
    """prefix_stability: one line per endpoint on why caching pays or not (:mod:`.prefix_verdict`)."""
    rows = [(*row, explain(dict(zip(report.columns, row, strict=True)))) for row in report.rows]
    return replace(report, columns=[*report.columns, "Why"], rows=rows)


def contributors_by_anomaly(
    client: Any, anomalies: list[dict[str, Any]], *, database: str
) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Who moved each of ``anomalies`` (``v_anomalies`` rows), read only when there is one."""
    starts = [row["At"] for row in anomalies if row.get("At") is not None]
    if not starts:
        return {}
    found = run(client, "anomaly_contributors", database=database, limit=10_000, parameters={"since_at": min(starts)})
    return anomaly_text.group_contributors(dict(zip(found.columns, row, strict=True)) for row in found.rows)


def _with_contributors(report: Report, client: Any, database: str) -> Report:
    """anomalies: each explanation ends with who moved the series (v_anomaly_contributors)."""
    rows = [dict(zip(report.columns, row, strict=True)) for row in report.rows]
    by_anomaly = contributors_by_anomaly(client, rows, database=database)
    if not by_anomaly:
        return report
    for row in rows:
        contributors = by_anomaly.get(anomaly_text.identity(row), [])
        row["Explanation"] = anomaly_text.explanation(row["Explanation"], contributors)
    return replace(report, rows=[tuple(row[c] for c in report.columns) for row in rows])


_POST_PROCESSING: dict[str, Callable[[Report, Any, str], Report]] = {
    "prefix_stability": _with_verdicts,
    "anomalies": _with_contributors,
}

# Filters a report's SQL takes beyond the window and limit, with the value that means "all",
# so the report runs in `otel-llmcost report` as well as in its own command.
_DEFAULT_PARAMETERS: dict[str, dict[str, Any]] = {"opportunities": {"kinds": []}}

# Rows a report shows in the full `otel-llmcost report` (its own section, `report NAME`,
# shows up to the usual limit): the ranked list is read from the top.
SUMMARY_LIMITS: dict[str, int] = {"opportunities": 5}

# `otel-llmcost report` shows these, in this order (what_if, budget_status and anomalies_list have
# their own commands: prices whatif, budgets, anomalies).
DEFAULT_REPORTS = (
    "spend_by_endpoint",
    "spend_by_model",
    "opportunities",
    "cache_efficiency",
    "missed_caching",
    "rate_limits",
    "anomalies",
    "unpriced",
    "cost_per_task",
    "evidence_waste",
    "prefix_stability",
    "repricing",
    "reported_cost",
)
# Shown only when asked for (`otel-llmcost report NAME` or `--only NAME`): detail that
# would make the default report long. The duplicates are in `opportunities` already, ranked
# with the rest; near_duplicates' clusters include the exact repeats of `duplicates`, so side
# by side their dollars would read as if they added up, and its self-join costs more (0.5 s
# against 0.1 s for 200k calls in the window).
ON_REQUEST_REPORTS = ("prompt_anatomy_cost", "output_side", "duplicates", "near_duplicates")


def summary(client: Any, *, database: str = "otel", since_hours: int = 24) -> dict[str, Any]:
    """What the top of ``otel-llmcost report`` says (``sql/summary.sql``): window, spend, savings,
    unpriced calls, open anomalies and the costliest endpoints, as one row keyed by column."""
    found = run(client, "summary", database=database, since_hours=since_hours, limit=1)
    row = found.rows[0] if found.rows else (None,) * len(found.columns)
    return {**dict(zip(found.columns, row, strict=True)), "SinceHours": since_hours, "Database": database}


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
    return run(
        client,
        "what_if",
        database=database,
        since_hours=since_hours,
        limit=limit,
        parameters={"target_provider": target_provider, "target_model": target_model},
    )


def ad_hoc(client: Any, sql: str, *, write: bool = False) -> Report:
    """Run the user's own SQL (``otel-llmcost query``) as a report named ``query``.

    Exactly one statement. Read-only unless ``write``: checked by :mod:`.safe_query`
    and run with ClickHouse's ``readonly=1``; a refusal raises
    :class:`~.safe_query.QueryRefused` with the reason in one line.
    """
    safe_query.check_single_statement(client, sql)
    if write:  # maintenance: the statement as given
        result = client.query(sql)
    else:
        try:
            safe_query.check_read_only(client, sql)
            result = client.query(sql, settings=safe_query.READONLY_SETTINGS)
        except Exception as exc:
            refused = safe_query.refusal(exc)
            if refused is not None:
                raise refused from None
            raise
    columns = list(result.column_names)
    rows = [tuple(r) for r in result.result_rows]
    if not columns and not rows and not write:
        columns = _result_columns(client, sql)
    return Report(title="query", columns=columns, rows=rows, name="query")


def _result_columns(client: Any, sql: str) -> list[str]:
    """The column names of a checked read that returned no rows; none when the statement
    is not a query DESCRIBE takes (SHOW, EXPLAIN ...)."""
    try:
        return _described_columns(client, sql, settings=safe_query.READONLY_SETTINGS)
    except Exception:
        return []
