-- title: Output side: truncation and verbosity
-- Per endpoint: the share of answers cut at the token limit (of the calls that recorded a
-- finish reason), output tokens per call (mean and p95), output as a share of max_tokens
-- where the request set one, and the output share of spend.
SELECT
    ServiceName,
    Endpoint,
    Calls,
    Truncated,
    round(TruncationRate, 4) AS TruncationRate,
    round(AvgOutputTokens, 1) AS AvgOutputTokens,
    round(P95OutputTokens, 1) AS P95OutputTokens,
    CallsWithMaxTokens,
    round(MaxTokensUsedShare, 4) AS MaxTokensUsedShare,
    round(OutputCostUsd, 6) AS OutputCostUsd,
    round(OutputCostShare, 4) AS OutputCostShare
FROM {db}.v_output_by_endpoint(since_hours = {since_hours:UInt32})
ORDER BY OutputCostUsd DESC, Calls DESC
LIMIT {limit:UInt32}
