"""Graded runs: load offline evaluation results as task outcomes.

``otel-llmcost outcomes import results.jsonl`` reads one JSON object per line::

    {"task_id": "ticket-42", "grade": "pass"}
    {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "grade": 0.83, "feature": "search"}

and writes one ``llm_task_outcomes`` row per line, keyed like the live outcomes of
:mod:`otel_llmcost.signals.outcomes` (the task id, else the trace id), so
``v_cost_per_successful_task`` covers evaluation runs exactly as it covers live
traffic: the run's calls were traced under that task or trace, their cost joins in.

Fields: ``task_id`` and/or ``trace_id`` (one is required; 32 hex digits for a trace),
``grade`` (required: a string, a number or true/false); optional ``timestamp`` (ISO
8601, or Unix seconds; default: the import time, so a later grade wins over an earlier
live outcome; the views count a task's calls from up to a day before its outcome, so give a
run graded later than that its own time), ``feature``, ``endpoint``, ``team``, ``user``, ``service``. Other fields
(inputs, outputs, evaluator notes) are ignored and never stored.

Success: ``true``/``false`` as given; a string is a success when it is one of the
success grades (case-insensitive; default :data:`DEFAULT_SUCCESS_GRADES`); a number
when it is at least the threshold, which must then be given (no silent default for
what counts as "good enough").

Users: with ``OTEL_LLMCOST_USER_HASH_KEY`` set, ``user`` is stored as the same keyed
hash the spans carry (:func:`~otel_llmcost.signals.attribution.hash_user`), never in
clear, so it matches ``llm_calls.User``.

All or nothing: the whole file is validated first; any problem (bad JSON, a bad value,
a timestamp ClickHouse cannot store, nesting too deep to parse) is reported with the
file name and line number and nothing is inserted. The rows go in as one insert with
a deduplication token made from the file's *content* (each outcome in a canonical
form: key order, line order and spelling of the JSON do not matter) and the success
rule, so importing the same outcomes twice stores them once.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import Settings
from ..storage.migrations import check_identifier
from .attribution import hash_user

DEFAULT_SUCCESS_GRADES = ("pass", "passed", "success", "succeeded", "correct", "yes", "true")
COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ServiceName",
    "TaskId",
    "TaskKey",
    "Success",
    "Endpoint",
    "Feature",
    "Team",
    "User",
    "DurationMs",
)
MAX_ERRORS_SHOWN = 20
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_TEXT_FIELDS = ("feature", "endpoint", "team", "user", "service")
# What llm_task_outcomes can hold: its partition key (toDate) and TTL (toDateTime) take
# DateTime, 1970 to early 2106; a later or earlier time fails the insert, not the parse.
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(2105, 12, 31, 23, 59, 59)
_UNSET: Any = object()  # "not given": the key comes from the settings


class ImportFailed(ValueError):
    """The file has problems; ``problems`` are ``FILE:LINE: what`` lines. Nothing was inserted."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_ERRORS_SHOWN]
        more = len(problems) - len(shown)
        super().__init__("\n".join(shown + ([f"... and {more} more"] if more > 0 else [])))


@dataclass(frozen=True)
class SuccessRule:
    """Which grades count as a success."""

    grades: frozenset[str] = frozenset(DEFAULT_SUCCESS_GRADES)
    threshold: float | None = None

    @classmethod
    def parse(cls, grades: str | None, threshold: float | None) -> SuccessRule:
        names = DEFAULT_SUCCESS_GRADES if grades is None else [g for g in grades.split(",")]
        cleaned = frozenset(g.strip().lower() for g in names if g.strip())
        if not cleaned:
            raise ValueError("--success-grades is empty")
        if threshold is not None and not math.isfinite(threshold):
            raise ValueError("--threshold must be a finite number")
        return cls(cleaned, threshold)

    def fingerprint(self) -> str:
        return json.dumps([sorted(self.grades), self.threshold])

    def success(self, grade: Any) -> bool:
        """Raises ValueError (with the reason) for a grade this rule cannot judge."""
        if isinstance(grade, bool):
            return grade
        if isinstance(grade, (int, float)):
            if not math.isfinite(grade):
                raise ValueError(f"grade {grade!r} is not a finite number")
            if self.threshold is None:
                raise ValueError(f"numeric grade {grade!r} needs --threshold (the lowest passing score)")
            return grade >= self.threshold
        if isinstance(grade, str) and grade.strip():
            return grade.strip().lower() in self.grades
        raise ValueError(f"grade must be a non-empty string, a number or true/false, got {json.dumps(grade)}")


@dataclass(frozen=True)
class Parsed:
    rows: list[list[Any]]
    token: str


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


def _timestamp(value: Any, default: datetime) -> datetime:
    if value is None:
        return default
    moment = _moment(value)
    if not EARLIEST <= moment <= LATEST:
        raise _out_of_range(value)
    return moment


def _out_of_range(value: Any) -> ValueError:
    return ValueError(f"timestamp {json.dumps(value)} is outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}")


