"""The hourly anomaly detectors (013_anomaly_rollups.sql) on scripted rows, with the
expected values worked out by hand from the rules in docs/views.md ("Anomalies")."""

from __future__ import annotations

import math
import random
import re
from datetime import timedelta, timezone

import pytest

from tests.helpers import anomaly_fixture
from tests.helpers.anomaly_rows import calls_in_hour, history, hour_start
from tests.helpers.chdb import insert_spans, q

H = timedelta(hours=1)
# The contract, stated once for the tests (also the shape of the scripted rows).
COLUMNS = list(anomaly_fixture.COLUMNS)
CONTRIBUTOR_COLUMNS = list(anomaly_fixture.CONTRIBUTOR_COLUMNS)


@pytest.fixture(scope="module")
def now():
    return hour_start()


def anomalies(client, now, service: str) -> list[tuple]:
    """v_anomalies_at rows of ``service``, each ending with its v_anomaly_contributors_at rows."""
    found = q(
        client,
        "SELECT Kind, Dimension, Key, At, DetectedAt, LastSeen, Expected, Observed, Score, Open, Explanation "
        "FROM otel.v_anomalies_at(now = {t:DateTime}) WHERE ServiceName = {s:String} "
        "ORDER BY Kind, Dimension, Key",
        t=now,
        s=service,
    )
    moved = q(
        client,
        "SELECT Kind, Dimension, Key, At, ContributorDimension, ContributorKey, Share "
        "FROM otel.v_anomaly_contributors_at(now = {t:DateTime}) WHERE ServiceName = {s:String} "
        "ORDER BY Share DESC, ContributorDimension",
        t=now,
        s=service,
    )
    return [(*row, [m[4:] for m in moved if m[:4] == row[:4]]) for row in found]


@pytest.mark.parametrize(
    ("view", "columns"), [("v_anomalies", COLUMNS), ("v_anomaly_contributors", CONTRIBUTOR_COLUMNS)]
)
def test_the_views_have_the_contract_columns(chdb_module_client, view, columns):
    rows = q(
        chdb_module_client,
        "SELECT name, type FROM system.columns WHERE database = 'otel' AND table = {v:String}",
        v=view,
    )
    assert rows == columns
    assert q(chdb_module_client, f"SELECT count() FROM otel.{view} WHERE ServiceName = 'none'") == [(0,)]


def test_steady_seasonal_noisy_history_gives_nothing(chdb_module_client, now):
    svc = "an-quiet"
    rng = random.Random(3)
    rows = []
    for h in range(22 * 24, 0, -1):
        hour = now - h * H
        shape = 1.0 + 0.5 * math.sin(hour.hour / 24 * 2 * math.pi)
        for endpoint, user in (("/a", "u1"), ("/b", "u2")):
            n = rng.randint(3, 6)
            rows += calls_in_hour(
                svc,
                hour,
                n,
                cost_each=0.25 * shape * rng.uniform(0.85, 1.15),
                endpoint=endpoint,
                user=user,
                cache_read=int(1000 * rng.uniform(0.7, 0.9)),
            )
    insert_spans(chdb_module_client, rows)
    assert anomalies(chdb_module_client, now, svc) == []


def test_a_spend_spike_is_explained_by_the_user_who_caused_it(chdb_module_client, now):
    svc = "an-spike"
    rows = history(svc, now - 2 * H, 22, n=4, cost_each=0.25)
    for hour in (now - 2 * H, now - H):  # the two last complete hours: + 4 calls of $1 by u-hot
        rows += calls_in_hour(svc, hour, 4, cost_each=0.25)
        rows += calls_in_hour(svc, hour, 4, cost_each=1.0, user="u-hot")
    insert_spans(chdb_module_client, rows)
    found = {(r[0], r[1], r[2]): r for r in anomalies(chdb_module_client, now, svc)}
    assert set(found) == {("spend", "endpoint", "/e"), ("spend", "model", "m1"), ("new_entity", "user", "u-hot")}

    kind, dim, key, at, detected, last, expected, observed, score, is_open, text, contributors = found[
        ("spend", "endpoint", "/e")
    ]
    # baseline: $1.00 in every same hour before (median 1, MAD 0); the scale is the largest of
    # 1.4826 MAD = 0, 10 % of the median = 0.1, half the Poisson noise of 4 calls at $0.25 =
    # 0.5 * 0.25 * sqrt(4 + 1) = 0.2795 and $0.05: z = (5 - 1) / 0.2795 = 14.31 >= 2 x 5,
    # so the first hour is flagged on its own.
    assert (at, detected, last, is_open) == (now - 2 * H, now - H, now - H, 1)
    assert expected == pytest.approx(1.0)
    assert observed == pytest.approx(5.0)
    assert score == pytest.approx(4 / (0.5 * 0.25 * math.sqrt(5)))
    # +$8 over the two hours against the same hours a week before, all of it u-hot's
    assert contributors == [("user", "u-hot", pytest.approx(1.0))]
    assert text == "spend $5/h vs $1 expected (x5) for 2 h"

    new = found[("new_entity", "user", "u-hot")]
    assert new[3:6] == (now - 2 * H, now - H, now - H)  # $4 in its first hour >= the $1 floor
    assert new[7] == pytest.approx(8.0) and new[9] == 1


