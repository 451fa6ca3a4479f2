"""The price override file: your own prices, winning over the genai-prices database.

For fine-tuned and self-hosted models, negotiated rates, and prices that changed
before the database caught up. ``OTEL_LLMCOST_PRICES_FILE`` names it; YAML or JSON,
prices in USD per million tokens (the unit genai-prices uses)::

    models:
      - match: "ft:gpt-4o-mini:acme:*"      # one of: model (exact id), match (glob),
        provider: openai                    #   prefix, regex (Python re, full match)
        input_mtok: 0.30
        output_mtok: 1.20
      - model: gpt-4o
        effective_from: 2026-07-01          # in force from this UTC date on
        when: {service_tier: priority}      # a price variant (also processing: batch, ...)
        input_mtok: 4.25
        output_mtok: 17.00

Per-unit keys (all optional but one of ``input_mtok``/``output_mtok``; a missing one
falls back the way genai-prices falls back): ``cache_read_mtok``,
``cache_write_mtok`` (5-minute writes), ``cache_write_1h_mtok``,
``output_reasoning_mtok``, ``input_audio_mtok``, ``cache_audio_read_mtok``,
``output_audio_mtok``, ``input_image_mtok``, ``cache_image_read_mtok``,
``output_image_mtok``.

Which entry prices a call: among the entries whose model pattern, ``provider`` and
``when`` match the call and whose ``effective_from`` is not after the call's date, an
entry with a matching ``when`` beats one without; then the latest ``effective_from``
wins; then the first in the file. No entry in force means genai-prices prices it.

Errors name the file, the line and the key, every one of them, not just the first
(``prices.yaml:12: models[2].input_mtoks: unknown key (did you mean 'input_mtok'?)``);
the file is read by :mod:`otel_llmcost.config_files`, as the budgets file is, so both
formats (JSON is YAML) have line numbers and an unquoted invalid date
(``effective_from: 2026-13-45``) is an error at its line, not a crash.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .. import config_files
from ..config_files import INVALID, ConfigFileError, Node, Problems, describe

# Price keys of the file: named as genai-prices' ModelPrice attributes, so an override is
# a ModelPrice like any other and shares the database's rate mapping (pricing.formula.rates_from_prices).
PRICE_KEYS = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "output_reasoning_mtok",
    "input_audio_mtok",
    "cache_audio_read_mtok",
    "output_audio_mtok",
    "input_image_mtok",
    "cache_image_read_mtok",
    "output_image_mtok",
)
MATCH_KEYS = ("model", "match", "prefix", "regex")
OTHER_KEYS = ("provider", "effective_from", "when", "note")
ALLOWED_KEYS = frozenset(PRICE_KEYS) | frozenset(MATCH_KEYS) | frozenset(OTHER_KEYS)


class PriceFileError(ConfigFileError):
    """A price override file that cannot be used; ``errors`` say where and why, one line each."""


@dataclass(frozen=True, slots=True)
class OverrideEntry:
    """One entry of the file: which models it prices, from when, and its prices."""

    kind: str  # one of MATCH_KEYS
    pattern: str
    provider: str | None
    effective_from: date | None
    when: tuple[tuple[str, str], ...]  # sorted (key, value) pairs; () for the standard price
    prices: Mapping[str, Decimal]  # genai-prices ModelPrice attribute -> USD per Mtok
    line: int
    index: int
    _regex: re.Pattern[str] | None = None

    def matches_model(self, model: str) -> bool:
        if self.kind == "model":
            return model == self.pattern or model.lower() == self.pattern.lower()
        if self.kind == "prefix":
            return model.startswith(self.pattern) or model.lower().startswith(self.pattern.lower())
        if self.kind == "regex":
            assert self._regex is not None
            return self._regex.fullmatch(model) is not None
        return fnmatch.fnmatchcase(model, self.pattern) or fnmatch.fnmatchcase(model.lower(), self.pattern)

    def applies(self, model: str, provider_id: str | None, context: Mapping[str, str] | None) -> bool:
        if self.provider and provider_id and self.provider != provider_id:
            return False
        if self.when and (not context or any(context.get(k) != v for k, v in self.when)):
            return False
        return self.matches_model(model)

    @property
    def variant(self) -> str:
        return variant_label(dict(self.when))

    @property
    def catalogue_key(self) -> tuple[str, str]:
        """(Provider, Model) of this entry's rows in the ClickHouse catalogue: entries that
        differ only in ``effective_from`` are one price history."""
        return (self.provider or "*", f"{self.kind}:{self.pattern}")


def variant_label(context: Mapping[str, str] | None) -> str:
    """``service_tier=flex`` (keys sorted): how a price variant is named on spans and in SQL."""
    if not context:
        return ""
    return ",".join(f"{k}={context[k]}" for k in sorted(context))


def variant_context(label: str) -> dict[str, str] | None:
    """Inverse of :func:`variant_label`: the price context a recorded variant names."""
    if not label:
        return None
    pairs = (part.partition("=") for part in label.split(","))
    return {key: value for key, _, value in pairs if key}


@dataclass(frozen=True, slots=True)
class OverrideFile:
    name: str
    version: str  # sha256 of the content: which edit of the file priced a call
    entries: tuple[OverrideEntry, ...]

    def find(
        self, model: str, provider_id: str | None, context: Mapping[str, str] | None, day: date
    ) -> tuple[OverrideEntry | None, date | None]:
        """(entry in force on ``day`` or None, the next date an entry for this call takes effect)."""
        best: OverrideEntry | None = None
        next_change: date | None = None
        for entry in self.entries:
            if not entry.applies(model, provider_id, context):
                continue
            if entry.effective_from is not None and entry.effective_from > day:
                if next_change is None or entry.effective_from < next_change:
                    next_change = entry.effective_from
                continue
            if best is None or _rank(entry) > _rank(best):
                best = entry
        return best, next_change


def _rank(entry: OverrideEntry) -> tuple[int, date, int]:
    # Higher wins: a matching variant, then the latest date, then the earliest in the file.
    return (1 if entry.when else 0, entry.effective_from or date.min, -entry.index)


def load(path: str | os.PathLike[str]) -> OverrideFile:
    """Read and validate an override file; :class:`PriceFileError` lists every problem as
    ``FILE:LINE: key.path: message`` (the path as given, so an editor can jump to it)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PriceFileError([f"{path}:1: not UTF-8 text"]) from None
    except OSError as exc:
        raise PriceFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    # Spans name the file without its directory (llmcost.price.source): the entry, not the host layout.
    return parse(text, name=path.name, source=str(path))


