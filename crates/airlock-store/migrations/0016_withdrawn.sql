-- airlock: rebuilds approvals tool_calls
-- (`approval_votes` refers to `approvals`, which is rebuilt below: the runner turns
-- foreign keys off around this migration and checks the references of the tables it
-- names before its commit, as SQLite's own procedure for changing a table's schema asks.)
--
-- A task cancelled while an approval of it was pending withdraws that approval: nobody
-- decided it, so it must not read as a person's rejection (it did, with the canceller as
-- the one who rejected, counted among rejections and corrections, and listed under
-- "rejected by" for someone who may not even have been allowed to reject it). The
-- approval's status gains `withdrawn` (`decided_by` is who cancelled), and a call it held
-- gets a ledger row refused by `cancel` (`rejected_by` stays for people who rejected).
-- SQLite cannot change a CHECK in place: both tables are rebuilt (create, copy, drop,
-- rename) with their indexes and triggers. A Postgres port changes the two constraints.

CREATE TABLE approvals_0016 (
    id              TEXT    PRIMARY KEY,
    task_id         TEXT    NOT NULL REFERENCES tasks (id),
    step_no         BIGINT  NOT NULL,
    state_name      TEXT    NOT NULL,
    tool_call_id    TEXT,
    args_hash       TEXT,
    policy_version  TEXT,
    prompt          TEXT    NOT NULL,
    approvers       TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'withdrawn')),
    requested_at    BIGINT  NOT NULL,
    expires_at      BIGINT,
    decided_at      BIGINT,
    decided_by      TEXT,
    reason          TEXT,
    held_call       TEXT,
    edited_args     TEXT,
    -- a decided approval cannot look pending, and a pending one carries no decision
    CHECK ((status = 'pending' AND decided_at IS NULL) OR (status <> 'pending' AND decided_at IS NOT NULL))
);

INSERT INTO approvals_0016 (id, task_id, step_no, state_name, tool_call_id, args_hash,
    policy_version, prompt, approvers, status, requested_at, expires_at, decided_at,
    decided_by, reason, held_call, edited_args)
SELECT id, task_id, step_no, state_name, tool_call_id, args_hash,
    policy_version, prompt, approvers, status, requested_at, expires_at, decided_at,
    decided_by, reason, held_call, edited_args
FROM approvals;

-- Approvals withdrawn before this migration were recorded as rejected by whoever
-- cancelled: a "rejection" of a cancelled task that no decision event records (a
-- person's rejection always writes `approval_decided` or `call_approval_decided`; a
-- cancel wrote only `cancelled`). A workflow may also end in a state whose status is
-- `cancelled` after a real rejection: that one has its decision event, and stays.
UPDATE approvals_0016 SET status = 'withdrawn'
WHERE status = 'rejected'
  AND EXISTS (SELECT 1 FROM task_events e
              WHERE e.task_id = approvals_0016.task_id AND e.kind = 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM task_events e
                  WHERE e.task_id = approvals_0016.task_id
                    AND e.kind IN ('approval_decided', 'call_approval_decided')
                    AND json_extract(e.body, '$.approval_id') = approvals_0016.id);

DROP TABLE approvals;
ALTER TABLE approvals_0016 RENAME TO approvals;
CREATE INDEX approvals_by_status ON approvals (status, expires_at);
CREATE INDEX approvals_by_task ON approvals (task_id);

CREATE TABLE tool_calls_0016 (
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
    -- (rejected), `expiry` (nobody decided before the approval expired), `cancel` (its
    -- task was cancelled while it waited for approval), `check` (a tool the step may not
    -- use, arguments that break the tool's schema, a changed tool held for review). The
    -- sentence saying why is in `error`.
    refused_by       TEXT CHECK (refused_by IN ('policy', 'person', 'expiry', 'cancel', 'check')),
    -- The rule that denied it, or that asked for the approval that was rejected, expired
    -- or withdrawn.
    refusal_rule     TEXT,
    -- The approval's id (rejected, expired, withdrawn, or approved and then denied).
    refusal_ref      TEXT,
    -- Who rejected it (`person`), or who cancelled its task (`cancel`).
    rejected_by      TEXT,
    UNIQUE (task_id, step_no, attempt, call_index),
    -- A refused row says what refused it, and only a refused row does. (Outcome NULL, an
    -- intent, takes the ELSE branch.)
    CHECK (CASE WHEN outcome = 'refused' THEN refused_by IS NOT NULL
                ELSE refused_by IS NULL END)
);

INSERT INTO tool_calls_0016 (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
    idempotency_key, idempotent, intent_at, outcome, result, error, outcome_at, resolved_by,
    allowed_by, allow_rule, allow_ref, approved_by, refused_by, refusal_rule, refusal_ref,
    rejected_by)
SELECT id, task_id, step_no, attempt, call_index, tool, args, args_hash,
    idempotency_key, idempotent, intent_at, outcome, result, error, outcome_at, resolved_by,
    allowed_by, allow_rule, allow_ref, approved_by, refused_by, refusal_rule, refusal_ref,
    rejected_by
FROM tool_calls;

-- The calls those withdrawn approvals held, refused before this migration as if the
-- canceller had rejected them.
UPDATE tool_calls_0016 SET refused_by = 'cancel'
WHERE refused_by = 'person'
  AND refusal_ref IN (SELECT id FROM approvals WHERE status = 'withdrawn');

-- Drops the old table's indexes and triggers with it.
DROP TABLE tool_calls;
ALTER TABLE tool_calls_0016 RENAME TO tool_calls;

-- The indexes of migrations 0006, 0011 and 0013, as they were.
CREATE INDEX tool_calls_actions ON tool_calls (task_id, tool, args_hash) WHERE NOT idempotent;
CREATE INDEX tool_calls_doubted ON tool_calls (task_id)
    WHERE outcome IN ('in_doubt', 'happened', 'not_happened');
CREATE INDEX tool_calls_failed ON tool_calls (task_id) WHERE outcome = 'failed';
CREATE INDEX tool_calls_by_time ON tool_calls (intent_at, id);
CREATE INDEX tool_calls_refused ON tool_calls (refused_by, intent_at, id)
    WHERE refused_by IS NOT NULL;

-- The triggers of migrations 0012 and 0015, as they were.
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

CREATE TRIGGER tool_calls_tools AFTER INSERT ON tool_calls
WHEN NOT EXISTS (SELECT 1 FROM ledger_tools WHERE tool = NEW.tool)
BEGIN
    INSERT INTO ledger_tools (tool) VALUES (NEW.tool);
END;
