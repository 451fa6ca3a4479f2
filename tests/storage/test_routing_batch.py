"""Routing, batch and per-model task cost (019_routing_and_batch.sql) on scripted traffic
(issue 20, items 3 and 4), each figure computed by hand from the calls' token counts and
the genai-prices catalogue that `prices sync` loads; and the cases where the views must
stay quiet.

Every scenario has its own ServiceName; the catalogue is synced once, after every call is
in, as `otel-llmcost prices sync` would be.
"""

from __future__ import annotations

from typing import Any

import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.pricing import Pricer
from otel_llmcost.pricing import catalogue as price_catalogue
from tests.helpers.chdb import insert_spans, q
from tests.helpers.span_rows import HOUR_NS, call_row, now_ns, trace_row

DB = "otel"
MINUTE_NS = 60 * 10**9
# gpt-4o at its list price, USD per token (what the scripted calls "paid").
GPT4O_IN, GPT4O_OUT = 2.5e-6, 10e-6


PAIR_COLUMNS = ["Provider", "FromModel", "ToModel", "MaxInputTokens", "MaxOutputTokens"]


def openai_call(svc: str, ts: int, model: str, tokens_in: int, tokens_out: int, **attrs: Any) -> list:
    cost = tokens_in * GPT4O_IN + tokens_out * GPT4O_OUT if model == "gpt-4o" else attrs.pop("cost")
    return call_row(
        svc,
        ts,
        gen_ai_provider_name="openai",
        gen_ai_request_model=model,
        price_provider="openai",
        gen_ai_usage_input_tokens=tokens_in,
        gen_ai_usage_output_tokens=tokens_out,
        usage_uncached_input_tokens=tokens_in,
        cost_total=repr(cost),
        **attrs,
    )


def catalogue_rates(client: Any, model: str, variant: str) -> tuple[float, float]:
    """(input, output) USD per token of the synced catalogue's price in force now."""
    ((rate_in, rate_out),) = q(
        client,
        f"SELECT InputMtok / 1e6, OutputMtok / 1e6 FROM {DB}.v_prices_current"
        " WHERE Provider = 'openai' AND Model = {m:String} AND Variant = {v:String}"
        " AND EffectiveFrom <= now() AND now() < EffectiveUntil AND InputTokensFrom = 0",
        m=model,
        v=variant,
    )
    return rate_in, rate_out


@pytest.fixture(scope="module")
def synced(chdb_module_client: Any) -> Any:
    client = chdb_module_client
    t = now_ns() - 3 * HOUR_NS
    rows: list[list] = []

    # Routing: /classify sends 10 small requests (500 in, 50 out) and 5 large ones to gpt-4o.
    for i in range(10):
        rows.append(openai_call("routing", t + i * MINUTE_NS, "gpt-4o", 500, 50, endpoint="POST /classify"))
    for i in range(5):
        rows.append(openai_call("routing", t + i * MINUTE_NS, "gpt-4o", 3000, 50, endpoint="POST /classify"))
    # Quiet: a model that is already the small one; a failed call.
    rows += [openai_call("routing", t, "gpt-4o-mini", 500, 50, endpoint="POST /tag", cost=0.0001) for _ in range(5)]
    rows.append(openai_call("routing", t, "gpt-4o", 0, 0, endpoint="POST /broken", status="Error"))
    # Your pairs: one that switches the default off, one naming a model the catalogue lacks.
    for i in range(3):
        rows.append(openai_call("routing-off", t + i * MINUTE_NS, "gpt-4o", 500, 50, endpoint="POST /x"))
    for i in range(3):
        rows.append(
            openai_call("routing-unknown", t + i * MINUTE_NS, "gpt-4.1", 500, 50, endpoint="POST /y", cost=0.002)
        )

    # Batch: a service that serves requests, plus work no user waits for.
    rows += [openai_call("batchy", t, "gpt-4o", 1000, 100, endpoint="POST /chat") for _ in range(3)]
    rows += [
        openai_call("batchy", t + i * MINUTE_NS, "gpt-4o", 1000, 200, feature="digest", background="true")
        for i in range(4)
    ]
    rows += [openai_call("batchy", t + i * MINUTE_NS, "gpt-4o", 2000, 100, feature="reindex") for i in range(2)]
    # Quiet: a stream outside a request, a call marked background=false, an endpoint call.
    rows.append(openai_call("batchy", t, "gpt-4o", 1000, 100, feature="live", gen_ai_request_stream="true"))
    rows.append(openai_call("batchy", t, "gpt-4o", 1000, 100, feature="cli", background="false"))
    # Quiet: a service that never records endpoints (its "no endpoint" says nothing).
    rows += [openai_call("batch-noendpoints", t, "gpt-4o", 1000, 100) for _ in range(3)]

    # Tasks: /triage on gpt-4o (4 tasks, 3 succeed) and on gpt-4o-mini (4 tasks, 2 succeed).
    for n, (model, success) in enumerate(
        [("gpt-4o", s) for s in (1, 1, 1, 0)] + [("gpt-4o-mini", s) for s in (1, 0, 1, 0)]
    ):
        task = f"task-{n}"
        cost = {} if model == "gpt-4o" else {"cost": 0.0003}
        rows.append(
            openai_call("tasks", t + n * MINUTE_NS, model, 500, 50, endpoint="POST /triage", task_id=task, **cost)
        )
        # A second, cheaper call on the other model: the task still counts for its main model.
        other = "gpt-4o-mini" if model == "gpt-4o" else "gpt-4o"
        small = {"cost": 0.00001} if other == "gpt-4o-mini" else {}
        rows.append(
            openai_call(
                "tasks",
                t + n * MINUTE_NS,
                other,
                10 if small else 20,
                1,
                endpoint="POST /triage",
                task_id=task,
                **small,
            )
        )
        rows.append(
            trace_row(
                t + n * MINUTE_NS + 10**9,
                {sc.TASK_ID: task, sc.TASK_SUCCESS: "true" if success else "false"},
                service="tasks",
                name=sc.TASK_SPAN_NAME,
                kind="Internal",
            )
        )
    insert_spans(client, rows)
    client.insert(
        f"{DB}.llm_routing_pairs",
        [["openai", "gpt-4.1", "no-such-model", 1000, 250]],
        column_names=PAIR_COLUMNS,
    )
    price_catalogue.sync(client, Pricer(overrides_path=""), database=DB)
    yield client
    client.command(f"TRUNCATE TABLE {DB}.llm_routing_pairs")


