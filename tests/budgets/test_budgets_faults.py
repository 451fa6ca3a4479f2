"""Budgets when Redis fails: a real redis-server stopped, SIGKILLed or paused (SIGSTOP),
through the real openai SDK. What the app sees (the exception, or the reply, and how long
it waited) and what the span records, for fail-open and fail-closed; the circuit breaker's
log lines; async callers with a hung Redis never block the event loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from otel_llmcost import semconv
from otel_llmcost.budgets import BudgetConfig, BudgetExceeded, Budgets, BudgetStoreUnavailable
from tests.budgets.redis_server import RedisServer
from tests.helpers.budgets import MESSAGES, SlowFake, pricer

pytest.importorskip("redis")

TIMEOUT_MS = 150
SLACK_S = 0.6  # scheduling on a loaded 2-core runner; a hung redis-py 8 default is 5 s per call
FAULTS = ("stopped", "killed", "paused")


@pytest.fixture
def server(tmp_path):  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path)
    yield server
    server.close()


def _budgets(server: RedisServer, tmp_path, *, fail_open: bool, **settings: object) -> Budgets:  # type: ignore[no-untyped-def]
    config = {
        "store": server.url,
        "fail_open": fail_open,
        "store_timeout_ms": TIMEOUT_MS,
        "store_connect_timeout_ms": TIMEOUT_MS,
        "budgets": [{"name": "per-user", "scope": "user", "limit_usd": 1.0}],
        **settings,
    }
    return Budgets(BudgetConfig.from_dict(config), pricer=pricer(tmp_path))


def _call(client) -> tuple[str, float]:  # type: ignore[no-untyped-def]
    import otel_llmcost as llmcost

    start = time.perf_counter()
    try:
        with llmcost.attributes(user="alice"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        outcome = "sent"
    except BudgetExceeded as exc:
        outcome = type(exc).__name__
    return outcome, time.perf_counter() - start


def _events(span) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.name for e in span.events]


@pytest.mark.parametrize("fault", FAULTS)
def test_fail_closed_refuses_and_records_the_refusal(instrument, otel, fake, server, tmp_path, fault):
    b = _budgets(server, tmp_path, fail_open=False)
    instrument(budgets=b, pricer=b.pricer)
    client = SlowFake(fake, delay_s=0).sync_client()
    assert _call(client)[0] == "sent"  # a pooled connection exists when the fault hits
    server.fault(fault)
    with pytest.raises(BudgetStoreUnavailable, match="store is unavailable.*not sent") as raised:
        import otel_llmcost as llmcost

        with llmcost.attributes(user="alice"):
            start = time.perf_counter()
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    elapsed = time.perf_counter() - start
    assert isinstance(raised.value, BudgetExceeded) and raised.value.budget == "per-user"
    assert elapsed < TIMEOUT_MS / 1000 + SLACK_S
    assert len(fake.requests) == 1  # the refused call was never sent
    span = otel.spans()[-1]
    assert span.attributes[semconv.ERROR_TYPE] == "BudgetStoreUnavailable"
    assert span.attributes[semconv.BUDGET_ACTION] == "raise"
    assert span.status.status_code.name == "ERROR"
    (event,) = span.events
    assert event.name == semconv.EVENT_BUDGET_REFUSED
    assert event.attributes[semconv.BUDGET_SCOPE_VALUE] == "alice"
    assert event.attributes[semconv.BUDGET_ACTION] == "refuse"


@pytest.mark.parametrize("fault", FAULTS)
def test_fail_open_sends_and_records_that_the_budget_was_not_checked(instrument, otel, fake, server, tmp_path, fault):
    b = _budgets(server, tmp_path, fail_open=True)
    instrument(budgets=b, pricer=b.pricer)
    client = SlowFake(fake, delay_s=0).sync_client()
    _call(client)
    server.fault(fault)
    outcome, elapsed = _call(client)
    assert outcome == "sent" and len(fake.requests) == 2
    assert elapsed < TIMEOUT_MS / 1000 + SLACK_S
    span = otel.spans()[-1]
    assert _events(span) == [semconv.EVENT_BUDGET_UNCHECKED]
    assert span.events[0].attributes[semconv.BUDGET_NAME] == "per-user"
    assert span.attributes[semconv.BUDGET_ACTION] == "unchecked"
    assert span.attributes[semconv.COST_TOTAL] > 0  # the call is recorded, cost and all
    assert semconv.ERROR_TYPE not in span.attributes


def test_breaker_skips_a_hung_store_and_logs_one_warning_per_state_change(
    instrument, otel, fake, server, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="otel_llmcost")
    b = _budgets(server, tmp_path, fail_open=True, breaker_failures=3, breaker_cooldown_s=0.5)
    instrument(budgets=b, pricer=b.pricer)
    client = SlowFake(fake, delay_s=0).sync_client()
    _call(client)
    server.pause()
    timings = [_call(client)[1] for _ in range(10)]
    # Three calls wait for the timeout, then the breaker opens and the rest skip the store.
    assert all(t >= TIMEOUT_MS / 1000 * 0.9 for t in timings[:3]), timings
    assert sum(timings[3:]) < 0.5, timings
    server.resume()
    time.sleep(0.6)  # the cool-down passes: the next call tries the store again
    assert _call(client)[0] == "sent"
    assert _events(otel.spans()[-1]) == []  # checked again
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(";")[0] for r in warnings] == [
        "otel-llmcost: the budget store failed 3 times in a row (TimeoutError: Timeout reading from socket)",
        "otel-llmcost: the budget store is reachable again",
    ]
    assert "calls are sent unchecked" in warnings[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records if r.name.startswith("otel_llmcost"))  # no tracebacks


def test_async_calls_with_a_hung_store_never_block_the_event_loop(instrument, otel, fake, server, tmp_path):
    b = _budgets(server, tmp_path, fail_open=True)
    instrument(budgets=b, pricer=b.pricer)
    client = SlowFake(fake, delay_s=0).async_client()

    async def main() -> tuple[float, int, list[str]]:
        import otel_llmcost as llmcost

        with llmcost.attributes(user="alice"):
            return await calls()

    async def calls() -> tuple[float, int, list[str]]:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        server.pause()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        start = time.perf_counter()
        replies = await asyncio.gather(
            *(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20) for _ in range(3))
        )
        elapsed = time.perf_counter() - start
        task.cancel()
        return elapsed, ticks, [r.model for r in replies]

    elapsed, ticks, models = asyncio.run(main())
    assert len(models) == 3
    assert elapsed < TIMEOUT_MS / 1000 + SLACK_S  # concurrent: one timeout, not three in a row
    assert ticks >= 0.3 * elapsed / 0.01  # the loop kept running while the store hung
    assert [_events(s) for s in otel.spans()[1:]] == [[semconv.EVENT_BUDGET_UNCHECKED]] * 3


def test_async_fail_closed_refuses_without_sending(instrument, otel, fake, server, tmp_path):
    b = _budgets(server, tmp_path, fail_open=False)
    instrument(budgets=b, pricer=b.pricer)
    client = SlowFake(fake, delay_s=0).async_client()
    server.kill()

    async def main() -> None:
        import otel_llmcost as llmcost

        with llmcost.attributes(user="alice"):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)

    with pytest.raises(BudgetStoreUnavailable):
        asyncio.run(main())
    assert fake.requests == []
    assert otel.only_span().attributes[semconv.ERROR_TYPE] == "BudgetStoreUnavailable"


def test_async_calls_reserve_and_settle_on_a_healthy_store(instrument, fake, server, tmp_path):
    b = _budgets(server, tmp_path, fail_open=False)
    instrument(budgets=b, pricer=b.pricer)
    client = SlowFake(fake, delay_s=0).async_client()

    async def main() -> None:
        import otel_llmcost as llmcost

        with llmcost.attributes(user="alice"):
            await asyncio.gather(
                *(
                    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
                    for _ in range(5)
                )
            )

    asyncio.run(main())
    asyncio.run(main())  # a second event loop gets its own asyncio client
    (status,) = b.status()
    assert status.used_usd == pytest.approx(10 * 21e-6) and status.reserved_usd == 0
