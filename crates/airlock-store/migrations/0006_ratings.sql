-- Ratings people leave on finished tasks, and the indexes the metrics read through.

-- A 1-5 rating and an optional comment on a finished task. Rows are only inserted: a task
-- re-rated keeps its earlier ratings as history, and the newest one (by rated_at, then id)
-- is the one the satisfaction figures count.
CREATE TABLE task_ratings (
    id        INTEGER PRIMARY KEY,
    task_id   TEXT    NOT NULL REFERENCES tasks (id),
    rating    INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment   TEXT,
    rated_by  TEXT    NOT NULL,
    rated_at  BIGINT  NOT NULL
);
CREATE INDEX task_ratings_by_task ON task_ratings (task_id, rated_at);

-- Metrics take the tasks created in a period, optionally of one workflow.
CREATE INDEX tasks_by_created ON tasks (created_at);
CREATE INDEX tasks_by_workflow ON tasks (workflow_name, created_at);
CREATE INDEX approvals_by_task ON approvals (task_id);
-- Duplicate actions: calls of one task with the same tool and arguments, found by walking
-- this index instead of sorting the ledger. Only calls that are not safe to repeat.
CREATE INDEX tool_calls_actions ON tool_calls (task_id, tool, args_hash) WHERE NOT idempotent;
-- The rare rows some figures need, so they are found without visiting every row.
CREATE INDEX tool_calls_doubted ON tool_calls (task_id)
    WHERE outcome IN ('in_doubt', 'happened', 'not_happened');
CREATE INDEX tool_calls_failed ON tool_calls (task_id) WHERE outcome = 'failed';
CREATE INDEX task_events_model_turns ON task_events (task_id) WHERE kind = 'model_turn';
CREATE INDEX task_events_quarantines ON task_events (task_id) WHERE kind = 'quarantined';
CREATE INDEX steps_checks ON steps (task_id) WHERE kind = 'check';
