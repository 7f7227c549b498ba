-- Long-lived memory: facts about a subject (a customer, an employee, an account) that
-- outlive one task, each with where it came from. An entry is never edited in place: a
-- correction is a new entry that supersedes the old one; a deletion keeps a tombstone
-- (who and when) and drops the content.
CREATE TABLE memory (
    id             TEXT    PRIMARY KEY,
    subject        TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    entry_key      TEXT    NOT NULL,
    value          TEXT,
    text           TEXT    NOT NULL,
    source_task    TEXT,
    source_step    BIGINT,
    source_person  TEXT,
    created_at     BIGINT  NOT NULL,
    superseded_by  TEXT,
    deleted_at     BIGINT,
    deleted_by     TEXT
);
CREATE INDEX memory_by_subject ON memory (subject, category, created_at);

-- Full-text search over the entries' text (SQLite FTS5; a Postgres backend would use
-- tsvector). Kept in step with `memory` by the store, inside the same transaction.
CREATE VIRTUAL TABLE memory_text USING fts5 (id UNINDEXED, text);
