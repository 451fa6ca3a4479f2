"""``otel-llmcost``: demo, report, anomalies, query, migrate, ingest, spool, prices, budgets, outcomes import.

Commands only parse their arguments, call a subsystem and print; the SQL lives in
``reporting/sql`` and ``storage/sql``. Every read goes through
:func:`otel_llmcost.reporting.reader.open_for_reading`: with no ``--dsn`` it uses the
embedded database the ``llmcost`` exporter writes (``$OTEL_EXPORTER_LLMCOST_DSN``,
default ``chdb://<data dir>/chdb``) and ingests what apps spooled first, so a report
never misses what the app already handed over.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from . import storage
from .config import Settings
from .reporting import reports
from .reporting.query_output import QUERY_FORMATS, emit_query
from .reporting.reader import open_for_reading
from .reporting.terminal import FORMATS, REPORT_FORMATS, emit, emit_report, safe
from .storage.migrations import apply_migrations
from .version import __version__

app = typer.Typer(
    name="otel-llmcost",
    help="What your LLM calls cost: reports and queries over the otel-llmcost ClickHouse views.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

# The HTTP driver logs "Unexpected Http Driver Exception" before raising; the error it
# raises is reported as one ``error:`` line, so its log line is not printed as well.
logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())

DsnOption = typer.Option(None, "--dsn", help="chdb:///path or http(s)://user:pass@host:8123 (default: embedded)")
DatabaseOption = typer.Option(None, "--database", "-d", help="ClickHouse database (default: otel)")
FormatOption = typer.Option("table", "--format", "-f", help="table, json or csv")


ANOMALY_DIMENSIONS = ("endpoint", "model", "feature", "team", "user")


def _print_version(value: bool) -> None:
    if value:
        console.print(__version__, highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """What your LLM calls cost: reports and queries over the otel-llmcost ClickHouse views."""


def _fail(message: str) -> NoReturn:
    # Made safe: messages quote user input, stored values and file positions ("models[0]"),
    # never markup or terminal controls. Not wrapped: an error is read, grepped and pasted whole.
    err.print(Text.assemble(("error:", "bold red"), " ", safe(message)), soft_wrap=True)
    raise typer.Exit(code=2)


def _fail_lines(lines: list[str], headline: str | None = None) -> NoReturn:
    """Config-file errors, one ``FILE:LINE: key: message`` per line, never a traceback."""
    if headline:
        err.print(Text.assemble(("error:", "bold red"), " ", safe(headline)), soft_wrap=True)
    for line in lines:
        err.print(safe(line), soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


def _warn(message: str) -> None:
    err.print(Text.assemble(("warning:", "yellow"), " ", safe(message)), soft_wrap=True)


def _settings() -> Settings:
    """The settings, strictly: a variable that cannot mean anything is an error here, not a log line."""
    try:
        return Settings.load(strict=True)
    except ValueError as exc:
        _fail(str(exc))


def _target(dsn: str | None, database: str | None) -> tuple[str, str]:
    """The DSN and database to use; the database validated as a strict identifier before any SQL."""
    settings = _settings()
    name = database or settings.database
    try:
        storage.check_identifier("database", name)
    except ValueError as exc:
        _fail(f"--database: {exc}" if database else str(exc))
    target = dsn or settings.resolved_dsn
    try:
        storage.check_dsn(target)
    except ValueError as exc:
        _fail(f"--dsn: {exc}" if dsn else str(exc))
    return target, name


def _check_format(fmt: str, formats: tuple[str, ...] = FORMATS) -> None:
    if fmt not in formats:
        _fail(f"--format must be one of {', '.join(formats)}, got {fmt!r}")


def _check_given(flag: str, value: str | None) -> None:
    """An option given as an empty string names nothing: an error, not a silent default."""
    if value is not None and not value.strip():
        _fail(f"{flag} is empty: give a value or leave the option out")


def _check_since_hours(since_hours: int) -> None:
    if since_hours <= 0:
        _fail(f"--since-hours must be a positive number of hours, got {since_hours}")


def _read_target(dsn: str | None, database: str | None) -> tuple[str, str]:
    """:func:`_target` for a read; with no --dsn and nothing recorded in the default embedded
    database yet, the database ``otel-llmcost demo`` wrote, when there is one (said on stderr)."""
    target, name = _target(dsn, database)
    settings = _settings()
    if dsn is not None or settings.dsn or not storage.is_chdb(target):
        return target, name
    from .exporter.spool import pending_files

    path = storage.chdb_path(target)
    # ClickHouse keeps one metadata/<database>.sql per database: without it the default
    # store holds nothing to read yet (found without opening it: chdb holds one path a process).
    if (path / "metadata" / f"{name}.sql").exists():
        return target, name
    if pending_files(target):
        return target, name
    from .demo.workload import demo_dsn

    demo = demo_dsn(settings.home)
    if not storage.chdb_path(demo).exists():
        return target, name
    err.print(
        Text.assemble(
            ("note:", "yellow"),
            " ",
            safe(
                f"nothing recorded at {path} yet; showing the demo database "
                f"{storage.chdb_path(demo)} (pass --dsn to choose)"
            ),
        ),
        soft_wrap=True,
    )
    return demo, name


def _first_line(exc: BaseException, dsn: str) -> str:
    text = str(exc).strip()
    return storage.redact_text(text.splitlines()[0] if text else repr(exc), dsn)


@contextlib.contextmanager
def _reading(dsn: str, database: str) -> Iterator[Any]:
    """A client for reading; every failure becomes one ``error:`` line and exit code 2."""
    try:
        with open_for_reading(dsn, database, warn=_warn) as client:
            yield client
    except typer.Exit:
        raise
    except Exception as exc:
        _fail(_first_line(exc, dsn))


@contextlib.contextmanager
def _writing(dsn: str, database: str) -> Iterator[Any]:
    """A client with the schema in place, for commands that write (sync, import); what apps
    spooled is ingested first, as for a read, so the command sees every span."""
    from .exporter import IngestDeferred, ingest_pending

    ttl_days = _settings().ttl_days
    try:
        with storage.open_client(dsn) as client:  # one open for the ingest and the command
            try:
                ingest_pending(dsn, database, wait_s=30.0, ttl_days=ttl_days, client=client)
            except (storage.StorageBusy, IngestDeferred) as exc:
                _warn(f"spooled spans are not included yet: {_first_line(exc, dsn)}")
            try:
                storage.migrate(client, database=database, ttl_days=ttl_days)
            except storage.ClusterLayout:
                pass  # a cluster's schema is `migrate --cluster NAME`'s: the tables are there
            yield client
    except typer.Exit:
        raise
    except Exception as exc:
        _fail(_first_line(exc, dsn))


def _emit(out: list[reports.Report], fmt: str) -> None:
    emit(out, fmt, console=console, stream=sys.stdout)


@app.command()
def report(
    section: Annotated[
        str | None,
        typer.Argument(help="one report, every column (default: the default reports, fitted to the terminal)"),
    ] = None,
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    since_hours: int = typer.Option(24 * 30, "--since-hours", help="time window, in hours back from now"),
    only: list[str] | None = typer.Option(
        None,
        "--only",
        help="reports to show, comma-separated or repeated: "
        f"{', '.join(reports.DEFAULT_REPORTS)}; on request: {', '.join(reports.ON_REQUEST_REPORTS)}",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, csv or markdown"),
    html: str | None = typer.Option(None, "--html", help="write the Grafana dashboards' panels to this HTML file"),
) -> None:
    """Spend by endpoint and model, caching, rate limits, anomalies, unpriced calls, tasks."""
    _check_format(fmt, REPORT_FORMATS)
    only = [name.strip() for item in only or [] for name in item.split(",") if name.strip()] or None
    known = (*reports.DEFAULT_REPORTS, *reports.ON_REQUEST_REPORTS)
    if section is not None and section not in known:
        _fail(f"NAME: unknown report {section!r}; choose from {', '.join(known)}")
    unknown = [name for name in only or [] if name not in known]
    if unknown:
        _fail(f"--only: unknown report(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    _check_since_hours(since_hours)
    dsn, database = _read_target(dsn, database)
    if isinstance(html, str):  # the dashboards as one static page, not tables
        from .reporting.html import write_html_report

        with _reading(dsn, database) as client:
            page = write_html_report(client, html, since_hours=since_hours)
        for problem in page.failed:
            _warn(f"panel failed: {problem}")
        err.print(f"wrote {page.panels} panels ({page.charts} charts) to {page.path}")
        return
    with _reading(dsn, database) as client:
        out = [
            reports.run(
                client,
                name,
                since_hours=since_hours,
                database=database,
                limit=50 if section else reports.SUMMARY_LIMITS.get(name, 50),
            )
            for name in ([section] if section else only or reports.DEFAULT_REPORTS)
        ]
        top = (
            None
            if section or fmt in ("json", "csv")
            else reports.summary(client, database=database, since_hours=since_hours)
        )
    source = f"{storage.redact_dsn(dsn)} (database {database})"
    emit_report(out, fmt, console=console, stream=sys.stdout, summary=top, source=source, full=section is not None)


@app.command()
def query(
    sql: str = typer.Argument(..., help='SQL to run, e.g. "SELECT Endpoint, sum(CostTotal) FROM llm_calls GROUP BY 1"'),
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, csv or tsv"),
    write: bool = typer.Option(
        False, "--write", help="allow a statement that writes (maintenance: DROP, ALTER, INSERT, SETTINGS, ...)"
    ),
) -> None:
    """Run one SQL statement against the otel-llmcost database (unqualified tables resolve there).

    Read-only unless --write: one SELECT, SHOW, DESCRIBE, EXISTS or EXPLAIN, run with
    ClickHouse's readonly setting, with no table function that reads files or other hosts.
    Prints exactly the result: csv/tsv a header and the rows, json a list of row objects.
    """
    _check_format(fmt, QUERY_FORMATS)
    dsn, database = _read_target(dsn, database)
    with _reading(dsn, database) as client:
        out = reports.ad_hoc(client, sql, write=write)
    emit_query(out, fmt, console=console, stream=sys.stdout)


@app.command()
def anomalies(
    since: str = typer.Option(
        "7d", "--since", help="how far back: 30m, 6h, 2d, 1w (open anomalies always show; the view keeps 14 days)"
    ),
    open_only: bool = typer.Option(False, "--open-only", help="only anomalies still open"),
    kind: list[str] | None = typer.Option(None, "--kind", help="only these kinds (repeat): spend, calls, drift, ..."),
    dimension: str | None = typer.Option(
        None, "--dimension", help="only this dimension: endpoint, model, feature, team, user"
    ),
    fmt: str = FormatOption,
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
) -> None:
    """What the anomaly detectors flagged (v_anomalies), newest first, each with its explanation.

    --format json prints a list of objects (kind, dimension, key, service, at, detected_at,
    last_seen, expected, observed, score, open, explanation, contributors), [] when none.
    """
    from .reporting import anomalies as anomalies_module

    _check_format(fmt)
    try:
        window = anomalies_module.parse_duration(since)
        kinds = anomalies_module.check_kinds(kind or [])
    except ValueError as exc:
        _fail(str(exc))
    if dimension is not None and dimension not in ANOMALY_DIMENSIONS:
        _fail(f"unknown --dimension {dimension!r}; choose from {', '.join(ANOMALY_DIMENSIONS)}")
    dsn, database = _read_target(dsn, database)
    with _reading(dsn, database) as client:
        found = anomalies_module.query(
            client, database=database, since=window, open_only=open_only, kinds=kinds, dimension=dimension
        )
    if fmt == "json":
        sys.stdout.write(anomalies_module.to_json(found))
    elif fmt == "csv":
        _emit([anomalies_module.as_report(found)], fmt)
    else:
        _emit([anomalies_module.as_report(found, columns=anomalies_module.TABLE_COLUMNS)], fmt)


@app.command()
def opportunities(
    since: str = typer.Option("7d", "--since", help="items active in this window: 6h, 2d, 1w (default 7d)"),
    kind: list[str] | None = typer.Option(
        None, "--kind", help="only these kinds (repeat): missed_caching, routing, batch, ..."
    ),
    limit: int = typer.Option(20, "--limit", help="at most this many items"),
    fmt: str = FormatOption,
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
) -> None:
    """What to change to spend less (v_opportunities), largest monthly saving first.

    Each item names its kind, where it is (endpoint, feature or prefix), its estimated
    saving per month, the evidence and the action. Items can overlap: rank them, do not
    add them up. --format json prints a list of objects (kind, service, key, provider,
    model, monthly_saving_usd, seen_saving_usd, days_seen, evidence, action), [] when none.
    """
    from .reporting import anomalies as anomalies_module
    from .reporting import opportunities as opportunities_module

    _check_format(fmt)
    try:
        window = anomalies_module.parse_duration(since)
        kinds = opportunities_module.check_kinds(kind or [])
    except ValueError as exc:
        _fail(str(exc))
    if limit <= 0:
        _fail(f"--limit must be a positive number, got {limit}")
    since_hours = max(1, -(-int(window.total_seconds()) // 3600))
    dsn, database = _read_target(dsn, database)
    with _reading(dsn, database) as client:
        found = opportunities_module.query(client, database=database, since_hours=since_hours, kinds=kinds, limit=limit)
        synced = opportunities_module.catalogue_synced(client, database=database)
    if not synced and (not kinds or set(kinds) & set(opportunities_module.CATALOGUE_KINDS)):
        _warn("routing and batch savings need the price catalogue: run `otel-llmcost prices sync`")
    if fmt == "json":
        sys.stdout.write(opportunities_module.to_json(found))
    else:
        columns = opportunities_module.JSON_KEYS if fmt == "csv" else opportunities_module.TABLE_COLUMNS
        emit_report([opportunities_module.as_report(found, columns=columns)], fmt, console=console, stream=sys.stdout)


@app.command()
def migrate(
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    cluster: str | None = typer.Option(None, "--cluster", help="render ON CLUSTER and Replicated engines"),
    ttl_days: int | None = typer.Option(
        None,
        "--ttl-days",
        min=1,
        max=storage.MAX_TTL_DAYS,
        help="days to keep raw spans and llm_calls (default: $OTEL_EXPORTER_LLMCOST_TTL_DAYS, else 180)",
    ),
    print_sql: bool = typer.Option(False, "--print", help="print the rendered SQL instead of applying it"),
) -> None:
    """Create or update the tables, materialized views, rollups and views (idempotent);
    recreate any of them that were dropped."""
    dsn, database = _target(dsn, database)
    if cluster:
        try:
            storage.check_identifier("cluster", cluster)
        except ValueError as exc:
            _fail(f"--cluster: {exc}")
    ttl_days = ttl_days or _settings().ttl_days
    try:
        if print_sql:
            for statement in storage.rendered_statements(database=database, cluster=cluster, ttl_days=ttl_days):
                sys.stdout.write(statement.rstrip() + ";\n\n")
            return
        with storage.open_client(dsn) as client:
            result = apply_migrations(client, database=database, cluster=cluster, ttl_days=ttl_days)
    except Exception as exc:
        _fail(_first_line(exc, dsn))
    where = storage.redact_dsn(dsn)
    console.print(safe(f"applied {len(result.statements)} statements to {where} (database {database})"), soft_wrap=True)
    if result.repaired:
        console.print(f"repaired (were missing): {', '.join(result.repaired)}", soft_wrap=True)


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
    from .pricing import PriceFileError, Pricer

    pricer = Pricer(overrides_path="")
    path = prices_file or _settings().prices_file
    if path:
        try:
            pricer.load_overrides(path, strict=True)
        except PriceFileError as exc:
            _fail_lines(exc.errors)
    return pricer


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--at must be a date or time like 2026-07-01 or 2026-07-01T13:00, got {text!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_UNIT_LABELS = ("hour of input audio", "million input characters")  # of pricing.formula.UNIT_RATES


@prices_app.command("show")
def prices_show(
    model: str = typer.Argument(..., help="model id as sent to the API, e.g. gpt-4o-2024-08-06"),
    provider: str | None = typer.Option(None, "--provider", "-p", help="genai-prices provider id, e.g. openai"),
    service_tier: str | None = typer.Option(None, "--service-tier", help="price variant: flex, priority"),
    at: str | None = typer.Option(None, "--at", help="the price in force at this UTC date or time (default: now)"),
    prices_file: str | None = PricesFileOption,
) -> None:
    """Show the price otel-llmcost would apply to MODEL, where it comes from and when it holds."""
    from .pricing.formula import MODALITY_RATES, TEXT_RATES, UNIT_RATES

    _check_given("--provider", provider)
    _check_given("--service-tier", service_tier)
    context = {"service_tier": service_tier} if service_tier else None
    entry = _pricer(prices_file).rates_for(model, provider_id=provider, price_context=context, when=_moment(at))
    if entry is None:
        _fail(f"no price for {model!r}{f' at {provider}' if provider else ''}: calls to it are recorded as unpriced")
    window = (
        f"from {entry.effective_from or 'the start of the data'} "
        f"until {entry.effective_until or 'further notice'}"
        + (" (changes within the day)" if entry.time_of_day else "")
    )
    variant = f" [{entry.variant}]" if entry.variant else ""
    console.print(
        Text.assemble((safe(model).plain, "bold"), safe(f" -> {entry.provider_id or '*'}/{entry.model_id}{variant}")),
        highlight=False,
    )
    console.print(f"source: {entry.source} (version {entry.version}), {window}", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("part")
    table.add_column("USD", justify="right")
    table.add_column("per", justify="left")
    rates = entry.rates
    # A model priced only per hour of audio or per character (whisper-1, tts-1) has no token price.
    token_parts = TEXT_RATES + MODALITY_RATES if rates.tokens_priced else ()
    for part, unit in [(p, "million tokens") for p in token_parts] + list(zip(UNIT_RATES, _UNIT_LABELS, strict=True)):
        value = getattr(rates, part)
        if value is None:
            continue  # that modality is billed at the text price, or the model has no such unit price
        text = (
            str(value)
            if not hasattr(value, "tiers")
            else f"{value.base} (tiers: " + ", ".join(f">{t.start}: {t.price}" for t in value.tiers) + ")"
        )
        table.add_row(part, text, unit)
    console.print(table)


@prices_app.command("check")
def prices_check(file: str = typer.Argument(..., help="price override file, YAML or JSON")) -> None:
    """Validate a price override file and list what each entry prices (exit 2 on an error)."""
    from .pricing import overrides

    errors = overrides.check_prices_file(file)
    if errors:
        _fail_lines(errors)
    loaded = overrides.load(file)
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
    from .pricing import catalogue

    pricer = _pricer(prices_file)
    dsn, database = _target(dsn, database)
    with _writing(dsn, database) as client:
        result = catalogue.sync(client, pricer, database=database, keep=keep)
        out = [reports.run(client, "repricing", since_hours=24 * 3650, database=database)]
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
    from .pricing import catalogue

    _check_since_hours(since_hours)
    provider, _, model = target.partition("/")
    if not model:  # a bare model id: the catalogue entry genai-prices would price it with
        found = _pricer(None).database_model(target)
        if found is None:
            _fail(f"{target!r} names no single genai-prices model; give PROVIDER/MODEL, e.g. openai/gpt-4o-mini")
        provider, model = found[0].id, found[1].id
    dsn, database = _read_target(dsn, database)
    with _reading(dsn, database) as client:
        known = catalogue.in_catalogue(client, provider, model, database=database)
        out = reports.what_if(client, provider, model, since_hours=since_hours, database=database) if known else None
    if out is None:
        _fail(f"{provider}/{model} is not in the synced price catalogue: run `otel-llmcost prices sync`")
    _emit([out], "table")


@app.command()
def demo(
    days: int = typer.Option(15, "--days", min=8, max=60, help="days of history to replay (>= 8 for anomalies)"),
    dsn: str | None = typer.Option(None, "--dsn", help="where to write (default: a fresh demo database)"),
    fmt: str = FormatOption,
) -> None:
    """Run a realistic workload through the real SDKs against a local fake provider, then report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .demo import DEMO_INSTALL, demo_dsn, missing_sdks, run_demo

    _check_format(fmt)
    missing = missing_sdks()  # before anything is touched: the previous demo database stays
    if missing:
        sdks = f"the {' and '.join(missing)} SDK" + (", which is" if len(missing) == 1 else "s, which are")
        _fail(f"the demo needs {sdks} not installed: run {DEMO_INSTALL}")
    settings = _settings()
    target = dsn or demo_dsn(settings.home)
    try:
        storage.check_dsn(target)
    except ValueError as exc:
        _fail(f"--dsn: {exc}")
    if storage.is_chdb(target) and not storage.embedded_available():
        _fail(f"the demo needs the embedded ClickHouse (chdb), which is not installed: run {DEMO_INSTALL}")
    fresh = storage.chdb_path(target) if dsn is None else None
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

        result = run_demo(target, database=settings.database, days=days, progress=advance, fresh_path=fresh)
    err.print(
        f"[green]{result.calls} instrumented calls over {result.days} days written to {storage.redact_dsn(target)}[/]"
    )
    report(dsn=target, database=settings.database, since_hours=24 * (days + 1), only=None, fmt=fmt, html=None)
    err.print(f'explore: otel-llmcost report --dsn {target}   |   otel-llmcost query --dsn {target} "SELECT ..."')
    if result.prices_file is not None:
        err.print(
            f"prices: the catalogue was synced with {result.prices_file} (the fine-tune's price);"
            f" try: otel-llmcost prices whatif openai/gpt-4o-mini --dsn {target}",
            soft_wrap=True,
        )


