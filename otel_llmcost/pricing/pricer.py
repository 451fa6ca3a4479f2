"""Resolve the price in force for a call and price its :class:`~otel_llmcost.pricing.usage.Usage`.

Prices come from the offline genai-prices database (no network: the snapshot ships
inside the package) or, first, from a user override file
(:mod:`otel_llmcost.pricing.overrides`, ``OTEL_LLMCOST_PRICES_FILE``). A model with no
price is *unpriced* (``None``), never a silent 0.

A call is priced at the price in force at its start time, not at "now": both sources
carry dated prices (genai-prices' ``StartDateConstraint``, the override file's
``effective_from``), and :class:`PriceEntry` says which entry priced a call, from
which data version, and the window in which that entry is the price.

Why we do not call ``genai_prices.calc_price`` per call: it re-resolves the model on
every call (~50 us), and it returns only input/output/total while our spans carry
the cost of each part (uncached input, cache read, cache write, output) and the
savings from caching. So we resolve the model once (cached), ask genai-prices for
the prices in force (``ModelInfo.get_prices`` applies dated and time-of-day prices
and price variants such as ``service_tier`` or batch) and apply the one formula of
:mod:`otel_llmcost.pricing.formula`. The tests check that our total equals
``genai_prices.calc_price`` for every shape of usage.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Mapping
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any

from ..config import DEFAULT_MAX_PLAUSIBLE_TOKENS, Settings
from ..config_files import ConfigFileError
from . import overrides as price_overrides
from .formula import Cost, PriceEntry, cost_of, implausible_cost, model_price, rates_from_prices
from .overrides import OverrideFile, variant_label
from .usage import Usage

logger = logging.getLogger(__name__)

SOURCE_DATABASE = "genai-prices"
# Longest a resolved price is reused without asking the database again. Dated prices
# need no TTL (the cache knows each entry's window); it bounds time-of-day prices
# (an off-peak discount) and a snapshot swapped in at run time (genai-prices updates).
RATES_TTL_S = 60.0
_UTC = timezone.utc
# A call's usage is implausible above this many times the model's context window. Not
# 1x: Anthropic's long-context beta takes 1M tokens on models listed at 200k, and a call
# that the SDK splits into several billed requests (Gemini automatic function calling)
# sums their usage. The bound is there for 10**13, not to police context windows...
CONTEXT_WINDOW_FACTOR = 10
# ...so it is never below this: genai-prices lists some windows at 512 tokens, and a
# window can grow before the data does.
MIN_PLAUSIBLE_TOKENS = 2_000_000


def genai_prices_version() -> str:
    """The genai-prices data in use: its release, marked when a newer snapshot was fetched."""
    try:
        from importlib.metadata import version

        from genai_prices import data_snapshot

        release = version("genai-prices")
        return f"{release}+auto-update" if data_snapshot.get_snapshot().from_auto_update else release
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"


def _as_datetime(when: datetime | float | None) -> datetime:
    if when is None:
        return datetime.now(tz=_UTC)
    if isinstance(when, datetime):
        return when if when.tzinfo is not None else when.replace(tzinfo=_UTC)
    return datetime.fromtimestamp(when, tz=_UTC)


def _day_start(day: date | None, default: float) -> float:
    if day is None:
        return default
    return datetime(day.year, day.month, day.day, tzinfo=_UTC).timestamp()


class Pricer:
    """Resolves models to the price entry in force and prices usages. Thread-safe."""

    def __init__(
        self, overrides_path: str | os.PathLike[str] | None = None, *, max_plausible_tokens: int | None = None
    ) -> None:
        self._source_version: str | None = None  # read on first use: importing genai-prices takes ~0.1 s
        # OTEL_LLMCOST_MAX_PLAUSIBLE_TOKENS, read on first use when not given; 0: not set.
        self._max_plausible_tokens = max_plausible_tokens
        self.overrides: OverrideFile | None = None
        path = overrides_path if overrides_path is not None else Settings.load().prices_file
        if path:
            self.load_overrides(path)
        self._lookup = lru_cache(maxsize=1024)(self._lookup_uncached)
        # Resolved entries per (model, provider, url, variant): (entry, valid from, valid
        # until (epoch s), refresh deadline (monotonic)). Resolving costs more than the rest
        # of a call's pricing; the window makes a price change take effect at its date.
        self._rates: dict[tuple[Any, ...], tuple[PriceEntry | None, float, float, float]] = {}
        # (request model, response model, provider, url) -> plausible token bound (as _lookup, kept)
        self._plausible: dict[tuple[Any, ...], int] = {}

    @property
    def source_version(self) -> str:
        """The genai-prices data version this pricer prices with."""
        if self._source_version is None:
            self._source_version = genai_prices_version()
        return self._source_version

    # --- overrides --------------------------------------------------------------

    def load_overrides(self, path: str | os.PathLike[str], *, strict: bool = False) -> None:
        """Load an override file. A broken file is one ERROR line (every problem, file and
        line, no traceback) and is ignored: calls are priced from genai-prices alone, never
        fatal to the app; ``strict`` raises :class:`PriceFileError` instead (CLI)."""
        try:
            self.overrides = price_overrides.load(path)
        except ConfigFileError as exc:
            if strict:
                raise
            logger.error(
                "otel-llmcost: ignoring the price override file, prices come from genai-prices alone: %s",
                "; ".join(exc.errors),
            )
            self.overrides = None
        self._rates = {}
        self._plausible = {}

    # --- model resolution ---------------------------------------------------------

    def _lookup_uncached(self, model: str, provider_id: str | None, api_url: str | None) -> tuple[Any, Any] | None:
        """(provider, model_info) from genai-prices, or None when the model has no unambiguous price."""
        from genai_prices import data_snapshot

        snapshot = data_snapshot.get_snapshot()
        if provider_id or api_url:
            try:
                return snapshot.find_provider_model(model, None, provider_id, None if provider_id else api_url)
            except LookupError:
                if provider_id:
                    return None
        # Unknown host (self-hosted gateway, vLLM, a proxy). Price the model only when its id
        # is unambiguous: genai-prices names its originating provider (gpt-* -> openai), or
        # every provider listing it charges the same. Otherwise we would be guessing.
        try:
            return snapshot.find_provider_model(model, None, None, None)
        except LookupError:
            pass
        candidates = []
        for provider in snapshot.providers:
            found = provider.find_model(model.lower())
            if found is not None:
                candidates.append((provider, found))
        if not candidates:
            return None
        now = datetime.now(tz=_UTC)
        distinct = {repr(found.get_prices(now)) for _, found in candidates}
        if len(distinct) != 1:
            logger.debug("otel-llmcost: %r is priced differently by %d providers; unpriced", model, len(distinct))
            return None
        return candidates[0]

    def database_model(self, model: str, provider_id: str | None = None, api_url: str | None = None) -> Any:
        """(provider, model_info) genai-prices would price ``model`` with, or None."""
        return self._lookup(model, provider_id, api_url) if model else None

    @lru_cache(maxsize=256)  # noqa: B019 - one pricer per process; the key space is tiny
    def provider_for(self, provider_id: str | None, api_url: str | None) -> str | None:
        """The genai-prices provider id a call was priced against, even when its model
        was not found (recorded on unpriced calls, so a later price can be matched)."""
        if provider_id:
            return provider_id
        if not api_url:
            return None
        from genai_prices import data_snapshot

        try:
            return data_snapshot.get_snapshot().find_provider(None, None, api_url).id
        except LookupError:
            return None

    def rates_for(
        self,
        model: str,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | float | None = None,
    ) -> PriceEntry | None:
        """The price entry in force at ``when`` (a datetime or epoch seconds; default now),
        or None if the model is unpriced."""
        if not model:
            return None
        at = time.time() if when is None else (when.timestamp() if isinstance(when, datetime) else when)
        key = (model, provider_id, api_url, tuple(price_context.items()) if price_context else None)
        cached = self._rates.get(key)
        if cached is not None and cached[1] <= at < cached[2] and time.monotonic() < cached[3]:
            return cached[0]
        entry, valid_from, valid_until = self._resolve(model, provider_id, api_url, price_context, _as_datetime(at))
        if len(self._rates) > 4096:
            self._rates.clear()
        self._rates[key] = (entry, valid_from, valid_until, time.monotonic() + RATES_TTL_S)
        return entry

    def price_call(
        self,
        usage: Usage,
        request_model: str,
        response_model: str | None,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | float | None = None,
    ) -> Cost | None:
        """Price a call by the model that answered (often a dated id), else by the one asked for.

        A usage above :meth:`plausible_tokens` costs nothing (:func:`implausible_cost`): a
        provider bug claiming 10**13 tokens must not become a $1.5M span or spend a budget.
        """
        if usage.largest_count > self.plausible_tokens(request_model, response_model, provider_id, api_url):
            return implausible_cost(response_model or request_model, provider_id or "")
        for model in call_models(request_model, response_model):
            cost = self.price(
                usage, model, provider_id=provider_id, api_url=api_url, price_context=price_context, when=when
            )
            if cost is not None:
                return cost
        return None

    def plausible_tokens(
        self, request_model: str, response_model: str | None, provider_id: str | None, api_url: str | None
    ) -> int:
        """The most tokens a call may report and be believed: the setting when given, else
        :data:`CONTEXT_WINDOW_FACTOR` x the model's context window (genai-prices) but at
        least :data:`MIN_PLAUSIBLE_TOKENS`, else :data:`~otel_llmcost.config.DEFAULT_MAX_PLAUSIBLE_TOKENS`."""
        if self._max_plausible_tokens is None:
            self._max_plausible_tokens = Settings.load().max_plausible_tokens or 0
        if self._max_plausible_tokens:
            return self._max_plausible_tokens
        key = (request_model, response_model, provider_id, api_url)
        bound = self._plausible.get(key)
        if bound is None:
            bound = DEFAULT_MAX_PLAUSIBLE_TOKENS
            for model in call_models(request_model, response_model):
                found = self.database_model(model, provider_id, api_url)
                window = getattr(found[1], "context_window", None) if found is not None else None
                if isinstance(window, int) and window > 0:
                    bound = max(window * CONTEXT_WINDOW_FACTOR, MIN_PLAUSIBLE_TOKENS)
                    break
            if len(self._plausible) > 4096:
                self._plausible.clear()
            self._plausible[key] = bound
        return bound

    def call_window(
        self,
        request_model: str,
        response_model: str | None,
        *,
        provider_id: str | None,
        price_context: Mapping[str, str] | None,
        when: datetime,
    ) -> tuple[PriceEntry | None, float, float]:
        """What :meth:`price_call` would use at ``when``, and the epoch-second window in which
        that answer holds (uncached: for building the ClickHouse catalogue)."""
        lo, hi = -math.inf, math.inf
        for model in call_models(request_model, response_model):
            entry, valid_from, valid_until = self._resolve(model, provider_id, None, price_context, when)
            lo, hi = max(lo, valid_from), min(hi, valid_until)
            if entry is not None:
                return entry, lo, hi
        return None, lo, hi

    def _resolve(
        self,
        model: str,
        provider_id: str | None,
        api_url: str | None,
        price_context: Mapping[str, str] | None,
        when: datetime,
    ) -> tuple[PriceEntry | None, float, float]:
        """(entry or None, epoch seconds from/until which that answer holds)."""
        day = when.astimezone(_UTC).date()
        override_change: date | None = None
        if self.overrides is not None:
            found, override_change = self.overrides.find(model, provider_id, price_context, day)
            if found is not None:
                rates = rates_from_prices(model_price(found.prices))
                assert rates is not None  # the file requires input_mtok or output_mtok
                override = PriceEntry(
                    rates=rates,
                    model_id=model,
                    provider_id=provider_id or found.provider or "",
                    source=f"override {self.overrides.name}:{found.line}",
                    version=self.overrides.version,
                    variant=found.variant,
                    effective_from=found.effective_from,
                    effective_until=override_change,
                    catalogue_key=found.catalogue_key,
                )
                return override, _day_start(found.effective_from, -math.inf), _day_start(override_change, math.inf)
        entry = self._database_entry(model, provider_id, api_url, price_context, when)
        if entry is None:
            # Unpriced until the next override for this model takes effect, if one is dated.
            return None, -math.inf, _day_start(override_change, math.inf)
        until = entry.effective_until
        if override_change is not None and (until is None or override_change < until):
            # A dated override ends the database price's reign for this call.
            until = override_change
            entry = dataclasses.replace(entry, effective_until=until)
        if entry.time_of_day:
            # Off-peak windows are minutes to hours long: keep this answer one TTL at most.
            return entry, when.timestamp(), when.timestamp() + RATES_TTL_S
        return entry, _day_start(entry.effective_from, -math.inf), _day_start(until, math.inf)

    def _database_entry(
        self,
        model: str,
        provider_id: str | None,
        api_url: str | None,
        price_context: Mapping[str, str] | None,
        when: datetime,
    ) -> PriceEntry | None:
        found = self._lookup(model, provider_id, api_url)
        if found is None:
            return None
        provider, info = found
        context = dict(price_context) if price_context else None
        rates = rates_from_prices(info.get_prices(when, context))
        if rates is None:
            return None
        effective_from, effective_until, time_of_day, variant = price_window(info, when, context)
        return PriceEntry(
            rates=rates,
            model_id=info.id,
            provider_id=provider.id,
            source=SOURCE_DATABASE,
            version=self.source_version,
            variant=variant,
            effective_from=effective_from,
            effective_until=effective_until,
            time_of_day=time_of_day,
            catalogue_key=(provider.id, info.id),
        )

    # --- pricing --------------------------------------------------------------------

    def price(
        self,
        usage: Usage,
        model: str,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | float | None = None,
    ) -> Cost | None:
        entry = self.rates_for(model, provider_id=provider_id, api_url=api_url, price_context=price_context, when=when)
        if entry is None:
            return None
        return cost_of(usage, entry)


def call_models(request_model: str, response_model: str | None) -> tuple[str, ...]:
    """The model ids a call is priced by, in order: the answering model, then the requested."""
    if response_model and response_model != request_model:
        return (response_model, request_model) if request_model else (response_model,)
    return (request_model,) if request_model else ()


def price_window(
    info: Any, when: datetime, context: Mapping[str, str] | None
) -> tuple[date | None, date | None, bool, str]:
    """(effective from, effective until, has time-of-day prices, variant label) of the
    genai-prices price of ``info`` in force at ``when`` for ``context``.

    The window runs between the dated constraints around ``when``: the conditional
    prices' start dates and those of the variants that apply to ``context``.
    """
    day = when.astimezone(_UTC).date()
    constraints = _conditional_constraints(info)
    applied: dict[str, str] = {}
    for variant in info.price_variants or ():
        if context and all(context.get(k) == v for k, v in variant.when.items()):
            constraints.append(variant.constraint)
            if variant.constraint is None or variant.constraint.active(when):
                applied.update(variant.when)
    starts = [c.start_date for c in constraints if c is not None and hasattr(c, "start_date")]
    time_of_day = any(c is not None and hasattr(c, "start_time") for c in constraints)
    past = [d for d in starts if d <= day]
    future = [d for d in starts if d > day]
    return (max(past) if past else None, min(future) if future else None, time_of_day, variant_label(applied))


def price_start_dates(info: Any) -> list[date]:
    """Every date on which a price of ``info`` (standard or any variant) takes effect."""
    constraints = _conditional_constraints(info) + [v.constraint for v in info.price_variants or ()]
    return sorted({c.start_date for c in constraints if c is not None and hasattr(c, "start_date")})


def _conditional_constraints(info: Any) -> list[Any]:
    """The constraints of a genai-prices model's dated standard prices (none when undated)."""
    return [c.constraint for c in info.prices] if isinstance(info.prices, list) else []
