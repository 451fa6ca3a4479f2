-- title: Retrieved evidence: sent vs cited
-- Evidence tokens sent and cited per endpoint, and the input dollars spent on evidence no
-- answer cited (calls whose citations were recorded).
SELECT
    ServiceName,
    Endpoint,
    sum(Calls) AS Calls,
    sum(CallsWithCitations) AS CallsWithCitations,
    sum(ItemsSent) AS Items,
    sum(ItemsCited) AS ItemsCited,
    sum(EvidenceTokensSent) AS TokensSent,
    sum(EvidenceTokensCited) AS TokensCited,
    sum(EvidenceTokensNeverCited) AS TokensNeverCited,
    round(TokensCited / nullIf(TokensCited + TokensNeverCited, 0), 4) AS CitedShare,
    round(sum(NeverCitedUsd), 6) AS NeverCitedUsd
FROM {db}.v_evidence_waste_hourly(since_hours = {since_hours:UInt32})
WHERE Hour >= toStartOfHour(now() - toIntervalHour({since_hours:UInt32}))
GROUP BY
    ServiceName,
    Endpoint
ORDER BY NeverCitedUsd DESC, TokensSent DESC
LIMIT {limit:UInt32}
