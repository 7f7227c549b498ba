// Tasks: every run of a workflow, newest first, following the change feed. A task that has
// not ended can be cancelled from its row.
import { Fragment, useState } from "react";
import { listTasks } from "../api";
import type { TaskStatus } from "../bindings/TaskStatus";
import { shortId, statusLabel } from "../format";
import { useLive } from "../live";
import { CancelForm, canCancel } from "./Cancel";
import { Done, NotReady, PanelHeader } from "./Panel";
import { StatusPill } from "./StatusPill";
import { When } from "./When";

const FILTERS: readonly TaskStatus[] = [
  "waiting_approval",
  "running",
  "in_doubt",
  "quarantined",
  "failed",
  "succeeded",
  "cancelled",
];

export function Tasks({
  onOpen,
  onStart,
  now,
}: {
  onOpen: (id: string) => void;
  onStart: () => void;
  now: number;
}) {
  const [filter, setFilter] = useState<TaskStatus | null>(null);
  const [load, reload] = useLive(() => listTasks(filter), undefined, filter ?? "all");
  const [cancelling, setCancelling] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  return (
    <section className="panel wide" aria-labelledby="tasks-title">
      <PanelHeader
        id="tasks-title"
        title="Tasks"
        lede="Every run of a workflow, newest first. Updates as tasks move."
      >
        <label className="inline-field">
          <span>Show</span>
          <select
            value={filter ?? ""}
            onChange={(event) => {
              const value = event.target.value;
              setFilter(FILTERS.find((status) => status === value) ?? null);
            }}
          >
            <option value="">All tasks</option>
            {FILTERS.map((status) => (
              <option key={status} value={status}>
                {statusLabel(status)}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="button primary" onClick={onStart}>
          Start a task
        </button>
      </PanelHeader>

      <Done message={done} />
      <NotReady load={load} loading="Loading tasks…" failed="Airlock could not list the tasks." />
      {load.state === "ready" && load.data.length === 0 && (
        <div className="card empty">
          <h2>{filter === null ? "No tasks yet" : `No tasks are ${statusLabel(filter).toLowerCase()}`}</h2>
          <p>
            A task is one run of a workflow. Choose <strong>Start a task</strong> to run one from
            the workspace; it appears here and updates as it moves.
          </p>
        </div>
      )}
      {load.state === "ready" && load.data.length > 0 && (
        <div className="card flush">
          <table className="table clickable">
            <thead>
              <tr>
                <th scope="col">Workflow</th>
                <th scope="col">Status</th>
                <th scope="col">Current state</th>
                <th scope="col">Requester</th>
                <th scope="col">Updated</th>
                <th scope="col" className="end">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {load.data.map((task) => (
                <Fragment key={task.id}>
                <tr
                  tabIndex={0}
                  data-testid={`task-row-${task.id}`}
                  onClick={() => {
                    onOpen(task.id);
                  }}
                  onKeyDown={(event) => {
                    if (event.key === "Enter") onOpen(task.id);
                  }}
                >
                  <td>
                    <span className="strong">{task.workflow}</span>
                  </td>
                  <td>
                    <StatusPill status={task.status} />
                  </td>
                  <td>
                    <code>{task.current_state ?? "—"}</code>
                  </td>
                  <td>{task.requester}</td>
                  <td>
                    <When at={task.updated_at} now={now} />
                  </td>
                  <td className="end">
                    {canCancel(task.status) && cancelling !== task.id && (
                      <button
                        type="button"
                        className="button small"
                        aria-label={`Cancel task ${shortId(task.id)}…`}
                        onClick={(event) => {
                          event.stopPropagation();
                          setDone(null);
                          setCancelling(task.id);
                        }}
                        onKeyDown={(event) => {
                          event.stopPropagation();
                        }}
                      >
                        Cancel…
                      </button>
                    )}
                  </td>
                </tr>
                {cancelling === task.id && (
                  <tr className="form-row">
                    <td colSpan={6}>
                      <CancelForm
                        task={task}
                        onDone={(text) => {
                          setCancelling(null);
                          setDone(text);
                          reload();
                        }}
                        onClose={() => {
                          setCancelling(null);
                        }}
                      />
                    </td>
                  </tr>
                )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
