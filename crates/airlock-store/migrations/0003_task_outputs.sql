-- Each completed state's output in its own row, so a step's commit writes only the output
-- it produced instead of rewriting every output of the task (which made long tasks slow
-- down step by step). `tasks.state` is no longer written; what it held moves here.
CREATE TABLE task_outputs (
    task_id     TEXT  NOT NULL REFERENCES tasks (id),
    state_name  TEXT  NOT NULL,
    output      TEXT  NOT NULL,
    PRIMARY KEY (task_id, state_name)
);

INSERT INTO task_outputs (task_id, state_name, output)
    SELECT t.id, j.key, j.value FROM tasks t, json_each(t.state) j WHERE json_valid(t.state);
UPDATE tasks SET state = '{}';
