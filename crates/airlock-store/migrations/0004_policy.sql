-- Policy and approvals of tool calls.
-- An approval may hold one proposed tool call (a policy said `require_approval`): the call
-- as proposed, the rule and the values that required it, and who may decide. JSON as TEXT.
ALTER TABLE approvals ADD COLUMN held_call TEXT;
-- The arguments an approver changed before approving (the held call keeps the original).
ALTER TABLE approvals ADD COLUMN edited_args TEXT;

-- Distinct approvers of an approval that needs more than one; the approval is decided
-- when enough have voted (a rejection decides it at once).
CREATE TABLE approval_votes (
    approval_id  TEXT    NOT NULL REFERENCES approvals (id),
    voter        TEXT    NOT NULL,
    roles        TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    PRIMARY KEY (approval_id, voter)
);

-- Scoped, revocable permissions a person gave instead of approving call by call.
CREATE TABLE grants (
    id             TEXT    PRIMARY KEY,
    tool           TEXT    NOT NULL,
    workflow       TEXT,
    task_id        TEXT,
    condition      TEXT,
    max_uses       BIGINT,
    uses           BIGINT  NOT NULL DEFAULT 0,
    expires_at     BIGINT,
    created_by     TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    from_approval  TEXT,
    note           TEXT,
    revoked_at     BIGINT,
    revoked_by     TEXT,
    CHECK (max_uses IS NULL OR uses <= max_uses)
);
CREATE INDEX grants_live ON grants (revoked_at, expires_at);

-- Every policy version an engine has decided under, with its text.
CREATE TABLE policy_versions (
    version    TEXT    PRIMARY KEY,
    path       TEXT,
    source     TEXT    NOT NULL,
    loaded_at  BIGINT  NOT NULL
);
