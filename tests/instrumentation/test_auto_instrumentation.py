"""`opentelemetry-instrument python app.py` finds the plugin with no code change."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = textwrap.dedent(
    """
    from otel_llmcost.demo.fakes import FakeLLMServer, Reply, openai_client

    fake = FakeLLMServer()
    fake.enqueue(Reply(usage={"prompt_tokens": 1000, "completion_tokens": 100,
                              "prompt_tokens_details": {"cached_tokens": 0}}))
    client = openai_client(fake)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    print("APP-DONE")
    """
)


def test_opentelemetry_instrument_produces_a_priced_span(tmp_path: Path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "auto-app",
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        [str(bindir / "opentelemetry-instrument"), sys.executable, str(app)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "APP-DONE" in result.stdout
    assert '"name": "chat gpt-4o-mini"' in result.stdout
    # gpt-4o-mini: 1000 * $0.15/M + 100 * $0.60/M = $0.00021
    cost = re.search(r'"llmcost.cost.total": ([0-9.e-]+)', result.stdout)
    assert cost is not None and float(cost.group(1)) == pytest.approx(0.00021, rel=1e-9)
    assert '"service.name": "auto-app"' in result.stdout
