// Task detail: where one task stands, what it was given, what each state produced, and its
// whole history: events, tool calls and approvals; what its model turns cost. A task that
// has not ended can be cancelled from here, one that has can be rated.
import { useState } from "react";
import { taskDetail } from "../api";
import type { ApprovalRow } from "../bindings/ApprovalRow";
import type { CallOutcome } from "../bindings/CallOutcome";
import type { TaskDetail as TaskDetailData } from "../bindings/TaskDetail";
import type { OpenInbox } from "../bindings/OpenInbox";
import { formatClock, orWords, outcomeLabel, prettyJson, timeLeft } from "../format";
import { useLive } from "../live";
import { ArgsDiff } from "./Args";
import { CancelForm, canCancel } from "./Cancel";
import { Done, NotReady } from "./Panel";
import { Problem } from "./Problem";
import { Rate } from "./Rate";
import { Spend } from "./Spend";
import { StatusPill } from "./StatusPill";
import { When } from "./When";

const OUTCOME_TONE: Record<CallOutcome, string> = {
  intent_only: "active",
  succeeded: "good",
  happened: "good",
  failed: "bad",
  in_doubt: "attention",
  not_happened: "quiet",
  refused: "stopped",
};

/** Focuses the call opened from the History once it is drawn (which scrolls to it). */
function scrollHere(element: HTMLLIElement | null) {
  element?.focus();
}

function approvalWords(approval: ApprovalRow): string {
  switch (approval.state) {
    case "pending":
      return "Waiting for a decision";
    case "approved":
      return `Approved by ${approval.decided_by ?? "someone"}`;
    case "rejected":
      return `Rejected by ${approval.decided_by ?? "someone"}`;
    case "expired":
      return "Expired without a decision";
    case "withdrawn":
      return `Withdrawn: ${approval.decided_by ?? "someone"} cancelled the task`;
  }
}

/** What one approval the task waits on asks for, in a line. */
function waitWords(approval: ApprovalRow): string {
  const who = orWords(approval.approvers);
  if (approval.held === null) return `${who} to answer: ${approval.prompt}`;
  const rule = approval.held.rule === null ? "the policy" : `rule “${approval.held.rule}”`;
  return `${who} to approve ${approval.held.tool}, held by ${rule}`;
}

/**
 * Where the task stands, first thing on the page: its status, what it waits for (and from
 * whom), or how it ended and the decision that ended it.
 */