budgets_app = typer.Typer(
    help="Budget status (the default) and budgets file checks.", invoke_without_command=True, no_args_is_help=False
)
app.add_typer(budgets_app, name="budgets")


@budgets_app.callback()
def budgets(
    ctx: typer.Context,
    file: str | None = typer.Option(None, "--file", help="budgets file (default: $OTEL_LLMCOST_BUDGETS_FILE)"),
    sync: bool = typer.Option(
        False, "--sync", help="write the limits to ClickHouse and show v_budget_status (spend from spans)"
    ),
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    fmt: str = FormatOption,
) -> None:
    """Budget status: used, limit, burn rate and projected exhaustion of each budget's current period.

    With a Redis store: the live counters the app enforces. With the in-memory store (the
    counters live in the app's process) or --sync: spend from the spans in ClickHouse.
    """
    if ctx.invoked_subcommand is not None:
        return
    from . import budgets as budgets_module
    from .budgets import status
    from .config_files import ConfigFileError

    _check_format(fmt)
    path = file or _settings().budgets_file
    if not path:
        _fail("no budgets file: pass --file or set OTEL_LLMCOST_BUDGETS_FILE")
    try:
        config = budgets_module.load_budget_config(path)
    except ConfigFileError as exc:
        _fail_lines(exc.errors)
    except Exception as exc:
        _fail(f"cannot read budgets file {path}: {exc}")
    title = reports.query("budget_status").title
    if config.store != "memory" and not sync:
        try:
            statuses = budgets_module.Budgets(config).status()
        except Exception as exc:
            _fail(f"cannot read the budget counters ({config.store.split('@')[-1]}): {exc}")
        rows = status.status_rows(statuses)
        _emit([reports.Report(title=title, columns=status.STATUS_COLUMNS, rows=rows, name="budgets")], fmt)
        return
    dsn, database = _target(dsn, database)
    with _writing(dsn, database) as client:
        status.sync_limits(client, config, database=database)
        out = reports.run(client, "budget_status", database=database, limit=10_000)
    _emit([out], fmt)


