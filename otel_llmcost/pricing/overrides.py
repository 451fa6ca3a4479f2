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

Errors name the file, the line and the entry (``prices.yaml:12: models[2]: unknown
key 'input_mtoks' (did you mean 'input_mtok'?)``). PyYAML keeps line numbers for
both formats (JSON is YAML), so one parser serves both.
"""

from __future__ import annotations

import difflib
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


class PriceFileError(ValueError):
    """A price override file that cannot be used; the message says where and why."""


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
    """Read and validate an override file; raise :class:`PriceFileError` naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse(text, name=path.name)


def parse(text: str, *, name: str = "<prices>") -> OverrideFile:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise PriceFileError(f"{where}: not valid YAML/JSON: {getattr(exc, 'problem', None) or exc}") from exc
    if root is None:
        return OverrideFile(name, _digest(text), ())
    if not isinstance(root, yaml.MappingNode):
        raise PriceFileError(f"{name}:{root.start_mark.line + 1}: expected a mapping with a 'models' list")
    keys = {_scalar(k): (k, v) for k, v in root.value}
    unknown = [k for k in keys if k != "models"]
    if unknown:
        key_node = keys[unknown[0]][0]
        raise PriceFileError(f"{name}:{key_node.start_mark.line + 1}: unknown top-level key {unknown[0]!r}")
    if "models" not in keys:
        raise PriceFileError(f"{name}:1: missing the 'models' list")
    models = keys["models"][1]
    if not isinstance(models, yaml.SequenceNode):
        raise PriceFileError(f"{name}:{models.start_mark.line + 1}: 'models' must be a list of entries")
    loader = yaml.SafeLoader("")
    entries = []
    for index, node in enumerate(models.value):
        where = f"{name}:{node.start_mark.line + 1}: models[{index}]"
        if not isinstance(node, yaml.MappingNode):
            raise PriceFileError(f"{where}: an entry must be a mapping")
        fields: dict[str, tuple[int, Any]] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            line = key_node.start_mark.line + 1
            if key in fields:
                raise PriceFileError(f"{name}:{line}: models[{index}]: duplicate key {key!r}")
            fields[key] = (line, loader.construct_object(value_node, deep=True))
        entries.append(_entry(fields, index, node.start_mark.line + 1, name))
    return OverrideFile(name, _digest(text), tuple(entries))


def _entry(fields: dict[str, tuple[int, Any]], index: int, line: int, name: str) -> OverrideEntry:
    def fail(key: str | None, message: str) -> PriceFileError:
        at = fields[key][0] if key in fields else line
        return PriceFileError(f"{name}:{at}: models[{index}]: {message}")

    for key in fields:
        if key not in ALLOWED_KEYS:
            close = difflib.get_close_matches(str(key), sorted(ALLOWED_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(key, f"unknown key {key!r}{hint}")
    given = [k for k in MATCH_KEYS if k in fields]
    if len(given) != 1:
        raise fail(None, "needs exactly one of " + ", ".join(MATCH_KEYS) + f" (got {', '.join(given) or 'none'})")
    kind = given[0]
    pattern = fields[kind][1]
    if not isinstance(pattern, str) or not pattern:
        raise fail(kind, f"{kind} must be a non-empty string")
    regex = None
    if kind == "regex":
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise fail(kind, f"invalid regex {pattern!r}: {exc}") from None
    provider = fields.get("provider", (0, None))[1]
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise fail("provider", "provider must be a provider id such as 'openai'")
    prices: dict[str, Decimal] = {}
    for key in PRICE_KEYS:
        if key in fields:
            prices[key] = _price(fields[key][1], lambda message, key=key: fail(key, message), key)
    if "input_mtok" not in prices and "output_mtok" not in prices:
        raise fail(None, "needs input_mtok or output_mtok (USD per million tokens)")
    return OverrideEntry(
        kind=kind,
        pattern=pattern,
        provider=provider,
        effective_from=_date(fields.get("effective_from", (0, None))[1], lambda m: fail("effective_from", m)),
        when=_when(fields.get("when", (0, None))[1], lambda m: fail("when", m)),
        prices=prices,
        line=line,
        index=index,
        _regex=regex,
    )


def _price(value: Any, fail: Any, key: str) -> Decimal:
    # bool is an int in Python and "1e3" a string in YAML: both are mistakes here.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise fail(f"{key} must be a number (USD per million tokens), got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise fail(f"{key} must be a number (USD per million tokens), got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise fail(f"{key} must be a non-negative number, got {value!r}")
    return number


def _date(value: Any, fail: Any) -> date | None:
    if value is None:
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
    raise fail(f"effective_from must be a date like 2026-07-01, got {value!r}")


def _when(value: Any, fail: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise fail("when must be a mapping such as {service_tier: flex}")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise fail(f"when values must be strings, got {key!r}: {item!r}")
        pairs.append((key, item))
    return tuple(sorted(pairs))


def _scalar(node: Any) -> Any:
    return node.value if hasattr(node, "value") and isinstance(node.value, str) else repr(node)


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