def _moment(value: Any) -> datetime:
    """A naive UTC datetime from ISO 8601 text or Unix seconds; ValueError for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):  # beyond what a datetime holds (1e308)
            raise _out_of_range(value) from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp {value!r} is not ISO 8601 (2026-11-23T14:00:00Z) or Unix seconds") from None
        if parsed.tzinfo is not None:
            try:
                parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
            except OverflowError:  # 9999-12-31T23:00:00-05:00 is in year 10000 in UTC
                raise _out_of_range(value) from None
        return parsed
    raise ValueError(f"timestamp must be ISO 8601 text or Unix seconds, got {json.dumps(value)}")


def _row(
    record: Any, rule: SuccessRule, now: datetime, service: str | None, user_hash_key: str | None
) -> tuple[str, list[Any]]:
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    task_id = _text(record, "task_id")
    trace_id = _text(record, "trace_id").strip().lower()
    if trace_id and (not _TRACE_ID.fullmatch(trace_id) or trace_id == "0" * 32):
        raise ValueError(f"trace_id {trace_id!r} is not 32 hex digits")
    if not task_id and not trace_id:
        raise ValueError("needs a task_id or a trace_id")
    if "grade" not in record:
        raise ValueError("missing 'grade'")
    success = rule.success(record["grade"])
    texts = {key: _text(record, key) for key in _TEXT_FIELDS}
    key = task_id or trace_id
    row = [
        _timestamp(record.get("timestamp"), now),
        trace_id,
        "",
        service if service is not None else texts["service"],
        task_id,
        key,
        int(success),
        texts["endpoint"],
        texts["feature"],
        texts["team"],
        hash_user(texts["user"], user_hash_key) if texts["user"] else "",
        0.0,
    ]
    return key, row


def parse_lines(
    lines: Iterable[str],
    *,
    source: str,
    rule: SuccessRule,
    service: str | None = None,
    now: datetime | None = None,
    user_hash_key: str | None = _UNSET,
) -> list[list[Any]]:
    """Rows for ``llm_task_outcomes``; raises :class:`ImportFailed` listing every bad line.

    ``user_hash_key`` defaults to ``OTEL_LLMCOST_USER_HASH_KEY``, as for spans.
    """
    now = now or datetime.now(tz=timezone.utc).replace(tzinfo=None)
    if user_hash_key is _UNSET:
        user_hash_key = Settings.load().user_hash_key
    rows: list[list[Any]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _json(line)
        except ValueError as exc:
            problems.append(f"{source}:{number}: {exc}")
            continue
        try:
            key, row = _row(record, rule, now, service, user_hash_key)
        except ValueError as exc:
            problems.append(f"{source}:{number}: {exc}")
            continue
        if key in seen:
            problems.append(f"{source}:{number}: task {key!r} is already graded on line {seen[key]}")
            continue
        seen[key] = number
        rows.append(row)
    if problems:
        raise ImportFailed(problems)
    if not rows:
        raise ImportFailed([f"{source}: no outcomes (the file is empty)"])
    return rows


def _json(line: str) -> Any:
    """One line's JSON value; ValueError says why not (never a RecursionError or the like)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ValueError(f"not valid JSON ({exc})") from None


def content_token(rows: Sequence[list[Any]], given_timestamps: Sequence[bool]) -> str:
    """A digest of what the rows say, whatever the file's key order, line order or spelling.

    A timestamp defaulted to the import time is left out: the same outcomes imported
    again an hour later are the same content.
    """
    canonical = sorted(
        json.dumps([row[0].isoformat() if given else None, *row[1:]], sort_keys=True, separators=(",", ":"))
        for row, given in zip(rows, given_timestamps, strict=True)
    )
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def read_file(
    path: str | Path, *, rule: SuccessRule, service: str | None = None, user_hash_key: str | None = _UNSET
) -> Parsed:
    """Validate the whole file; the dedup token covers its content and the success rule."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed([f"{path}:{line}: not UTF-8 text"]) from None
    now = datetime.now(tz=timezone.utc).replace(tzinfo=None)
    rows = parse_lines(
        text.splitlines(), source=str(path), rule=rule, service=service, now=now, user_hash_key=user_hash_key
    )
    # A row whose timestamp is `now` itself (the same object) had none in the file.
    digest = hashlib.sha256(content_token(rows, [row[0] is not now for row in rows]).encode())
    digest.update(rule.fingerprint().encode())
    digest.update(repr(service).encode())
    return Parsed(rows, f"llmcost-outcomes-import-{digest.hexdigest()}")


def insert(client: Any, parsed: Parsed, *, database: str) -> int:
    """One insert of every row (deduplicated by the file's token); returns the row count."""
    check_identifier("database", database)
    client.insert(
        f"{database}.llm_task_outcomes",
        parsed.rows,
        column_names=list(COLUMNS),
        settings={"insert_deduplication_token": parsed.token},
    )
    return len(parsed.rows)


def services_of_calls(client: Any, keys: Sequence[str], *, database: str) -> dict[str, str]:
    """The service that traced each task's calls, for outcomes whose file names none."""
    check_identifier("database", database)
    if not keys:
        return {}
    result = client.query(
        f"SELECT if(TaskId != '', TaskId, TraceId) AS TaskKey, any(ServiceName) FROM {database}.llm_calls"
        " WHERE TaskKey IN {keys:Array(String)} GROUP BY TaskKey",
        parameters={"keys": list(keys)},
    )
    return {key: service for key, service in result.result_rows}


def import_outcomes(client: Any, parsed: Parsed, *, database: str) -> int:
    """Insert a validated file (:func:`read_file`) in one go; returns the number of outcomes.

    Outcomes with no service (none in the line, no ``service`` given) take the service of
    the task's traced calls, so evaluation tasks report under the service that ran them.
    """
    service_index, key_index = COLUMNS.index("ServiceName"), COLUMNS.index("TaskKey")
    missing = [row[key_index] for row in parsed.rows if not row[service_index]]
    if missing:
        found = services_of_calls(client, missing, database=database)
        for row in parsed.rows:
            if not row[service_index]:
                row[service_index] = found.get(row[key_index], "")
    return insert(client, parsed, database=database)
