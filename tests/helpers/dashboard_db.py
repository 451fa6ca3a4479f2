"""The chdb database the dashboard and HTML-report tests read: the demo, plus edge cases.

The demo (real SDKs, fake provider, ~5-10 s) runs once per test session, through the CLI
(``otel-llmcost demo``, as tests/cli/test_cli.py needs it): every process (xdist worker)
copies that database and adds its own rows (see ``demo_database``). A few
spans the demo does not produce are added the way the collector would write them (rows
in otel_traces, so the materialized views run): a spend spike after 8 quiet days, a
cache written and never read, a repeated uncached prefix, an hour whose cache hit rate
collapsed, a call with locally estimated usage, and the app rate limiter's own decisions
(allowed and refused, per route and user tier) beside a provider 429. With them every panel of every
dashboard has rows, so "the query ran and returned the expected columns" is checked on
data, not on empty results.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import clickhouse_connect
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.config import DEFAULT_DATABASE
from tests.helpers.budget_rows import add_demo_budgets
from tests.helpers.chdb import DATABASE, insert_spans
from tests.helpers.span_rows import server_span_row, trace_row

EDGE_SERVICE = "billing-worker"
DAY_S = 86_400


def _span(when: dt.datetime, **attributes: Any) -> list[Any]:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-20250514",
        "llmcost.team": "finance",
        "llmcost.feature": "invoices",
    }
    attrs.update({k: str(v) for k, v in attributes.items()})
    return trace_row(
        int(when.timestamp() * 1e9),
        attrs,
        service=EDGE_SERVICE,
        name=f"chat {attrs['gen_ai.request.model']}",
        duration_ns=800_000_000,
    )


def edge_case_spans(now: dt.datetime) -> list[list[Any]]:
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows = []
    # Spend spike: 8 quiet days on POST /translate, then one $2.40 call today (also an expensive request).
    for days_ago, cost in enumerate((0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.09, 0.11), start=1):
        rows.append(_span(now - dt.timedelta(days=days_ago, minutes=5), **{
            "llmcost.endpoint": "POST /translate", "gen_ai.usage.input_tokens": 2000,
            "gen_ai.usage.output_tokens": 500, "llmcost.cost.total": cost, "llmcost.cost.input": cost,
        }))  # fmt: skip
    rows.append(_span(now - dt.timedelta(minutes=3), **{
        "llmcost.endpoint": "POST /translate", "llmcost.user": "user-batch", "gen_ai.usage.input_tokens": 400_000,
        "gen_ai.usage.output_tokens": 80_000, "llmcost.cost.total": 2.40, "llmcost.cost.input": 1.20,
        "llmcost.cost.output": 1.20,
    }))  # fmt: skip
    # A cache written three hours ago and never read back.
    rows.append(_span(now - dt.timedelta(hours=3), **{
        "llmcost.endpoint": "POST /invoice", "llmcost.prompt.prefix_hash": "never-read-prefix",
        "gen_ai.usage.input_tokens": 2100, "gen_ai.usage.cache_creation.input_tokens": 2000,
        "llmcost.cost.total": 0.0081, "llmcost.cost.cache_write": 0.0075, "llmcost.cost.cache_write_premium": 0.0015,
    }))  # fmt: skip
    # The same 1500-token prefix twice, never cached.
    for minutes in (50, 20):
        rows.append(_span(now - dt.timedelta(minutes=minutes), **{
            "llmcost.endpoint": "POST /invoice", "llmcost.prompt.prefix_hash": "uncached-prefix",
            "gen_ai.usage.input_tokens": 1500, "llmcost.cost.total": 0.0045, "llmcost.cost.input": 0.0045,
        }))  # fmt: skip
    # Four hours at an 80% cache hit rate on POST /kb, then this hour at 5%.
    for hours_ago, read in ((4, 16_000), (3, 16_000), (2, 16_000), (1, 16_000), (0, 1_000)):
        rows.append(_span(hour - dt.timedelta(hours=hours_ago) + dt.timedelta(seconds=1), **{
            "llmcost.endpoint": "POST /kb", "gen_ai.usage.input_tokens": 20_000,
            "gen_ai.usage.cache_read.input_tokens": read, "llmcost.cost.total": 0.03, "llmcost.cost.cache_read": 0.005,
        }))  # fmt: skip
    # The provider returned no usage: tokens counted locally.
    rows.append(_span(now - dt.timedelta(minutes=10), **{
        "llmcost.endpoint": "POST /invoice", "llmcost.usage.estimated": "true", "gen_ai.usage.input_tokens": 900,
        "gen_ai.usage.output_tokens": 120, "llmcost.cost.total": 0.0045,
    }))  # fmt: skip
    return rows


def _server_span(when: dt.datetime, route: str, events: list[dict[str, str]]) -> list[Any]:
    """An HTTP server span of the web framework's instrumentation carrying limiter decision events."""
    return server_span_row(
        int(when.timestamp() * 1e9),
        route,
        [("llmcost.limiter.decision", event) for event in events],
        service=EDGE_SERVICE,
        attributes={"llmcost.limiter.decision_count": str(len(events))},
    )


