"""Storage: reaching ClickHouse (embedded chdb or a server) and creating its schema.

- :mod:`.connection`: DSNs, clients, and the turn-taking lock on an embedded path;
- :mod:`.migrations`: the numbered SQL files in ``sql/`` (grouped by subject), applied
  idempotently, with ``{cluster}`` for ON CLUSTER / Replicated engines.
"""

from .connection import (
    DatabaseMissing,
    EmbeddedStoreMissing,
    StorageBusy,
    chdb_path,
    chdb_turn,
    check_dsn,
    configured_database,
    configured_dsn,
    connect,
    connect_waiting,
    embedded_available,
    is_busy_error,
    is_chdb,
    is_held,
    open_client,
    priority_turn,
    priority_waiting,
    redact_dsn,
    redact_text,
    turn,
)
from .migrations import (
    MAX_TTL_DAYS,
    ClusterLayout,
    SchemaConflict,
    check_identifier,
    migrate,
    render,
    rendered_statements,
)

__all__ = [
    "MAX_TTL_DAYS",
    "ClusterLayout",
    "DatabaseMissing",
    "EmbeddedStoreMissing",
    "SchemaConflict",
    "StorageBusy",
    "chdb_path",
    "chdb_turn",
    "check_dsn",
    "check_identifier",
    "configured_database",
    "configured_dsn",
    "connect",
    "connect_waiting",
    "embedded_available",
    "is_busy_error",
    "is_chdb",
    "is_held",
    "migrate",
    "open_client",
    "priority_turn",
    "priority_waiting",
    "redact_dsn",
    "redact_text",
    "render",
    "rendered_statements",
    "turn",
]