def test_low_traffic_cache_break_is_judged_by_significance(chdb_module_client, now):
    svc = "an-cache"
    rows = history(svc, now - 3 * H, 22, n=2, cost_each=0.01, cache_read=800)
    for hour in (now - 3 * H, now - 2 * H, now - H):
        rows += calls_in_hour(svc, hour, 2, cost_each=0.01, cache_read=0)
    insert_spans(chdb_module_client, rows)
    found = {(r[0], r[1], r[2]): r for r in anomalies(chdb_module_client, now, svc)}
    assert set(found) == {("cache_hit_rate", d, k) for d, k in (("endpoint", "/e"), ("model", "m1"), ("user", "u1"))}
    kind, dim, key, at, detected, last, expected, observed, score, is_open, text, _ = found[
        ("cache_hit_rate", "endpoint", "/e")
    ]
    # 2 calls an hour: one broken hour (1.6 missing hits) is below the 3-event floor. Over the
    # last 3 hours at H-2: 2 hits in 6 calls against 336 of 336 the week before: likelihood-ratio
    # z = sqrt(2 * 6 * KL(1/3 || 1 - 0.5/336)) = 6.7 >= 4 and 4 missing hits >= 3.
    assert (at, last, is_open) == (now - 2 * H, now - H, 1)
    assert observed < expected and score >= 4
    assert text.startswith("cache hit rate (")


def test_nothing_is_read_beyond_the_window(chdb_module_client, now):
    svc = "an-old"
    insert_spans(chdb_module_client, calls_in_hour(svc, now - timedelta(days=50), 50, cost_each=10.0))
    assert anomalies(chdb_module_client, now, svc) == []
    # every read of the detectors is of the rollup, bounded below by the primary key (Hour)
    plan = [
        row[0].strip()
        for row in q(
            chdb_module_client,
            "EXPLAIN indexes = 1 SELECT count() FROM otel.v_anomalies_at(now = {t:DateTime})",
            t=now,
        )
    ]
    reads = [line for line in plan if line.startswith(("└──ReadFromMergeTree", "ReadFromMergeTree"))]
    assert reads and all(line.endswith("(otel.llm_anomaly_hourly)") for line in reads)
    lower = (now - timedelta(days=42)).replace(tzinfo=timezone.utc).timestamp()
    bounds = [re.search(r"Hour in \[(\d+), \+Inf\)", line) for line in plan if line.startswith("Condition: and((Hour")]
    assert len(bounds) >= len(reads) and all(b and int(b.group(1)) == lower for b in bounds)


def test_the_as_of_now_views_are_the_parameterized_ones_at_now(chdb_module_client):
    from otel_llmcost.storage import migrations

    statements = migrations.rendered_statements(database="otel")

    def query(name: str) -> str:
        (statement,) = [s for s in statements if s.startswith(f"CREATE VIEW IF NOT EXISTS otel.{name} ")]
        return statement.split(" AS\n", 1)[1]

    assert query("v_anomalies") == query("v_anomalies_at").replace("{now:DateTime}", "now()")
    assert "{" not in query("v_anomalies")
    contributors = query("v_anomaly_contributors")
    assert "FROM otel.v_anomalies\n" in contributors and "_at(" not in contributors
    # the declared columns of v_anomalies are those its query gives
    described = q(chdb_module_client, f"DESCRIBE ({query('v_anomalies')})")
    assert [(name, kind) for name, kind, *_ in described] == COLUMNS
