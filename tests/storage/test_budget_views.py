"""Budgets in ClickHouse (008_budgets.sql, 012_budget_events.sql) on chdb, against hand-computed
expectations: the current period computed from now(), burn rate and projected exhaustion,
headroom, token budgets, the partitions `v_budget_status` reads, the budget events the
materialized view extracts, and the alert rules' SQL (dashboards/provisioning/alerting/budgets.yaml).

`v_budget_status` sums over every budget and scope, so each test has its own database.
Times are relative to now(): the view reads the clock, and a test's rows are written a few
milliseconds before it queries, hence the tolerances of a few seconds.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import yaml

from otel_llmcost.budgets.periods import period_bounds
from otel_llmcost.reporting import grafana_macros as gm
from otel_llmcost.reporting import reports
from tests.helpers.budget_rows import budget_event, call_span, insert_limits, limit_row, utc
from tests.helpers.chdb import insert_spans, q
from tests.helpers.paths import DASHBOARDS

# Calls up to 400 days old: beyond the default 180-day TTL.
pytestmark = pytest.mark.chdb(ttl_days=3650)

SVC = "budget-svc"
DAY = dt.timedelta(days=1)
RULES = {
    rule["uid"]: rule
    for group in yaml.safe_load((DASHBOARDS / "provisioning/alerting/budgets.yaml").read_text())["groups"]
    for rule in group["rules"]
}


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def status(client, where: str = "1") -> dict[tuple[str, str], dict]:
    result = client.query(f"SELECT * FROM otel.v_budget_status WHERE {where}")
    return {(r[0], r[2]): dict(zip(result.column_names, r, strict=True)) for r in result.result_rows}


def alert_rows(client, uid: str) -> list[tuple]:
    sql = RULES[uid]["data"][0]["model"]["rawSql"]
    now = now_utc()
    span = RULES[uid]["data"][0]["relativeTimeRange"]
    time_range = gm.TimeRange(now - dt.timedelta(seconds=span["from"]), now)
    client.command("USE otel")  # the data source's defaultDatabase
    return sorted(q(client, gm.expand(sql, time_range=time_range)))


def aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


# --- burn rate, exhaustion, headroom ------------------------------------------------------


def test_ten_dollars_a_day_with_seven_fifty_spent_at_noon(chdb_client):
    """$10/day, period started 12 h ago, $7.50 spent: burn 7.50 / 0.5 day = $15/day; the
    $2.50 left lasts 2.50 / 15 day = 4 h, before the period ends in 12 h; the rate projects
    $15 for the day; headroom $2.50 (25%)."""
    now = now_utc()
    insert_limits(
        chdb_client, [limit_row("daily", 10.0, now - 12 * dt.timedelta(hours=1), now + 12 * dt.timedelta(hours=1))]
    )
    insert_spans(chdb_client, [call_span(now - dt.timedelta(hours=h), 2.50, service=SVC) for h in (11, 6, 1)])
    row = status(chdb_client)[("daily", "")]
    assert (row["Scope"], row["Period"], row["Calls"]) == ("global", "day", 3)
    assert row["UsedUsd"] == pytest.approx(7.50)
    assert row["UsedShare"] == pytest.approx(0.75) and row["LimitShare"] == pytest.approx(0.75)
    assert row["BurnRateUsdPerDay"] == pytest.approx(15.0, rel=1e-4)
    assert row["ProjectedUsdAtPeriodEnd"] == pytest.approx(15.0, rel=1e-4)
    assert row["HeadroomUsd"] == pytest.approx(2.50) and row["HeadroomShare"] == pytest.approx(0.25)
    assert abs(aware(row["ProjectedExhaustion"]) - (now + dt.timedelta(hours=4))) < dt.timedelta(seconds=10)
    assert row["UsedTokens"] == 3 * 1100 and row["LimitTokens"] == 0 and row["UsedTokenShare"] is None


def test_per_user_budget_counts_each_user_and_skips_calls_without_one(chdb_client):
    """$2/day per user, 6 h into the period: alice 1.90 (95%, burn 7.60/day, out in 0.10/7.60
    day = 18.9 min), bob 0.20 (10%, burn 0.80/day: his 1.80 lasts 2.25 days, past the
    period: no exhaustion); a call with no user is not counted."""
    now = now_utc()
    insert_limits(
        chdb_client,
        [limit_row("per-user", 2.0, now - dt.timedelta(hours=6), now + dt.timedelta(hours=18), scope="user")],
    )
    insert_spans(
        chdb_client,
        [
            call_span(now - dt.timedelta(hours=5), 1.00, service=SVC, user="alice"),
            call_span(now - dt.timedelta(hours=1), 0.90, service=SVC, user="alice"),
            call_span(now - dt.timedelta(hours=2), 0.20, service=SVC, user="bob"),
            call_span(now - dt.timedelta(hours=2), 5.00, service=SVC),
        ],
    )
    rows = status(chdb_client)
    assert set(rows) == {("per-user", "alice"), ("per-user", "bob")}
    alice, bob = rows[("per-user", "alice")], rows[("per-user", "bob")]
    assert alice["UsedShare"] == pytest.approx(0.95) and alice["BurnRateUsdPerDay"] == pytest.approx(7.60, rel=1e-4)
    expected = now + dt.timedelta(days=0.10 / 7.60)
    assert abs(aware(alice["ProjectedExhaustion"]) - expected) < dt.timedelta(seconds=10)
    assert bob["UsedShare"] == pytest.approx(0.10) and bob["BurnRateUsdPerDay"] == pytest.approx(0.80, rel=1e-4)
    assert bob["ProjectedExhaustion"] is None and bob["HeadroomUsd"] == pytest.approx(1.80)


def test_spent_budget_is_exhausted_now_and_token_budget_has_no_usd_projection(chdb_client):
    """Over its $1 limit: exhausted now, negative headroom. A token budget (40 000 tokens, no
    USD limit) at 3 x 11 000 = 33 000 tokens: 82.5%, no USD share, headroom 7 000 tokens."""
    now = now_utc()
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(hours=23)
    insert_limits(
        chdb_client,
        [
            limit_row("small", 1.0, start, end, scope="feature", match="search"),
            limit_row("tokens", 0.0, start, end, scope="feature", match="chat", limit_tokens=40_000),
        ],
    )
    insert_spans(
        chdb_client,
        [call_span(now - dt.timedelta(minutes=30), 1.25, service=SVC, feature="search")]
        + [
            call_span(
                now - dt.timedelta(minutes=m),
                0.01,
                service=SVC,
                feature="chat",
                input_tokens=10_000,
                output_tokens=1_000,
            )
            for m in (40, 20, 10)
        ],
    )
    rows = status(chdb_client)
    assert set(rows) == {("small", "search"), ("tokens", "chat")}
    small = rows[("small", "search")]
    assert abs(aware(small["ProjectedExhaustion"]) - now) < dt.timedelta(seconds=10)
    assert small["HeadroomUsd"] == pytest.approx(-0.25) and small["LimitShare"] == pytest.approx(1.25)
    tokens = rows[("tokens", "chat")]
    assert (tokens["UsedTokens"], tokens["LimitTokens"], tokens["HeadroomTokens"]) == (33_000, 40_000, 7_000)
    assert tokens["UsedTokenShare"] == pytest.approx(0.825) and tokens["LimitShare"] == pytest.approx(0.825)
    assert tokens["UsedShare"] is None and tokens["HeadroomUsd"] is None and tokens["ProjectedExhaustion"] is None


def test_quiet_budget_far_from_its_limit_fires_no_alert(chdb_client):
    """$100 a month, $1 spent in the day since it started: 1%, burn $1/day, the $99 left
    lasts 99 days, past the period's end in 29 days: no exhaustion, no alert, no events."""
    now = now_utc()
    insert_limits(chdb_client, [limit_row("monthly", 100.0, now - DAY, now + 29 * DAY, period="month")])
    insert_spans(chdb_client, [call_span(now - dt.timedelta(hours=3), 1.00, service=SVC)])
    row = status(chdb_client)[("monthly", "")]
    assert row["UsedShare"] == pytest.approx(0.01) and row["BurnRateUsdPerDay"] == pytest.approx(1.0, rel=1e-4)
    assert row["ProjectedExhaustion"] is None and row["ProjectedUsdAtPeriodEnd"] == pytest.approx(30.0, rel=1e-4)
    for uid in RULES:
        assert alert_rows(chdb_client, uid) == [], uid
    assert q(chdb_client, "SELECT count() FROM otel.v_budget_events") == [(0,)]


