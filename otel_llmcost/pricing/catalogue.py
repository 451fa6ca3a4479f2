"""The price catalogue in ClickHouse: ``otel-llmcost prices sync``.

Spans carry the cost computed when the call was made. That number is right for its
day but cannot answer later questions: what did calls recorded *unpriced* cost once
a price exists, does the recorded cost still agree with the catalogue (a corrected
price, a new genai-prices release), what would last month have cost on another
model. ``sync`` writes what SQL needs to answer them (``storage/sql/009_prices.sql`` and
``026_audio_units.sql``):

``llm_prices``
    every price of genai-prices and of the override file, as dated rows:
    ``[EffectiveFrom, EffectiveUntil)`` in UTC and, for tiered prices (Gemini above
    200k prompt tokens), ``[InputTokensFrom, InputTokensUntil)``, so one row applies
    to a call and the view needs only a join and the cost formula;
``llm_unit_prices``
    the prices in units other than tokens (``storage/sql/026_audio_units.sql``): per hour
    of input audio (whisper-1) and per million input characters (tts-1), dated like
    ``llm_prices``. A model priced only so has no row in ``llm_prices``, so the views that
    price tokens from it (routing targets, caching, other instrumentations' calls) never
    take it for a free token model;
``llm_price_refs``
    which catalogue rows price each distinct model recorded in ``llm_calls`` and in
    ``llm_foreign_calls`` (calls traced by other instrumentations): provider, requested
    and answering model, price variant, and when. Matching model
    ids is genai-prices' logic (prefixes, regexes, dated aliases) and the override
    file's; SQL cannot run it, so the pricer resolves each recorded combination here,
    walking its price windows exactly as it prices a live call;
``llm_price_syncs``
    one row per sync, written last: views read the newest *complete* sync.

Each sync adds a full copy (a few thousand rows); ``--keep`` drops older ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from .formula import MODALITY_RATES, TEXT_RATES, UNIT_RATES, Rates, model_price, rates_from_prices
from .overrides import OverrideFile, variant_context, variant_label
from .pricer import SOURCE_DATABASE, Pricer, genai_prices_version, price_start_dates, price_window

_UTC = timezone.utc
BEGINNING = datetime(1970, 1, 1, tzinfo=_UTC)
# ClickHouse DateTime ends in 2106; a row open to the future ends here.
FOREVER = datetime(2106, 1, 1, tzinfo=_UTC)
MAX_TOKENS = 2**63 - 1
_MAX_WINDOWS = 256  # per recorded model: far above any real price history

PRICE_COLUMNS = (
    "SyncId",
    "Provider",
    "Model",
    "Variant",
    "EffectiveFrom",
    "EffectiveUntil",
    "InputTokensFrom",
    "InputTokensUntil",
    "InputMtok",
    "OutputMtok",
    "CacheReadMtok",
    "CacheWrite5mMtok",
    "CacheWrite1hMtok",
    "ReasoningMtok",
    "CacheReadPriced",
    "InputAudioMtok",
    "CacheAudioReadMtok",
    "OutputAudioMtok",
    "InputImageMtok",
    "CacheImageReadMtok",
    "OutputImageMtok",
    "TimeOfDay",
    "Source",
    "Version",
)
REF_COLUMNS = (
    "SyncId",
    "PriceProvider",
    "RequestModel",
    "ResponseModel",
    "CallVariant",
    "ValidFrom",
    "ValidUntil",
    "Provider",
    "Model",
    "Variant",
    "Source",
)
UNIT_PRICE_COLUMNS = (
    "SyncId",
    "Provider",
    "Model",
    "Variant",
    "EffectiveFrom",
    "EffectiveUntil",
    "InputAudioHours",
    "InputMchars",
    "TimeOfDay",
    "Source",
    "Version",
)
SYNC_COLUMNS = ("SyncId", "DatabaseVersion", "OverrideFile", "OverrideVersion", "Prices", "Refs")


@dataclass(frozen=True, slots=True)
class SyncResult:
    sync_id: datetime
    prices: int
    refs: int
    database_version: str
    override_file: str
    override_version: str
    pruned: int


# --- catalogue rows ---------------------------------------------------------------


def _tier_bounds(rates: Rates) -> list[int]:
    starts = {0}
    for name in TEXT_RATES + MODALITY_RATES:
        value = getattr(rates, name)
        for tier in getattr(value, "tiers", ()) or ():
            # genai-prices applies a tier when total input > start: from start + 1 on.
            starts.add(int(tier.start) + 1)
    return sorted(starts)


def _rate_at(value: Any, input_tokens: int) -> float | None:
    """USD per Mtok of one rate for a call with ``input_tokens`` (resolving tiers)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    from genai_prices.types import calc_unit_price

    return float(calc_unit_price(value, 1_000_000, input_tokens, 1_000_000))


