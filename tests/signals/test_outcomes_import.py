"""Graded runs: `otel-llmcost outcomes import FILE.jsonl` -> llm_task_outcomes, so that cost per
successful task covers evaluation runs; the whole file or nothing, errors with line numbers.

chdb holds one path per process, so this module never keeps a client open: every check
opens and closes one, as the CLI does."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otel_llmcost import storage
from otel_llmcost.cli import app
from otel_llmcost.signals.outcomes_import import ImportFailed, SuccessRule, parse_lines, read_file
from tests.helpers.chdb import insert_spans, query_dsn
from tests.helpers.span_rows import call_row, now_ns

runner = CliRunner()
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def jsonl(tmp_path: Path, *records: object) -> Path:
    path = tmp_path / f"run-{secrets.token_hex(4)}.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def outcomes_import(path: Path, dsn: str, *options: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["outcomes", "import", str(path), "--dsn", dsn, *options])


# --- what counts as success ---------------------------------------------------------------------


def test_default_grades_are_case_insensitive_words():
    rule = SuccessRule.parse(None, None)
    assert rule.success("PASS") and rule.success(" correct ") and rule.success(True)
    assert not rule.success("fail") and not rule.success("B") and not rule.success(False)


def test_custom_grades_and_numeric_threshold():
    rule = SuccessRule.parse("A, B", 0.7)
    assert rule.success("a") and rule.success("B") and not rule.success("pass")
    assert rule.success(0.7) and rule.success(1) and not rule.success(0.69)


def test_numeric_grade_without_threshold_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="--threshold"):
        SuccessRule.parse(None, None).success(0.9)


def test_every_bad_line_is_reported_with_its_number():
    lines = [
        '{"task_id": "t1", "grade": "pass"}',
        '{"task_id": "t2", "grade": ',
        "",  # blank lines are skipped but still counted
        '{"task_id": "t3"}',
        '{"task_id": "t4", "grade": 0.5}',
        '{"task_id": "t1", "grade": "fail"}',
        '{"trace_id": "xyz", "grade": "pass"}',
        '{"grade": "pass"}',
        '["not", "an", "object"]',
        '{"task_id": "t5", "grade": "pass", "timestamp": "yesterday"}',
        '{"task_id": 7, "grade": "pass"}',
    ]
    with pytest.raises(ImportFailed) as failed:
        parse_lines(lines, source="run.jsonl", rule=SuccessRule.parse(None, None))
    problems = failed.value.problems
    assert [p.split(":")[1] for p in problems] == ["2", "4", "5", "6", "7", "8", "9", "10", "11"]
    assert "not valid JSON" in problems[0] and "missing 'grade'" in problems[1]
    assert "--threshold" in problems[2] and "already graded on line 1" in problems[3]
    assert "32 hex digits" in problems[4] and "task_id or a trace_id" in problems[5]
    assert all(p.startswith("run.jsonl:") for p in problems)


def test_trace_ids_are_normalised_and_keys_follow_the_live_rule():
    rows = parse_lines(
        [
            json.dumps({"trace_id": TRACE.upper(), "grade": "pass", "timestamp": "2026-11-20T10:00:00Z"}),
            json.dumps({"task_id": "t9", "trace_id": TRACE.replace("4", "5"), "grade": "fail", "feature": "search"}),
        ],
        source="x",
        rule=SuccessRule.parse(None, None),
    )
    (ts, trace, _, _, task, key, success, *_), second = rows
    assert (trace, task, key, success, ts.isoformat()) == (TRACE, "", TRACE, 1, "2026-11-20T10:00:00")
    assert (second[4], second[5], second[6], second[8]) == ("t9", "t9", 0, "search")


def test_the_dedup_token_follows_the_file_and_the_rule(tmp_path):
    path = jsonl(tmp_path, {"task_id": "t1", "grade": 0.8})
    one = read_file(path, rule=SuccessRule.parse(None, 0.7))
    assert one.token == read_file(path, rule=SuccessRule.parse(None, 0.7)).token
    assert one.token != read_file(path, rule=SuccessRule.parse(None, 0.9)).token


# --- on chdb -------------------------------------------------------------------------------------


def test_graded_run_gives_cost_per_successful_task(chdb_module_dsn, tmp_path):
    svc, t = "eval-run", now_ns()
    trace = secrets.token_hex(16)
    rows = [
        call_row(svc, t, task_id="eval-1", cost_total=0.30, feature="triage"),
        call_row(svc, t, task_id="eval-1", cost_total=0.20, feature="triage"),
        call_row(svc, t, task_id="eval-2", cost_total=0.50, feature="triage"),
        call_row(svc, t, trace_id=trace, cost_total=0.25, feature="triage"),
    ]
    with storage.open_client(chdb_module_dsn) as c:
        insert_spans(c, rows)
    path = jsonl(
        tmp_path,
        {"task_id": "eval-1", "grade": "A", "prompt": "ignored"},
        {"task_id": "eval-2", "grade": "C"},
        {"trace_id": trace, "grade": 0.9},
    )
    result = outcomes_import(path, chdb_module_dsn, "--success-grades", "A,B", "--threshold", "0.8")
    assert result.exit_code == 0, result.output
    assert "imported 3 outcomes" in result.output
    got = query_dsn(
        chdb_module_dsn,
        "SELECT Tasks, SuccessfulTasks, CostTotal, CostPerSuccessfulTask"
        " FROM otel.v_cost_per_successful_task(since_hours = 24)"
        " WHERE ServiceName = {s:String} AND Feature = 'triage'",
        s=svc,
    )
    assert len(got) == 1
    tasks, successes, cost, per_success = got[0]
    assert (tasks, successes) == (3, 2)
    assert cost == pytest.approx(1.25) and per_success == pytest.approx(1.25 / 2)

    again = outcomes_import(path, chdb_module_dsn, "--success-grades", "A,B", "--threshold", "0.8")
    assert again.exit_code == 0, again.output
    stored = query_dsn(
        chdb_module_dsn, "SELECT count() FROM otel.llm_task_outcomes WHERE ServiceName = {s:String}", s=svc
    )
    assert stored == [(3,)]  # the same file imported twice is stored once


def test_malformed_file_inserts_nothing_and_names_the_lines(chdb_module_dsn, tmp_path):
    path = jsonl(
        tmp_path,
        {"task_id": "half-1", "grade": "pass"},
        {"task_id": "half-2", "grade": "pass"},
        "{oops",
        {"task_id": "half-3", "grade": 0.4},
    )
    result = outcomes_import(path, chdb_module_dsn, "--service", "half-imported")
    assert result.exit_code != 0
    lines = result.output.splitlines()
    assert lines[0] == "error: nothing imported"
    assert lines[1].startswith(f"{path}:3: not valid JSON")
    assert lines[2].startswith(f"{path}:4: numeric grade 0.4 needs --threshold")
    assert len(lines) == 3 and "Traceback" not in result.output
    assert query_dsn(chdb_module_dsn, "SELECT count() FROM otel.llm_task_outcomes WHERE TaskKey LIKE 'half-%'") == [
        (0,)
    ]


def test_missing_file_and_empty_file_are_clear_errors(chdb_module_dsn, tmp_path):
    missing = outcomes_import(tmp_path / "nope.jsonl", chdb_module_dsn)
    assert missing.exit_code != 0 and "cannot read" in missing.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    result = outcomes_import(empty, chdb_module_dsn)
    assert result.exit_code != 0 and "no outcomes" in result.output


# --- users hashed like spans, deduplication by content, every bad value a FILE:LINE error -------


def test_users_are_stored_as_the_keyed_hash_the_spans_carry(monkeypatch):
    from otel_llmcost.signals.attribution import hash_user

    line = json.dumps({"task_id": "t1", "grade": "pass", "user": "alice@example.com"})
    rule = SuccessRule.parse(None, None)
    monkeypatch.delenv("OTEL_LLMCOST_USER_HASH_KEY", raising=False)
    assert parse_lines([line], source="x", rule=rule)[0][10] == "alice@example.com"
    monkeypatch.setenv("OTEL_LLMCOST_USER_HASH_KEY", "s3cret")
    hashed = parse_lines([line], source="x", rule=rule)[0][10]
    assert hashed == hash_user("alice@example.com", "s3cret") and "alice" not in hashed
    assert parse_lines([line], source="x", rule=rule, user_hash_key="other")[0][10] == hash_user(
        "alice@example.com", "other"
    )


def test_the_dedup_token_follows_content_not_bytes(tmp_path):
    rule = SuccessRule.parse(None, 0.7)
    one = jsonl(tmp_path, {"task_id": "t1", "grade": 0.8, "feature": "f"}, {"task_id": "t2", "grade": "pass"})
    reordered = jsonl(
        tmp_path,
        '{"grade": "pass",   "task_id": "t2"}',
        {"feature": "f", "grade": 0.8, "task_id": "t1", "notes": "ignored, never stored"},
    )
    assert one.read_bytes() != reordered.read_bytes()
    assert read_file(one, rule=rule).token == read_file(reordered, rule=rule).token
    changed = jsonl(tmp_path, {"task_id": "t1", "grade": 0.8, "feature": "g"}, {"task_id": "t2", "grade": "pass"})
    assert read_file(changed, rule=rule).token != read_file(one, rule=rule).token


DEEP = '{"task_id": "d", "grade": "pass", "notes": ' + "[" * 200_000 + "]" * 200_000 + "}"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            '{"task_id": "a", "grade": "pass", "timestamp": 1e308}',
            "timestamp 1e+308 is outside 1970-01-01 to 2105-12-31",
        ),
        (
            '{"task_id": "a", "grade": "pass", "timestamp": "9999-12-31"}',
            'timestamp "9999-12-31" is outside 1970-01-01 to 2105-12-31',
        ),
        (
            '{"task_id": "a", "grade": "pass", "timestamp": "9999-12-31T23:00:00-05:00"}',
            'timestamp "9999-12-31T23:00:00-05:00" is outside 1970-01-01 to 2105-12-31',
        ),
        ('{"task_id": "a", "grade": "pass", "timestamp": -1}', "timestamp -1 is outside 1970-01-01 to 2105-12-31"),
        (
            '{"task_id": "a", "grade": "pass", "timestamp": NaN}',
            "timestamp must be ISO 8601 text or Unix seconds, got NaN",
        ),
        (DEEP, "not valid JSON (nested too deeply)"),
        (
            '{"task_id": "a", "grade": ' + "9" * 5000 + "}",
            "not valid JSON (Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits;"
            " use sys.set_int_max_str_digits() to increase the limit)",
        ),
    ],
)
def test_every_bad_value_is_a_file_line_error(line, problem):
    with pytest.raises(ImportFailed) as failed:
        parse_lines(
            ['{"task_id": "ok", "grade": "pass"}', line], source="run.jsonl", rule=SuccessRule.parse(None, None)
        )
    assert failed.value.problems == [f"run.jsonl:2: {problem}"]


def test_the_cli_prints_bad_values_without_a_traceback(chdb_module_dsn, tmp_path):
    path = jsonl(tmp_path, {"task_id": "far", "grade": "pass", "timestamp": 1e308}, DEEP)
    result = outcomes_import(path, chdb_module_dsn)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.splitlines() == [
        "error: nothing imported",
        f"{path}:1: timestamp 1e+308 is outside 1970-01-01 to 2105-12-31",
        f"{path}:2: not valid JSON (nested too deeply)",
    ]


def test_the_same_outcomes_reordered_are_stored_once(chdb_module_dsn, tmp_path):
    svc = "reordered-" + secrets.token_hex(3)
    first = jsonl(tmp_path, {"task_id": "r1", "grade": "pass"}, {"task_id": "r2", "grade": "fail"})
    second = jsonl(tmp_path, '{"grade": "fail", "task_id": "r2"}', '{"grade": "pass", "task_id": "r1"}')
    for path in (first, second):
        result = outcomes_import(path, chdb_module_dsn, "--service", svc)
        assert result.exit_code == 0, result.output
    stored = query_dsn(
        chdb_module_dsn, "SELECT count() FROM otel.llm_task_outcomes WHERE ServiceName = {s:String}", s=svc
    )
    assert stored == [(2,)]