def routing(client: Any, svc: str) -> list[tuple]:
    return q(
        client,
        "SELECT Endpoint, RequestModel, ToModel, Origin, Calls, SmallCalls, round(SmallSpend, 9),"
        " TargetPriced, round(EstSmallSpendOnTarget, 9), round(EstSavings, 9), round(EstSavingsPerMonth, 9)"
        f" FROM {DB}.v_routing_opportunities(since_hours = 24) WHERE ServiceName = {{s:String}} ORDER BY Endpoint",
        s=svc,
    )


def test_small_requests_on_an_expensive_model_are_priced_on_the_cheaper_one(synced: Any) -> None:
    """10 small calls: 10 * (500 * $2.50 + 50 * $10)/M = $0.0175 recorded; on gpt-4o-mini at
    the catalogue's rates, 10 * (500 * in + 50 * out). The 5 calls of 3,000 input tokens are
    above the 1,000-token bound: counted in Calls, never in the saving. 10 minutes of calls
    scale to a month from one day: x 30."""
    mini_in, mini_out = catalogue_rates(synced, "gpt-4o-mini", "")
    on_mini = 10 * (500 * mini_in + 50 * mini_out)
    saving = 0.0175 - on_mini
    assert routing(synced, "routing") == [
        (
            "POST /classify",
            "gpt-4o",
            "gpt-4o-mini",
            "default",
            15,
            10,
            0.0175,
            1,
            round(on_mini, 9),
            round(saving, 9),
            round(saving * 30, 9),
        )
    ]
    assert mini_in < GPT4O_IN and mini_out < GPT4O_OUT


def test_a_pair_you_switch_off_lists_nothing_and_an_unknown_target_has_no_saving(synced: Any) -> None:
    assert [r[2] for r in routing(synced, "routing-off")] == ["gpt-4o-mini"]
    synced.insert(f"{DB}.llm_routing_pairs", [["openai", "gpt-4o", "", 1000, 250]], column_names=PAIR_COLUMNS)
    try:
        assert routing(synced, "routing-off") == []
    finally:
        synced.command(f"DELETE FROM {DB}.llm_routing_pairs WHERE FromModel = 'gpt-4o'")
    ((*_, priced, on_target, saving, per_month),) = routing(synced, "routing-unknown")
    assert (priced, on_target, saving, per_month) == (0, None, None, None)


def batch(client: Any, svc: str) -> list[tuple]:
    return q(
        client,
        "SELECT Feature, RequestModel, Reason, Calls, round(Spend, 9), round(EstSavings, 9),"
        " round(BatchDiscount, 6), round(EstSavingsPerMonth, 9)"
        f" FROM {DB}.v_batch_opportunities(since_hours = 24) WHERE ServiceName = {{s:String}} ORDER BY Feature",
        s=svc,
    )


