-- Which migration files this database has applied, and the checksum of each as rendered.
-- `migrate` skips a file whose checksum is unchanged; a new or edited file is applied in
-- upgrade mode (new columns added, materialized view queries and views replaced), so a
-- database created by an older otel-llmcost catches up instead of failing on new views.

CREATE TABLE IF NOT EXISTS {database}.llmcost_schema_files {cluster} (
    File String,
    Checksum String,
    AppliedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = {merge_tree}
ORDER BY (File, AppliedAt);