def _rows_for_rates(
    rates: Rates, head: Sequence[Any], effective: tuple[datetime, datetime], tail: Sequence[Any]
) -> Iterator[list[Any]]:
    """One row per tier segment of ``rates``: head + window + token range + rates + tail."""
    bounds = _tier_bounds(rates)
    for i, low in enumerate(bounds):
        high = bounds[i + 1] if i + 1 < len(bounds) else MAX_TOKENS
        text = [_rate_at(getattr(rates, name), low) for name in TEXT_RATES]
        modal = [_rate_at(getattr(rates, name), low) for name in MODALITY_RATES]
        yield [*head, *effective, low, high, *text, int(rates.cache_read_priced), *modal, *tail]


def _unit_row(
    rates: Rates, head: Sequence[Any], effective: tuple[datetime, datetime], tail: Sequence[Any]
) -> list[Any] | None:
    """The ``llm_unit_prices`` row of ``rates`` (None when it prices no unit): head + window +
    unit prices (a tiered one at its base: unit-priced models report no input tokens) + tail."""
    units = [_rate_at(getattr(rates, name), 0) for name in UNIT_RATES]
    if all(unit is None for unit in units):
        return None
    return [*head, *effective, *units, *tail]


def database_rows(sync_id: datetime, version: str) -> Iterator[list[Any]]:
    """Dated ``llm_prices`` rows for every model and price variant genai-prices prices by tokens."""
    return iter(database_tables(sync_id, version)[0])


def database_tables(sync_id: datetime, version: str) -> tuple[list[list[Any]], list[list[Any]]]:
    """(``llm_prices`` rows, ``llm_unit_prices`` rows) of every dated price genai-prices knows,
    from one walk of its data: by tokens, and by audio seconds or characters."""
    prices: list[list[Any]] = []
    unit_prices: list[list[Any]] = []
    for rates, head, effective, tail in _database_prices(sync_id, version):
        if rates.tokens_priced:
            prices.extend(_rows_for_rates(rates, head, effective, tail))
        row = _unit_row(rates, head, effective, tail)
        if row is not None:
            unit_prices.append(row)
    return prices, unit_prices


def _database_prices(
    sync_id: datetime, version: str
) -> Iterator[tuple[Rates, tuple[Any, ...], tuple[datetime, datetime], tuple[Any, ...]]]:
    """(rates, row head, [from, until), row tail) of every dated price genai-prices knows."""
    from genai_prices import data_snapshot

    for provider in data_snapshot.get_snapshot().providers:
        for info in provider.models:
            contexts: list[dict[str, str] | None] = [None]
            contexts += [dict(v.when) for v in info.price_variants or ()]
            starts = [BEGINNING] + [datetime(d.year, d.month, d.day, tzinfo=_UTC) for d in price_start_dates(info)]
            for context in contexts:
                label = variant_label(context)
                previous: tuple[Any, ...] | None = None
                pending: list[tuple[datetime, Rates | None, bool]] = []
                for start in starts:
                    rates = rates_from_prices(info.get_prices(start, context))
                    _, _, time_of_day, applied = price_window(info, start, context)
                    if rates is None or (context and applied != label):
                        marker = None  # no price we apply, or this variant is not in force yet
                    else:
                        marker = (repr(rates), time_of_day)
                    if marker == previous:
                        continue
                    previous = marker
                    pending.append((start, rates if marker else None, time_of_day))
                for i, (start, rates, time_of_day) in enumerate(pending):
                    if rates is None:
                        continue
                    until = pending[i + 1][0] if i + 1 < len(pending) else FOREVER
                    yield (
                        rates,
                        (sync_id, provider.id, info.id, label),
                        (start, until),
                        (int(time_of_day), SOURCE_DATABASE, version),
                    )


def override_rows(sync_id: datetime, overrides: OverrideFile) -> Iterator[list[Any]]:
    """Dated rows for the override file: entries with the same model pattern, provider and
    variant form one history, each entry in force until the next-dated one."""
    histories: dict[tuple[str, str, str], list[Any]] = {}
    for entry in overrides.entries:
        histories.setdefault((*entry.catalogue_key, entry.variant), []).append(entry)
    for (provider, model, variant), entries in histories.items():
        entries.sort(key=lambda e: (e.effective_from or date.min, e.index))
        for i, entry in enumerate(entries):
            if i + 1 < len(entries) and entries[i + 1].effective_from == entry.effective_from:
                continue  # the same date twice: the first in the file wins, as when pricing
            start = _midnight(entry.effective_from) if entry.effective_from else BEGINNING
            later = next((e.effective_from for e in entries[i + 1 :] if e.effective_from != entry.effective_from), None)
            until = _midnight(later) if later else FOREVER
            rates = rates_from_prices(model_price(entry.prices))
            assert rates is not None  # the file requires input_mtok or output_mtok
            yield from _rows_for_rates(
                rates,
                (sync_id, provider, model, variant),
                (start, until),
                (0, f"override {overrides.name}:{entry.line}", overrides.version),
            )


# --- recorded models -> catalogue rows ----------------------------------------------------


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=_UTC)


def _epoch(value: float) -> datetime:
    if value == -math.inf:
        return BEGINNING
    if value == math.inf:
        return FOREVER
    return min(max(datetime.fromtimestamp(value, tz=_UTC), BEGINNING), FOREVER)


