"""otel_llmcost.instrumentation: the instrumentor, patching and version guards, the call lifecycle, anatomy."""
