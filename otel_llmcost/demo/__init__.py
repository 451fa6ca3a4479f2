"""The demo: a realistic workload through the real SDKs against a local fake provider.

- :mod:`.workload`: ``otel-llmcost demo``, fifteen days of traffic into embedded ClickHouse;
- :mod:`.fakes`: the fake OpenAI, Anthropic and Gemini HTTP APIs (an httpx/httpx2
  ``MockTransport`` handler) that the demo, the tests and the benchmarks use.
"""

from .fakes import FakeLLMServer, Reply, anthropic_client, genai_client, openai_client
from .workload import DemoResult, demo_dsn, run_demo

__all__ = [
    "DemoResult",
    "FakeLLMServer",
    "Reply",
    "anthropic_client",
    "demo_dsn",
    "genai_client",
    "openai_client",
    "run_demo",
]
