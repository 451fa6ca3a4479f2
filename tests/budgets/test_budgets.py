"""Budgets with the in-memory store: limits, actions, thresholds, periods, status."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

import otel_llmcost as llmcost
from otel_llmcost import semconv
from otel_llmcost.budgets import BudgetConfig, BudgetExceeded, MemoryStore, load_budget_config, period_bounds
from otel_llmcost.demo.fakes import Reply, openai_client
from tests.helpers.budgets import ACTUAL_4O, ACTUAL_MINI, ESTIMATE_MINI, MESSAGES, Clock, budgets

BERLIN = ZoneInfo("Europe/Berlin")


def enforce(instrument, b):  # type: ignore[no-untyped-def]
    """Instrument with these budgets, pricing spans with the same exact test prices."""
    instrument(budgets=b, pricer=b.pricer)
    return b


def _create(client, model: str = "gpt-4o-mini", **kwargs):  # type: ignore[no-untyped-def]
    return client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=20, **kwargs)


# --- configuration and periods --------------------------------------------------------


def test_config_rejects_unknown_settings_and_bad_actions():
    with pytest.raises(ValueError, match="unknown budget settings"):
        BudgetConfig.from_dict({"budget": []})
    with pytest.raises(ValueError, match="downgrade_to"):
        BudgetConfig.from_dict({"budgets": [{"name": "b", "limit_usd": 1, "action": "downgrade"}]})
    with pytest.raises(ValueError, match="scope"):
        BudgetConfig.from_dict({"budgets": [{"name": "b", "limit_usd": 1, "scope": "planet"}]})


def test_config_file_yaml(tmp_path):
    path = tmp_path / "budgets.yaml"
    path.write_text(
        "timezone: Europe/Berlin\n"
        "request: {max_total_tokens: 1000}\n"
        "budgets:\n"
        "  - {name: monthly, limit_usd: 100}\n"
        "  - {name: per-user, scope: user, period: day, limit_usd: 2, action: downgrade, downgrade_to: gpt-4o-mini}\n"
    )
    config = load_budget_config(path)
    assert config.timezone == "Europe/Berlin" and config.request.max_total_tokens == 1000
    assert [b.name for b in config.budgets] == ["monthly", "per-user"]
    assert config.budgets[1].downgrade_to == "gpt-4o-mini"


def test_periods_start_at_local_midnight_monday_and_the_first():
    now = datetime(2025, 3, 31, 22, 30, tzinfo=timezone.utc)  # Tue 1 Apr 00:30 in Berlin (CEST)
    start, end, key = period_bounds("day", now, BERLIN)
    assert (start.isoformat(), end.isoformat(), key) == (
        "2025-04-01T00:00:00+02:00",
        "2025-04-02T00:00:00+02:00",
        "2025-04-01",
    )
    start, end, key = period_bounds("week", now, BERLIN)
    assert (start.isoformat(), key) == ("2025-03-31T00:00:00+02:00", "2025-W14")
    start, end, key = period_bounds("month", now, BERLIN)
    assert (start.isoformat(), end.isoformat(), key) == (
        "2025-04-01T00:00:00+02:00",
        "2025-05-01T00:00:00+02:00",
        "2025-04",
    )
    assert period_bounds("month", now, ZoneInfo("UTC"))[2] == "2025-03"


def test_month_period_spanning_dst_is_wall_clock():
    start, end, _ = period_bounds("month", datetime(2025, 3, 15, tzinfo=timezone.utc), BERLIN)
    assert start.utcoffset().total_seconds() == 3600 and end.utcoffset().total_seconds() == 7200


# --- no budgets: nothing happens -------------------------------------------------------------


def test_without_budgets_the_hot_path_has_nothing_to_do(instrument, otel, fake):
    telemetry = instrument().telemetry
    assert telemetry.budgets is None
    _create(openai_client(fake))
    assert not any(k.startswith("llmcost.budget.") for k in otel.only_span().attributes)


# --- per-request limits ---------------------------------------------------------------------


def test_request_token_limit_raises_before_sending(instrument, otel, fake, tmp_path):
    enforce(instrument, budgets({"request": {"max_total_tokens": 100}}, tmp_path))
    client = openai_client(fake)
    with pytest.raises(BudgetExceeded, match="'request'.*not sent") as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=500)
    assert raised.value.unit == "tokens" and raised.value.limit == 100
    assert fake.requests == []
    span = otel.only_span()
    assert span.attributes[semconv.ERROR_TYPE] == "BudgetExceeded"
    assert span.attributes[semconv.BUDGET_ACTION] == "raise"
    assert span.attributes[semconv.BUDGET_SCOPE] == "request"
    assert span.status.status_code.name == "ERROR"


def test_request_cost_limit_downgrades_to_the_cheaper_model(instrument, otel, fake, tmp_path):
    config = {"request": {"max_cost_usd": 100e-6, "action": "downgrade", "downgrade_to": "gpt-4o-mini"}}
    enforce(instrument, budgets(config, tmp_path))
    _create(openai_client(fake), model="gpt-4o")
    assert fake.requests[-1]["json"]["model"] == "gpt-4o-mini"
    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[semconv.BUDGET_ORIGINAL_MODEL] == "gpt-4o"
    assert attrs[semconv.BUDGET_ACTION] == "downgrade"


# --- period budgets ---------------------------------------------------------------------------


def test_period_budget_raises_once_the_cap_would_be_crossed(instrument, otel, fake, tmp_path):
    b = budgets({"budgets": [{"name": "daily", "period": "day", "limit_usd": 100e-6}]}, tmp_path)
    enforce(instrument, b)
    client = openai_client(fake)
    # 0 + 48 fits, 21 + 48 fits, 42 + 48 fits, 63 + 48 > 100: refused.
    for _ in range(3):
        _create(client)
    with pytest.raises(BudgetExceeded) as raised:
        _create(client)
    assert raised.value.budget == "daily" and raised.value.scope == "global"
    assert len(fake.requests) == 3
    (status,) = b.status()
    assert status.used_usd == pytest.approx(3 * ACTUAL_MINI) and status.reserved_usd == 0


def test_budget_downgrade_changes_the_model_sent(instrument, otel, fake, tmp_path):
    config = {
        "budgets": [
            {"name": "team", "scope": "team", "limit_usd": 0.0006, "action": "downgrade", "downgrade_to": "gpt-4o-mini"}
        ]
    }
    enforce(instrument, budgets(config, tmp_path))
    client = openai_client(fake)
    with llmcost.attributes(team="search"):
        _create(client, model="gpt-4o")  # estimate 480e-6 fits; costs 210e-6
        _create(client, model="gpt-4o")  # 210 + 480 > 600: sent as gpt-4o-mini
    assert [r["json"]["model"] for r in fake.requests] == ["gpt-4o", "gpt-4o-mini"]
    first, second = otel.spans()
    assert first.attributes[semconv.BUDGET_ACTION] == "warn"  # 480 of 600 reserved: at the 80% soft threshold
    assert second.name == "chat gpt-4o-mini"
    assert second.attributes[semconv.BUDGET_ACTION] == "downgrade"
    assert second.attributes[semconv.BUDGET_USED] == pytest.approx(ACTUAL_4O)
    assert second.attributes[semconv.BUDGET_ORIGINAL_MODEL] == "gpt-4o"


def test_downgrade_never_lifts_the_cap(instrument, fake, tmp_path):
    config = {
        "budgets": [{"name": "b", "limit_usd": 30e-6, "action": "downgrade", "downgrade_to": "gpt-4o-mini"}],
    }
    enforce(instrument, budgets(config, tmp_path))
    with pytest.raises(BudgetExceeded):
        _create(openai_client(fake), model="gpt-4o")  # even gpt-4o-mini (48e-6) does not fit
    assert fake.requests == []


def test_soft_threshold_records_an_event_and_a_metric(instrument, otel, fake, tmp_path):
    enforce(instrument, budgets({"budgets": [{"name": "daily", "period": "day", "limit_usd": 100e-6}]}, tmp_path))
    client = openai_client(fake)
    for _ in range(3):  # shares after reserving: 48%, 69%, 90%
        _create(client)
    spans = otel.spans()
    assert [len(s.events) for s in spans] == [0, 0, 1]
    event = spans[2].events[0]
    assert event.name == semconv.EVENT_BUDGET_THRESHOLD_CROSSED
    assert event.attributes[semconv.BUDGET_NAME] == "daily" and event.attributes[semconv.BUDGET_THRESHOLD] == 0.8
    assert spans[2].attributes[semconv.BUDGET_ACTION] == "warn"
    points = otel.metrics()[semconv.METRIC_BUDGET_EVENTS]
    assert [(p.attributes[semconv.BUDGET_ACTION], p.value) for p in points] == [("warn", 1)]


def test_each_user_has_their_own_counter(instrument, fake, tmp_path):
    b = budgets({"budgets": [{"name": "per-user", "scope": "user", "limit_usd": 50e-6}]}, tmp_path)
    enforce(instrument, b)
    client = openai_client(fake)
    for user in ("alice", "bob"):
        with llmcost.attributes(user=user):
            _create(client)
    with llmcost.attributes(user="alice"), pytest.raises(BudgetExceeded, match="user=alice"):
        _create(client)
    _create(client)  # no user: a per-user budget does not apply
    assert sorted((s.scope_value, round(s.used_usd * 1e6)) for s in b.status()) == [("alice", 21), ("bob", 21)]


def test_failed_calls_release_their_reservation(instrument, fake, tmp_path):
    b = budgets({"budgets": [{"name": "b", "limit_usd": 1.0}]}, tmp_path)
    enforce(instrument, b)
    fake.enqueue(Reply(status=500))
    with pytest.raises(Exception, match="500|fake error"):
        _create(openai_client(fake, max_retries=0))
    (status,) = b.status()
    assert status.used_usd == 0 and status.reserved_usd == 0


def test_streams_reconcile_when_they_end(instrument, fake, tmp_path):
    b = budgets({"budgets": [{"name": "b", "limit_usd": 1.0}]}, tmp_path)
    enforce(instrument, b)
    stream = _create(openai_client(fake), stream=True, stream_options={"include_usage": True})
    assert b.status()[0].reserved_usd == pytest.approx(ESTIMATE_MINI)
    for _ in stream:
        pass
    (status,) = b.status()
    assert status.used_usd == pytest.approx(ACTUAL_MINI) and status.reserved_usd == 0


# --- periods reset on schedule; leases expire -------------------------------------------------


def test_monthly_budget_resets_at_local_midnight_of_the_first(instrument, fake, tmp_path):
    clock = Clock(datetime(2025, 1, 31, 22, 59, tzinfo=timezone.utc))  # 23:59 in Berlin
    config = {"timezone": "Europe/Berlin", "budgets": [{"name": "m", "period": "month", "limit_usd": 50e-6}]}
    b = budgets(config, tmp_path, clock=clock)
    enforce(instrument, b)
    client = openai_client(fake)
    _create(client)
    with pytest.raises(BudgetExceeded):
        _create(client)
    clock.now = datetime(2025, 1, 31, 23, 0, tzinfo=timezone.utc)  # 1 February, 00:00 in Berlin
    _create(client)
    (status,) = b.status()
    assert status.period_start.isoformat() == "2025-02-01T00:00:00+01:00"
    assert status.used_usd == pytest.approx(ACTUAL_MINI)


def test_a_reservation_never_settled_expires_with_its_lease(tmp_path):
    clock = Clock()
    b = budgets({"lease_s": 60, "budgets": [{"name": "b", "limit_usd": 100e-9}]}, tmp_path, clock=clock)
    counters = [c for _, _, c in b._counters({})]
    store = b.store
    assert isinstance(store, MemoryStore)
    now_ms = int(clock.now.timestamp() * 1000)
    assert store.reserve(counters, [100], "crashed", now_ms, now_ms + 60_000)[0] == 0
    assert store.reserve(counters, [1], "next", now_ms + 59_000, now_ms + 119_000)[0] == 1  # still held
    assert store.reserve(counters, [100], "later", now_ms + 60_000, now_ms + 120_000)[0] == 0  # lease expired


# --- status ---------------------------------------------------------------------------------


def test_status_reports_burn_rate_and_projected_exhaustion(tmp_path):
    clock = Clock(datetime(2025, 6, 11, 0, 0, tzinfo=timezone.utc))  # 10 days into June
    b = budgets({"budgets": [{"name": "m", "period": "month", "limit_usd": 30.0}]}, tmp_path, clock=clock)
    counters = [c for _, _, c in b._counters({})]
    now_ms = int(clock.now.timestamp() * 1000)
    b.store.reserve(counters, [10 * 10**9], "r", now_ms, now_ms + 1000)
    b.store.settle([c.key for c in counters], "r", [10 * 10**9], [10 * 10**9])  # $10 in 10 days
    (status,) = b.status()
    assert status.used_usd == 10 and status.burn_rate_usd_per_day == pytest.approx(1.0)
    assert status.projected_exhaustion is None  # $20 left at $1/day: lasts until the reset on 1 July
    clock.now = datetime(2025, 6, 6, 0, 0, tzinfo=timezone.utc)  # same spend after 5 days: $2/day
    (status,) = b.status()
    assert status.projected_exhaustion == datetime(2025, 6, 16, tzinfo=timezone.utc)


def test_cli_syncs_limits_and_reads_the_budget_view(tmp_path, monkeypatch):
    import json
    from datetime import timedelta

    import clickhouse_connect
    from typer.testing import CliRunner

    from otel_llmcost.cli import app

    dsn = f"chdb://{tmp_path / 'chdb'}"
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - {name: per-team, scope: team, period: day, limit_usd: 4}\n")
    monkeypatch.setenv("OTEL_LLMCOST_BUDGETS_FILE", str(path))
    runner = CliRunner()
    assert runner.invoke(app, ["migrate", "--dsn", dsn]).exit_code == 0
    client = clickhouse_connect.get_client(dsn=dsn)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [[now - timedelta(minutes=1), "search", 1.0], [now - timedelta(minutes=2), "", 5.0]]
    client.insert("otel.llm_calls", rows, column_names=["Timestamp", "Team", "CostTotal"])
    client.close()
    result = runner.invoke(app, ["budgets", "--dsn", dsn, "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)[0]["rows"]
    assert (row["budget"], row["scope"], row["used_usd"], row["limit_usd"]) == ("per-team", "team=search", 1.0, 4.0)
    assert row["used_share"] == 0.25
