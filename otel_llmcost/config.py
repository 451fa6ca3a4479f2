"""Every setting of otel-llmcost, in one table: its environment variable, its
``instrument()`` keyword, its default and what it does.

``Settings.load()`` reads them (a keyword given in code wins over the environment,
which wins over the default); every subsystem takes its settings from there, so no
module reads an ``OTEL_LLMCOST_*`` variable of its own. ``docs/configuration.md`` is
generated from :data:`OPTIONS` (``python -m otel_llmcost.config``) and a test keeps
the two equal.

Values are parsed leniently, as OpenTelemetry parses its own variables: a flag is on
for ``1``/``true``/``yes``/``on`` (any case) and off for anything else; a blank
variable counts as unset.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LIMITER_ADAPTERS = ("limits", "slowapi")
DEFAULT_DATABASE = "otel"
DEFAULT_TTL_DAYS = 180
DEFAULT_MAX_ATTRIBUTE_BYTES = 8192
CHDB_SCHEME = "chdb://"
DEFAULT_SPOOL_MAX_MB = 512
INGESTER_MODES = ("auto", "off")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _text(value: Any) -> str | None:
    text = str(value).strip()
    return text or None


def parse_rate(value: Any) -> float:
    """``off``/``false``/``0`` -> 0, ``on``/``true``/unset -> 1, a number -> that sample rate."""
    if value is None or value is True:
        return 1.0
    if value is False:
        return 0.0
    if isinstance(value, (int, float)):
        rate = float(value)
    else:
        text = str(value).strip().lower()
        if text in ("", "on", "true", "yes"):
            return 1.0
        if text in ("off", "false", "no"):
            return 0.0
        try:
            rate = float(text)
        except ValueError:
            logger.warning("otel-llmcost: prompt anatomy setting %r is not on, off or a rate; using on", value)
            return 1.0
    if rate != rate:  # NaN
        return 1.0
    return min(max(rate, 0.0), 1.0)


def parse_limiters(value: Any) -> tuple[str, ...]:
    """Adapter names from ``"limits,slowapi"``, ``"all"`` or an iterable; unknown names are logged."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = {str(part).strip().lower() for part in parts if str(part).strip()}
    if "all" in names:
        return LIMITER_ADAPTERS
    unknown = names - set(LIMITER_ADAPTERS)
    if unknown:
        logger.warning("otel-llmcost: unknown limiter adapter(s) %s; known: %s", ", ".join(sorted(unknown)), "all")
    return tuple(name for name in LIMITER_ADAPTERS if name in names)


