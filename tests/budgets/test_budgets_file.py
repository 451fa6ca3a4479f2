"""The budgets file is validated strictly: every problem is one ``FILE:LINE: key.path: message``
line, all of them at once; an invalid file at start-up is one ERROR line, the app stays
instrumented and OTEL_LLMCOST_BUDGETS_INVALID decides whether calls are refused."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import pytest

from otel_llmcost import semconv
from otel_llmcost.budgets import BudgetConfig, BudgetExceeded
from otel_llmcost.budgets import config as budget_config
from otel_llmcost.budgets.config import SCOPES
from otel_llmcost.budgets.loading import (
    BudgetsFileInvalid,
    RefuseEveryCall,
    budgets_from_settings,
    check_budgets_file,
    load_budget_config,
)
from otel_llmcost.config import Settings
from otel_llmcost.config_files import ConfigFileError, parse_text, validate
from otel_llmcost.demo.fakes import openai_client

VALID = (
    "timezone: Europe/Berlin\n"
    "store: redis://localhost:6379/0\n"
    "soft_threshold: 0.8\n"
    "request: {max_total_tokens: 50000, max_cost_usd: 0.50}\n"
    "budgets:\n"
    "  - {name: monthly, scope: global, period: month, limit_usd: 2000}\n"
    "  - {scope: user, period: day, limit_usd: 2, action: downgrade, downgrade_to: gpt-4o-mini}\n"
)


def _errors(tmp_path, text: str, name: str = "budgets.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    return [line.replace(f"{tmp_path}/", "") for line in check_budgets_file(path)]


def test_a_valid_file_loads_as_from_dict_reads_it(tmp_path):
    path = tmp_path / "budgets.yaml"
    path.write_text(VALID)
    assert check_budgets_file(path) == []
    import yaml

    assert load_budget_config(path) == BudgetConfig.from_dict(yaml.safe_load(VALID))
    assert load_budget_config(path).budgets[1].name == "budget-2"  # unnamed budgets are numbered, as before


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('fail_open: "false"\n', "budgets.yaml:1: fail_open: expected true or false, got the string 'false'"),
        ("input_margin: 0\n", "budgets.yaml:1: input_margin: must be greater than 0, got 0"),
        ("soft_threshold: -3\n", "budgets.yaml:1: soft_threshold: must be a share in (0, 1] such as 0.8, got -3"),
        ("soft_threshold: 1.5\n", "budgets.yaml:1: soft_threshold: must be a share in (0, 1] such as 0.8, got 1.5"),
        ("lease_s: -1\n", "budgets.yaml:1: lease_s: must be greater than 0, got -1"),
        (
            "store: redis//localhost\n",
            "budgets.yaml:1: store: must be 'memory' or a redis://, rediss:// or unix:// URL (no scheme),"
            " got 'redis//localhost'",
        ),
        (
            "store: redis://localhost:port/0\n",
            "budgets.yaml:1: store: must be 'memory' or a redis://, rediss:// or unix:// URL"
            " (Port could not be cast to integer value as 'port'), got 'redis://localhost:port/0'",
        ),
        (
            "store: http://localhost\n",
            "budgets.yaml:1: store: must be 'memory' or a redis://, rediss:// or unix:// URL"
            " (unknown scheme 'http'), got 'http://localhost'",
        ),
        (
            "timezone: Europe/Berln\n",
            "budgets.yaml:1: timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        ),
        (
            "default_max_output_tokens: 1.5\n",
            "budgets.yaml:1: default_max_output_tokens: expected a whole number, got 1.5",
        ),
        (
            "default_max_output_tokens: true\n",
            "budgets.yaml:1: default_max_output_tokens: expected a whole number, got true",
        ),
        ("input_margin: .nan\n", "budgets.yaml:1: input_margin: expected a finite number, got nan"),
        ("budgets: {a: 1}\n", "budgets.yaml:1: budgets: expected a list, got a mapping"),
        ("- 1\n", "budgets.yaml:1: expected a mapping, got a list"),
        (
            "soft_treshold: 0.5\n",
            "budgets.yaml:1: soft_treshold: unknown key (did you mean 'soft_threshold'?)",
        ),
        (
            "budgets:\n  - name: a\n    limt: 2\n",
            "budgets.yaml:3: budgets[0].limt: unknown key (did you mean 'limit_usd'?)",
        ),
        (
            "budgets:\n  - {name: a, limit_usd: 1, scope: usr}\n",
            f"budgets.yaml:2: budgets[0].scope: must be one of {', '.join(SCOPES)};"
            " got the string 'usr' (did you mean 'user'?)",
        ),
        (
            "budgets:\n  - {name: a, limit_usd: 1, period: mnth}\n",
            "budgets.yaml:2: budgets[0].period: must be one of day, week, month; got the string 'mnth'"
            " (did you mean 'month'?)",
        ),
        (
            "budgets:\n  - {name: a, limit_usd: 1, action: downgrade}\n",
            "budgets.yaml:2: budgets[0]: budget 'a': action 'downgrade' needs downgrade_to",
        ),
        (
            "budgets:\n  - {name: a, limit_usd: -1}\n",
            "budgets.yaml:2: budgets[0].limit_usd: must not be negative, got -1",
        ),
        (
            "budgets:\n  - {name: a, limit_usd: 1}\n  - {name: a, limit_usd: 2}\n",
            "budgets.yaml:3: budgets[1].name: duplicate budget name 'a' (first on line 2)",
        ),
        ("request: {max_cost_usd: yes}\n", "budgets.yaml:1: request.max_cost_usd: expected a number, got true"),
        ("request: {max_total_tokens: -5}\n", "budgets.yaml:1: request.max_total_tokens: must not be negative, got -5"),
        ("timezone: UTC\ntimezone: Europe/Paris\n", "budgets.yaml:2: timezone: duplicate key (first on line 1)"),
        ("timezone: 2026-01-01\n", "budgets.yaml:1: timezone: expected text, got the date 2026-01-01 (quote it)"),
        ("budgets: [\n", "budgets.yaml:2: not valid YAML or JSON: expected the node content, but found '<stream end>'"),
        ("1: a\n", "budgets.yaml:1: keys must be text, got 1"),
        ("lease_s: !!python/name:os.system 1\n", None),  # an unsafe tag: an error, never a call
    ],
)
def test_each_mistake_is_one_line_naming_file_line_and_key(tmp_path, text, error):
    errors = _errors(tmp_path, text)
    if error is None:
        assert len(errors) == 1 and errors[0].startswith("budgets.yaml:1: lease_s: invalid value")
    else:
        assert errors == [error]


def test_every_problem_is_listed_in_file_order(tmp_path):
    text = (
        "timezone: Europe/Berln\n"
        "store: redis//localhost\n"
        "fail_open: 'false'\n"
        "budgets:\n"
        "  - {name: monthly, limit_usd: 2000}\n"
        "  - name: per-user\n"
        "    limt: 2\n"
        "extra: 1\n"
    )
    assert _errors(tmp_path, text) == [
        "budgets.yaml:1: timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        "budgets.yaml:2: store: must be 'memory' or a redis://, rediss:// or unix:// URL (no scheme),"
        " got 'redis//localhost'",
        "budgets.yaml:3: fail_open: expected true or false, got the string 'false'",
        "budgets.yaml:7: budgets[1].limt: unknown key (did you mean 'limit_usd'?)",
        "budgets.yaml:8: extra: unknown key",
    ]


def test_json_files_have_lines_too(tmp_path):
    text = '{\n  "soft_threshold": 0.8,\n  "budgets": [\n    {"name": "a", "limit_usd": "10"}\n  ]\n}\n'
    assert _errors(tmp_path, text, "budgets.json") == [
        "budgets.json:4: budgets[0].limit_usd: expected a number, got the string '10'"
    ]


def test_unreadable_and_empty_files(tmp_path):
    assert check_budgets_file(tmp_path / "missing.yaml") == [
        f"{tmp_path}/missing.yaml: cannot read: No such file or directory"
    ]
    (tmp_path / "empty.yaml").write_text("")
    assert load_budget_config(tmp_path / "empty.yaml") == BudgetConfig()
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe")
    assert _errors(tmp_path, "", "empty.yaml") == []
    assert check_budgets_file(tmp_path / "binary.yaml") == [f"{tmp_path}/binary.yaml:1: not UTF-8 text"]


def test_hostile_nesting_is_an_error_not_a_crash(tmp_path):
    deep = "a: " + "[" * 100 + "]" * 100 + "\n"
    assert _errors(tmp_path, deep) == [
        "budgets.yaml:1: nested more than 64 levels deep",
        "budgets.yaml:1: a: unknown key",
    ]


# --- the generic loader follows the dataclasses ----------------------------------------------


@dataclass(frozen=True)
class Step:
    at: float
    action: Literal["notify", "refuse"] = "notify"


@dataclass(frozen=True)
class Ladder:
    name: str
    steps: tuple[Step, ...] = ()
    alert_only: bool = False
    limit_tokens: int | None = None


def test_a_field_added_to_a_dataclass_is_validated_with_no_change_to_the_loader():
    text = "name: x\nsteps:\n  - {at: 0.7}\n  - {at: 0.9, action: refuze}\nalert_only: 'no'\nlimit_tokens: 1.5\n"
    root, problems = parse_text(text, "ladder.yaml")
    assert root is not None
    validate(root, Ladder, problems)
    assert problems.errors == [
        "ladder.yaml:4: steps[1].action: must be one of notify, refuse; got the string 'refuze'"
        " (did you mean 'refuse'?)",
        "ladder.yaml:5: alert_only: expected true or false, got the string 'no'",
        "ladder.yaml:6: limit_tokens: expected a whole number, got 1.5",
    ]
    root, problems = parse_text("name: x\nsteps: [{at: 0.7, action: refuse}]\nlimit_tokens: null\n", "ok.yaml")
    assert root is not None
    assert validate(root, Ladder, problems) == {
        "name": "x",
        "steps": [{"at": 0.7, "action": "refuse"}],
        "limit_tokens": None,
    }
    assert problems.errors == []


@pytest.mark.skipif(not hasattr(budget_config, "Threshold"), reason="budgets without ladders")
def test_the_budgets_ladder_is_validated_through_its_dataclass(tmp_path):
    text = (
        "budgets:\n  - name: a\n    limit_usd: 1\n    thresholds:\n"
        "      - {action: notify}\n      - {at: 2, action: refuse}\n"
    )
    assert _errors(tmp_path, text) == [
        "budgets.yaml:5: budgets[0].thresholds[0]: missing required key 'at'",
        "budgets.yaml:6: budgets[0].thresholds[1].at: must be a share in (0, 1] such as 0.8, got 2",
    ]


# --- at start-up --------------------------------------------------------------------------------------


def _settings(path, **keywords) -> Settings:  # type: ignore[no-untyped-def]
    return Settings.load({"OTEL_LLMCOST_BUDGETS_FILE": str(path)}, **keywords)


def test_an_invalid_file_fails_closed_by_default_with_one_error_line(tmp_path, caplog, instrument, otel, fake):
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - {name: a, limt: 1}\n")
    with caplog.at_level(logging.ERROR, logger="otel_llmcost"):
        budgets = budgets_from_settings(_settings(path))
    assert isinstance(budgets, RefuseEveryCall)
    (record,) = caplog.records
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert record.getMessage() == (
        "otel-llmcost: invalid budgets file, every LLM call is refused (OTEL_LLMCOST_BUDGETS_INVALID=fail_closed): "
        f"{path}:2: budgets[0].limt: unknown key (did you mean 'limit_usd'?)"
    )
    instrument(budgets=budgets)
    with pytest.raises(BudgetsFileInvalid) as refused:
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(refused.value, BudgetExceeded) and fake.requests == []  # nothing was sent
    assert str(refused.value) == (
        f"LLM budgets file {path} is invalid (1 problem: {path}:2: budgets[0].limt: unknown key"
        " (did you mean 'limit_usd'?)); budgets fail closed (OTEL_LLMCOST_BUDGETS_INVALID=fail_closed):"
        " the request was not sent"
    )
    span = otel.only_span()  # the refusal is on a span
    assert span.attributes[semconv.ERROR_TYPE] == "BudgetsFileInvalid"
    assert span.attributes[semconv.BUDGET_NAME] == "budgets-file"


def test_disabled_sends_every_call_unchecked(tmp_path, caplog):
    path = tmp_path / "budgets.yaml"
    path.write_text("lease_s: -1\n")
    with caplog.at_level(logging.ERROR, logger="otel_llmcost"):
        assert budgets_from_settings(_settings(path, budgets_invalid="disabled")) is None
    assert [r.getMessage() for r in caplog.records] == [
        "otel-llmcost: invalid budgets file, budgets are NOT enforced (OTEL_LLMCOST_BUDGETS_INVALID=disabled): "
        f"{path}:1: lease_s: must be greater than 0, got -1"
    ]


def test_the_switch_is_a_setting():
    assert Settings.load({}).budgets_invalid == "fail_closed"
    assert Settings.load({"OTEL_LLMCOST_BUDGETS_INVALID": "Disabled"}).budgets_invalid == "disabled"
    assert Settings.load({"OTEL_LLMCOST_BUDGETS_INVALID": "maybe"}).budgets_invalid == "fail_closed"
    with pytest.raises(ValueError, match="must be one of fail_closed, disabled, got 'maybe'"):
        Settings.load({"OTEL_LLMCOST_BUDGETS_INVALID": "maybe"}, strict=True)


def test_no_file_no_budgets_and_a_valid_file_enforces(tmp_path):
    assert budgets_from_settings(Settings.load({})) is None
    path = tmp_path / "budgets.yaml"
    path.write_text(VALID.replace("redis://localhost:6379/0", "memory"))
    budgets = budgets_from_settings(_settings(path))
    assert budgets is not None and not isinstance(budgets, RefuseEveryCall)
    assert [b.name for b in budgets.config.budgets] == ["monthly", "budget-2"]


def test_load_raises_one_exception_type_with_every_error(tmp_path):
    path = tmp_path / "budgets.yaml"
    path.write_text("input_margin: 0\nlease_s: 0\n")
    with pytest.raises(ConfigFileError) as raised:
        load_budget_config(path)
    assert raised.value.errors == [
        f"{path}:1: input_margin: must be greater than 0, got 0",
        f"{path}:2: lease_s: must be greater than 0, got 0",
    ]
    assert str(raised.value) == "\n".join(raised.value.errors)
