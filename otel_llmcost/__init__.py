"""otel-llmcost: OpenTelemetry instrumentation that tells you what LLM calls cost.

Usage, with no code change::

    pip install "otel-llmcost[openai]"
    opentelemetry-instrument --traces_exporter llmcost python app.py   # embedded ClickHouse
    otel-llmcost report

or in code::

    from otel_llmcost import LLMCostInstrumentor
    LLMCostInstrumentor().instrument(tracer_provider=provider, meter_provider=meters)

Attribution for the calls made inside a block::

    import otel_llmcost as llmcost
    with llmcost.attributes(feature="search", team="growth", user=user_id):
        client.chat.completions.create(...)

Retrieved evidence and what the answer cited (token waste in RAG apps)::

    ev = llmcost.evidence({"kb-12": doc_text, "kb-40": other_text})
    client.chat.completions.create(...)
    ev.record_citations(["kb-40"])

What the app's own rate limiter decided (per user, route, tier)::

    llmcost.record_limiter_decision(limit="per-user", key=user_id, action="throttled", remaining=0)

Environment variables:

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    ``true`` records prompts and completions as span events (off by default).
``OTEL_LLMCOST_PRICES_FILE``
    YAML/JSON price overrides (USD per million tokens) that win over genai-prices.
``OTEL_LLMCOST_OPENAI_INCLUDE_USAGE``
    ``true`` adds ``stream_options.include_usage`` to OpenAI chat streams so usage is
    exact instead of estimated (off by default: it adds a final chunk with no choices).
``OTEL_LLMCOST_ESTIMATE_MISSING_USAGE``
    ``false`` disables local tiktoken counts when a provider returns no usage.
``OTEL_LLMCOST_USER_HASH_KEY``
    when set, user ids leave the process as an HMAC-SHA256 keyed hash.
``OTEL_LLMCOST_LIMITERS``
    ``limits``, ``slowapi`` (comma-separated) or ``all``: record those rate limiters'
    decisions with no code (otel_llmcost.limiter_adapters; off by default).
``OTEL_EXPORTER_LLMCOST_DSN`` / ``OTEL_EXPORTER_LLMCOST_DATABASE``
    where the ``llmcost`` span exporter writes (default: embedded chdb in the data dir).
``OTEL_LLMCOST_HOME``
    the data directory (default ``~/.local/share/otel-llmcost``).
"""

from .attribution import attributes
from .budgets import BudgetExceeded
from .instrumentor import LLMCostInstrumentor
from .limiter import record_limiter_decision
from .outcomes import record_outcome, task
from .retrieval import evidence, record_citations
from .version import __version__

__all__ = [
    "BudgetExceeded",
    "LLMCostInstrumentor",
    "attributes",
    "evidence",
    "record_citations",
    "record_limiter_decision",
    "record_outcome",
    "task",
    "__version__",
]