def _positive_int(name: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {value!r}") from None
        if number <= 0:
            raise ValueError(f"{name} must be positive, got {number}")
        return number

    return parse


def _non_negative_int(name: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {value!r}") from None
        if number < 0:
            raise ValueError(f"{name} must not be negative, got {number}")
        return number

    return parse


def _ingester_mode(value: Any) -> str:
    mode = str(value).strip().lower()
    if mode not in INGESTER_MODES:
        raise ValueError(f"OTEL_EXPORTER_LLMCOST_INGESTER must be one of {', '.join(INGESTER_MODES)}, got {value!r}")
    return mode


def _byte_limit(value: Any) -> int:
    try:
        return max(int(str(value).strip()), 0)
    except ValueError:
        logger.warning(
            "otel-llmcost: attribute size limit %r is not a number; using %d", value, DEFAULT_MAX_ATTRIBUTE_BYTES
        )
        return DEFAULT_MAX_ATTRIBUTE_BYTES


BUDGETS_INVALID_MODES = ("fail_closed", "disabled")
PROMPT_COUNTERS = ("bytes", "tiktoken")
DEFAULT_MAX_PLAUSIBLE_TOKENS = 10_000_000


def _budgets_invalid(value: Any) -> str:
    mode = str(value).strip().lower().replace("-", "_")
    if mode not in BUDGETS_INVALID_MODES:
        raise ValueError(
            f"OTEL_LLMCOST_BUDGETS_INVALID must be one of {', '.join(BUDGETS_INVALID_MODES)}, got {value!r}"
        )
    return mode


def _prompt_counter(value: Any) -> str:
    counter = str(value).strip().lower()
    if counter not in PROMPT_COUNTERS:
        raise ValueError(f"OTEL_LLMCOST_PROMPT_COUNTER must be one of {', '.join(PROMPT_COUNTERS)}, got {value!r}")
    return counter


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_DATA_HOME/otel-llmcost, else ~/.local/share/otel-llmcost."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "otel-llmcost"


@dataclass(frozen=True)
class Option:
    """One setting: the :class:`Settings` field it fills, its variable and its documentation."""

    name: str
    env: str | None
    default: str  # as documented
    doc: str
    section: str
    keyword: bool = True  # also an instrument() keyword
    parse: Callable[[Any], Any] = _text


OPTIONS: tuple[Option, ...] = (
    # --- instrumentation ---------------------------------------------------------------
    Option(
        "capture_content",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "false",
        "record prompts and completions as span events (and error messages, which can quote the prompt)",
        "instrumentation",
        parse=_flag,
    ),
    Option(
        "inject_include_usage",
        "OTEL_LLMCOST_OPENAI_INCLUDE_USAGE",
        "false",
        "add `stream_options.include_usage` to OpenAI chat streams: exact usage instead of a tiktoken estimate,"
        " at the price of a final chunk with empty `choices`",
        "instrumentation",
        parse=_flag,
    ),
    Option(
        "estimate_missing_usage",
        "OTEL_LLMCOST_ESTIMATE_MISSING_USAGE",
        "true",
        "count tokens locally (offline tiktoken) when a provider returns no usage, or a stream's usage counts no"
        " output (tool calls included); such spans carry `llmcost.usage.estimated`",
        "instrumentation",
        parse=_flag,
    ),
    Option(
        "hash_prompts",
        "OTEL_LLMCOST_PROMPT_HASH",
        "true",
        "record `llmcost.prompt.prefix_hash`, `.request_hash` and `.simhash` (hashes, never content)",
        "instrumentation",
        parse=_flag,
    ),
    Option(
        "prompt_anatomy",
        "OTEL_LLMCOST_PROMPT_ANATOMY",
        "on",
        "prompt tokens by component (`llmcost.prompt.component.*`): `on`, `off` or a sample rate such as `0.1`",
        "instrumentation",
        parse=parse_rate,
    ),
    Option(
        "prompt_counter",
        "OTEL_LLMCOST_PROMPT_COUNTER",
        "bytes",
        "how prompt anatomy and declared evidence count prompt tokens:"
        " `bytes` (a token per 4 bytes of UTF-8) or `tiktoken` (exact for OpenAI models, about +80 MB of"
        " memory per process for the vocabulary)",
        "instrumentation",
        parse=_prompt_counter,
    ),
    Option(
        "user_hash_key",
        "OTEL_LLMCOST_USER_HASH_KEY",
        "unset",
        "HMAC-SHA256 key: user ids (and limiter keys) leave the process as a keyed hash",
        "instrumentation",
    ),
    Option(
        "emit_draft_cost",
        "OTEL_LLMCOST_EMIT_DRAFT_COST_ATTRIBUTES",
        "false",
        "also emit the draft `gen_ai.usage.cost.{amount,currency,source}` attributes",
        "instrumentation",
        parse=_flag,
    ),
    Option(
        "limiters",
        "OTEL_LLMCOST_LIMITERS",
        "none",
        "record the decisions of these rate limiters: `limits`, `slowapi` (comma-separated) or `all`",
        "instrumentation",
        parse=parse_limiters,
    ),
    # --- pricing and budgets -------------------------------------------------------------
    Option(
        "prices_file",
        "OTEL_LLMCOST_PRICES_FILE",
        "unset",
        "YAML/JSON price overrides (USD per million tokens) that win over genai-prices",
        "pricing",
    ),
    Option(
        "max_plausible_tokens",
        "OTEL_LLMCOST_MAX_PLAUSIBLE_TOKENS",
        "10 x the model's context window (genai-prices), at least 2000000; else 10000000",
        "a call reporting more tokens (in + out, or any one count) is flagged `llmcost.usage.implausible`:"
        " tokens recorded as reported, no cost, nothing charged to budgets",
        "pricing",
        parse=_positive_int("OTEL_LLMCOST_MAX_PLAUSIBLE_TOKENS"),
    ),
    Option(
        "budgets_file",
        "OTEL_LLMCOST_BUDGETS_FILE",
        "unset",
        "YAML/JSON budgets enforced before each call (the `budgets` keyword takes a `Budgets` object instead)",
        "budgets",
    ),
    Option(
        "budgets_invalid",
        "OTEL_LLMCOST_BUDGETS_INVALID",
        "fail_closed",
        "when the budgets file is invalid at start-up (one ERROR log line; spans are still recorded):"
        " `fail_closed` refuses every call with `BudgetsFileInvalid` (a `BudgetExceeded`),"
        " `disabled` sends every call unchecked",
        "budgets",
        parse=_budgets_invalid,
    ),
    # --- storage ------------------------------------------------------------------------
    Option(
        "home",
        "OTEL_LLMCOST_HOME",
        "`$XDG_DATA_HOME/otel-llmcost` or `~/.local/share/otel-llmcost`",
        "data directory: embedded database, spool, tiktoken vocabularies",
        "storage",
        keyword=False,
        parse=lambda value: Path(str(value).strip()).expanduser(),
    ),
    Option(
        "dsn",
        "OTEL_EXPORTER_LLMCOST_DSN",
        "`chdb://<data directory>/chdb`",
        "where the `llmcost` span exporter writes and the CLI reads: `chdb://PATH` or `http(s)://user:pass@host:8123`",
        "storage",
        keyword=False,
    ),
    Option(
        "database",
        "OTEL_EXPORTER_LLMCOST_DATABASE",
        DEFAULT_DATABASE,
        "ClickHouse database",
        "storage",
        keyword=False,
    ),
    Option(
        "ttl_days",
        "OTEL_EXPORTER_LLMCOST_TTL_DAYS",
        str(DEFAULT_TTL_DAYS),
        "days the schema the exporter creates keeps raw spans and `llm_calls` (`otel-llmcost migrate --ttl-days`)",
        "storage",
        keyword=False,
        parse=_positive_int("OTEL_EXPORTER_LLMCOST_TTL_DAYS"),
    ),
    Option(
        "max_attribute_bytes",
        "OTEL_EXPORTER_LLMCOST_MAX_ATTRIBUTE_BYTES",
        str(DEFAULT_MAX_ATTRIBUTE_BYTES),
        "the exporter cuts longer attribute values (counted in `llmcost.attributes.truncated`); `0` disables",
        "storage",
        keyword=False,
        parse=_byte_limit,
    ),
    Option(
        "spool_max_mb",
        "OTEL_EXPORTER_LLMCOST_SPOOL_MAX_MB",
        str(DEFAULT_SPOOL_MAX_MB),
        "cap on the spool while spans wait to be ingested; batches beyond it are dropped and counted"
        " (`otel-llmcost spool`)",
        "storage",
        keyword=False,
        parse=_positive_int("OTEL_EXPORTER_LLMCOST_SPOOL_MAX_MB"),
    ),
    Option(
        "ingester",
        "OTEL_EXPORTER_LLMCOST_INGESTER",
        "auto",
        "`auto`: the exporter starts one ingester process per spool when spans wait;"
        " `off`: spans wait for `otel-llmcost ingest --follow` (a sidecar) or the next CLI read",
        "storage",
        keyword=False,
        parse=_ingester_mode,
    ),
    Option(
        "ingester_idle_s",
        "OTEL_EXPORTER_LLMCOST_INGESTER_IDLE_S",
        "30",
        "an ingester the exporter started exits after this many seconds with nothing to store"
        " (the next export starts another)",
        "storage",
        keyword=False,
        parse=_positive_int("OTEL_EXPORTER_LLMCOST_INGESTER_IDLE_S"),
    ),
    Option(
        "min_free_mb",
        "OTEL_EXPORTER_LLMCOST_MIN_FREE_MB",
        "64",
        "the embedded ingester waits (spans stay in the spool) while its disk has less free space than this:"
        " a write failing during DDL can damage the database; `0` disables",
        "storage",
        keyword=False,
        parse=_non_negative_int("OTEL_EXPORTER_LLMCOST_MIN_FREE_MB"),
    ),
    Option(
        "shutdown_timeout_ms",
        "OTEL_EXPORTER_LLMCOST_SHUTDOWN_TIMEOUT_MS",
        "0",
        "how long exporter shutdown waits for the ingester to store this process's spans"
        " (0: do not wait; spooled spans are safe either way)",
        "storage",
        keyword=False,
        parse=_non_negative_int("OTEL_EXPORTER_LLMCOST_SHUTDOWN_TIMEOUT_MS"),
    ),
    Option(
        "dashboards",
        "OTEL_LLMCOST_DASHBOARDS",
        "the packaged `dashboards/`",
        "directory of Grafana dashboard JSON that `otel-llmcost report --html` renders",
        "reporting",
        keyword=False,
    ),
)

# instrument() keywords that take objects rather than settings (documented with the others).
OBJECT_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("tracer_provider", "the TracerProvider for every span (default: the global one)"),
    ("meter_provider", "the MeterProvider for every metric (default: the global one)"),
    (
        "providers",
        'instrument only these: "openai", "anthropic", "google_genai", "groq", "mistral", "cohere",'
        ' "ollama", "bedrock", "litellm" (default: every one installed)',
    ),
    ("pricer", "an `otel_llmcost.pricing.Pricer` (default: genai-prices plus `OTEL_LLMCOST_PRICES_FILE`)"),
    ("budgets", "an `otel_llmcost.budgets.Budgets` (default: from `OTEL_LLMCOST_BUDGETS_FILE`)"),
    ("limiter_remaining", "read the requests left in the window with each limiter decision (default: true)"),
    ("limiter_tier", "`tier_of(request)`: the user's plan for slowapi decisions (default: baggage)"),
)


@dataclass(frozen=True)
class Settings:
    """The parsed settings; see :data:`OPTIONS` for what each one means."""

    capture_content: bool = False
    inject_include_usage: bool = False
    estimate_missing_usage: bool = True
    hash_prompts: bool = True
    prompt_anatomy: float = 1.0
    prompt_counter: str = "bytes"
    user_hash_key: str | None = None
    emit_draft_cost: bool = False
    limiters: tuple[str, ...] = ()
    prices_file: str | None = None
    max_plausible_tokens: int | None = None  # None: from the model's context window
    budgets_file: str | None = None
    budgets_invalid: str = "fail_closed"
    home: Path = field(default_factory=default_home)
    dsn: str | None = None  # None: the embedded database in ``home``
    database: str = DEFAULT_DATABASE
    ttl_days: int = DEFAULT_TTL_DAYS
    max_attribute_bytes: int = DEFAULT_MAX_ATTRIBUTE_BYTES
    spool_max_mb: int = DEFAULT_SPOOL_MAX_MB
    ingester: str = "auto"
    ingester_idle_s: int = 30
    shutdown_timeout_ms: int = 0
    min_free_mb: int = 64
    dashboards: str | None = None

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, *, strict: bool = False, **keywords: Any) -> Settings:
        """Settings from ``keywords`` (None means "not given"), else the environment, else defaults.

        A keyword that is not a setting, or a keyword value that cannot mean anything,
        raises ValueError: a bug in the calling code. An environment variable that cannot
        mean anything (a TTL of "soon") is logged and its default used, so a typo in a
        deployment never stops the application; ``strict`` raises instead (the CLI).
        """
        env = os.environ if environ is None else environ
        unknown = set(keywords) - {option.name for option in OPTIONS}
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for option in OPTIONS:
            given = keywords.get(option.name)
            if given is not None:
                values[option.name] = option.parse(given)
                continue
            raw = env.get(option.env) if option.env else None
            if raw is not None and raw.strip():
                try:
                    values[option.name] = option.parse(raw)
                except ValueError as exc:
                    if strict:
                        raise
                    logger.error("otel-llmcost: ignoring %s: %s", option.env, exc)
        if "home" not in values:
            values["home"] = default_home(env)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def resolved_dsn(self) -> str:
        """The DSN to use: the configured one, else the embedded database in the data directory."""
        return self.dsn or f"{CHDB_SCHEME}{self.home / 'chdb'}"


def settings(**keywords: Any) -> Settings:
    """The current settings (the environment is read on every call, so tests and CLIs see changes)."""
    return Settings.load(**keywords)


def markdown_table(options: Iterable[Option] = OPTIONS) -> str:
    """The reference table of docs/configuration.md."""
    lines = ["| variable | `instrument()` keyword | default | effect |", "|---|---|---|---|"]
    for option in options:
        keyword = f"`{option.name}`" if option.keyword else "–"
        lines.append(f"| `{option.env}` | {keyword} | {option.default} | {option.doc} |")
    lines.append("")
    lines.append("Keywords that take objects:")
    lines.append("")
    lines.append("| `instrument()` keyword | effect |")
    lines.append("|---|---|")
    for name, doc in OBJECT_KEYWORDS:
        lines.append(f"| `{name}` | {doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - used to regenerate docs/configuration.md
    print(markdown_table(), end="")
