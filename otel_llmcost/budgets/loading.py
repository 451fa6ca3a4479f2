"""Reading the budgets file strictly, and what the app does when it is invalid.

The file's shape is the dataclasses of :mod:`.config` (read by introspection through
:mod:`otel_llmcost.config_files`, so a field added there is validated here with no
change); this module adds what types cannot say:

* ``scope``, ``period`` and ``action`` are one of :data:`.config.SCOPES`, ``PERIODS``
  and ``ACTIONS`` (with a "did you mean");
* no number is negative; margins (``*_margin``) and durations (``*_s``, ``*_ms``) are
  above 0; thresholds (``*threshold*``, and ``at`` of a threshold entry) are in (0, 1];
  ``default_max_*`` above 0;
* ``timezone`` is an IANA zone; ``store`` is ``memory`` or a ``redis://``,
  ``rediss://`` or ``unix://`` URL;
* budget names are unique.

An invalid file at start-up (:func:`budgets_from_settings`) logs one ERROR line and
the app runs instrumented; ``OTEL_LLMCOST_BUDGETS_INVALID`` decides the budgets:
``fail_closed`` (default) refuses every call with :class:`BudgetsFileInvalid`,
``disabled`` sends them unchecked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .. import config_files, semconv
from ..config import Settings
from ..config_files import ConfigFileError, Node, Problems
from . import config as budget_config
from .config import BudgetConfig
from .enforcement import BudgetExceeded, Budgets, Decision, PlannedCall
from .stores import MemoryStore

logger = logging.getLogger(__name__)

STORE_SCHEMES = ("redis", "rediss", "unix")
# Field name -> the constant of .config listing its values (read at check time, so values
# added there are accepted here).
_CHOICES = {"scope": "SCOPES", "period": "PERIODS", "action": "ACTIONS"}
_DURATION_SUFFIXES = ("_s", "_ms", "_seconds")


def load_budget_config(path: str | os.PathLike[str]) -> BudgetConfig:
    """The file's :class:`BudgetConfig`; :class:`ConfigFileError` lists every problem."""
    root, problems = config_files.read_file(path)
    if root is None:
        return BudgetConfig()
    _name_unnamed_budgets(root)
    data = config_files.validate(root, BudgetConfig, problems, check=check_field)
    _check_unique_names(root, problems)
    problems.raise_if_any()
    try:
        return BudgetConfig.from_dict(data)
    except Exception as exc:  # a rule of from_dict's own that the checks above do not know yet
        problems.add(root.line, "", str(exc))
        raise ConfigFileError(problems.errors) from None


