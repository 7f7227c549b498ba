-- Airlock store, version 1.
-- Portable SQL on purpose (a Postgres backend will follow): no SQLite-only types,
-- timestamps are integer milliseconds since the Unix epoch, JSON is stored as TEXT.

CREATE TABLE workflows (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    origin      TEXT,
    created_at  BIGINT  NOT NULL,
    UNIQUE (name, version),
    UNIQUE (name, hash)
);

-- Engines that have opened this store; leases name one of them.
CREATE TABLE engines (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           BIGINT  NOT NULL,
    pid_started   TEXT    NOT NULL,
    started_at    BIGINT  NOT NULL,
    heartbeat_at  BIGINT  NOT NULL
);

-- The projection of each task's event log (task_events is the truth).
CREATE TABLE tasks (
    id                 TEXT    PRIMARY KEY,
    workflow_id        INTEGER NOT NULL REFERENCES workflows (id),
    workflow_name      TEXT    NOT NULL,
    requester          TEXT    NOT NULL,
    inputs             TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN
        ('running', 'waiting_approval', 'in_doubt', 'quarantined', 'succeeded', 'failed', 'cancelled')),
    current_state      TEXT,
    step_no            BIGINT  NOT NULL,
    attempt            BIGINT  NOT NULL,
    phase              TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    error              TEXT,
    wake_at            BIGINT,
    recovery_failures  BIGINT  NOT NULL DEFAULT 0,
    last_seq           BIGINT  NOT NULL,
    cancel_requested   TEXT,
    lease_owner        TEXT,
    lease_expires_at   BIGINT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);
CREATE INDEX tasks_by_status ON tasks (status, wake_at);
CREATE INDEX tasks_by_lease ON tasks (lease_owner);

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE task_events (
    task_id  TEXT    NOT NULL REFERENCES tasks (id),
    seq      BIGINT  NOT NULL,
    at       BIGINT  NOT NULL,
    kind     TEXT    NOT NULL,
    body     TEXT    NOT NULL,
    PRIMARY KEY (task_id, seq)
);

CREATE TABLE steps (
    task_id     TEXT    NOT NULL REFERENCES tasks (id),
    step_no     BIGINT  NOT NULL,
    state_name  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    attempts    BIGINT  NOT NULL,
    started_at  BIGINT  NOT NULL,
    ended_at    BIGINT,
    outcome     TEXT,
    error       TEXT,
    PRIMARY KEY (task_id, step_no)
);

-- The tool-call ledger: the intent is inserted before the call, the outcome set after.
CREATE TABLE tool_calls (
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
    intent_at        BIGINT  NOT NULL,
    outcome          TEXT CHECK (outcome IN ('succeeded', 'failed', 'in_doubt', 'happened', 'not_happened')),
    result           TEXT,
    error            TEXT,
    outcome_at       BIGINT,
    resolved_by      TEXT,
    UNIQUE (task_id, step_no, attempt, call_index)
);
CREATE INDEX tool_calls_by_task ON tool_calls (task_id, step_no);
CREATE INDEX tool_calls_by_key ON tool_calls (idempotency_key);

CREATE TABLE approvals (
    id              TEXT    PRIMARY KEY,
    task_id         TEXT    NOT NULL REFERENCES tasks (id),
    step_no         BIGINT  NOT NULL,
    state_name      TEXT    NOT NULL,
    tool_call_id    TEXT,
    args_hash       TEXT,
    policy_version  TEXT,
    prompt          TEXT    NOT NULL,
    approvers       TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    requested_at    BIGINT  NOT NULL,
    expires_at      BIGINT,
    decided_at      BIGINT,
    decided_by      TEXT,
    reason          TEXT,
    -- a decided approval cannot look pending, and a pending one carries no decision
    CHECK ((status = 'pending' AND decided_at IS NULL) OR (status <> 'pending' AND decided_at IS NOT NULL))
);
CREATE INDEX approvals_by_status ON approvals (status, expires_at);
