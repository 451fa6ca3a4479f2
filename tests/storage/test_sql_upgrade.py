"""Upgrading a database created by an earlier otel-llmcost: `migrate` must bring it up to
date (new columns, materialized-view queries, views) without losing a row, then skip
every unchanged file on later runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import clickhouse_connect
import pytest

from otel_llmcost import semconv as sc
from otel_llmcost.storage import migrations
from tests.helpers.chdb import chdb_dsn, insert_spans
from tests.helpers.span_rows import call_row, now_ns, priced_call_row

FIXTURE = Path(__file__).with_name("fixtures") / "schema_a5d3197.sql"
DB = "otel"


def columns(client, table: str) -> set[str]:
    rows = client.query(f"SELECT name FROM system.columns WHERE database = '{DB}' AND table = '{table}'").result_rows
    return {r[0] for r in rows}


@pytest.fixture
def old_database(tmp_path):
    client = clickhouse_connect.get_client(dsn=chdb_dsn(tmp_path))
    for statement in migrations.split_statements(FIXTURE.read_text(encoding="utf-8")):
        client.command(statement)
    yield client
    client.close()


def test_old_database_gains_new_columns_queries_and_views_without_losing_rows(old_database):
    from datetime import datetime, timezone

    from otel_llmcost.pricing import Pricer, Usage

    client = old_database
    assert "PriceVersion" not in columns(client, "llm_calls")
    now = datetime.now(tz=timezone.utc)
    usage = Usage(input_tokens=1000, output_tokens=100)
    cost = Pricer(overrides_path="").price_call(usage, "gpt-4o", None, provider_id="openai")
    insert_spans(client, [priced_call_row(now, "gpt-4o", usage, cost, provider_name="openai", price_provider="openai")])

    ran = migrations.migrate(client, database=DB)
    assert any(s.startswith("ALTER TABLE otel.llm_calls_mv MODIFY QUERY") for s in ran)
    assert {"PriceVersion", "PriceProvider", "CostReported", "InputAudioTokens"} <= columns(client, "llm_calls")

    insert_spans(client, [priced_call_row(now, "gpt-4o", usage, cost, provider_name="openai", price_provider="openai")])
    rows = client.query(f"SELECT PriceVersion FROM {DB}.llm_calls ORDER BY PriceVersion").result_rows
    assert rows == [("",), (cost.version,)]  # the old row keeps defaults; the new one is complete
    # Views of the new release exist and read the upgraded table.
    assert client.query(f"SELECT count() FROM {DB}.v_cost_reported_vs_computed").result_rows == [(0,)]
    assert client.query(
        f"SELECT count() FROM {DB}.v_calls_repriced(target_provider = '', target_model = '')"
    ).result_rows == [(2,)]

    assert migrations.migrate(client, database=DB) == [f"CREATE DATABASE IF NOT EXISTS {DB}"]  # nothing left to do


def test_an_edited_view_reaches_an_existing_database(chdb_client, tmp_path, monkeypatch):
    client = chdb_client  # migrated from the package's own files
    sql_dir = tmp_path / "sql"
    shutil.copytree(migrations.MIGRATIONS_DIR, sql_dir)
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", sql_dir)
    view = sql_dir / "010_anomalies.sql"
    view.write_text(
        view.read_text().replace(
            "v_expensive_requests {cluster} AS\n", "v_expensive_requests {cluster} AS\n-- edited\n"
        )
    )
    (sql_dir / "099_extra.sql").write_text(
        "CREATE VIEW IF NOT EXISTS {database}.v_extra {cluster} AS SELECT count() AS n FROM {database}.llm_calls;\n"
    )
    ran = migrations.migrate(client, database=DB)
    assert "CREATE OR REPLACE VIEW otel.v_expensive_requests" in "\n".join(ran)
    assert not any("llm_calls_mv" in s for s in ran)  # 002 is unchanged: not touched
    assert client.query(f"SELECT n FROM {DB}.v_extra").result_rows == [(0,)]


def test_column_lists_split_only_at_top_level_commas():
    body = """
    A DateTime64(9) CODEC(Delta(8), ZSTD(1)), -- a comment, with a comma
    B Map(LowCardinality(String), String) DEFAULT map('a,b', 'c'),
    INDEX idx A TYPE minmax GRANULARITY 1
    """
    assert migrations._top_level_items(body) == [
        "A DateTime64(9) CODEC(Delta(8), ZSTD(1))",
        "B Map(LowCardinality(String), String) DEFAULT map('a,b', 'c')",
        "INDEX idx A TYPE minmax GRANULARITY 1",
    ]
    assert sc.PRICE_VERSION  # the names the upgrade test relies on exist


@pytest.mark.parametrize("days", [0, -1, migrations.MAX_TTL_DAYS + 1, 36500])
def test_a_ttl_past_the_datetime_range_is_refused(days):
    # toDateTime(Timestamp) + TTL wraps past 2106: ClickHouse would drop every row on insert.
    with pytest.raises(ValueError, match="ttl_days"):
        migrations.render("", database=DB, cluster=None, ttl_days=days)


def test_old_database_gains_the_call_detail_columns_and_views(old_database):
    """Prompt anatomy, finish reason, max_tokens and the original model (issue 20): the
    columns are added, the materialized view fills them, rows from before keep defaults."""
    client = old_database
    assert "FinishReason" not in columns(client, "llm_calls")
    ts = now_ns()
    attrs = {f"prompt_component_{name}": n for n, name in enumerate(sc.PROMPT_COMPONENTS, start=1)}
    insert_spans(client, [call_row("upgrade-details", ts, **attrs)])  # before the upgrade

    ran = migrations.migrate(client, database=DB)
    assert any(s.startswith("ALTER TABLE otel.llm_calls_mv MODIFY QUERY") for s in ran)
    new = {"PromptSystemTokens", "PromptToolsTokens", "PromptContextTokens", "PromptHistoryTokens"}
    assert new | {"PromptLatestTokens", "FinishReason", "MaxTokens", "OriginalModel"} <= columns(client, "llm_calls")

    more = {"gen_ai_response_finish_reasons": '["stop"]', "gen_ai_request_max_tokens": 64}
    insert_spans(client, [call_row("upgrade-details", ts + 1, **attrs, **more, budget_original_model="m-big")])
    rows = client.query(
        f"SELECT PromptSystemTokens, PromptLatestTokens, FinishReason, MaxTokens, OriginalModel FROM {DB}.llm_calls"
        " WHERE ServiceName = 'upgrade-details' ORDER BY Timestamp"
    ).result_rows
    assert rows == [(0, 0, "", 0, ""), (1, 5, "stop", 64, "m-big")]  # the old row keeps defaults
    # system 1, tools 2, context 3, history 4, latest 5: one row per component of the new call
    assert client.query(
        f"SELECT Component, Tokens FROM {DB}.v_prompt_component_cost(since_hours = 24) ORDER BY Tokens"
    ).result_rows == [("system", 1), ("tools", 2), ("context", 3), ("history", 4), ("latest", 5)]


def test_an_old_llm_calls_gets_the_codecs_of_a_new_one_and_keeps_its_rows(old_database):
    """The compact codecs (issue 22, item 3; 025_compact_calls.sql) reach a table created with
    the old ones: every column ends with the type and codec a new database creates."""
    client = old_database
    insert_spans(client, [call_row("upgrade-codecs", now_ns(), gen_ai_usage_input_tokens=7)])
    migrations.migrate(client, database=DB)
    migrations.migrate(client, database="fresh")

    def definitions(database: str) -> dict[str, tuple[str, str]]:
        rows = client.query(
            "SELECT name, type, compression_codec FROM system.columns"
            f" WHERE database = '{database}' AND table = 'llm_calls'"
        ).result_rows
        return {name: (kind, codec) for name, kind, codec in rows}

    upgraded = definitions(DB)
    assert upgraded == definitions("fresh")
    assert upgraded["Timestamp"][1] == "CODEC(Delta(8), T64('bit'), ZSTD(1))"
    kept = client.query(f"SELECT InputTokens FROM {DB}.llm_calls WHERE ServiceName = 'upgrade-codecs'")
    assert kept.result_rows == [(7,)]


def test_old_database_gains_the_audio_unit_columns_prices_and_repricing(old_database):
    """Audio units (issue 23; 026_audio_units.sql): llm_calls gains AudioSeconds and
    InputCharacters (filled by the materialized view from then on), llm_unit_prices is
    created, and the repricing views read both; rows from before keep defaults."""
    client = old_database
    assert "AudioSeconds" not in columns(client, "llm_calls")
    ts = now_ns()
    insert_spans(client, [call_row("upgrade-audio", ts, gen_ai_request_model="whisper-1", usage_audio_seconds=90)])

    migrations.migrate(client, database=DB)
    assert {"AudioSeconds", "InputCharacters"} <= columns(client, "llm_calls")
    assert {"InputAudioHours", "InputMchars"} <= columns(client, "llm_unit_prices")

    more = {"gen_ai_request_model": "tts-1", "usage_input_characters": 1000}
    insert_spans(client, [call_row("upgrade-audio", ts + 1, **more)])
    rows = client.query(
        f"SELECT AudioSeconds, InputCharacters FROM {DB}.llm_calls"
        " WHERE ServiceName = 'upgrade-audio' ORDER BY Timestamp"
    ).result_rows
    assert rows == [(0.0, 0), (0.0, 1000)]  # the old row keeps defaults
    assert client.query(
        f"SELECT count() FROM {DB}.v_calls_repriced(target_provider = '', target_model = '')"
        " WHERE ServiceName = 'upgrade-audio'"
    ).result_rows == [(2,)]
    assert migrations.migrate(client, database=DB) == [f"CREATE DATABASE IF NOT EXISTS {DB}"]