def test_alert_rules_fire_at_70_85_and_95_percent(chdb_client):
    """Four feature budgets of $10/day at 72%, 88%, 97% and 10%: notify fires for the first
    three, downgrade for 88% and 97%, refuse for 97% only, nothing for 10%; the value is the
    share. Unchecked calls: two in the last 10 minutes on one service, one older ignored."""
    now = now_utc()
    start, end = now - dt.timedelta(hours=2), now + dt.timedelta(hours=22)
    spend = {"a": 7.20, "b": 8.80, "c": 9.70, "d": 1.00}
    insert_limits(chdb_client, [limit_row(f"f-{k}", 10.0, start, end, scope="feature", match=k) for k in spend])
    rows = [call_span(now - dt.timedelta(hours=1), usd, service=SVC, feature=k) for k, usd in spend.items()]
    unchecked = [budget_event("unchecked", name="f-a", scope="feature", scope_value="a", period="day")]
    rows += [
        call_span(now - dt.timedelta(minutes=m), 0.0, service="api", feature="x", events=unchecked) for m in (2, 5, 30)
    ]
    insert_spans(chdb_client, rows)
    shares = {("f-a", "a"): 0.72, ("f-b", "b"): 0.88, ("f-c", "c"): 0.97}
    for uid, keys in (
        ("llmcost-budget-notify", ["f-a", "f-b", "f-c"]),
        ("llmcost-budget-downgrade", ["f-b", "f-c"]),
        ("llmcost-budget-refuse", ["f-c"]),
    ):
        fired = alert_rows(chdb_client, uid)
        assert [r[0] for r in fired] == keys, uid
        for budget, scope, value, period, share in fired:
            assert (scope, period) == ("feature", "day")
            assert share == pytest.approx(shares[(budget, value)])
    assert alert_rows(chdb_client, "llmcost-budget-unchecked") == [("api", 2)]


