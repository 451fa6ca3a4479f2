"""The test suite; its folders mirror the package (otel_llmcost/<subsystem> -> tests/<subsystem>)."""