def check_budgets_file(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of the file as ``FILE:LINE: key.path: message``; [] when it is valid."""
    try:
        load_budget_config(path)
    except ConfigFileError as exc:
        return exc.errors
    return []


# --- field rules ----------------------------------------------------------------------------


def check_field(owner: type, name: str, value: Any) -> str | None:
    """The rules that types cannot express, by field name (see the module docstring)."""
    if name == "store":
        return _check_store(value)
    if name == "timezone":
        return _check_zone(value)
    if name in _CHOICES:
        return config_files.one_of(getattr(budget_config, _CHOICES[name]), value)
    share = "threshold" in name or ("threshold" in owner.__name__.lower() and name == "at")
    numbers = value if isinstance(value, list | tuple) else (value,)
    for number in numbers:
        if isinstance(number, int | float) and not isinstance(number, bool):
            message = _check_number(name, number, share)
            if message:
                return message
    return None


def _check_number(name: str, number: float, share: bool) -> str | None:
    if share:
        return None if 0 < number <= 1 else f"must be a share in (0, 1] such as 0.8, got {number!r}"
    positive = name.endswith("margin") or name.endswith(_DURATION_SUFFIXES) or name.startswith("default_max")
    if positive and number <= 0:
        return f"must be greater than 0, got {number!r}"
    if number < 0:
        return f"must not be negative, got {number!r}"
    return None


def _check_store(value: Any) -> str | None:
    if value == "memory":
        return None
    problem = _store_url_problem(value)
    if problem is None:
        return None
    return f"must be 'memory' or a redis://, rediss:// or unix:// URL ({problem}), got {value!r}"


def _store_url_problem(value: str) -> str | None:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - parsing the port is the check (ValueError when it is not a number)
    except ValueError as exc:
        return str(exc)
    if url.scheme not in STORE_SCHEMES:
        return "no scheme" if not url.scheme else f"unknown scheme {url.scheme!r}"
    if url.scheme == "unix":
        return None if url.path else "no socket path"
    if not url.hostname:
        return "no host"
    database = url.path.strip("/")
    if database and not database.isdigit():
        return f"the database {database!r} is not a number"
    return None


def _check_zone(value: str) -> str | None:
    from zoneinfo import ZoneInfo, available_timezones

    try:
        ZoneInfo(value)
        return None
    except Exception:
        return f"unknown time zone {value!r}{config_files.closest(value, sorted(available_timezones()))}"


# --- what BudgetConfig.from_dict does beyond the fields -------------------------------------------


def _name_unnamed_budgets(root: Node) -> None:
    # from_dict names an unnamed budget "budget-N" (N from 1, by position): the same here,
    # so the required `name` field is not reported missing.
    budgets = root.value.get("budgets") if isinstance(root.value, dict) else None
    if budgets is None or not isinstance(budgets.value, list):
        return
    for index, entry in enumerate(budgets.value):
        if isinstance(entry.value, dict) and "name" not in entry.value:
            entry.value["name"] = Node(f"budget-{index + 1}", entry.line)


def _check_unique_names(root: Node, problems: Problems) -> None:
    seen: dict[str, int] = {}
    budgets = root.value.get("budgets") if isinstance(root.value, dict) else None
    entries: Sequence[Node] = budgets.value if budgets is not None and isinstance(budgets.value, list) else ()
    for index, entry in enumerate(entries):
        name = entry.value.get("name") if isinstance(entry.value, dict) else None
        if name is None or not isinstance(name.value, str):
            continue
        if name.value in seen:
            problems.add(
                name.line,
                f"budgets[{index}].name",
                f"duplicate budget name {name.value!r} (first on line {seen[name.value]})",
            )
        else:
            seen[name.value] = name.line


# --- at start-up ------------------------------------------------------------------------------------


class BudgetsFileInvalid(BudgetExceeded):
    """Every call is refused: the budgets file is invalid and budgets fail closed.

    A :class:`BudgetExceeded`, so code that handles refused calls handles this one too.
    """

    def __init__(self, path: str, errors: list[str]) -> None:
        Exception.__init__(
            self,
            f"LLM budgets file {path} is invalid ({len(errors)} problem{'s' if len(errors) != 1 else ''}: "
            f"{errors[0] if errors else 'see the log'}); budgets fail closed "
            "(OTEL_LLMCOST_BUDGETS_INVALID=fail_closed): the request was not sent",
        )
        self.budget = "budgets-file"
        self.scope = "global"
        self.limit = 0.0
        self.used = 0.0
        self.requested = 0.0
        self.unit = "USD"
        self.path = path
        self.errors = errors


class RefuseEveryCall(Budgets):
    """The budgets of an invalid file under ``fail_closed``: nothing may be sent."""

    def __init__(self, path: str, errors: list[str]) -> None:
        super().__init__(BudgetConfig(), store=MemoryStore())
        self.path = path
        self.errors = errors

    def check(self, call: PlannedCall) -> Decision:
        attributes: dict[str, Any] = {semconv.BUDGET_NAME: "budgets-file", semconv.BUDGET_ACTION: "raise"}
        return Decision(model=call.model, attributes=attributes, refusal=BudgetsFileInvalid(self.path, self.errors))


def budgets_from_settings(settings: Settings | None = None) -> Budgets | None:
    """The budgets of ``OTEL_LLMCOST_BUDGETS_FILE`` for ``instrument()``; never raises.

    None when no file is set. An invalid file logs one ERROR line (every problem, no
    traceback: the file is wrong, not the code) and, by ``budgets_invalid``, gives
    :class:`RefuseEveryCall` or None (budgets disabled).
    """
    settings = settings or Settings.load()
    path = settings.budgets_file
    if not path:
        return None
    try:
        return Budgets(load_budget_config(path))
    except ConfigFileError as exc:
        errors = exc.errors
    except Exception as exc:  # e.g. a store that cannot be opened: the same switch decides
        errors = [f"{path}: {type(exc).__name__}: {exc}"]
    mode = settings.budgets_invalid
    consequence = "every LLM call is refused" if mode == "fail_closed" else "budgets are NOT enforced"
    logger.error(
        "otel-llmcost: invalid budgets file, %s (OTEL_LLMCOST_BUDGETS_INVALID=%s): %s",
        consequence,
        mode,
        "; ".join(errors),
    )
    return RefuseEveryCall(str(path), errors) if mode == "fail_closed" else None
