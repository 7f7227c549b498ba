-- Proposed calls that were refused (a policy rule denied them, a person rejected them, their
-- approval expired, or the static checks stopped them) get a ledger row too, so the history
-- of every call shows what was tried and stopped, and why. Such a row is written whole, in
-- the commit that records the refusal: its outcome is `refused` from the start, so there is
-- never an intent without an outcome to mistake for a call in doubt, and the CHECK below
-- keeps a refused row from ever turning into anything else (or anything else into one).
--
-- `outcome` gains a value, and SQLite cannot change a CHECK constraint in place: the table
-- is rebuilt (create, copy, drop, rename), with its indexes and its trigger. A Postgres
-- port does the same with `ALTER TABLE tool_calls DROP CONSTRAINT … , ADD CONSTRAINT …`.
-- Nothing references tool_calls by foreign key, so dropping the old table deletes nothing
-- elsewhere.

CREATE TABLE tool_calls_0012 (
    id               TEXT    PRIMARY KEY,
    task_id          TEXT    NOT NULL REFERENCES tasks (id),
    step_no          BIGINT  NOT NULL,
    attempt          BIGINT  NOT NULL,
    call_index       BIGINT  NOT NULL,
    tool             TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    args_hash        TEXT    NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    idempotent       BOOLEAN NOT NULL,
    -- For a refused call: when it was refused (there was no intent).
    intent_at        BIGINT  NOT NULL,
    outcome          TEXT CHECK (outcome IN
        ('succeeded', 'failed', 'in_doubt', 'happened', 'not_happened', 'refused')),
    result           TEXT,
    error            TEXT,
    outcome_at       BIGINT,
    resolved_by      TEXT,
    allowed_by       TEXT CHECK (allowed_by IN ('policy', 'grant', 'approval')),
    allow_rule       TEXT,
    allow_ref        TEXT,
    approved_by      TEXT,
    -- What refused the call: `policy` (a rule denied it, or no rule allowed it; also a call
    -- people approved that the policy in force denied when it was about to run), `person`
    -- (rejected), `expiry` (nobody decided before the approval expired), `check` (a tool
    -- the step may not use, arguments that break the tool's schema, a changed tool held
    -- for review). The sentence saying why is in `error`.
    refused_by       TEXT CHECK (refused_by IN ('policy', 'person', 'expiry', 'check')),
    -- The rule that denied it, or that asked for the approval that was rejected or expired.
    refusal_rule     TEXT,
    -- The approval's id (rejected, expired, or approved and then denied).
    refusal_ref      TEXT,
    -- Who rejected it.
    rejected_by      TEXT,
    UNIQUE (task_id, step_no, attempt, call_index),
    -- A refused row says what refused it, and only a refused row does. (Outcome NULL, an
    -- intent, takes the ELSE branch.)
    CHECK (CASE WHEN outcome = 'refused' THEN refused_by IS NOT NULL
                ELSE refused_by IS NULL END)
);

INSERT INTO tool_calls_0012 (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
    idempotency_key, idempotent, intent_at, outcome, result, error, outcome_at, resolved_by,
    allowed_by, allow_rule, allow_ref, approved_by)
SELECT id, task_id, step_no, attempt, call_index, tool, args, args_hash,
    idempotency_key, idempotent, intent_at, outcome, result, error, outcome_at, resolved_by,
    allowed_by, allow_rule, allow_ref, approved_by
FROM tool_calls;

-- Drops the old table's indexes and its tally trigger with it.
DROP TABLE tool_calls;
ALTER TABLE tool_calls_0012 RENAME TO tool_calls;

-- The indexes of migrations 0006 and 0011, as they were.
CREATE INDEX tool_calls_actions ON tool_calls (task_id, tool, args_hash) WHERE NOT idempotent;
CREATE INDEX tool_calls_doubted ON tool_calls (task_id)
    WHERE outcome IN ('in_doubt', 'happened', 'not_happened');
CREATE INDEX tool_calls_failed ON tool_calls (task_id) WHERE outcome = 'failed';
CREATE INDEX tool_calls_by_time ON tool_calls (intent_at, id);

-- Migration 0010's tally, for calls that were made (or may have been): a refused call is
-- not a tool call of the task in the metrics, and never a repeat of one (the tally's
-- `repeats` finds the duplicate-action candidates).
CREATE TRIGGER tool_calls_tally AFTER INSERT ON tool_calls
WHEN NEW.outcome IS NULL OR NEW.outcome <> 'refused'
BEGIN
    INSERT INTO task_tallies (task_id, tool_calls, repeats)
    VALUES (NEW.task_id, 1,
            CASE WHEN NOT NEW.idempotent AND EXISTS (
                SELECT 1 FROM tool_calls c
                WHERE c.task_id = NEW.task_id AND c.tool = NEW.tool
                  AND c.args_hash = NEW.args_hash AND NOT c.idempotent AND c.id <> NEW.id
                  AND (c.outcome IS NULL OR c.outcome <> 'refused'))
            THEN 1 ELSE 0 END)
    ON CONFLICT (task_id) DO UPDATE
        SET tool_calls = tool_calls + 1, repeats = repeats + excluded.repeats;
END;
