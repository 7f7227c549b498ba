-- Lessons: what people's corrections teach a workflow. Proposed from rejections with a
-- reason, edited arguments, failed outcome checks and low ratings; a person accepts (maybe
-- rewording), or dismisses each; accepted ones go into that workflow's agent context.
CREATE TABLE lessons (
    id           TEXT    PRIMARY KEY,
    workflow     TEXT    NOT NULL,
    source       TEXT    NOT NULL CHECK (source IN ('rejection', 'edit', 'failed_check', 'low_rating', 'policy')),
    source_ref   TEXT    NOT NULL,
    task_id      TEXT,
    text         TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('proposed', 'accepted', 'dismissed')),
    created_at   BIGINT  NOT NULL,
    reviewed_by  TEXT,
    reviewed_at  BIGINT,
    -- a reviewed lesson says who reviewed it; a proposed one has no reviewer
    CHECK ((status = 'proposed' AND reviewed_at IS NULL) OR (status <> 'proposed' AND reviewed_at IS NOT NULL))
);
CREATE INDEX lessons_by_workflow ON lessons (workflow, status);
