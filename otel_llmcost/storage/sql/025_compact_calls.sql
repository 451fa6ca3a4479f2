-- The codecs of llm_calls (issue 22, item 3; the figures are in 002_calls.sql), for
-- databases created before them: 002 creates the table with these codecs, but a table that
-- exists keeps its columns as they are (upgrade mode only adds missing ones).
--
-- Each MODIFY COLUMN keeps the column's type and changes only its codec: ClickHouse only
-- changes the metadata (no mutation, no row rewritten, instant at any size), and a
-- second application does nothing. Parts written before keep their old codec until a merge
-- rewrites them; `OPTIMIZE TABLE otel.llm_calls FINAL` recompresses them all at once.
-- Every definition here is its column's in 002 (tests/storage/test_sql_upgrade.py checks it).
ALTER TABLE {database}.llm_calls {cluster}
    MODIFY COLUMN Timestamp DateTime64(9) CODEC(Delta(8), T64('bit'), ZSTD(1)),
    MODIFY COLUMN ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Provider LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Operation LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Endpoint LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Feature LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Team LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN User String CODEC(ZSTD(3)),
    MODIFY COLUMN StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN HttpStatus UInt16 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN TtftMs Nullable(Float64) CODEC(ZSTD(1)),
    MODIFY COLUMN Stream UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN Unpriced UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN Estimated UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN Throttled UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN ThrottledAttempts UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RetryCount UInt32 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RetryAfterS Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN RateLimitRequestsRemaining Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RateLimitRequestsLimit Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RateLimitTokensRemaining Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN RateLimitTokensLimit Nullable(Int64) CODEC(T64, ZSTD(1)),
    MODIFY COLUMN CacheWriteTtl LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN CacheBreakevenReads Float64 CODEC(ZSTD(1)),
    MODIFY COLUMN PriceSource LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceVersion LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceProvider LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN PriceVariant LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN CostReported Nullable(Float64) CODEC(ZSTD(1)),
    MODIFY COLUMN CostReportedSource LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Tier LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Implausible UInt8 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN FinishReason LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN OriginalModel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN Background Nullable(UInt8) CODEC(T64, ZSTD(1));
