-- Indexes on the tool-call ledger that cost a B-tree write for every ledger row (every
-- tool step) and serve nothing another index does not:
-- `tool_calls_by_task (task_id, step_no)` is a prefix of the index behind
-- `UNIQUE (task_id, step_no, attempt, call_index)`, which serves every query it served (a
-- task's calls in order; counting calls per task, from the index alone);
-- `tool_calls_by_key (idempotency_key)` is read by no query (a call is found by its id,
-- or through its task).
DROP INDEX tool_calls_by_task;
DROP INDEX tool_calls_by_key;
