// Cancelling a task, from the Tasks list or the Task detail: an optional reason, then the
// engine's answer in words (cancelled now, or asked to stop at its next safe point).
import { useEffect, useRef, useState } from "react";
import { useAction } from "../action";
import { cancelTask } from "../api";
import type { CancelReply } from "../bindings/CancelReply";
import type { TaskRow } from "../bindings/TaskRow";
import type { TaskStatus } from "../bindings/TaskStatus";
import { shortId } from "../format";
import { Problem } from "./Problem";

/** A task that has not ended can be cancelled. */
export function canCancel(status: TaskStatus): boolean {
  return status !== "succeeded" && status !== "failed" && status !== "cancelled";
}

/** What a cancellation did, in words. */
export function cancelledWords(task: TaskRow, reply: CancelReply): string {
  const name = `${task.workflow} (task ${shortId(task.id)})`;
  if (reply.outcome === "cancelled") return `Cancelled ${name}.`;
  return `Asked ${name} to stop. It was running, so it stops at its next safe point; a call it is making now is abandoned and recorded as in doubt.`;
}

/** What cancelling does to a task in this status, said before the person confirms. */
function effectWords(status: TaskStatus): string {
  switch (status) {
    case "waiting_approval":
      return "Its pending approval is rejected with your reason, and nothing more runs.";
    case "in_doubt":
      return "Its call in doubt stays unresolved in its history, and nothing more runs.";
    case "running":
      return "If it is making a call now, it stops at its next safe point and the call is recorded as in doubt.";
    default:
      return "Nothing more of it runs.";
  }
}

export function CancelForm({
  task,
  onDone,
  onClose,
}: {
  task: TaskRow;
  onDone: (text: string) => void;
  onClose: () => void;
}) {
  const [reason, setReason] = useState("");
  const { busy, failure, run } = useAction();
  const field = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    field.current?.focus({ preventScroll: true });
  }, []);
  const id = `cancel-${task.id}`;
  return (
    <form
      className="step-form cancel-form"
      aria-label={`Cancel task ${shortId(task.id)}`}
      onSubmit={(event) => {
        event.preventDefault();
        const why = reason.trim();
        run(
          () => cancelTask(task.id, why === "" ? null : why),
          (reply) => {
            onDone(cancelledWords(task, reply));
          },
        );
      }}
      onKeyDown={(event) => {
        if (event.key === "Escape" && !busy) {
          event.preventDefault();
          onClose();
        }
      }}
    >
      <label htmlFor={id}>
        Cancel {task.workflow} (task {shortId(task.id)})? <span className="muted">Reason, optional</span>
      </label>
      <textarea
        id={id}
        ref={field}
        rows={2}
        value={reason}
        onChange={(event) => {
          setReason(event.target.value);
        }}
      />
      <p className="hint">{effectWords(task.status)} A cancelled task cannot be resumed.</p>
      {failure !== null && <Problem title="The task was not cancelled." message={failure} />}
      <div className="actions">
        <button type="submit" className="button danger" disabled={busy}>
          Cancel task
        </button>
        <button type="button" className="button" onClick={onClose} disabled={busy}>
          Keep it
        </button>
      </div>
    </form>
  );
}
