-- The audit log. Append-only: rows are inserted, never updated or deleted. Each row is
-- chained to the one before it by hash (the formula is in airlock-store/src/audit.rs), so
-- `airlock audit verify` detects a changed or deleted row. No foreign key to tasks: an
-- entry may be about no task, and must outlive anything it names.
CREATE TABLE audit_log (
    seq        BIGINT  PRIMARY KEY,
    at         BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    task_id    TEXT,
    body       TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX audit_log_by_task ON audit_log (task_id, seq);
