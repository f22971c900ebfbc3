//! The `switchyard_responses` table (ledger schema version 6): one row per stored Responses
//! turn, in the ledger's database. The same portable SQL serves SQLite and PostgreSQL; both
//! ledger migration lists apply these statements as version 6.

/// Times are Unix seconds, as the Responses object's `created_at`. `expires_at` is NULL for a
/// turn kept until deleted (`responses.retention: keep`). The three JSON columns hold exactly
/// what the endpoints serve (docs/http-api.md, "Stored responses").
pub(crate) const RESPONSES_TABLE: &str = "CREATE TABLE IF NOT EXISTS switchyard_responses (
    id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    previous_response_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    input_items TEXT NOT NULL,
    output_items TEXT NOT NULL,
    response TEXT NOT NULL
)";

/// The sweeper deletes by expiry, oldest first.
pub(crate) const RESPONSES_INDEX_EXPIRES: &str =
    "CREATE INDEX IF NOT EXISTS switchyard_responses_expires ON switchyard_responses (expires_at)";

/// Lookups are by `id` (the primary key) and checked against the team; this index serves
/// an operator erasing or counting one team's stored conversations (docs/operations.md).
pub(crate) const RESPONSES_INDEX_TEAM: &str =
    "CREATE INDEX IF NOT EXISTS switchyard_responses_team ON switchyard_responses (team, created_at)";

/// Ledger schema version 6, for both backends' migration lists.
pub(crate) const MIGRATION_6: &[&str] = &[
    RESPONSES_TABLE,
    RESPONSES_INDEX_EXPIRES,
    RESPONSES_INDEX_TEAM,
];