@budgets_app.command("check")
def budgets_check(file: str = typer.Argument(..., help="budgets file, YAML or JSON")) -> None:
    """Validate a budgets file: every problem as FILE:LINE: key: message (exit 2 if any)."""
    from .budgets.loading import check_budgets_file

    errors = check_budgets_file(file)
    if errors:
        _fail_lines(errors)
    console.print(Text.assemble(safe(file), ": valid"), soft_wrap=True)


# --- the spool and the ingester --------------------------------------------------------


@app.command()
def ingest(
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
    follow: bool = typer.Option(False, "--follow", help="keep storing spans as apps spool them (a sidecar)"),
    idle_exit: float | None = typer.Option(
        None, "--idle-exit", help="with --follow: exit after this many seconds with nothing to store"
    ),
) -> None:
    """Store what apps spooled. With --follow, the ingester of a sidecar or systemd unit:
    one per spool (a second one exits at once); run apps with OTEL_EXPORTER_LLMCOST_INGESTER=off."""
    import logging

    from .exporter import IngestDeferred, ingest_pending
    from .exporter.ingest import IngestStats
    from .exporter.ingester import follow as follow_spool
    from .exporter.ingester import stop_on_signals

    dsn, database = _target(dsn, database)
    ttl_days = _settings().ttl_days
    if follow:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        result = follow_spool(dsn, database, ttl_days=ttl_days, idle_exit_s=idle_exit, stop=stop_on_signals())
        if result is None:
            _fail(f"an ingester already runs for {storage.redact_dsn(dsn)}")
        console.print(f"stored {result.rows} spans in {result.passes} passes", highlight=False)
        if result.rejected_rows:
            _warn(f"{result.rejected_rows} span(s) set aside as rejected: see `otel-llmcost spool`")
        if result.crashed_spans:
            _warn(f"{result.crashed_spans} span(s) lost by app processes that died mid-write (logged above)")
        return
    stats = IngestStats()
    try:
        ingest_pending(dsn, database, wait_s=60.0, ttl_days=ttl_days, stats=stats)
    except (storage.StorageBusy, IngestDeferred) as exc:
        _fail(f"nothing stored, the spool is kept: {_first_line(exc, dsn)}")
    except Exception as exc:
        _fail(_first_line(exc, dsn))
    console.print(f"stored {stats.rows} spans from {stats.files} spool files", highlight=False)
    if stats.quarantined_rows:
        _warn(f"{stats.quarantined_rows} span(s) set aside as rejected: see `otel-llmcost spool`")


