-- What let each call through the policy, on its ledger row, so the history of every call
-- can be filtered by decision and approver without reading the task events; and the
-- order the history reads the ledger in.

-- `policy`: a rule allowed it; `grant`: a person's grant covered it; `approval`: people
-- approved it (`approved_by` completed the decision). NULL only on a row whose decision
-- could not be found in its task's events when this migration ran.
ALTER TABLE tool_calls ADD COLUMN allowed_by TEXT
    CHECK (allowed_by IN ('policy', 'grant', 'approval'));
-- The policy rule that decided the call (for an approval: the rule in force when it ran).
ALTER TABLE tool_calls ADD COLUMN allow_rule TEXT;
-- The grant's or the approval's id.
ALTER TABLE tool_calls ADD COLUMN allow_ref TEXT;
ALTER TABLE tool_calls ADD COLUMN approved_by TEXT;

-- Newest first, keyset-paged: `(intent_at, id) < (?, ?) ORDER BY intent_at DESC, id DESC`
-- walks this index instead of sorting the ledger (about 50 ms for 100,000 calls without
-- it, under 1 ms with it). Intents arrive in time order, so each insert lands on the
-- index's last page; the cost per call is in docs/benchmarks.md.
CREATE INDEX tool_calls_by_time ON tool_calls (intent_at, id);

-- Rows written before this migration: their decision is the `policy_decided` event of the
-- same task, step and call index just before the call's `tool_called` event (the gate's
-- events and the intent are drafted together). SQLite's JSON functions; a Postgres port
-- writes these with `->>`.
UPDATE tool_calls SET
    allowed_by = d.allowed_by, allow_rule = d.rule, allow_ref = d.ref, approved_by = d.approver
FROM (
    SELECT c.id AS call_id,
        CASE
            WHEN json_extract(p.body, '$.via') LIKE 'grant %' THEN 'grant'
            WHEN json_extract(p.body, '$.via') LIKE 'approval %' THEN 'approval'
            ELSE 'policy'
        END AS allowed_by,
        json_extract(p.body, '$.rule') AS rule,
        CASE
            WHEN json_extract(p.body, '$.via') LIKE 'grant %'
                THEN substr(json_extract(p.body, '$.via'), 7)
            WHEN json_extract(p.body, '$.via') LIKE 'approval %'
                THEN substr(json_extract(p.body, '$.via'), 10,
                    instr(substr(json_extract(p.body, '$.via'), 10) || ' ', ' ') - 1)
        END AS ref,
        CASE
            WHEN json_extract(p.body, '$.via') LIKE 'approval % by %'
                THEN substr(json_extract(p.body, '$.via'),
                    instr(json_extract(p.body, '$.via'), ' by ') + 4)
        END AS approver
    FROM tool_calls c
    JOIN task_events e ON e.task_id = c.task_id AND e.kind = 'tool_called'
        AND json_extract(e.body, '$.call_id') = c.id
    JOIN task_events p ON p.task_id = c.task_id AND p.seq = e.seq - 1
        AND p.kind = 'policy_decided'
) AS d
WHERE tool_calls.id = d.call_id;
