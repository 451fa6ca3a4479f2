"""Budgets against a real redis-server: atomic counters shared by processes, caps that hold
under 50 concurrent callers (threads and asyncio, the real openai SDK), no leaked
reservations on failures or cancellation, and periods that reset on a frozen clock."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

import otel_llmcost as llmcost
from otel_llmcost import semconv
from otel_llmcost.budgets import BudgetExceeded, Counter, RedisStore
from otel_llmcost.demo.fakes import Reply
from tests.helpers.binaries import require_binary
from tests.helpers.budgets import ACTUAL_MINI, ESTIMATE_MINI, MESSAGES, Clock, SlowFake, budgets

redis = pytest.importorskip("redis")

CALLERS = 50
LIMIT = 500e-6  # room for 10 reservations of 48e-6 at once; 50 callers would spend 1050e-6 unchecked


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):  # type: ignore[no-untyped-def]
    binary = require_binary("redis-server")
    workdir = tmp_path_factory.mktemp("redis")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def store(redis_url):  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return RedisStore(client)


def _enforce(instrument, b):  # type: ignore[no-untyped-def]
    instrument(budgets=b, pricer=b.pricer)
    return b


def _totals(b) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    (status,) = b.status()
    return status.used_usd, status.reserved_usd


def _span_spend(otel) -> float:  # type: ignore[no-untyped-def]
    return sum(s.attributes.get(semconv.COST_TOTAL, 0.0) for s in otel.spans())


# --- the store itself, from several processes --------------------------------------------

_WORKER = """
import sys
from otel_llmcost.budgets import Counter, RedisStore
url, worker, rounds, amount, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
store = RedisStore(url)
counter = Counter("llmcost:{budgets}:mp:2025-06:", limit, 3600)
store.client.incr("barrier")
while int(store.client.get("barrier")) < int(sys.argv[6]):  # start together, so the processes overlap
    pass
granted = 0
for i in range(rounds):
    lease = f"{worker}-{i}"
    if store.reserve([counter], [amount], lease, 0, 10**15)[0] == 0:
        store.settle([counter.key], lease, [amount], [amount])
        granted += 1
