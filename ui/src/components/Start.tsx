// Start: pick a workflow of the workspace and fill in a form generated from its inputs.
import { useState, type SyntheticEvent } from "react";
import { useAction } from "../action";
import { listWorkflows, startTask } from "../api";
import type { InputInfo } from "../bindings/InputInfo";
import type { WorkflowInfo } from "../bindings/WorkflowInfo";
import { useLive } from "../live";
import { FilePath } from "./FilePath";
import { NotReady } from "./Panel";
import { Problem } from "./Problem";

type Values = Record<string, string | boolean>;

/** The form's starting values: defaults where the workflow has them. */
function initialValues(workflow: WorkflowInfo): Values {
  const values: Values = {};
  for (const input of workflow.inputs) {
    const value = input.default;
    if (input.type === "boolean") {
      values[input.name] = value === true;
    } else if (value === null || value === undefined) {
      values[input.name] = "";
    } else if (typeof value === "string") {
      values[input.name] = value;
    } else if (typeof value === "number") {
      values[input.name] = String(value);
    } else {
      values[input.name] = JSON.stringify(value, null, 2);
    }
  }
  return values;
}

type Parsed = { ok: true; value: unknown } | { ok: false; problem: string };

/** Reads one field as its input's type; an empty optional field is left out (`undefined`). */
export function parseField(input: InputInfo, raw: string | boolean): Parsed {
  if (input.type === "boolean") return { ok: true, value: raw === true };
  const text = typeof raw === "string" ? raw.trim() : "";
  if (text === "") {
    return input.required
      ? { ok: false, problem: `${input.name} is required.` }
      : { ok: true, value: undefined };
  }
  switch (input.type) {
    case "string":
      return { ok: true, value: typeof raw === "string" ? raw : "" };
    case "integer": {
      if (!/^-?\d+$/.test(text)) {
        return { ok: false, problem: `${input.name} must be a whole number.` };
      }
      return { ok: true, value: Number(text) };
    }
    case "number": {
      const value = Number(text);
      return Number.isFinite(value)
        ? { ok: true, value }
        : { ok: false, problem: `${input.name} must be a number.` };
    }
    case "object":
    case "array": {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return { ok: false, problem: `${input.name} must be written as JSON.` };
      }
      const fits = input.type === "array" ? Array.isArray(value) : typeof value === "object" && value !== null && !Array.isArray(value);
      return fits
        ? { ok: true, value }
        : {
            ok: false,
            problem: `${input.name} must be a JSON ${input.type === "array" ? "array ([…])" : "object ({…})"}.`,
          };
    }
  }
}

