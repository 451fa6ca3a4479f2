"""Settings come from one table (otel_llmcost.config): a keyword wins over the environment,
a bad variable never stops the app (logged, default used) but stops the CLI, and a
misspelt instrument() keyword is reported."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.config import OPTIONS, Settings


def test_every_setting_has_one_documented_option_and_variable():
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert {option.name for option in OPTIONS} == fields
    variables = [option.env for option in OPTIONS]
    assert len(set(variables)) == len(variables) and all(v and v.startswith("OTEL_") for v in variables)
    assert all(option.doc and option.default for option in OPTIONS)


def test_keyword_wins_over_environment_which_wins_over_default():
    env = {"OTEL_LLMCOST_PROMPT_ANATOMY": "0.25", "OTEL_LLMCOST_PROMPT_HASH": "off"}
    assert Settings.load(env).prompt_anatomy == 0.25
    assert Settings.load(env, prompt_anatomy="off").prompt_anatomy == 0.0
    assert Settings.load(env).hash_prompts is False
    assert Settings.load({}).hash_prompts is True
    assert Settings.load({"OTEL_LLMCOST_PROMPT_HASH": "  "}).hash_prompts is True  # blank is unset


def test_a_bad_variable_is_logged_and_defaulted(caplog):
    with caplog.at_level(logging.ERROR, logger="otel_llmcost"):
        settings = Settings.load({"OTEL_EXPORTER_LLMCOST_TTL_DAYS": "soon"})
    assert settings.ttl_days == 180
    assert "ignoring OTEL_EXPORTER_LLMCOST_TTL_DAYS" in caplog.text and "'soon'" in caplog.text
    with pytest.raises(ValueError, match="OTEL_EXPORTER_LLMCOST_TTL_DAYS must be a whole number"):
        Settings.load({"OTEL_EXPORTER_LLMCOST_TTL_DAYS": "soon"}, strict=True)


def test_an_unknown_setting_keyword_is_a_bug_in_the_caller():
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.load({}, prompt_anatomi=0.1)


def test_instrument_warns_about_a_misspelt_keyword_and_still_instruments(instrument, caplog, otel, fake):
    with caplog.at_level(logging.WARNING, logger="otel_llmcost"):
        instrumentor = instrument(prompt_anatomi="off")
    assert "ignores the unknown keyword 'prompt_anatomi' (did you mean 'prompt_anatomy'?)" in caplog.text
    assert instrumentor.telemetry is not None and instrumentor.telemetry.anatomy is not None  # default: on


def test_instrument_keywords_reach_the_runtime(instrument):
    telemetry = instrument(prompt_anatomy="off", capture_content=True, user_hash_key="k").telemetry
    assert telemetry.anatomy is None
    assert telemetry.settings.capture_content is True and telemetry.settings.user_hash_key == "k"


def test_cli_refuses_a_bad_variable(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_LLMCOST_TTL_DAYS", "soon")
    result = CliRunner().invoke(app, ["migrate", "--print"])
    assert result.exit_code == 2
    assert "OTEL_EXPORTER_LLMCOST_TTL_DAYS must be a whole number, got 'soon'" in result.output


def test_migrate_takes_its_ttl_from_the_setting(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_LLMCOST_TTL_DAYS", "30")
    result = CliRunner().invoke(app, ["migrate", "--print"])
    assert result.exit_code == 0, result.output
    assert "toIntervalDay(30)" in result.output and "toIntervalDay(180)" not in result.output
    explicit = CliRunner().invoke(app, ["migrate", "--print", "--ttl-days", "90"])
    assert "toIntervalDay(90)" in explicit.output
