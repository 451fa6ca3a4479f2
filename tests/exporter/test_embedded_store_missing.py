"""Without the [embedded] extra (no chdb), the llmcost exporter keeps every span in the
spool and says in one log line what to install; the CLI refuses with the same advice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# chdb made unimportable, as in an install without the extra.
WITHOUT_CHDB = "import sys\nsys.modules['chdb'] = None\n"


def _run(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"OTEL_LLMCOST_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_CHDB + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_exporter_spools_every_span_and_says_once_which_extra_to_install(tmp_path):
    done = _run(
        """
        import logging
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from otel_llmcost.exporter import LLMCostSpanExporter, pending_files

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        exporter = LLMCostSpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("t")
        for i in range(5):
            tracer.start_span(f"chat m{i}").end()
        assert exporter.force_flush()
        provider.shutdown()
        from otel_llmcost.config import Settings
        spooled = pending_files(Settings.load().resolved_dsn)
        print("files", len(spooled), "rows", sum(len(p.read_text().splitlines()) for p in spooled))
        print("dropped", exporter.dropped_spans)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["files", "5", "rows", "5", "dropped", "0"]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, done.stderr
    assert "needs chdb" in warnings[0] and "'.[embedded]'" in warnings[0] and "spool" in warnings[0]


def test_cli_report_refuses_with_the_install_advice(tmp_path):
    done = _run(
        """
        from otel_llmcost.cli import app
        app(["report"], standalone_mode=True)
        """,
        tmp_path,
    )
    assert done.returncode == 2
    assert "error:" in done.stderr and "needs chdb" in done.stderr and "'.[embedded]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_remote_dsn_needs_no_chdb(tmp_path):
    done = _run(
        """
        from otel_llmcost.exporter import LLMCostSpanExporter
        exporter = LLMCostSpanExporter(dsn="http://127.0.0.1:9/")
        print(exporter.dsn_redacted)
        exporter.shutdown()
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://127.0.0.1:9/" and "chdb" not in done.stderr