function Standing({
  detail,
  now,
  onShowApprovals,
}: {
  detail: TaskDetailData;
  now: number;
  /** Opens the inbox on what this task waits for. */
  onShowApprovals: (target: OpenInbox) => void;
}) {
  const { task } = detail;
  const state = <code data-testid="task-state">{task.current_state ?? "not started"}</code>;
  const pending = detail.approvals.filter((a) => a.state === "pending");
  const doubts = detail.tool_calls.filter((c) => c.outcome === "in_doubt");
  const decided = detail.approvals.filter((a) => a.decided_at !== null);
  const last = decided[decided.length - 1];
  const calls = detail.tool_calls.length;
  const tally = `${String(calls)} tool ${calls === 1 ? "call" : "calls"}, ${String(decided.length)} ${decided.length === 1 ? "decision" : "decisions"} by people`;

  let headline;
  switch (task.status) {
    case "waiting_approval":
      headline = <>Waiting at {state} for an approval.</>;
      break;
    case "in_doubt":
      headline = <>Waiting at {state}: did a call take effect? Only a person can say.</>;
      break;
    case "running":
      headline = <>Running, at {state}.</>;
      break;
    case "quarantined":
      headline = <>Stopped at {state}: quarantined until someone looks at it.</>;
      break;
    case "succeeded":
      headline = <>Succeeded at {state}.</>;
      break;
    case "failed":
      headline = <>Failed at {state}.</>;
      break;
    case "cancelled":
      headline = <>Cancelled at {state}.</>;
      break;
  }
  const ended = task.status === "succeeded" || task.status === "failed" || task.status === "cancelled";

  return (
    <div className="card standing" data-testid="task-standing">
      <p className="standing-headline">{headline}</p>
      {pending.length > 0 && (
        <ul className="plain waits" aria-label="What it waits for">
          {pending.map((approval) => (
            <li key={approval.id}>
              Waits for {waitWords(approval)}{" "}
              <span className="muted">
                · asked <When at={approval.requested_at} now={now} />
                {approval.expires_at !== null && ` · ${timeLeft(approval.expires_at, now)}`}
              </span>
            </li>
          ))}
        </ul>
      )}
      {task.status === "in_doubt" && doubts.length > 0 && (
        <ul className="plain waits" aria-label="What it waits for">
          {doubts.map((call) => (
            <li key={call.id}>
              Waits for you to say whether <code>{call.tool}</code> (step {call.step_no}) happened.
            </li>
          ))}
        </ul>
      )}
      {(task.status === "waiting_approval" || task.status === "in_doubt") && (
        <p>
          <button
            type="button"
            className="button primary"
            onClick={() => {
              onShowApprovals({
                approval_id: pending[0]?.id ?? null,
                call_id: pending.length === 0 ? (doubts[0]?.id ?? null) : null,
                reject: false,
              });
            }}
          >
            Review in Approvals
          </button>
        </p>
      )}
      {ended && last !== undefined && (
        <p>
          Last decision: {approvalWords(last)}
          {last.held !== null && (
            <>
              {" "}
              on <code>{last.held.tool}</code>
            </>
          )}
          {last.edited_args !== null && " with changed arguments"}
          {last.reason !== null && <>: “{last.reason}”</>}
        </p>
      )}
      {task.error !== null && <Problem title="What went wrong" message={task.error} />}
      {task.error === null && detail.gave_up !== null && (
        <Problem title="What went wrong" message={detail.gave_up} />
      )}
      <dl className="facts">
        <dt>Requested by</dt>
        <dd>{task.requester}</dd>
        <dt>Started</dt>
        <dd>
          <When at={task.created_at} now={now} />
        </dd>
        <dt>{ended ? "Ended" : "Last change"}</dt>
        <dd>
          <When at={task.updated_at} now={now} />
        </dd>
        <dt>{ended ? "In all" : "So far"}</dt>
        <dd>{tally}</dd>
      </dl>
    </div>
  );
}

