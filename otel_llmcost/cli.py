"""``otel-llmcost``: demo, report, query, migrate, prices, outcomes import.

Every command reads ClickHouse through the same views the dashboards use; with no
``--dsn`` it uses the embedded database the ``llmcost`` exporter writes
(``$OTEL_EXPORTER_LLMCOST_DSN``, default ``chdb://<data dir>/chdb``). Spans the app
spooled while the database was busy are ingested first, so a report never misses
what the app already handed over.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from . import migrations, reports, storage
from .version import __version__

app = typer.Typer(
    name="otel-llmcost",
    help="What your LLM calls cost: reports and queries over the otel-llmcost ClickHouse views.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

DsnOption = typer.Option(None, "--dsn", help="chdb:///path or http(s)://user:pass@host:8123 (default: embedded)")
DatabaseOption = typer.Option(None, "--database", "-d", help="ClickHouse database (default: otel)")
FORMATS = ("table", "json", "csv")


def _dsn(dsn: str | None) -> str:
    return dsn or storage.configured_dsn()


def _database(database: str | None) -> str:
    """The database name, validated as a strict identifier before it reaches any SQL."""
    name = database or storage.configured_database()
    try:
        migrations.render("", database=name, cluster=None, ttl_days=1)
    except ValueError as exc:
        _fail(str(exc))
    return name


def _fail(message: str) -> None:
    # Escaped: messages quote user input and file positions ("models[0]"), never markup.
    # Not wrapped: an error is read, grepped and pasted whole.
    err.print("[bold red]error:[/] " + escape(message), soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN: no data
            return "-"
        return f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"
    return str(_plain(value))


def _table(title: str, columns: list[str], rows: list[tuple[Any, ...]], caption: str = "") -> Table:
    table = Table(title=title, caption=caption or None, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    if not rows:
        table.add_row(*(["(none)"] + [""] * (len(columns) - 1)))
    return table


def _emit(reports_out: list[reports.Report], fmt: str) -> None:
    if fmt == "json":
        payload = [
            {
                "name": r.name,
                "title": r.title,
                "rows": [dict(zip(r.columns, map(_plain, row), strict=True)) for row in r.rows],
            }
            for r in reports_out
        ]
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for r in reports_out:
            writer.writerow(["report", *r.columns])
            for row in r.rows:
                writer.writerow([r.name, *map(_plain, row)])
        sys.stdout.write(buffer.getvalue())
    else:
        for r in reports_out:
            console.print(_table(r.title, r.columns, r.rows, r.description))
            console.print()


def _ingest(dsn: str, database: str) -> None:
    from .exporter import ingest_pending

    try:
        ingest_pending(dsn, database, wait_s=5.0)
    except storage.StorageBusy:
        err.print("[yellow]warning:[/] the database is busy; spans spooled since the last flush are not shown yet")


def _open(dsn: str) -> Any:
    try:
        return storage.open_client(dsn)
    except Exception as exc:  # pragma: no cover - open_client is lazy; errors surface on enter
        _fail(str(exc))


@app.command()
def report(
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    since_hours: int = typer.Option(24 * 30, "--since-hours", help="time window, in hours back from now"),
    only: list[str] | None = typer.Option(None, "--only", help=f"reports to show: {', '.join(reports.REPORTS)}"),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
    html: str | None = typer.Option(None, "--html", help="write the Grafana dashboards' panels to this HTML file"),
) -> None:
    """Spend by endpoint and model, caching, rate limits, anomalies, unpriced calls, tasks."""
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}")
    unknown = [name for name in only or [] if name not in reports.REPORTS]
    if unknown:
        _fail(f"unknown report(s) {', '.join(unknown)}; choose from {', '.join(reports.REPORTS)}")
    dsn, database = _dsn(dsn), _database(database)
    _ingest(dsn, database)
    if isinstance(html, str):  # the dashboards as one static page (otel_llmcost.html_report), not tables
        from .html_report import write_html_report

        try:
            with storage.open_client(dsn, database=database) as client:
                migrations.migrate(client, database=database)
                page = write_html_report(client, html, since_hours=since_hours)
        except (storage.StorageBusy, ConnectionError, RuntimeError, ValueError, OSError) as exc:
            _fail(str(exc))
        for problem in page.failed:
            err.print(f"[yellow]warning:[/] panel failed: {problem}")
        err.print(f"wrote {page.panels} panels ({page.charts} charts) to {page.path}")
        return
    try:
        with storage.open_client(dsn) as client:
            migrations.migrate(client, database=database)
            selected = [reports.REPORTS[n] for n in only] if only else list(reports.ALL_REPORTS)
            out = [fn(client, since_hours=since_hours, database=database) for fn in selected]
    except (storage.StorageBusy, ConnectionError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    _emit(out, fmt)


@app.command()
def query(
    sql: str = typer.Argument(..., help='SQL to run, e.g. "SELECT Endpoint, sum(CostTotal) FROM llm_calls GROUP BY 1"'),
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
) -> None:
    """Run ad-hoc SQL against the otel-llmcost database (unqualified tables resolve there)."""
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}")
    dsn, database = _dsn(dsn), _database(database)
    migrations.render("", database=database, cluster=None, ttl_days=1)  # validates the identifier
    _ingest(dsn, database)
    try:
        with storage.open_client(dsn, database=database) as client:
            result = client.query(sql)
            columns, rows = list(result.column_names), [tuple(r) for r in result.result_rows]
    except (storage.StorageBusy, ConnectionError, RuntimeError) as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(storage.redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc), dsn))
    _emit([reports.Report(title="query", columns=columns, rows=rows, name="query")], fmt)


@app.command()
def migrate(
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    cluster: str | None = typer.Option(None, "--cluster", help="render ON CLUSTER and Replicated engines"),
    ttl_days: int = typer.Option(
        180, "--ttl-days", min=1, max=migrations.MAX_TTL_DAYS, help="days to keep raw spans and llm_calls"
    ),
    print_sql: bool = typer.Option(False, "--print", help="print the rendered SQL instead of applying it"),
) -> None:
    """Create or update the tables, materialized views, rollups and views (idempotent)."""
    database = _database(database)
    if print_sql:
        for statement in migrations.rendered_statements(database=database, cluster=cluster, ttl_days=ttl_days):
            sys.stdout.write(statement.rstrip() + ";\n\n")
        return
    dsn = _dsn(dsn)
    try:
        with storage.open_client(dsn) as client:
            applied = migrations.migrate(client, database=database, cluster=cluster, ttl_days=ttl_days)
    except (storage.StorageBusy, ConnectionError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"applied {len(applied)} statements to {storage.redact_dsn(dsn)} (database {database})")


class _PricesGroup(TyperGroup):
    """``prices MODEL`` shows a price; ``prices sync|check|whatif`` are subcommands.

    A first argument that names no subcommand is a model, so the short form of the
    most common question needs no verb (no model is called sync, check or whatif).
    """

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().resolve_command(ctx, args)


prices_app = typer.Typer(
    cls=_PricesGroup,
    help="Prices: show what a model costs (prices MODEL), load the catalogue into ClickHouse "
    "(prices sync), check an override file, price past calls on another model (prices whatif).",
    no_args_is_help=True,
)
app.add_typer(prices_app, name="prices")

PricesFileOption = typer.Option(None, "--prices-file", help="price override file (default: $OTEL_LLMCOST_PRICES_FILE)")


def _pricer(prices_file: str | None) -> Any:
    """A pricer with the override file loaded strictly: a broken file is an error here."""
    import os

    from .price_overrides import PriceFileError
    from .pricing import PRICES_FILE_ENV, Pricer

    pricer = Pricer(overrides_path="")
    path = prices_file or os.environ.get(PRICES_FILE_ENV)
    if path:
        try:
            pricer.load_overrides(path, strict=True)
        except PriceFileError as exc:
            _fail(str(exc))
    return pricer


def _day(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--at must be a date or time like 2026-07-01 or 2026-07-01T13:00, got {text!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@prices_app.command("show")
def prices_show(
    model: str = typer.Argument(..., help="model id as sent to the API, e.g. gpt-4o-2024-08-06"),
    provider: str | None = typer.Option(None, "--provider", "-p", help="genai-prices provider id, e.g. openai"),
    service_tier: str | None = typer.Option(None, "--service-tier", help="price variant: flex, priority"),
    at: str | None = typer.Option(None, "--at", help="the price in force at this UTC date or time (default: now)"),
    prices_file: str | None = PricesFileOption,
) -> None:
    """Show the price otel-llmcost would apply to MODEL, where it comes from and when it holds."""
    from .pricing import MODALITY_RATES, TEXT_RATES

    context = {"service_tier": service_tier} if service_tier else None
    when = _day(at)
    entry = _pricer(prices_file).rates_for(model, provider_id=provider, price_context=context, when=when)
    if entry is None:
        _fail(f"no price for {model!r}{f' at {provider}' if provider else ''}: calls to it are recorded as unpriced")
    window = (
        f"from {entry.effective_from or 'the start of the data'} "
        f"until {entry.effective_until or 'further notice'}"
        + (" (changes within the day)" if entry.time_of_day else "")
    )
    variant = f" [{entry.variant}]" if entry.variant else ""
    console.print(f"[bold]{model}[/] -> {entry.provider_id or '*'}/{entry.model_id}{variant}", highlight=False)
    console.print(f"source: {entry.source} (version {entry.version}), {window}", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("part")
    table.add_column("USD per million tokens", justify="right")
    rates = entry.rates
    for part in TEXT_RATES + MODALITY_RATES:
        value = getattr(rates, part)
        if value is None:
            continue  # that modality is billed at the text price
        text = (
            str(value)
            if not hasattr(value, "tiers")
            else f"{value.base} (tiers: " + ", ".join(f">{t.start}: {t.price}" for t in value.tiers) + ")"
        )
        table.add_row(part, text)
    console.print(table)


@prices_app.command("check")
def prices_check(file: str = typer.Argument(..., help="price override file, YAML or JSON")) -> None:
    """Validate a price override file and list what each entry prices (exit 2 on an error)."""
    from . import price_overrides

    try:
        loaded = price_overrides.load(file)
    except price_overrides.PriceFileError as exc:
        _fail(str(exc))
    console.print(f"{escape(file)}: {len(loaded.entries)} entries, version {loaded.version}", soft_wrap=True)
    table = Table()
    for column in ("line", "matches", "provider", "variant", "effective from", "USD per Mtok"):
        table.add_column(column)
    for entry in loaded.entries:
        prices_text = ", ".join(f"{k.removesuffix('_mtok')} {v}" for k, v in entry.prices.items())
        table.add_row(
            str(entry.line),
            escape(f"{entry.kind} {entry.pattern}"),
            entry.provider or "any",
            entry.variant or "-",
            str(entry.effective_from or "always"),
            prices_text,
        )
    console.print(table)


@prices_app.command("sync")
def prices_sync(
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    prices_file: str | None = PricesFileOption,
    keep: int = typer.Option(10, "--keep", min=1, help="how many syncs to keep"),
) -> None:
    """Load the price catalogue (genai-prices + override file) into ClickHouse and reprice history."""
    from . import price_catalogue

    pricer = _pricer(prices_file)
    dsn, database = _dsn(dsn), _database(database)
    _ingest(dsn, database)
    try:
        with storage.open_client(dsn) as client:
            migrations.migrate(client, database=database)
            result = price_catalogue.sync(client, pricer, database=database, keep=keep)
            out = [reports.repricing(client, since_hours=24 * 3650, database=database)]
    except (storage.StorageBusy, ConnectionError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    overrides = f" + {result.override_file} ({result.override_version})" if result.override_file else ""
    console.print(
        f"synced {result.prices} price rows from genai-prices {result.database_version}{overrides}; "
        f"{result.refs} price windows for the models recorded in {database}.llm_calls"
        + (f"; dropped {result.pruned} older syncs" if result.pruned else ""),
        soft_wrap=True,
    )
    _emit(out, "table")


@prices_app.command("whatif")
def prices_whatif(
    target: str = typer.Argument(..., help="model to price past calls on: PROVIDER/MODEL or a model id"),
    since_hours: int = typer.Option(24 * 30, "--since-hours", help="time window, in hours back from now"),
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
) -> None:
    """What past calls would have cost on another model, by the model they used (needs `prices sync`)."""
    provider, _, model = target.partition("/")
    if not model:  # a bare model id: the catalogue entry genai-prices would price it with
        found = _pricer(None).database_model(target)
        if found is None:
            _fail(f"{target!r} names no single genai-prices model; give PROVIDER/MODEL, e.g. openai/gpt-4o-mini")
        provider, model = found[0].id, found[1].id
    dsn, database = _dsn(dsn), _database(database)
    _ingest(dsn, database)
    try:
        with storage.open_client(dsn) as client:
            migrations.migrate(client, database=database)
            known = client.query(
                f"SELECT count() FROM {database}.v_prices_current WHERE Provider = %(p)s AND Model = %(m)s",
                parameters={"p": provider, "m": model},
            ).result_rows[0][0]
            report_out = (
                reports.what_if(client, provider, model, since_hours=since_hours, database=database) if known else None
            )
    except (storage.StorageBusy, ConnectionError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    if report_out is None:
        _fail(f"{provider}/{model} is not in the synced price catalogue: run `otel-llmcost prices sync`")
    _emit([report_out], "table")


@app.command()
def demo(
    days: int = typer.Option(15, "--days", min=8, max=60, help="days of history to replay (>= 8 for anomalies)"),
    dsn: str | None = typer.Option(None, "--dsn", help="where to write (default: a fresh demo database)"),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
) -> None:
    """Run a realistic workload through the real SDKs against a local fake provider, then report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .demo import demo_dsn, run_demo

    target = dsn or demo_dsn(storage.default_data_dir())
    fresh = storage.chdb_path(target) if dsn is None else None
    database = storage.configured_database()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task_id = bar.add_task("replaying LLM traffic", total=days)

        def advance(label: str, done: int, total: int) -> None:
            bar.update(task_id, completed=done, description=f"replaying LLM traffic ({label})")

        result = run_demo(target, database=database, days=days, progress=advance, fresh_path=fresh)
    err.print(
        f"[green]{result.calls} instrumented calls over {result.days} days written to {storage.redact_dsn(target)}[/]"
    )
    report(dsn=target, database=database, since_hours=24 * (days + 1), only=None, fmt=fmt)
    err.print(f'explore: otel-llmcost report --dsn {target}   |   otel-llmcost query --dsn {target} "SELECT ..."')
    if result.prices_file is not None:
        err.print(
            f"prices: the catalogue was synced with {result.prices_file} (the fine-tune's price);"
            f" try: otel-llmcost prices whatif openai/gpt-4o-mini --dsn {target}",
            soft_wrap=True,
        )