def check_prices_file(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of an override file (``otel-llmcost prices check``); [] when it is valid."""
    try:
        load(path)
    except ConfigFileError as exc:
        return exc.errors
    return []


def parse(text: str, *, name: str = "<prices>", source: str | None = None) -> OverrideFile:
    """The override file in ``text``: ``name`` is recorded on spans, ``source`` names it in errors."""
    try:
        root, problems = config_files.parse_text(text, source or name)
    except ConfigFileError as exc:
        raise PriceFileError(exc.errors) from None
    entries = _entries(root, problems) if root is not None else []
    if problems.errors:
        raise PriceFileError(problems.errors)
    return OverrideFile(name, _digest(text), tuple(entries))


def _entries(root: Node, problems: Problems) -> list[OverrideEntry]:
    top = config_files.check_fields(root, "", ("models",), problems)
    if top is None:
        return []
    models = top.get("models")
    if models is None:
        if not any(config_files.nearest(key, ("models",)) for key in top):  # else "did you mean 'models'?" said it
            problems.add(root.line, "", "missing the 'models' list")
        return []
    if not isinstance(models.value, list):
        if models.value is not INVALID:
            problems.add(models.line, "models", f"expected a list of entries, got {describe(models.value)}")
        return []
    entries = (_entry(node, index, problems) for index, node in enumerate(models.value))
    return [entry for entry in entries if entry is not None]


class _Entry:
    """One entry's fields while it is checked; each problem is added with its key's line."""

    def __init__(self, fields: dict[str, Node], path: str, line: int, problems: Problems) -> None:
        self.fields = fields
        self.path = path
        self.line = line
        self.problems = problems
        self.ok = True

    def get(self, key: str) -> Any:
        node = self.fields.get(key)
        return None if node is None else node.value

    def fail(self, key: str | None, message: str) -> None:
        node = self.fields.get(key) if key else None
        self.problems.add(node.line if node else self.line, f"{self.path}.{key}" if node else self.path, message)
        self.ok = False


def _entry(node: Node, index: int, problems: Problems) -> OverrideEntry | None:
    path = f"models[{index}]"
    fields = config_files.check_fields(node, path, sorted(ALLOWED_KEYS), problems)
    if fields is None:
        return None
    entry = _Entry(fields, path, node.line, problems)
    entry.ok = not any(key not in ALLOWED_KEYS for key in fields)
    if any(value.value is INVALID for value in fields.values()):
        entry.ok = False  # already reported by the reader (an invalid date, a bad tag)
    kind, pattern, regex = _pattern(entry)
    provider = _provider(entry)
    prices = {key: _price(entry, key) for key in PRICE_KEYS if key in fields}
    # A misspelt price key already says "did you mean 'input_mtok'?": not also "needs input_mtok".
    meant = {config_files.nearest(key, PRICE_KEYS) for key in fields if key not in ALLOWED_KEYS}
    if not prices and not meant & {"input_mtok", "output_mtok"}:
        entry.fail(None, "needs input_mtok or output_mtok (USD per million tokens)")
    elif "input_mtok" not in prices and "output_mtok" not in prices:
        entry.ok = False
    effective_from = _date(entry)
    when = _when(entry)
    if not entry.ok:
        return None
    return OverrideEntry(
        kind=kind,
        pattern=pattern,
        provider=provider,
        effective_from=effective_from,
        when=when,
        prices=prices,
        line=node.line,
        index=index,
        _regex=regex,
    )


def _pattern(entry: _Entry) -> tuple[str, str, re.Pattern[str] | None]:
    given = [k for k in MATCH_KEYS if k in entry.fields]
    if len(given) != 1:
        entry.fail(None, "needs exactly one of " + ", ".join(MATCH_KEYS) + f" (got {', '.join(given) or 'none'})")
        return "", "", None
    kind = given[0]
    pattern = entry.get(kind)
    if pattern is INVALID:
        return kind, "", None
    if not isinstance(pattern, str) or not pattern:
        entry.fail(kind, f"must be non-empty text, got {describe(pattern)}")
        return kind, "", None
    regex = None
    if kind == "regex":
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            entry.fail(kind, f"invalid regex {pattern!r}: {exc}")
    return kind, pattern, regex


def _provider(entry: _Entry) -> str | None:
    provider = entry.get("provider")
    if provider is None or provider is INVALID:
        return None
    if isinstance(provider, str) and provider:
        return provider
    entry.fail("provider", f"must be a provider id such as 'openai', got {describe(provider)}")
    return None


def _price(entry: _Entry, key: str) -> Decimal:
    value = entry.get(key)
    if value is INVALID:
        return Decimal(0)
    # bool is an int in Python, and YAML reads 1e3 (no dot) as text: the first is a
    # mistake, the second a number written the way people write it.
    number: Decimal | None = None
    if not isinstance(value, bool) and isinstance(value, int | float | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        entry.fail(key, f"must be a number (USD per million tokens), got {describe(value)}")
        return Decimal(0)
    if number < 0:
        entry.fail(key, f"must not be negative, got {value!r}")
    return number


def _date(entry: _Entry) -> date | None:
    value = entry.get("effective_from")
    if value is None or value is INVALID:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    entry.fail("effective_from", f"must be a date like 2026-07-01, got {describe(value)}")
    return None


def _when(entry: _Entry) -> tuple[tuple[str, str], ...]:
    node = entry.fields.get("when")
    if node is None or node.value is INVALID:
        return ()
    if not isinstance(node.value, dict) or not node.value:
        entry.fail("when", f"must be a mapping such as {{service_tier: flex}}, got {describe(node.plain())}")
        return ()
    pairs = []
    for key, item in node.value.items():
        if not isinstance(item.value, str):
            if item.value is not INVALID:
                entry.problems.add(item.line, f"{entry.path}.when.{key}", f"must be text, got {describe(item.value)}")
            entry.ok = False
            continue
        pairs.append((key, item.value))
    return tuple(sorted(pairs))


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