def ref_rows(sync_id: datetime, pricer: Pricer, refs: Iterable[Sequence[str]]) -> Iterator[list[Any]]:
    """For each recorded (price provider, requested model, answering model, variant): the
    catalogue rows that price it, window by window, as the live pricer would."""
    for price_provider, request_model, response_model, call_variant in refs:
        context = variant_context(call_variant)
        when = BEGINNING
        for _ in range(_MAX_WINDOWS):
            entry, _, valid_until = pricer.call_window(
                request_model,
                response_model or None,
                provider_id=price_provider or None,
                price_context=context,
                when=when,
            )
            until = _epoch(valid_until)
            if until <= when:  # a time-of-day price: its window is minutes; take the day
                until = when + timedelta(days=1)
            if entry is not None:
                provider, model = entry.catalogue_key
                yield [
                    sync_id,
                    price_provider,
                    request_model,
                    response_model,
                    call_variant,
                    when,
                    until,
                    provider,
                    model,
                    entry.variant,
                    entry.source,
                ]
            if until >= FOREVER:
                break
            when = until


def recorded_refs(client: Any, database: str) -> list[tuple[str, str, str, str]]:
    """Every (price provider, requested model, answering model, variant) recorded, by us and,
    in llm_foreign_calls, by other instrumentations (sql/015_foreign_calls.sql)."""
    result = client.query(
        f"SELECT DISTINCT PriceProvider, RequestModel, ResponseModel, PriceVariant FROM {database}.llm_calls "
        f"UNION DISTINCT "
        f"SELECT DISTINCT PriceProvider, RequestModel, ResponseModel, '' FROM {database}.llm_foreign_calls "
        f"WHERE RequestModel != ''"
    )
    return [tuple(row) for row in result.result_rows]


# --- sync -----------------------------------------------------------------------------


def sync(client: Any, pricer: Pricer, *, database: str, keep: int = 10) -> SyncResult:
    """Write a full catalogue and the recorded-model map, then mark the sync complete."""
    sync_id = datetime.now(tz=_UTC).replace(tzinfo=None)
    version = genai_prices_version()
    prices, unit_prices = database_tables(sync_id, version)
    overrides = pricer.overrides
    if overrides is not None:
        prices += override_rows(sync_id, overrides)
    refs = list(ref_rows(sync_id, pricer, recorded_refs(client, database)))
    # Naive UTC datetimes: clickhouse-connect writes them as UTC wall time.
    prices = [_naive(row) for row in prices]
    unit_prices = [_naive(row) for row in unit_prices]
    refs = [_naive(row) for row in refs]
    client.insert(f"{database}.llm_prices", prices, column_names=list(PRICE_COLUMNS))
    if unit_prices:
        client.insert(f"{database}.llm_unit_prices", unit_prices, column_names=list(UNIT_PRICE_COLUMNS))
    if refs:
        client.insert(f"{database}.llm_price_refs", refs, column_names=list(REF_COLUMNS))
    client.insert(
        f"{database}.llm_price_syncs",
        [
            [
                sync_id,
                version,
                overrides.name if overrides else "",
                overrides.version if overrides else "",
                len(prices) + len(unit_prices),
                len(refs),
            ]
        ],
        column_names=list(SYNC_COLUMNS),
    )
    pruned = prune(client, database=database, keep=keep)
    return SyncResult(
        sync_id,
        len(prices) + len(unit_prices),
        len(refs),
        version,
        overrides.name if overrides else "",
        overrides.version if overrides else "",
        pruned,
    )


def prune(client: Any, *, database: str, keep: int) -> int:
    """Drop all but the newest ``keep`` complete syncs (and any half-written ones before them)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    rows = client.query(
        f"SELECT SyncId FROM {database}.llm_price_syncs ORDER BY SyncId DESC LIMIT 1 OFFSET {int(keep) - 1}"
    ).result_rows
    if not rows:
        return 0
    # A value read back from the table, not user input: safe to inline as a literal.
    oldest_kept = f"toDateTime64('{rows[0][0]:%Y-%m-%d %H:%M:%S.%f}', 6)"
    dropped = client.query(f"SELECT count() FROM {database}.llm_price_syncs WHERE SyncId < {oldest_kept}")
    for table in ("llm_prices", "llm_unit_prices", "llm_price_refs", "llm_price_syncs"):
        client.command(f"DELETE FROM {database}.{table} WHERE SyncId < {oldest_kept}")
    dropped = dropped.result_rows[0][0]
    return int(dropped)


def _naive(row: list[Any]) -> list[Any]:
    return [v.astimezone(_UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v for v in row]


def in_catalogue(client: Any, provider: str, model: str, *, database: str) -> bool:
    """Whether the newest synced catalogue prices ``provider``/``model`` (what-if targets), by
    tokens or by another unit (``llm_unit_prices``: tts-1-hd for tts-1 calls)."""
    rows = client.query(
        f"SELECT (SELECT count() FROM {database}.v_prices_current WHERE Provider = %(p)s AND Model = %(m)s)"
        f" + (SELECT count() FROM {database}.v_unit_prices_current WHERE Provider = %(p)s AND Model = %(m)s)",
        parameters={"p": provider, "m": model},
    ).result_rows
    return bool(rows and rows[0][0])