@app.command()
def budgets(
    file: str | None = typer.Option(None, "--file", help="budgets file (default: $OTEL_LLMCOST_BUDGETS_FILE)"),
    sync: bool = typer.Option(
        False, "--sync", help="write the limits to ClickHouse and show v_budget_status (spend from spans)"
    ),
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
) -> None:
    """Budget status: used, limit, burn rate and projected exhaustion of each budget's current period.

    With a Redis store: the live counters the app enforces. With the in-memory store (the
    counters live in the app's process) or --sync: spend from the spans in ClickHouse.
    """
    import os

    from . import budgets as budgets_module

    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}")
    path = file or os.environ.get(budgets_module.BUDGETS_FILE_ENV)
    if not path:
        _fail(f"no budgets file: pass --file or set {budgets_module.BUDGETS_FILE_ENV}")
    try:
        config = budgets_module.BudgetConfig.load(path)  # type: ignore[arg-type]
    except Exception as exc:
        _fail(f"cannot read budgets file {path}: {exc}")
    title = "Budgets: current period"
    if config.store != "memory" and not sync:
        try:
            statuses = budgets_module.Budgets(config).status()
        except Exception as exc:
            _fail(f"cannot read the budget counters ({config.store.split('@')[-1]}): {exc}")
        rows = budgets_module.status_rows(statuses)
        _emit([reports.Report(title=title, columns=budgets_module.STATUS_COLUMNS, rows=rows, name="budgets")], fmt)
        return
    dsn, database = _dsn(dsn), _database(database)
    _ingest(dsn, database)
    from datetime import timezone
    from zoneinfo import ZoneInfo

    now = datetime.now(tz=timezone.utc)
    tz = ZoneInfo(config.timezone)
    limits = []
    for budget in config.budgets:
        start, end, _ = budgets_module.period_bounds(budget.period, now, tz)
        utc = (start.astimezone(timezone.utc).replace(tzinfo=None), end.astimezone(timezone.utc).replace(tzinfo=None))
        limits.append(
            [budget.name, budget.scope, budget.match or "", budget.period, config.timezone, *utc, budget.limit_usd]
        )
    columns = ["Name", "Scope", "Match", "Period", "TimeZone", "PeriodStart", "PeriodEnd", "LimitUsd", "UpdatedAt"]
    try:
        with storage.open_client(dsn) as client:
            migrations.migrate(client, database=database)
            if limits:
                stamp = now.replace(tzinfo=None)
                client.insert(f"{database}.llm_budgets", [row + [stamp] for row in limits], column_names=columns)
            result = client.query(
                "SELECT Budget, if(Scope = 'global', 'global', concat(Scope, '=', ScopeValue)), Period,"
                " toDate(PeriodStart), UsedUsd, LimitUsd, UsedShare, BurnRateUsdPerDay, ProjectedExhaustion"
                f" FROM {database}.v_budget_status ORDER BY Budget, ScopeValue"
            )
            rows = [tuple(r) for r in result.result_rows]
    except (storage.StorageBusy, ConnectionError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    note = "spend from spans in ClickHouse; budgets with no spend this period are not listed"
    report_out = reports.Report(
        title=title, columns=budgets_module.STATUS_COLUMNS, rows=rows, name="budgets", description=note
    )
    _emit([report_out], fmt)


@app.command()
def version() -> None:
    """Print the otel-llmcost version."""
    console.print(__version__)


outcomes_app = typer.Typer(
    help="Task outcomes from outside live traffic (graded evaluation runs).", no_args_is_help=True
)
app.add_typer(outcomes_app, name="outcomes")


@outcomes_app.command("import")
def outcomes_import(
    file: str = typer.Argument(..., help="JSON lines: {task_id or trace_id, grade, [timestamp, feature, ...]}"),
    success_grades: str | None = typer.Option(
        None, "--success-grades", help="grades that count as success, comma-separated (default: pass,passed,...)"
    ),
    threshold: float | None = typer.Option(None, "--threshold", help="numeric grades at or above this succeed"),
    service: str | None = typer.Option(None, "--service", help="service name (default: that of the task's calls)"),
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
) -> None:
    """Load graded evaluation results so cost per successful task covers evaluation runs (all or nothing)."""
    from . import outcomes_import as importer

    try:
        rule = importer.SuccessRule.parse(success_grades, threshold)
        parsed = importer.read_file(file, rule=rule, service=service)  # the whole file, before any insert
    except ValueError as exc:  # one problem per line, unwrapped: FILE:LINE: what
        err.print("[bold red]error:[/] nothing imported")
        err.print(escape(str(exc)), soft_wrap=True, highlight=False)
        raise typer.Exit(code=2) from None
    dsn, database = _dsn(dsn), _database(database)
    try:
        with storage.open_client(dsn) as client:
            migrations.migrate(client, database=database)
            count = importer.import_outcomes(client, parsed, database=database)
    except (storage.StorageBusy, ConnectionError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"imported {count} outcomes from {file} into {database}.llm_task_outcomes")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