print(granted)
"""


def _run_workers(redis_url: str, workers: int, rounds: int, amount: int, limit: int) -> list[int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, str(w), str(rounds), str(amount), str(limit), str(workers)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for w in range(workers)
    ]
    return [int(p.communicate(timeout=60)[0]) for p in processes]


def test_concurrent_increments_from_several_processes_lose_no_update(store, redis_url):
    granted = _run_workers(redis_url, workers=4, rounds=500, amount=1_000, limit=10**12)
    used, reserved = store.read("llmcost:{budgets}:mp:2025-06:", 0)
    assert granted == [500] * 4
    assert (used, reserved) == (4 * 500 * 1_000, 0)


def test_processes_racing_for_a_cap_get_exactly_what_fits(store, redis_url):
    granted = _run_workers(redis_url, workers=4, rounds=100, amount=1_000, limit=150 * 1_000)
    assert sum(granted) == 150  # 100 rounds each: at least two processes shared the cap
    assert store.read("llmcost:{budgets}:mp:2025-06:", 0) == (150 * 1_000, 0)


def test_reserve_is_all_or_nothing_across_budgets(store):
    roomy = Counter("llmcost:{budgets}:a:p:", 1_000, 60)
    tight = Counter("llmcost:{budgets}:b:p:", 10, 60)
    failed, used, reserved = store.reserve([roomy, tight], [50, 50], "x", 0, 10_000)
    assert failed == 2 and used == [0, 0] and reserved == [0, 0]
    assert store.read(roomy.key, 0) == (0, 0)


def test_expired_leases_are_dropped_and_never_released_twice(store):
    counter = Counter("llmcost:{budgets}:lease:p:", 100, 60)
    assert store.reserve([counter], [100], "dead", 0, 1_000)[0] == 0
    assert store.reserve([counter], [100], "next", 999, 2_000)[0] == 1
    assert store.reserve([counter], [100], "next", 1_000, 2_000)[0] == 0  # the dead lease expired
    store.settle([counter.key], "dead", [100], None)  # a late release of the expired lease: no effect
    assert store.read(counter.key, 1_500) == (0, 100)


def test_counters_expire_after_their_period(store, tmp_path):
    b = budgets({"budgets": [{"name": "d", "period": "day", "limit_usd": 1}]}, tmp_path, store=store)
    ((_, _, counter),) = b._counters({})
    store.reserve([counter], [1], "m", 0, 10)
    assert 86_400 < store.client.ttl(counter.key) <= 2 * 86_400  # the rest of today plus a day of grace


# --- 50 concurrent callers through the real SDK -------------------------------------------


def test_threads_never_spend_past_the_cap(instrument, otel, fake, store, tmp_path):
    b = _enforce(instrument, budgets({"budgets": [{"name": "cap", "limit_usd": LIMIT}]}, tmp_path, store=store))
    client = SlowFake(fake).sync_client()

    def call(_: int) -> bool:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
            return True
        except BudgetExceeded:
            return False

    with ThreadPoolExecutor(CALLERS) as pool:
        outcomes = list(pool.map(call, range(CALLERS)))
    used, reserved = _totals(b)
    succeeded = sum(outcomes)
    # Estimates are upper bounds here (max_tokens set, OpenAI tokenizer): the bound is 0.
    assert used <= LIMIT and reserved == 0
    assert used == pytest.approx(succeeded * ACTUAL_MINI) == pytest.approx(_span_spend(otel))
    assert succeeded >= int(LIMIT // ESTIMATE_MINI) and succeeded < CALLERS
    assert len(fake.requests) == succeeded


def test_asyncio_callers_never_spend_past_the_cap(instrument, otel, fake, store, tmp_path):
    b = _enforce(instrument, budgets({"budgets": [{"name": "cap", "limit_usd": LIMIT}]}, tmp_path, store=store))
    client = SlowFake(fake).async_client()

    async def call() -> bool:
        try:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
            return True
        except BudgetExceeded:
            return False

    async def main() -> list[bool]:
        return await asyncio.gather(*(call() for _ in range(CALLERS)))

    succeeded = sum(asyncio.run(main()))
    used, reserved = _totals(b)
    assert used <= LIMIT and reserved == 0
    assert used == pytest.approx(succeeded * ACTUAL_MINI) == pytest.approx(_span_spend(otel))
    assert int(LIMIT // ESTIMATE_MINI) <= succeeded < CALLERS


def test_underestimates_overshoot_by_at_most_the_calls_in_flight(instrument, otel, fake, store, tmp_path):
    # Every call bills 100 more output tokens than its max_tokens promised (a provider that
    # ignores it, or another tokenizer): the documented bound is in-flight calls x excess.
    excess = 100 * 2e-6
    usage = {"prompt_tokens": 7, "completion_tokens": 120, "total_tokens": 127}
    fake.enqueue(*[Reply(usage=usage) for _ in range(CALLERS)])
    b = _enforce(instrument, budgets({"budgets": [{"name": "cap", "limit_usd": LIMIT}]}, tmp_path, store=store))
    client = SlowFake(fake).sync_client()

    def call(_: int) -> None:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        except BudgetExceeded:
            pass

    with ThreadPoolExecutor(CALLERS) as pool:
        list(pool.map(call, range(CALLERS)))
    used, reserved = _totals(b)
    max_in_flight = int(LIMIT // ESTIMATE_MINI)
    assert reserved == 0
    assert LIMIT < used <= LIMIT + max_in_flight * excess


def test_failed_calls_leak_no_reservation(instrument, fake, store, tmp_path):
    b = _enforce(instrument, budgets({"budgets": [{"name": "cap", "limit_usd": LIMIT}]}, tmp_path, store=store))
    fake.enqueue(*[Reply(status=500) for _ in range(CALLERS)])
    client = SlowFake(fake, delay_s=0.01).sync_client(max_retries=0)

    def call(_: int) -> str:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
            return "ok"
        except BudgetExceeded:
            return "refused"
        except Exception:
            return "failed"

    with ThreadPoolExecutor(CALLERS) as pool:
        outcomes = list(pool.map(call, range(CALLERS)))
    assert "failed" in outcomes and "ok" not in outcomes
    assert _totals(b) == (0, 0)


FULL_RESERVATION = int(LIMIT // ESTIMATE_MINI) * ESTIMATE_MINI


def test_cancelled_calls_leak_no_reservation(instrument, fake, store, tmp_path):
    b = _enforce(instrument, budgets({"budgets": [{"name": "cap", "limit_usd": LIMIT}]}, tmp_path, store=store))
    client = SlowFake(fake, delay_s=30).async_client()

    async def main() -> tuple[float, float]:
        async def call() -> None:
            try:
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
            except BudgetExceeded:
                pass

        tasks = [asyncio.create_task(call()) for _ in range(CALLERS)]
        # until every task has reserved (or been refused) and waits on the provider: a fixed
        # sleep failed on a loaded machine
        deadline = time.monotonic() + 10
        held = _totals(b)
        while held[1] < FULL_RESERVATION - 1e-12 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            held = _totals(b)
        await asyncio.sleep(0.1)  # and no more than that is reserved
        held = _totals(b)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return held

    held_used, held_reserved = asyncio.run(main())
    assert held_used == 0 and held_reserved == pytest.approx(FULL_RESERVATION)
    assert _totals(b) == (0, 0)


# --- schedule, downgrade and soft threshold on Redis -------------------------------------


def test_daily_budget_resets_at_local_midnight_with_a_frozen_clock(instrument, fake, store, tmp_path):
    clock = Clock(datetime(2025, 6, 11, 21, 59, tzinfo=timezone.utc))  # 23:59 in Berlin (CEST)
    config = {"timezone": "Europe/Berlin", "budgets": [{"name": "d", "period": "day", "limit_usd": 50e-6}]}
    b = _enforce(instrument, budgets(config, tmp_path, store=store, clock=clock))
    client = SlowFake(fake, delay_s=0).sync_client()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    with pytest.raises(BudgetExceeded):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    clock.now = datetime(2025, 6, 11, 22, 0, tzinfo=timezone.utc)  # 12 June, 00:00 in Berlin
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    (status,) = b.status()
    assert status.period_start.isoformat() == "2025-06-12T00:00:00+02:00"
    assert status.used_usd == pytest.approx(ACTUAL_MINI)
    assert sorted(k.decode() for k in store.client.keys("*:d:*") if not k.endswith(b":leases")) == [
        "llmcost:{budgets}:d:2025-06-11:",
        "llmcost:{budgets}:d:2025-06-12:",
    ]


def test_downgrade_on_redis_changes_the_model_sent(instrument, otel, fake, store, tmp_path):
    config = {
        "budgets": [
            {"name": "f", "scope": "feature", "limit_usd": 0.0006, "action": "downgrade", "downgrade_to": "gpt-4o-mini"}
        ]
    }
    _enforce(instrument, budgets(config, tmp_path, store=store))
    client = SlowFake(fake, delay_s=0).sync_client()
    with llmcost.attributes(feature="summarize"):
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=20)
    assert [r["json"]["model"] for r in fake.requests] == ["gpt-4o", "gpt-4o-mini"]
    assert otel.spans()[1].attributes[semconv.BUDGET_SCOPE] == "feature=summarize"


def test_soft_threshold_event_on_redis(instrument, otel, fake, store, tmp_path):
    _enforce(instrument, budgets({"budgets": [{"name": "d", "limit_usd": 100e-6}]}, tmp_path, store=store))
    client = SlowFake(fake, delay_s=0).sync_client()
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    assert [[e.name for e in s.events] for s in otel.spans()] == [[], [], [semconv.EVENT_BUDGET_THRESHOLD_CROSSED]]


def test_status_lists_every_user_in_the_period(instrument, fake, store, tmp_path):
    b = _enforce(
        instrument, budgets({"budgets": [{"name": "u", "scope": "user", "limit_usd": 1}]}, tmp_path, store=store)
    )
    client = SlowFake(fake, delay_s=0).sync_client()
    for user in ("carol", "dave", "carol"):
        with llmcost.attributes(user=user):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    rows = [(s.scope_value, round(s.used_usd / ACTUAL_MINI), s.reserved_usd) for s in b.status()]
    assert rows == [("carol", 2, 0.0), ("dave", 1, 0.0)]


def test_cli_shows_the_live_redis_counters(store, redis_url, tmp_path):
    import json

    from typer.testing import CliRunner

    from otel_llmcost.cli import app

    path = tmp_path / "budgets.json"
    path.write_text(json.dumps({"store": redis_url, "budgets": [{"name": "m", "limit_usd": 10}]}))
    b = budgets(json.loads(path.read_text()), tmp_path, store=store)
    ((_, _, counter),) = b._counters({})
    store.reserve([counter], [2 * 10**9], "r", 0, 10**15)
    store.settle([counter.key], "r", [2 * 10**9], [2 * 10**9])
    result = CliRunner().invoke(app, ["budgets", "--file", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)[0]["rows"]
    assert (row["budget"], row["scope"], row["used_usd"], row["limit_usd"]) == ("m", "global", 2.0, 10.0)
    assert row["usd_per_day"] > 0
