"""Instrumentation: the patches, the life of a call, and what it records.

- :mod:`.instrumentor`: ``LLMCostInstrumentor`` (the OpenTelemetry entry point);
- :mod:`.package`: supported version ranges and the version guard;
- :mod:`.patching`: the one patch engine (applied on import, removed exactly);
- :mod:`.wrappers`: the wrappers around SDK methods and SDK internals;
- :mod:`.telemetry`: what calls share (runtime, instruments, pricer, anatomy, budgets);
- :mod:`.call`: one call from start to its single end; :mod:`.attributes` what it records;
- :mod:`.streams`: the proxies that see streams and raw responses to their end;
- :mod:`.anatomy`, :mod:`.tokens`, :mod:`.hashing`: the prompt's components, tokens and hashes;
- :mod:`.similarity`: the last user message's similarity sketch (near-duplicate requests);
- :mod:`.metrics`: the metric instruments.
"""

from .instrumentor import LLMCostInstrumentor

__all__ = ["LLMCostInstrumentor"]
