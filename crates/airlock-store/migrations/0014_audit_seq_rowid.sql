-- The audit log keyed by its rowid. `seq BIGINT PRIMARY KEY` is a unique index beside the
-- table's own rowid, so every append wrote a page of each: one B-tree more per commit
-- than the log needs. Only `INTEGER PRIMARY KEY` makes `seq` the rowid itself. The rows,
-- their order and their hashes are copied as they are, so the chain still verifies.
CREATE TABLE audit_log_0014 (
    seq        INTEGER PRIMARY KEY,
    at         BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    task_id    TEXT,
    body       TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
INSERT INTO audit_log_0014 (seq, at, kind, actor, task_id, body, prev_hash, hash)
    SELECT seq, at, kind, actor, task_id, body, prev_hash, hash FROM audit_log
    WHERE typeof(seq) = 'integer' ORDER BY seq;
-- A `seq` that is not an integer can only come from someone editing the file, and cannot
-- be a rowid: such rows are kept aside as they are, for `airlock audit verify` to report,
-- rather than fail the migration and leave the store unable to open.
CREATE TABLE audit_log_unkeyed AS SELECT * FROM audit_log WHERE typeof(seq) <> 'integer';
DROP TABLE audit_log;
ALTER TABLE audit_log_0014 RENAME TO audit_log;
CREATE INDEX audit_log_by_task ON audit_log (task_id, seq);