spool_app = typer.Typer(
    help="The spool: spans waiting to be stored, files the database rejected, spans dropped.",
    invoke_without_command=True,
)
app.add_typer(spool_app, name="spool")


def _spool_target(dsn: str | None) -> str:
    target = dsn or _settings().resolved_dsn
    try:
        return storage.check_dsn(target)
    except ValueError as exc:
        _fail(f"--dsn: {exc}" if dsn else str(exc))


@spool_app.callback()
def spool(ctx: typer.Context, dsn: str | None = DsnOption) -> None:
    """What the spool holds (the default): pending, rejected (with the reason) and dropped spans."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = _spool_target(dsn)
        return
    from .exporter.spool import drops_detail, summary

    target = _spool_target(dsn)
    held = summary(target)
    console.print(Text.assemble("spool: ", safe(str(held.directory))), soft_wrap=True)
    console.print(
        f"pending: {held.pending_spans} spans in {held.pending_files} files ({held.pending_bytes / 1e6:.1f} MB)",
        highlight=False,
    )
    if held.rejected:
        table = Table(title="rejected (replay with `otel-llmcost spool replay FILE` once fixed)")
        for column in ("file", "spans", "reason"):
            table.add_column(column)
        for path, spans, reason in held.rejected:
            table.add_row(safe(path.name), str(spans), safe(reason))
        console.print(table)
    else:
        console.print("rejected: none", highlight=False)
    if held.drops:
        detail = drops_detail(held.drops)
        console.print(f"dropped before the spool: {sum(held.drops.values())} spans ({detail})", highlight=False)
    else:
        console.print("dropped before the spool: none", highlight=False)


def _rejected_file(dsn: str, name: str) -> Any:
    from .exporter.spool import rejected_files

    for path in rejected_files(dsn):
        if path.name == name or path.name == f"{name}.rejected":
            return path
    _fail(f"no rejected spool file {name!r}: `otel-llmcost spool` lists them")


@spool_app.command("show")
def spool_show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="a rejected file, as `otel-llmcost spool` lists it"),
    limit: int = typer.Option(5, "--limit", help="rows to print"),
) -> None:
    """Print a rejected file's reason and its first rows (JSON, one per line)."""
    import json

    from .exporter.spool import read_spool, rejection_reason

    path = _rejected_file(ctx.obj, name)
    console.print(Text.assemble("reason: ", safe(str(rejection_reason(path).get("error", "unknown")))), soft_wrap=True)
    try:
        rows = read_spool(path)
    except ValueError as exc:
        _fail(f"{path.name} is not JSON lines: {exc}")
    for row in rows[: max(limit, 0)]:
        console.print(safe(json.dumps(row, ensure_ascii=False)), soft_wrap=True, highlight=False)