export function Start({
  onStarted,
  initialWorkflow,
}: {
  onStarted: (taskId: string) => void;
  initialWorkflow?: string;
}) {
  const [load] = useLive(listWorkflows, () => false);
  const [chosen, setChosen] = useState<string | null>(initialWorkflow ?? null);

  const workflows = load.state === "ready" ? load.data.workflows : [];
  const workflow = workflows.find((w) => w.name === chosen) ?? workflows[0] ?? null;

  return (
    <section className="panel" aria-labelledby="start-title">
      <header className="panel-header">
        <h1 id="start-title">Start a task</h1>
        <p className="lede">Run a workflow of the workspace. It starts at once and runs in the background.</p>
      </header>

      <NotReady load={load} loading="Reading the workspace…" failed="Airlock could not read the workspace." />
      {load.state === "ready" && workflows.length === 0 && (
        <div className="card empty">
          <h2>No workflows to start</h2>
          {load.data.workspace_path === null ? (
            <p>
              Airlock was started without a workspace. Set <code>AIRLOCK_WORKSPACE</code> to a
              folder of workflow files (for example <code>workspace/demo</code>) and restart it.
            </p>
          ) : (
            <p>
              The workspace <code>{load.data.workspace_path}</code> has no valid workflow files.
              Add a <code>.toml</code> workflow there; this list reads the folder each time.
            </p>
          )}
        </div>
      )}
      {load.state === "ready" && workflow !== null && (
        <div className="card">
          <label className="field">
            <span className="label">Workflow</span>
            <select
              value={workflow.name}
              onChange={(event) => {
                setChosen(event.target.value);
              }}
            >
              {workflows.map((w) => (
                <option key={w.name} value={w.name}>
                  {w.name}
                </option>
              ))}
            </select>
            {workflow.description !== null && <span className="hint">{workflow.description}</span>}
          </label>
          <InputsForm key={workflow.name} workflow={workflow} onStarted={onStarted} />
        </div>
      )}
      {load.state === "ready" && load.data.problems.length > 0 && (
        <div className="card">
          <h2>Files that did not load</h2>
          <ul className="problems">
            {load.data.problems.map((problem) => (
              <li key={`${problem.file}:${String(problem.line)}:${String(problem.column)}:${problem.code}`}>
                <FilePath path={problem.file} suffix={`:${String(problem.line)}:${String(problem.column)}`} />{" "}
                {problem.message} <span className="muted">({problem.code})</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}

function InputsForm({
  workflow,
  onStarted,
}: {
  workflow: WorkflowInfo;
  onStarted: (taskId: string) => void;
}) {
  const [values, setValues] = useState<Values>(() => initialValues(workflow));
  const [problems, setProblems] = useState<string[]>([]);
  const { busy, failure, run, clear } = useAction();

  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    const inputs: Record<string, unknown> = {};
    const found: string[] = [];
    for (const input of workflow.inputs) {
      const parsed = parseField(input, values[input.name] ?? "");
      if (!parsed.ok) found.push(parsed.problem);
      else if (parsed.value !== undefined) inputs[input.name] = parsed.value;
    }
    setProblems(found);
    clear();
    if (found.length > 0) return;
    run(
      () => startTask(workflow.name, inputs),
      (started) => {
        onStarted(started.task_id);
      },
    );
  };

  const set = (name: string, value: string | boolean) => {
    setValues((current) => ({ ...current, [name]: value }));
  };

  return (
    <form className="start-form" onSubmit={submit} noValidate>
      {workflow.inputs.length === 0 && <p className="muted">This workflow takes no inputs.</p>}
      {workflow.inputs.map((input) => {
        const id = `input-${input.name}`;
        const value = values[input.name];
        return (
          <div className="field" key={input.name}>
            <label htmlFor={id} className="label">
              {input.name}
              {input.required && (
                <span className="required" aria-label="required">
                  {" "}
                  *
                </span>
              )}
              <span className="type">{input.type}</span>
            </label>
            {input.type === "boolean" ? (
              <input
                id={id}
                type="checkbox"
                checked={value === true}
                onChange={(event) => {
                  set(input.name, event.target.checked);
                }}
              />
            ) : input.type === "object" || input.type === "array" ? (
              <textarea
                id={id}
                rows={4}
                className="mono"
                placeholder={input.type === "array" ? "[ … ]" : "{ … }"}
                value={typeof value === "string" ? value : ""}
                onChange={(event) => {
                  set(input.name, event.target.value);
                }}
              />
            ) : (
              <input
                id={id}
                type="text"
                inputMode={input.type === "string" ? "text" : "decimal"}
                value={typeof value === "string" ? value : ""}
                onChange={(event) => {
                  set(input.name, event.target.value);
                }}
              />
            )}
            {input.description !== null && <span className="hint">{input.description}</span>}
          </div>
        );
      })}
      {problems.length > 0 && (
        <div className="error" role="alert">
          <strong>Some inputs need attention.</strong>
          {problems.map((problem) => (
            <p key={problem}>{problem}</p>
          ))}
        </div>
      )}
      {failure !== null && <Problem title="The task was not started." message={failure} />}
      <div className="actions">
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? "Starting…" : "Start"}
        </button>
      </div>
    </form>
  );
}
