"""Ladders (notify, downgrade, refuse at several thresholds), alert-only and token budgets,
session and tier scopes, the request-level soft warning, the budget span events, status
maths that never overflow, and an in-memory store that stays O(1) per call."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import pytest

import otel_llmcost as llmcost
from otel_llmcost import semconv
from otel_llmcost.budgets import BudgetConfig, BudgetExceeded, Budgets, MemoryStore, PlannedCall
from otel_llmcost.demo.fakes import openai_client
from tests.helpers.budgets import ACTUAL_MINI, ESTIMATE_4O, MESSAGES, Clock, budgets

LADDER = [
    {"at": 0.70, "action": "notify"},
    {"at": 0.85, "action": "downgrade", "downgrade_to": "gpt-4o-mini"},
    {"at": 0.95, "action": "refuse"},
]


def enforce(instrument, b):  # type: ignore[no-untyped-def]
    instrument(budgets=b, pricer=b.pricer)
    return b


def _create(client, model: str = "gpt-4o-mini"):  # type: ignore[no-untyped-def]
    return client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=20)


def _events(span):  # type: ignore[no-untyped-def]
    return [(e.name, e.attributes.get(semconv.BUDGET_THRESHOLD)) for e in span.events]


def test_the_usual_ladder_notifies_then_downgrades_then_refuses(instrument, otel, fake, tmp_path, caplog):
    # gpt-4o: estimate 480e-6, bills 210e-6; gpt-4o-mini: estimate 48e-6, bills 21e-6. Limit 1000e-6.
    b = budgets({"budgets": [{"name": "team", "scope": "team", "limit_usd": 1000e-6, "thresholds": LADDER}]}, tmp_path)
    enforce(instrument, b)
    client = openai_client(fake)
    caplog.set_level(logging.WARNING, logger="otel_llmcost")
    with llmcost.attributes(team="search"):
        _create(client, "gpt-4o")  # 0 + 480 = 48%: nothing
        _create(client, "gpt-4o")  # 210 + 480 = 69%: nothing
        _create(client, "gpt-4o")  # 420 + 480 = 90% > 85%: downgraded; 420 + 48 = 47%
        for _ in range(13):  # gpt-4o-mini from 441e-6 on, 21e-6 each: notify from 70%
            _create(client, "gpt-4o-mini")
        with pytest.raises(BudgetExceeded) as raised:
            for _ in range(20):
                _create(client, "gpt-4o-mini")
    assert raised.value.budget == "team" and raised.value.limit == pytest.approx(950e-6)
    spans = otel.spans()
    assert [r["json"]["model"] for r in fake.requests][:3] == ["gpt-4o", "gpt-4o", "gpt-4o-mini"]
    assert _events(spans[0]) == [] and _events(spans[1]) == []
    (downgraded,) = spans[2].events
    assert downgraded.name == semconv.EVENT_BUDGET_DOWNGRADED
    assert dict(downgraded.attributes) == {
        semconv.BUDGET_NAME: "team",
        semconv.BUDGET_SCOPE: "team",
        semconv.BUDGET_SCOPE_VALUE: "search",
        semconv.BUDGET_PERIOD: "month",
        semconv.BUDGET_ACTION: "downgrade",
        semconv.BUDGET_THRESHOLD: 0.85,
        semconv.BUDGET_USED_USD: pytest.approx(420e-6),
        semconv.BUDGET_LIMIT_USD: pytest.approx(1000e-6),
        semconv.BUDGET_DOWNGRADED_TO: "gpt-4o-mini",
    }
    notified = [s for s in spans if (semconv.EVENT_BUDGET_THRESHOLD_CROSSED, 0.7) in _events(s)]
    assert notified and all(s.attributes[semconv.BUDGET_ACTION] == "warn" for s in notified)
    refused = spans[-1]
    assert _events(refused) == [(semconv.EVENT_BUDGET_REFUSED, 0.95)]
    assert refused.attributes[semconv.ERROR_TYPE] == "BudgetExceeded"
    crossings = [r.getMessage() for r in caplog.records if "crossed" in r.getMessage()]
    assert crossings == ["otel-llmcost: budget 'team' (team=search) crossed 70% of its month limit"]  # once


def test_an_old_budgets_file_keeps_its_meaning(instrument, otel, fake, tmp_path):
    old = {
        "name": "b",
        "limit_usd": 100e-6,
        "soft_threshold": 0.6,
        "action": "downgrade",
        "downgrade_to": "gpt-4o-mini",
    }
    (budget,) = BudgetConfig.from_dict({"budgets": [old]}).budgets
    assert [(t.at, t.action, t.downgrade_to) for t in budget.ladder(0.8)] == [
        (0.6, "notify", None),
        (1.0, "downgrade", "gpt-4o-mini"),
        (1.0, "refuse", None),
    ]
    (plain,) = BudgetConfig.from_dict({"budgets": [{"name": "p", "limit_usd": 1}]}).budgets
    assert [(t.at, t.action) for t in plain.ladder(0.8)] == [(0.8, "notify"), (1.0, "refuse")]


def test_alert_only_budgets_never_refuse(instrument, otel, fake, tmp_path):
    b = budgets({"budgets": [{"name": "watch", "limit_usd": 50e-6, "action": "notify"}]}, tmp_path)
    enforce(instrument, b)
    client = openai_client(fake)
    for _ in range(5):  # 5 x 21e-6 = 105e-6: twice the limit, every call sent
        _create(client)
    assert len(fake.requests) == 5
    assert _events(otel.spans()[-1]) == [(semconv.EVENT_BUDGET_THRESHOLD_CROSSED, 1.0)]
    (status,) = b.status()
    assert status.used_usd == pytest.approx(5 * ACTUAL_MINI) and status.used_share > 2


def test_token_budgets_count_input_and_output_tokens(instrument, otel, fake, tmp_path):
    # Each call: estimate 8 + 20 = 28 tokens, bills 7 + 7 = 14.
    config = {"budgets": [{"name": "tok", "scope": "session", "period": "day", "limit_tokens": 60}]}
    b = enforce(instrument, budgets(config, tmp_path))
    client = openai_client(fake)
    with llmcost.attributes(session="s-1"):
        _create(client)  # 0 + 28
        _create(client)  # 14 + 28
        _create(client)  # 28 + 28 = 56 of 60: notify (80%)
        with pytest.raises(BudgetExceeded, match=r"used 42 of 60 tokens"):
            _create(client)  # 42 + 28 > 60
    with llmcost.attributes(session="s-2"):
        _create(client)  # another session, another counter
    (s1, s2) = b.status()
    assert (s1.scope_value, s1.used_tokens, s1.limit_tokens, s1.used_usd) == ("s-1", 42, 60, None)
    assert s2.used_tokens == 14
    event = otel.spans()[2].events[0]
    assert event.attributes[semconv.BUDGET_USED_TOKENS] == 28 and event.attributes[semconv.BUDGET_LIMIT_TOKENS] == 60
    assert semconv.BUDGET_USED_USD not in event.attributes


def test_tier_scope_and_the_tier_attribution_key(instrument, otel, fake, tmp_path):
    config = {"budgets": [{"name": "free", "scope": "tier", "match": "free", "limit_usd": 50e-6}]}
    enforce(instrument, budgets(config, tmp_path))
    client = openai_client(fake)
    with llmcost.attributes(tier="free", user="alice"):
        _create(client)
        with pytest.raises(BudgetExceeded, match="tier=free"):
            _create(client)
    with llmcost.attributes(tier="pro"):
        _create(client)  # the free tier's budget does not apply
    spans = otel.spans()
    assert spans[0].attributes[semconv.USER_TIER] == "free"
    assert spans[-1].attributes[semconv.USER_TIER] == "pro"
    assert spans[1].events[0].attributes[semconv.BUDGET_SCOPE_VALUE] == "free"


def test_request_soft_threshold_warns_without_refusing(instrument, otel, fake, tmp_path):
    enforce(instrument, budgets({"request": {"max_total_tokens": 30, "soft_threshold": 0.9}}, tmp_path))
    _create(openai_client(fake))  # 28 of 30 tokens: 93%
    ((name, attrs),) = [(e.name, dict(e.attributes)) for e in otel.only_span().events]
    assert name == semconv.EVENT_BUDGET_THRESHOLD_CROSSED
    assert attrs[semconv.BUDGET_PERIOD] == "request" and attrs[semconv.BUDGET_ACTION] == "notify"
    assert (attrs[semconv.BUDGET_USED_TOKENS], attrs[semconv.BUDGET_LIMIT_TOKENS]) == (28, 30)


def test_request_refusal_is_an_event_too(instrument, otel, fake, tmp_path):
    enforce(instrument, budgets({"request": {"max_cost_usd": 100e-6}}, tmp_path))
    with pytest.raises(BudgetExceeded):
        _create(openai_client(fake), "gpt-4o")
    (event,) = otel.only_span().events
    assert event.name == semconv.EVENT_BUDGET_REFUSED
    assert event.attributes[semconv.BUDGET_USED_USD] == pytest.approx(ESTIMATE_4O)


def test_hashed_users_are_the_scope_value(instrument, otel, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_LLMCOST_USER_HASH_KEY", "k")
    b = budgets({"budgets": [{"name": "u", "scope": "user", "limit_usd": 50e-6}]}, tmp_path)
    enforce(instrument, b)
    with llmcost.attributes(user="alice"), pytest.raises(BudgetExceeded):
        for _ in range(3):
            _create(openai_client(fake))
    value = otel.spans()[-1].events[0].attributes[semconv.BUDGET_SCOPE_VALUE]
    assert value != "alice" and len(value) == 16 and b.status()[0].scope_value == value


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "b", "limit_usd": 1, "limit_tokens": 5},
        {"name": "b"},
        {"name": "b", "limit_usd": 1, "thresholds": [{"at": 1.5, "action": "refuse"}]},
        {"name": "b", "limit_usd": 1, "thresholds": [{"at": 0.5, "action": "downgrade"}]},
        {"name": "b", "limit_usd": 1, "thresholds": [{"at": 0.5, "action": "explode"}]},
        {"name": "b", "limit_usd": 1, "action": "downgrade", "downgrade_to": "m", "thresholds": LADDER},
        {"name": "b", "limit_usd": 1, "soft_threshold": -3},
    ],
)
def test_config_rejects_inconsistent_ladders_and_limits(bad):
    with pytest.raises(ValueError):
        BudgetConfig.from_dict({"budgets": [bad]})


# --- status maths and the store's cost per call ----------------------------------------------


def test_status_never_overflows_with_tiny_spend_late_in_the_period(tmp_path):
    clock = Clock(datetime(2025, 6, 30, 23, 0, tzinfo=timezone.utc))
    b = budgets({"budgets": [{"name": "m", "limit_usd": 1e9}]}, tmp_path, clock=clock)
    counters = [c for _, _, c in b._counters({})]
    now_ms = int(clock.now.timestamp() * 1000)
    b.store.reserve(counters, [1], "r", now_ms, now_ms + 1000)
    b.store.settle([c.key for c in counters], "r", [1], [1])  # one nano-USD in 30 days
    (status,) = b.status()  # was: OverflowError "Python int too large to convert to C int"
    assert status.projected_exhaustion is None and status.used_usd == 1e-9


def _check_us(b: Budgets, users: list[str]) -> float:
    start = time.perf_counter()
    for user in users:
        planned = PlannedCall("gpt-4o-mini", 20, {semconv.USER: user}, lambda model: 8)
        b.check(planned).reservation.commit(21e-6)  # type: ignore[union-attr]
    return (time.perf_counter() - start) / len(users)


def test_memory_store_cost_per_call_does_not_grow_with_its_counters(tmp_path):
    b = budgets({"budgets": [{"name": "u", "scope": "user", "limit_usd": 1}]}, tmp_path)
    assert isinstance(b.store, MemoryStore)
    small = min(_check_us(b, [f"s{i % 100}" for i in range(2_000)]) for _ in range(3))
    _check_us(b, [f"u{i}" for i in range(30_000)])  # 30 000 counters: above the old scan's 10 000
    large = min(_check_us(b, [f"u{i % 30_000}" for i in range(2_000)]) for _ in range(3))
    assert large < 3 * small, (small, large)  # was ~100x: every call scanned every counter


def test_memory_store_drops_expired_counters(tmp_path):
    clock = Clock()
    b = budgets({"budgets": [{"name": "u", "scope": "user", "period": "day", "limit_usd": 1}]}, tmp_path, clock=clock)
    for user in ("a", "b"):
        b.check(PlannedCall("gpt-4o-mini", 20, {semconv.USER: user}, lambda m: 8)).reservation.commit(1e-6)  # type: ignore[union-attr]
    clock.now = datetime(2025, 6, 14, tzinfo=timezone.utc)  # past the day and its day of grace
    b.check(PlannedCall("gpt-4o-mini", 20, {semconv.USER: "c"}, lambda m: 8))
    assert [k.rsplit(":", 1)[1] for k in b.store.keys("")] == ["c"]