def limiter_decision_spans(now: dt.datetime) -> list[list[Any]]:
    """POST /invoice: two quiet hours, then this hour the free tier refused 8 of 20 (rate 0.27 over 30)."""
    route = "POST /invoice"

    def decision(action: str, tier: str, user: str) -> dict[str, str]:
        return {
            "llmcost.limiter.limit": "per-user",
            "llmcost.limiter.action": action,
            "llmcost.limiter.route": route,
            "llmcost.limiter.tier": tier,
            "llmcost.limiter.key": user,
            "llmcost.limiter.source": "slowapi",
        }

    rows = []
    for hours_ago in (2, 1):
        for n in range(10):
            when = now - dt.timedelta(hours=hours_ago, minutes=n)
            rows.append(_server_span(when, route, [decision("allowed", "pro", f"user-{n}")]))
    actions = ["allowed"] * 12 + ["throttled"] * 6 + ["rejected"] * 2
    for n, action in enumerate(actions):
        rows.append(
            _server_span(now - dt.timedelta(seconds=30 + n), route, [decision(action, "free", f"free-{n % 4}")])
        )
    for n in range(10):
        rows.append(_server_span(now - dt.timedelta(seconds=60 + n), route, [decision("allowed", "pro", f"pro-{n}")]))
    # The provider throttled one LLM call on the same route: the other side of the comparison.
    rows.append(_span(now - dt.timedelta(minutes=1), **{
        "llmcost.endpoint": route, "llmcost.throttled": "true", "llmcost.throttled.attempts": 2,
        "llmcost.retry.count": 2, "gen_ai.usage.input_tokens": 800, "llmcost.cost.total": 0.003,
    }))  # fmt: skip
    return rows


def session_dir(root: Path) -> Path:
    """The directory every process of this test session shares: under xdist ``root`` (a
    worker's base temp, ``pytest-N/popen-gwK``) is one per worker and its parent the session's."""
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


def session_once(root: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``session_dir(root) / name``, a directory ``build`` fills once per test session: in
    whichever process asks first, while the others wait on a lock. A build that raised
    leaves nothing behind, so every process that asks builds again and fails its own test."""
    shared = session_dir(root)
    target = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".built").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            build(target)
            (target / ".built").touch()
    return target


def _run_demo_command(directory: Path) -> None:
    assert DATABASE == DEFAULT_DATABASE  # the command writes the configured (default) database
    result = CliRunner().invoke(app, ["demo", "--dsn", f"chdb://{directory / 'chdb'}", "--format", "json"])
    assert result.exit_code == 0, result.output


def demo_database(root: Path, target: Path) -> str:
    """The DSN of a copy, at ``target`` (a chdb directory), of the database ``otel-llmcost
    demo --dsn DSN --format json`` writes (15 days, the command's default: the least that
    gives the seasonal detectors 4 prior days of the same type on any day of the week).
    The command runs once per session (``session_once``) and must exit 0."""
    # One per clock hour: the demo's spike is judged "as of now" by the anomaly detectors,
    # and read in a later hour it is another hour's data (a copy from 21:59 read at 22:00
    # loses the spend anomalies the tests expect). Within the hour every process shares it.
    hour = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H")
    template = session_once(root, f"demo-template-{hour}", _run_demo_command)
    # chdb's data directory holds relative symlinks only: the copy stands alone
    shutil.copytree(template / "chdb", target, symlinks=True)
    return f"chdb://{target}"


@functools.cache
def dashboard_database(root: Path) -> str:
    """Build the database once per process under ``root``; return its chdb DSN."""
    dsn = demo_database(root, root / "dashboards-chdb")
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        now = dt.datetime.now(dt.timezone.utc)
        rows = edge_case_spans(now) + limiter_decision_spans(now)
        insert_spans(client, rows)
        add_demo_budgets(client)  # the budgets dashboard and the HTML report's budget panels
    finally:
        client.close()
    return dsn


def open_dashboard_database(root: Path) -> Any:
    """A client on the shared database, its default database set as the Grafana data source sets it."""
    return clickhouse_connect.get_client(dsn=dashboard_database(root), database=DATABASE)
