"""The demo: a realistic workload through the real SDKs against a local fake provider.

- :mod:`.workload`: ``otel-llmcost demo``, fifteen days of traffic into embedded ClickHouse;
- :mod:`.fakes`: the fake OpenAI, Anthropic and Gemini HTTP APIs (an httpx/httpx2
  ``MockTransport`` handler) that the demo, the tests and the benchmarks use.
"""

from .fakes import FakeLLMServer, Reply, anthropic_client, genai_client, openai_client
from .workload import DEMO_INSTALL, DEMO_SDKS, DemoResult, demo_dsn, missing_sdks, run_demo

__all__ = [
    "DEMO_INSTALL",
    "DEMO_SDKS",
    "DemoResult",
    "FakeLLMServer",
    "Reply",
    "anthropic_client",
    "demo_dsn",
    "genai_client",
    "missing_sdks",
    "openai_client",
    "run_demo",
]