export function TaskDetail({
  id,
  now,
  callId,
  onBack,
  onShowApprovals,
}: {
  id: string;
  now: number;
  /** A call to show first (opened from the History): it is marked and scrolled to. */
  callId?: string | undefined;
  onBack: () => void;
  /** Opens the inbox on what this task waits for. */
  onShowApprovals: (target: OpenInbox) => void;
}) {
  const [load, reload] = useLive(() => taskDetail(id), (change) => change.task_id === id);
  const [cancelling, setCancelling] = useState(false);
  const [done, setDone] = useState<string | null>(null);

  return (
    <section className="panel wide" aria-labelledby="task-title">
      <button type="button" className="button link back" onClick={onBack}>
        ← All tasks
      </button>
      <NotReady load={load} loading="Loading the task…" failed="Airlock could not load this task." />
      {load.state === "ready" && (
        <>
          <header className="panel-header row">
            <div>
              <h1 id="task-title">{load.data.task.workflow}</h1>
              <p className="lede">
                Task <code data-testid="task-id">{load.data.task.id}</code>
              </p>
            </div>
            <div className="toolbar">
              <StatusPill status={load.data.task.status} testId="task-status" />
              {canCancel(load.data.task.status) && !cancelling && (
                <button
                  type="button"
                  className="button"
                  onClick={() => {
                    setDone(null);
                    setCancelling(true);
                  }}
                >
                  Cancel task…
                </button>
              )}
            </div>
          </header>

          <Done message={done} />
          {cancelling && canCancel(load.data.task.status) && (
            <div className="panel-form">
              <CancelForm
                task={load.data.task}
                onDone={(text) => {
                  setCancelling(false);
                  setDone(text);
                  reload();
                }}
                onClose={() => {
                  setCancelling(false);
                }}
              />
            </div>
          )}

          <Standing detail={load.data} now={now} onShowApprovals={onShowApprovals} />

          <div className="card">
            <h2>Approvals</h2>
            {load.data.approvals.length === 0 ? (
              <p className="muted">This task has not needed an approval.</p>
            ) : (
              <ul className="plain" data-testid="task-approvals">
                {load.data.approvals.map((approval) => (
                  <li key={approval.id}>
                    {approval.held === null ? (
                      <p className="strong">{approval.prompt}</p>
                    ) : (
                      <p>
                        <code className="strong">{approval.held.tool}</code>{" "}
                        <span className="muted">
                          held by{" "}
                          {approval.held.rule === null ? "the policy" : `rule “${approval.held.rule}”`}
                        </span>
                      </p>
                    )}
                    <p className="muted">
                      {approvalWords(approval)}
                      {approval.edited_args !== null && " with changed arguments"}
                      {approval.decided_at !== null && (
                        <>
                          {" · "}
                          <When at={approval.decided_at} now={now} />
                        </>
                      )}
                      {approval.reason !== null && ` · “${approval.reason}”`}
                    </p>
                    {approval.held !== null && approval.edited_args !== null && (
                      <details className="override">
                        <summary>What was changed</summary>
                        <ArgsDiff before={approval.held.args} after={approval.edited_args} afterLabel="Approved with" />
                      </details>
                    )}
                  </li>
                ))}
              </ul>
            )}
          </div>

          <div className="columns">
            <div className="card">
              <h2>Inputs</h2>
              <pre className="json">{prettyJson(load.data.inputs)}</pre>
            </div>
            <div className="card">
              <h2>State outputs</h2>
              {Object.keys(load.data.outputs).length === 0 ? (
                <p className="muted">No state has finished yet.</p>
              ) : (
                Object.entries(load.data.outputs).map(([state, output]) => (
                  <details key={state} className="output">
                    <summary>
                      <code>{state}</code>
                    </summary>
                    <pre className="json">{prettyJson(output)}</pre>
                  </details>
                ))
              )}
            </div>
          </div>

          <div className="columns top">
            <Spend spend={load.data.spend} />
            <Rate
              now={now}
              taskId={load.data.task.id}
              status={load.data.task.status}
              ratings={load.data.ratings}
              onRated={reload}
            />
          </div>

          <div className="card">
            <h2>Tool calls</h2>
            {load.data.tool_calls.length === 0 ? (
              <p className="muted">No tool has been called.</p>
            ) : (
              <ul className="plain calls" data-testid="task-calls">
                {load.data.tool_calls.map((call) => (
                  <li
                    key={call.id}
                    className={call.id === callId ? "focused" : undefined}
                    aria-current={call.id === callId ? "true" : undefined}
                    tabIndex={call.id === callId ? -1 : undefined}
                    ref={call.id === callId ? scrollHere : undefined}
                  >
                    <div className="call-head">
                      <code className="strong">{call.tool}</code>
                      <span className={`pill pill-${OUTCOME_TONE[call.outcome]}`}>
                        {outcomeLabel(call.outcome)}
                      </span>
                      <span className="muted">
                        step {call.step_no}, attempt {call.attempt} · {formatClock(call.intent_at)}
                      </span>
                    </div>
                    {call.error !== null && <p className="bad-text">{call.error}</p>}
                    <details open={call.id === callId}>
                      <summary>Arguments and result</summary>
                      <pre className="json">{prettyJson(call.args)}</pre>
                      {call.result !== null && <pre className="json">{prettyJson(call.result)}</pre>}
                    </details>
                  </li>
                ))}
              </ul>
            )}
          </div>

          <div className="card">
            <h2>History</h2>
            <ol className="timeline" data-testid="task-history">
              {load.data.events.map((event) => (
                <li key={event.seq}>
                  <time dateTime={new Date(event.at).toISOString()}>{formatClock(event.at)}</time>
                  <span>{event.summary}</span>
                </li>
              ))}
            </ol>
          </div>
        </>
      )}
    </section>
  );
}
