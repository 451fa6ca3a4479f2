"""`otel-llmcost prices`: show (with --at), check, sync and whatif, end to end on chdb."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from otel_llmcost.cli import app
from otel_llmcost.demo.fakes import FakeLLMServer, Reply, openai_client
from tests.helpers.paths import ROOT

runner = CliRunner()

PRICES = """\
models:
  - prefix: "acme-"
    input_mtok: 1.0
    output_mtok: 2.0
  - model: gpt-4o
    effective_from: 2030-01-01
    input_mtok: 0.5
    output_mtok: 1.0
"""


@pytest.fixture
def prices_file(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES)
    return path


def run(*args: str):
    return runner.invoke(app, list(args))


def test_show_gives_source_version_and_window(prices_file):
    now = run("prices", "gpt-4o", "--prices-file", str(prices_file))
    assert now.exit_code == 0, now.output
    assert "source: genai-prices (version" in now.output
    assert "until 2030-01-01" in now.output  # the override takes over then
    later = run("prices", "gpt-4o", "--at", "2030-06-01", "--prices-file", str(prices_file))
    assert later.exit_code == 0, later.output
    assert "source: override prices.yaml:5" in later.output
    assert "from 2030-01-01 until further notice" in later.output
    assert "0.5" in later.output


def test_show_gives_audio_prices_in_their_own_units():
    whisper = run("prices", "whisper-1", "--prices-file", "")
    assert whisper.exit_code == 0, whisper.output
    assert "input_audio_hours" in whisper.output and "0.36" in whisper.output
    assert "hour of input audio" in whisper.output
    assert "million tokens" not in whisper.output  # no token price: not shown as $0 tokens
    speech = run("prices", "tts-1-hd", "--prices-file", "")
    assert speech.exit_code == 0, speech.output
    assert "input_mchars" in speech.output and "30" in speech.output
    assert "million input characters" in speech.output


def test_show_errors_are_clear(prices_file):
    assert run("prices", "gpt-4o", "--at", "yesterday").exit_code == 2
    missing = run("prices", "no-such-model-anywhere")
    assert missing.exit_code == 2 and "recorded as unpriced" in missing.output
    assert "Usage" in run("prices").output  # no arguments: help


def test_check_lists_entries_and_rejects_a_broken_file(prices_file, tmp_path):
    good = run("prices", "check", str(prices_file))
    assert good.exit_code == 0, good.output
    assert "2 entries" in good.output and "prefix acme-" in good.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - model: x\n    input_mtok: 1\n    output_mtok: lots\n")
    result = run("prices", "check", str(bad))
    assert result.exit_code == 2
    assert result.output == (
        f"{bad}:4: models[0].output_mtok: must be a number (USD per million tokens), got the string 'lots'\n"
    )  # the lines and nothing else: no traceback
    # A broken file is an error for the commands that price, not silently ignored.
    assert run("prices", "gpt-4o", "--prices-file", str(bad)).exit_code == 2


def test_sync_prices_spend_recorded_unpriced_and_whatif_swaps_models(tmp_path, prices_file, monkeypatch):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    monkeypatch.setenv("OTEL_EXPORTER_LLMCOST_DSN", dsn)
    # Real calls through the llmcost exporter: one priced, one the database cannot price.
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otel_llmcost import LLMCostInstrumentor
    from otel_llmcost.exporter import LLMCostSpanExporter
    from otel_llmcost.pricing import Pricer

    exporter = LLMCostSpanExporter(dsn=dsn)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LLMCostInstrumentor()
    instrumentor.instrument(tracer_provider=provider, pricer=Pricer(overrides_path=""), limiters=())
    try:
        fake = FakeLLMServer()
        usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000}
        fake.enqueue(Reply(usage=usage), Reply(usage=usage))
        client = openai_client(fake)
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}])
        client.chat.completions.create(model="acme-7b", messages=[{"role": "user", "content": "b"}])
    finally:
        instrumentor.uninstrument()
        provider.shutdown()

    before = run("prices", "sync", "--dsn", dsn)
    assert before.exit_code == 0, before.output
    after = run("prices", "sync", "--dsn", dsn, "--prices-file", str(prices_file))
    assert after.exit_code == 0, after.output
    assert "prices.yaml" in after.output

    report = run("report", "--dsn", dsn, "--only", "repricing", "--format", "json", "--since-hours", "24")
    rows = json.loads(report.stdout)[0]["rows"]
    acme = next(r for r in rows if r["RequestModel"] == "acme-7b")
    assert (acme["NewlyPricedCalls"], acme["NewlyPricedCostUsd"]) == (1, pytest.approx(3.0))

    whatif = run("prices", "whatif", "gpt-4o-mini", "--dsn", dsn, "--since-hours", "24")
    assert whatif.exit_code == 0, whatif.output
    assert "openai/gpt-4o-mini" in whatif.output
    assert run("prices", "whatif", "nobody/nothing", "--dsn", dsn).exit_code == 2


def test_the_example_override_file_is_valid_and_prices_what_it_says():
    example = ROOT / "examples" / "prices.yaml"
    checked = run("prices", "check", str(example))
    assert checked.exit_code == 0, checked.output
    before = run("prices", "acme-llama-70b", "--at", "2026-06-30", "--prices-file", str(example))
    after = run("prices", "acme-llama-70b", "--at", "2026-07-01", "--prices-file", str(example))
    assert "until 2026-07-01" in before.output and "0.2" in before.output
    assert "from 2026-07-01" in after.output and "0.1" in after.output