def test_background_work_is_priced_at_the_batch_discount(synced: Any) -> None:
    """digest: 4 calls marked background, 4 * (1,000 * $2.50 + 200 * $10)/M = $0.018;
    reindex: 2 unmarked calls with no endpoint in a service that has endpoints,
    2 * (2,000 * $2.50 + 100 * $10)/M = $0.012. Each keeps what it paid times the
    catalogue's batch/standard ratio for its tokens."""
    std_in, std_out = catalogue_rates(synced, "gpt-4o", "")
    bat_in, bat_out = catalogue_rates(synced, "gpt-4o", "processing=batch")
    ratio_digest = (1000 * bat_in + 200 * bat_out) / (1000 * std_in + 200 * std_out)
    ratio_reindex = (2000 * bat_in + 100 * bat_out) / (2000 * std_in + 100 * std_out)
    digest, reindex = 0.018 * (1 - ratio_digest), 0.012 * (1 - ratio_reindex)
    assert batch(synced, "batchy") == [
        (
            "digest",
            "gpt-4o",
            "marked background",
            4,
            0.018,
            round(digest, 9),
            round(1 - ratio_digest, 6),
            round(digest * 30, 9),
        ),
        (
            "reindex",
            "gpt-4o",
            "outside any request",
            2,
            0.012,
            round(reindex, 9),
            round(1 - ratio_reindex, 6),
            round(reindex * 30, 9),
        ),
    ]
    assert 0.4 < 1 - ratio_digest < 0.6  # OpenAI's Batch API: half price


def test_batch_stays_quiet_where_no_request_context_says_nothing(synced: Any) -> None:
    """A service that never records endpoints: its calls' missing endpoint is no sign of
    background work. (In 'batchy' the stream, the background=false call and the endpoint
    calls are absent from the rows above.)"""
    assert batch(synced, "batch-noendpoints") == []


def test_cost_per_successful_task_per_model(synced: Any) -> None:
    """Each task counts for the model it spent most on, with all its spend.
    gpt-4o tasks: 4 * ((500 * $2.50 + 50 * $10)/M + $0.00001) = 4 * $0.00176 = $0.00704,
    3 successes. gpt-4o-mini tasks: 4 * ($0.0003 + (20 * $2.50 + 1 * $10)/M) = 4 * $0.00036
    = $0.00144, 2 successes."""
    rows = q(
        synced,
        "SELECT Endpoint, Model, Tasks, SuccessfulTasks, round(CostTotal, 9), round(CostPerSuccessfulTask, 9)"
        f" FROM {DB}.v_task_cost_by_model(since_hours = 24) WHERE ServiceName = 'tasks' ORDER BY Model",
    )
    assert rows == [
        ("POST /triage", "gpt-4o", 4, 3, 0.00704, round(0.00704 / 3, 9)),
        ("POST /triage", "gpt-4o-mini", 4, 2, 0.00144, 0.00072),
    ]


def test_the_ranked_list_gives_each_saving_its_evidence_and_action(synced: Any) -> None:
    """v_opportunities carries the routing and batch figures above, per month, with the
    sentence and the action a reader acts on; the batch items rank by their own saving."""
    mini_in, mini_out = catalogue_rates(synced, "gpt-4o-mini", "")
    on_mini = 10 * (500 * mini_in + 50 * mini_out)
    ((kind, key, model, monthly, evidence, action),) = q(
        synced,
        "SELECT Kind, Key, Model, round(MonthlySavingUsd, 9), Evidence, Action"
        f" FROM {DB}.v_opportunities(since_hours = 24) WHERE ServiceName = 'routing'",
    )
    assert (kind, key, model, monthly) == ("routing", "POST /classify", "gpt-4o", round((0.0175 - on_mini) * 30, 9))
    prefix = (
        "10 of 15 calls are small (at most 1000 input and 250 output tokens) and cost $0.0175; on gpt-4o-mini about $"
    )
    assert evidence.startswith(prefix)
    assert float(evidence.removeprefix(prefix)) == pytest.approx(on_mini, abs=0.00006)  # shown to 4 decimals
    assert (
        action
        == "route small requests of POST /classify from gpt-4o to gpt-4o-mini, after comparing task success per model"
    )
    batch_items = q(
        synced,
        "SELECT Key, Evidence, Action"
        f" FROM {DB}.v_opportunities(since_hours = 24) WHERE ServiceName = 'batchy' AND Kind = 'batch'",
    )
    assert [key for key, _, _ in batch_items] == ["digest", "reindex"]  # $0.009 before $0.006 a day
    assert batch_items[0][1:] == (
        "4 calls marked background cost $0.018; the openai Batch API price is 50% lower",
        "move digest to the openai Batch API",
    )
    assert batch_items[1][1].startswith("2 calls made outside any request cost $0.012;")
    # Quiet: no batch item for the service whose calls carry no endpoint at all.
    quiet = f"SELECT count() FROM {DB}.v_opportunities(since_hours = 24) WHERE ServiceName = 'batch-noendpoints'"
    assert q(synced, quiet + " AND Kind = 'batch'") == [(0,)]
