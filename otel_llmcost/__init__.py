"""otel-llmcost: OpenTelemetry instrumentation that tells you what LLM calls cost.

Usage, with no code change::

    pip install "otel-llmcost[openai,embedded]"
    opentelemetry-instrument --traces_exporter llmcost python app.py   # embedded ClickHouse
    otel-llmcost report

or in code::

    from otel_llmcost import LLMCostInstrumentor
    LLMCostInstrumentor().instrument(tracer_provider=provider, meter_provider=meters)

Attribution for the calls made inside a block::

    import otel_llmcost as llmcost
    with llmcost.attributes(feature="search", team="growth", user=user_id):
        client.chat.completions.create(...)

Cost per successful task::

    with llmcost.task("ticket-42") as task:
        task.success = agent.run(ticket).resolved

Retrieved evidence and what the answer cited (token waste in RAG apps)::

    ev = llmcost.evidence({"kb-12": doc_text, "kb-40": other_text})
    client.chat.completions.create(...)
    ev.record_citations(["kb-40"])

What the app's own rate limiter decided (per user, route, tier)::

    llmcost.record_limiter_decision(limit="per-user", key=user_id, action="throttled", remaining=0)

Every setting (environment variable and ``instrument()`` keyword) is listed, with its
default, in :mod:`otel_llmcost.config` and docs/configuration.md.

The names below are imported on first use, so that ``import otel_llmcost`` (and the
``llmcost`` span exporter's entry point) stays cheap in the application's start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .budgets import BudgetExceeded
    from .instrumentation import LLMCostInstrumentor
    from .signals.attribution import attributes
    from .signals.evidence import evidence, record_citations
    from .signals.limiter import record_limiter_decision
    from .signals.outcomes import record_outcome, task

_PUBLIC = {
    "BudgetExceeded": "otel_llmcost.budgets",
    "LLMCostInstrumentor": "otel_llmcost.instrumentation",
    "attributes": "otel_llmcost.signals",
    "evidence": "otel_llmcost.signals",
    "record_citations": "otel_llmcost.signals",
    "record_limiter_decision": "otel_llmcost.signals",
    "record_outcome": "otel_llmcost.signals",
    "task": "otel_llmcost.signals",
}

__all__ = [
    "BudgetExceeded",
    "LLMCostInstrumentor",
    "__version__",
    "attributes",
    "evidence",
    "record_citations",
    "record_limiter_decision",
    "record_outcome",
    "task",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_llmcost' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
