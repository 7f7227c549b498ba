-- What the metrics count per task, kept as the rows they count are written, so a period's
-- figures read one small row per task instead of walking the whole ledger and parsing
-- every model turn's JSON. Triggers keep them in the transaction that inserts the rows:
-- they can never disagree with the ledger and the event log, and the commit code does not
-- change. tool_calls and task_events rows are only ever inserted (never deleted), so the
-- tallies only ever grow.

-- Per task: its tool calls, and how many of its calls that are not safe to repeat repeat
-- an earlier call of the task with the same tool and canonical arguments (the only tasks
-- where the duplicate-action figure has anything to look at).
CREATE TABLE task_tallies (
    task_id     TEXT    PRIMARY KEY REFERENCES tasks (id),
    tool_calls  BIGINT  NOT NULL,
    repeats     BIGINT  NOT NULL
) WITHOUT ROWID;
CREATE INDEX task_tallies_repeats ON task_tallies (task_id) WHERE repeats > 0;

-- Per task and model: its model turns and the tokens they used (from each `model_turn`
-- event's `model` and `usage`; a model that counts no tokens adds turns only), with the
-- task's workflow and creation time (which never change), so the figures group and filter
-- these rows without looking up each task.
CREATE TABLE task_model_usage (
    task_id                      TEXT    NOT NULL REFERENCES tasks (id),
    model                        TEXT    NOT NULL,
    workflow                     TEXT    NOT NULL,
    created_at                   BIGINT  NOT NULL,
    turns                        BIGINT  NOT NULL,
    counted_turns                BIGINT  NOT NULL,
    input_tokens                 BIGINT  NOT NULL,
    output_tokens                BIGINT  NOT NULL,
    cache_creation_input_tokens  BIGINT  NOT NULL,
    cache_read_input_tokens      BIGINT  NOT NULL,
    PRIMARY KEY (task_id, model)
) WITHOUT ROWID;

-- One probe of the (task, tool, args_hash) index of calls that are not idempotent, and
-- one upsert of a narrow row, per call.
CREATE TRIGGER tool_calls_tally AFTER INSERT ON tool_calls
BEGIN
    INSERT INTO task_tallies (task_id, tool_calls, repeats)
    VALUES (NEW.task_id, 1,
            CASE WHEN NOT NEW.idempotent AND EXISTS (
                SELECT 1 FROM tool_calls c
                WHERE c.task_id = NEW.task_id AND c.tool = NEW.tool
                  AND c.args_hash = NEW.args_hash AND NOT c.idempotent AND c.id <> NEW.id)
            THEN 1 ELSE 0 END)
    ON CONFLICT (task_id) DO UPDATE
        SET tool_calls = tool_calls + 1, repeats = repeats + excluded.repeats;
END;

-- Only model turns: every other event pays for the WHEN test alone.
CREATE TRIGGER task_events_model_usage AFTER INSERT ON task_events
WHEN NEW.kind = 'model_turn'
BEGIN
    INSERT INTO task_model_usage (task_id, model, workflow, created_at, turns, counted_turns,
        input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens)
    VALUES (NEW.task_id, COALESCE(json_extract(NEW.body, '$.model'), ''),
            COALESCE((SELECT workflow_name FROM tasks WHERE id = NEW.task_id), ''),
            COALESCE((SELECT created_at FROM tasks WHERE id = NEW.task_id), 0), 1,
            json_extract(NEW.body, '$.usage.input_tokens') IS NOT NULL,
            COALESCE(json_extract(NEW.body, '$.usage.input_tokens'), 0),
            COALESCE(json_extract(NEW.body, '$.usage.output_tokens'), 0),
            COALESCE(json_extract(NEW.body, '$.usage.cache_creation_input_tokens'), 0),
            COALESCE(json_extract(NEW.body, '$.usage.cache_read_input_tokens'), 0))
    ON CONFLICT (task_id, model) DO UPDATE SET
        turns = turns + 1,
        counted_turns = counted_turns + excluded.counted_turns,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = cache_read_input_tokens + excluded.cache_read_input_tokens;
END;

-- What was written before this migration.
INSERT INTO task_tallies (task_id, tool_calls, repeats)
SELECT task_id, COUNT(*),
       SUM(CASE WHEN NOT idempotent THEN 1 ELSE 0 END)
         - COUNT(DISTINCT CASE WHEN NOT idempotent THEN tool || ' ' || args_hash END)
FROM tool_calls GROUP BY task_id;

INSERT INTO task_model_usage (task_id, model, workflow, created_at, turns, counted_turns,
    input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens)
SELECT e.task_id, COALESCE(json_extract(e.body, '$.model'), ''), t.workflow_name, t.created_at,
       COUNT(*),
       COUNT(json_extract(e.body, '$.usage.input_tokens')),
       COALESCE(SUM(json_extract(e.body, '$.usage.input_tokens')), 0),
       COALESCE(SUM(json_extract(e.body, '$.usage.output_tokens')), 0),
       COALESCE(SUM(json_extract(e.body, '$.usage.cache_creation_input_tokens')), 0),
       COALESCE(SUM(json_extract(e.body, '$.usage.cache_read_input_tokens')), 0)
FROM task_events e JOIN tasks t ON t.id = e.task_id
WHERE e.kind = 'model_turn'
GROUP BY e.task_id, COALESCE(json_extract(e.body, '$.model'), '');