@spool_app.command("replay")
def spool_replay(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="rejected files to retry (default: with --all, every one)"),
    every: bool = typer.Option(False, "--all", help="retry every rejected file"),
) -> None:
    """Put rejected files back in line; the next ingest retries them (fix the cause first)."""
    from .exporter.spool import rejected_files, replay

    dsn = ctx.obj
    paths = rejected_files(dsn) if every else [_rejected_file(dsn, name) for name in names or []]
    if not paths:
        _fail("name the files to replay, or pass --all")
    for path in paths:
        replay(path)
    console.print(f"{len(paths)} file(s) back in the spool; `otel-llmcost ingest` stores them now", highlight=False)


@spool_app.command("forget-drops")
def spool_forget_drops(ctx: typer.Context) -> None:
    """Clear the count of dropped spans (after reading it): reads stop warning about them."""
    from .exporter.spool import clear_drops

    clear_drops(ctx.obj)
    console.print("drop count cleared", highlight=False)


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
    file: str = typer.Argument(..., help=escape("JSON lines: {task_id or trace_id, grade, [timestamp, feature, ...]}")),
    success_grades: str | None = typer.Option(
        None, "--success-grades", help="grades that count as success, comma-separated (default: pass,passed,...)"
    ),
    threshold: float | None = typer.Option(None, "--threshold", help="numeric grades at or above this succeed"),
    service: str | None = typer.Option(None, "--service", help="service name (default: that of the task's calls)"),
    dsn: str | None = DsnOption,
    database: str | None = DatabaseOption,
) -> None:
    """Load graded evaluation results so cost per successful task covers evaluation runs (all or nothing)."""
    from .signals import outcomes_import as importer

    _check_given("--service", service)
    try:
        rule = importer.SuccessRule.parse(success_grades, threshold)
        parsed = importer.read_file(file, rule=rule, service=service)  # the whole file, before any insert
    except ValueError as exc:  # one problem per line, unwrapped: FILE:LINE: what
        err.print("[bold red]error:[/] nothing imported")
        err.print(escape(str(exc)), soft_wrap=True, highlight=False)
        raise typer.Exit(code=2) from None
    dsn, database = _target(dsn, database)
    with _writing(dsn, database) as client:
        count = importer.import_outcomes(client, parsed, database=database)
    console.print(f"imported {count} outcomes from {file} into {database}.llm_task_outcomes")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
