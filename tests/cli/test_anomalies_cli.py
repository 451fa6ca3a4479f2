"""`otel-llmcost anomalies`: the rows of v_anomalies for people (table) and machines (JSON, CSV).

Exact-format tests read scripted rows (tests.helpers.anomaly_fixture) put in place of the
view, so every key, time and boolean is known; the detectors themselves are tested with
the views in tests/storage.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.reporting import anomalies
from tests.helpers import anomaly_fixture
from tests.helpers.chdb import chdb_dsn, fresh_client
from tests.helpers.dashboard_db import dashboard_database

runner = CliRunner()
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def scripted_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("anomalies")
    with fresh_client(directory) as client:
        anomaly_fixture.install(client)
    return chdb_dsn(directory)


@pytest.fixture(scope="module")
def empty_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("anomalies-empty")
    with fresh_client(directory) as client:
        anomaly_fixture.install(client, rows=[])
    return chdb_dsn(directory)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["anomalies", *args], env={"COLUMNS": "400"})
    return result.exit_code, result.stdout, result.stderr


def as_json(dsn: str, *args: str) -> list[dict]:
    code, out, err = run("--dsn", dsn, "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_json_is_a_list_of_objects_with_the_contract_keys(scripted_dsn):
    found = as_json(scripted_dsn)
    assert isinstance(found, list) and found
    for obj in found:
        assert list(obj) == list(anomalies.JSON_KEYS)
        assert obj["kind"] in anomalies.KINDS
        for key in ("at", "detected_at", "last_seen"):
            assert ISO_Z.fullmatch(obj[key]), obj[key]
        assert isinstance(obj["open"], bool)
        assert all(isinstance(obj[k], float) for k in ("expected", "observed", "score"))
        assert obj["explanation"]
        for c in obj["contributors"]:
            assert set(c) == {"dimension", "key", "share"} and isinstance(c["share"], float)


def test_json_values_are_the_rows_exactly(scripted_dsn):
    (spend,) = [o for o in as_json(scripted_dsn) if o["kind"] == "spend"]
    hour = anomaly_fixture.hour()
    assert spend == {
        "kind": "spend",
        "dimension": "endpoint",
        "key": "POST /translate",
        "service": "billing-worker",
        "at": (hour - anomalies.dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detected_at": (hour - anomalies.dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "last_seen": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expected": 0.10,
        "observed": 2.40,
        "score": 9.5,
        "open": True,
        # the view's explanation, then who moved the series, largest share first
        "explanation": "spend 2.40 USD/h against 0.10 expected (x24.0) for 2 h; user user-batch: 96% of the rise; "
        "model claude-sonnet-4-20250514 100%, user user-batch 96%",
        "contributors": [
            {"dimension": "model", "key": "claude-sonnet-4-20250514", "share": 1.0},
            {"dimension": "user", "key": "user-batch", "share": 0.96},
        ],
    }


def test_default_window_is_seven_days_newest_first(scripted_dsn):
    found = as_json(scripted_dsn)
    assert [o["kind"] for o in found] == ["spend", "cache_hit_rate", "error_rate", "new_entity", "drift"]
    detected = [o["detected_at"] for o in found]
    assert detected == sorted(detected, reverse=True)
    assert [o["kind"] for o in as_json(scripted_dsn, "--since", "2w")][-1] == "calls"
    assert [o["kind"] for o in as_json(scripted_dsn, "--since", "6h")] == ["spend", "cache_hit_rate"]


def test_filters_open_only_kind_and_dimension(scripted_dsn):
    assert {o["kind"] for o in as_json(scripted_dsn, "--open-only")} == {"spend", "cache_hit_rate"}
    assert all(o["open"] for o in as_json(scripted_dsn, "--open-only"))
    assert [o["kind"] for o in as_json(scripted_dsn, "--kind", "drift", "--kind", "new_entity")] == [
        "new_entity",
        "drift",
    ]
    assert [o["key"] for o in as_json(scripted_dsn, "--dimension", "model")] == [
        anomaly_fixture.HOSTILE_KEY,
        "acme-finetune-7b",
    ]
    # A dimension the detectors never use is a typo, not an empty answer (issue 21).
    code, out, err = run("--dsn", scripted_dsn, "--format", "json", "--dimension", "nothing-like-it")
    assert (code, out) == (2, "")
    assert err == "error: unknown --dimension 'nothing-like-it'; choose from endpoint, model, feature, team, user\n"


def test_no_anomaly_is_an_empty_list(empty_dsn):
    code, out, err = run("--dsn", empty_dsn, "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [] and out.strip() == "[]"


@pytest.mark.parametrize("since", ["7", "d", "-1d", "0h", "1y", "1.5h", "6 h x", "", "99999w"])
def test_a_bad_since_is_one_error_line_and_exit_2(scripted_dsn, since):
    code, out, err = run("--dsn", scripted_dsn, "--since", since)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --since"), err


def test_an_unknown_kind_or_format_is_an_error(scripted_dsn):
    code, _, err = run("--dsn", scripted_dsn, "--kind", "vibes")
    assert code == 2 and err.startswith("error: unknown --kind")
    code, _, err = run("--dsn", scripted_dsn, "--format", "xml")
    assert code == 2 and err.startswith("error: --format")


def test_durations():
    assert anomalies.parse_duration("6h").total_seconds() == 6 * 3600
    assert anomalies.parse_duration("2d").days == 2
    assert anomalies.parse_duration("1w").days == 7
    assert anomalies.parse_duration("1d12h").total_seconds() == 36 * 3600
    assert anomalies.parse_duration("30m").total_seconds() == 1800


def test_table_shows_each_anomaly_with_its_explanation_and_stored_text_inert(scripted_dsn):
    code, out, err = run("--dsn", scripted_dsn, "--since", "2w")
    assert code == 0, err
    assert "Anomalies" in out and "POST /translate" in out and "user-batch" in out
    assert "\x1b" not in out and "\u202e" not in out  # controls shown as escapes, never sent
    assert "[bold]user[/bold]" in out and "\\x1b" in out and "[red]closed[/red]" in out
    for kind in ("spend", "cache_hit_rate", "error_rate", "new_entity", "drift", "calls"):
        assert kind in out


def test_csv_has_one_header_and_a_row_per_anomaly(scripted_dsn):
    code, out, err = run("--dsn", scripted_dsn, "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["report", *anomalies.JSON_KEYS]
    assert len(rows) == 1 + 5
    spend = dict(zip(rows[0], rows[1], strict=True))
    assert spend["open"] == "yes"
    assert spend["contributors"] == "model claude-sonnet-4-20250514 100%, user user-batch 96%"


def test_missing_database_is_an_error_line(tmp_path):
    code, _, err = run("--dsn", f"chdb://{tmp_path / 'nothing'}")
    assert code == 2 and err.startswith("error:")


def test_the_report_shows_the_same_anomalies(scripted_dsn):
    result = runner.invoke(
        app,
        ["report", "--dsn", scripted_dsn, "--only", "anomalies", "--format", "json", "--since-hours", "168"],
    )
    assert result.exit_code == 0, result.output
    ((report,),) = [[r for r in json.loads(result.stdout) if r["name"] == "anomalies"]]
    rows = report["rows"]
    assert [r["Kind"] for r in rows] == [o["kind"] for o in as_json(scripted_dsn)]
    assert [r["Explanation"] for r in rows] == [o["explanation"] for o in as_json(scripted_dsn)]
    assert [r["State"] for r in rows] == ["open", "open", "closed", "closed", "closed"]


def test_the_detectors_view_reads_as_the_contract(tmp_path_factory):
    """The real v_anomalies (demo data plus a spend spike, tests.helpers.dashboard_db): the same
    keys and types as the scripted rows, and the spike is found."""
    dsn = dashboard_database(tmp_path_factory.getbasetemp())
    found = as_json(dsn, "--since", "2w")
    assert found, "the detectors flagged nothing on the demo data"
    for obj in found:
        assert list(obj) == list(anomalies.JSON_KEYS)
        assert obj["kind"] in anomalies.KINDS, obj["kind"]
        assert all(ISO_Z.fullmatch(obj[k]) for k in ("at", "detected_at", "last_seen"))
        assert obj["at"] <= obj["last_seen"] and isinstance(obj["open"], bool) and obj["explanation"]
    code, out, err = run("--dsn", dsn, "--since", "2w")
    assert code == 0, err
    assert found[0]["kind"] in out
