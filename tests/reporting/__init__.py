"""otel_llmcost.reporting: report queries, the prefix verdict, and the HTML report in chromium."""