# --- the current period, from now() -------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/Bogota", "Pacific/Kiritimati"])
@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_a_stale_period_rolls_forward_to_the_current_one(chdb_client, tz, period):
    """Synced in 2024 (zones without DST): the view's period is the one period_bounds gives
    for now, as `otel-llmcost budgets --sync` would write today."""
    zone = ZoneInfo(tz)
    old_start, old_end, _ = period_bounds(period, dt.datetime(2024, 3, 14, 12, tzinfo=dt.timezone.utc), zone)
    insert_limits(chdb_client, [limit_row("b", 5.0, old_start, old_end, period=period, tz=tz)])
    ((start, end),) = q(chdb_client, "SELECT PeriodStart, PeriodEnd FROM otel.v_budget_periods")
    now = now_utc()
    expected_start, expected_end, _ = period_bounds(period, now, zone)
    assert (aware(start), aware(end)) == (expected_start, expected_end)


def test_a_current_synced_period_is_used_as_written(chdb_client):
    now = now_utc()
    start, end = now - dt.timedelta(hours=3, minutes=7), now + dt.timedelta(hours=5)
    insert_limits(chdb_client, [limit_row("b", 5.0, start, end, tz="Europe/Berlin")])
    ((got_start, got_end),) = q(chdb_client, "SELECT PeriodStart, PeriodEnd FROM otel.v_budget_periods")
    assert (got_start, got_end) == (utc(start).replace(microsecond=utc(start).microsecond // 1000 * 1000),
                                    utc(end).replace(microsecond=utc(end).microsecond // 1000 * 1000))  # fmt: skip


def test_latest_sync_of_a_budget_wins(chdb_client):
    now = now_utc()
    insert_limits(
        chdb_client,
        [
            limit_row("b", 5.0, now - DAY, now + DAY, synced=now - dt.timedelta(hours=1)),
            limit_row("b", 8.0, now - DAY, now + DAY, synced=now),
        ],
    )
    assert q(chdb_client, "SELECT Budget, LimitUsd FROM otel.v_budget_periods") == [("b", 8.0)]


# --- bounded reads -----------------------------------------------------------------------------


def test_status_reads_only_the_partitions_of_the_current_periods(chdb_client):
    """90 days of old calls (one partition a day, 100 rows each) beside today's: the plan
    selects only today's parts of llm_calls, and the query runs within a row budget smaller
    than the old rows, which a full scan would exceed."""
    now = now_utc()
    insert_limits(chdb_client, [limit_row("daily", 10.0, now - dt.timedelta(hours=2), now + dt.timedelta(hours=22))])
    chdb_client.command(
        "INSERT INTO otel.llm_calls (Timestamp, ServiceName, CostTotal) "
        "SELECT now64(9) - toIntervalDay(2 + intDiv(number, 100)), 'old', 1.0 FROM numbers(9000)"
    )
    insert_spans(chdb_client, [call_span(now - dt.timedelta(hours=1), 0.5, service=SVC) for _ in range(4)])
    plan = "\n".join(r[0] for r in q(chdb_client, "EXPLAIN indexes = 1 SELECT * FROM otel.v_budget_status"))
    calls = plan[plan.index("ReadFromMergeTree (otel.llm_calls)") :]
    minmax = re.search(r"Min-Max.*?Parts: (\d+)/(\d+)", calls, re.S)
    assert minmax, calls[:2000]
    selected, total = int(minmax.group(1)), int(minmax.group(2))
    assert total >= 90 and selected <= 2, (selected, total)
    rows = chdb_client.query(
        "SELECT Budget, UsedUsd, Calls FROM otel.v_budget_status",
        settings={"max_rows_to_read": 1000, "read_overflow_mode": "throw"},
    ).result_rows
    assert rows == [("daily", pytest.approx(2.0), 4)]


# --- budget events ---------------------------------------------------------------------------


def test_budget_events_are_extracted_typed_with_the_spans_attribution(chdb_client):
    now = now_utc()
    events = [
        budget_event("threshold_crossed", name="per-user", scope="user", scope_value="h-alice", period="day",
                     threshold=0.85, action="downgrade", used_usd=1.70, limit_usd=2),
        budget_event("downgraded", name="per-user", scope="user", scope_value="h-alice", period="day",
                     threshold=0.85, action="downgrade", used_usd=1.70, limit_usd=2, downgraded_to="gpt-4o-mini"),
        ("llmcost.limiter.decision", {"llmcost.limiter.action": "allowed"}),
        ("exception", {"exception.type": "ValueError"}),
    ]  # fmt: skip
    row = call_span(now - dt.timedelta(minutes=5), 0.01, service=SVC, events=events, model="gpt-4o-mini",
                    user="h-alice", feature="chat", team="growth", endpoint="POST /chat")  # fmt: skip
    row_attrs = row[11]
    row_attrs["llmcost.budget.original_model"] = "gpt-4o"
    refused = call_span(now - dt.timedelta(minutes=1), 0.0, service=SVC, user="h-bob", events=[
        budget_event("refused", name="tokens", scope="team", scope_value="growth", period="week", threshold=0.95,
                     action="refuse", used_tokens=39_000, limit_tokens=40_000, used_usd="nan", limit_usd="oops"),
    ])  # fmt: skip
    unchecked = call_span(now - dt.timedelta(minutes=3), 0.0, service="api", events=[budget_event("unchecked")])
    insert_spans(chdb_client, [row, refused, unchecked, call_span(now, 0.02, service=SVC)])
    result = chdb_client.query("SELECT * FROM otel.v_budget_events")
    got = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
    assert [(e["Kind"], e["ServiceName"]) for e in got] == [
        ("refused", SVC),
        ("unchecked", "api"),
        ("downgraded", SVC),
        ("threshold_crossed", SVC),
    ]
    refused_row, unchecked_row, downgraded, crossed = got
    assert crossed["Event"] == "llmcost.budget.threshold_crossed"
    assert (crossed["Budget"], crossed["Scope"], crossed["ScopeValue"], crossed["Period"]) == (
        "per-user",
        "user",
        "h-alice",
        "day",
    )
    assert (crossed["Threshold"], crossed["Action"], crossed["UsedUsd"], crossed["LimitUsd"]) == (
        0.85,
        "downgrade",
        1.70,
        2.0,
    )
    assert crossed["UsedShare"] == pytest.approx(0.85) and crossed["DowngradedTo"] == ""
    assert (downgraded["DowngradedTo"], downgraded["Model"]) == ("gpt-4o-mini", "gpt-4o")
    assert (downgraded["Endpoint"], downgraded["Feature"], downgraded["Team"], downgraded["User"]) == (
        "POST /chat", "chat", "growth", "h-alice")  # fmt: skip
    assert downgraded["TraceId"] == row[1] and downgraded["SpanId"] == row[2]
    assert (refused_row["UsedTokens"], refused_row["LimitTokens"]) == (39_000, 40_000)
    assert refused_row["UsedTokenShare"] == pytest.approx(0.975)
    assert (refused_row["UsedUsd"], refused_row["LimitUsd"], refused_row["UsedShare"]) == (None, None, None)
    assert (unchecked_row["Budget"], unchecked_row["Threshold"], unchecked_row["Model"]) == ("", None, "gpt-4o")


def test_report_budget_status_still_reads_the_view(chdb_client):
    now = now_utc()
    insert_limits(chdb_client, [limit_row("daily", 10.0, now - dt.timedelta(hours=12), now + dt.timedelta(hours=12))])
    insert_spans(chdb_client, [call_span(now - dt.timedelta(hours=1), 7.5, service=SVC)])
    result = reports.run(chdb_client, "budget_status", database="otel", limit=10)
    rows = result.rows if hasattr(result, "rows") else result
    assert len(rows) == 1
