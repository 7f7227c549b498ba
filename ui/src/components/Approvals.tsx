// Approvals: the inbox of pending approvals. Approve, or reject with a reason; `a` and `r`
// act on the selected one, the arrow keys (or j/k) move the selection.
import { useEffect, useRef, useState } from "react";
import { answerApproval, describeError, listApprovals } from "../api";
import type { ApprovalRow } from "../bindings/ApprovalRow";
import { ago, formatDateTime, shortId, timeLeft } from "../format";
import { useLive } from "../live";
import { Problem } from "./Problem";

function typing(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    (target.tagName === "INPUT" ||
      target.tagName === "TEXTAREA" ||
      target.tagName === "SELECT" ||
      target.isContentEditable)
  );
}

export function Approvals({
  onOpenTask,
  onShowTasks,
  now,
}: {
  onOpenTask: (id: string) => void;
  onShowTasks: () => void;
  now: number;
}) {
  const [load, reload] = useLive(listApprovals, (change) => change.status !== "running");
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [rejecting, setRejecting] = useState<string | null>(null);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const reasonField = useRef<HTMLTextAreaElement>(null);

  const approvals = load.state === "ready" ? load.data.approvals : [];
  const selected =
    approvals.find((approval) => approval.id === selectedId) ?? approvals[0] ?? null;

  const decide = (approval: ApprovalRow, approve: boolean, why: string | null) => {
    setBusy(true);
    setFailure(null);
    answerApproval(
      approval.id,
      approve ? { kind: "approve", reason: why } : { kind: "reject", reason: why },
    ).then(
      () => {
        setRejecting(null);
        setReason("");
        setBusy(false);
        reload();
      },
      (error: unknown) => {
        setFailure(describeError(error));
        setBusy(false);
        reload();
      },
    );
  };

  const startRejecting = (approval: ApprovalRow) => {
    setSelectedId(approval.id);
    setRejecting(approval.id);
    setFailure(null);
  };

  useEffect(() => {
    if (rejecting !== null) reasonField.current?.focus();
  }, [rejecting]);

  // Keyboard: the handler reads the latest state through this ref.
  const keys = useRef<(event: KeyboardEvent) => void>(() => undefined);
  useEffect(() => {
    keys.current = (event) => {
      if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (selected === null || busy) return;
      const index = approvals.indexOf(selected);
      if (event.key === "a") {
        event.preventDefault();
        decide(selected, true, null);
      } else if (event.key === "r") {
        event.preventDefault();
        startRejecting(selected);
      } else if (event.key === "ArrowDown" || event.key === "j") {
        event.preventDefault();
        setSelectedId(approvals[Math.min(index + 1, approvals.length - 1)]?.id ?? null);
      } else if (event.key === "ArrowUp" || event.key === "k") {
        event.preventDefault();
        setSelectedId(approvals[Math.max(index - 1, 0)]?.id ?? null);
      }
    };
  });
  useEffect(() => {
    const listener = (event: KeyboardEvent) => {
      keys.current(event);
    };
    window.addEventListener("keydown", listener);
    return () => {
      window.removeEventListener("keydown", listener);
    };
  }, []);

  return (
    <section className="panel wide" aria-labelledby="approvals-title">
      <header className="panel-header">
        <h1 id="approvals-title">Approvals</h1>
        <p className="lede">
          Actions that wait for a person. Keys: <kbd>a</kbd> approve, <kbd>r</kbd> reject,{" "}
          <kbd>↑</kbd> <kbd>↓</kbd> choose.
        </p>
      </header>

      {failure !== null && <Problem title="The decision was not recorded." message={failure} />}
      {load.state === "loading" && <p className="muted">Loading approvals…</p>}
      {load.state === "failed" && (
        <Problem title="Airlock could not list the approvals." message={load.message} />
      )}
      {load.state === "ready" && approvals.length === 0 && (
        <div className="card empty">
          <h2>Nothing waits for you</h2>
          <p>
            When a task reaches an approval step, it stops here until you approve or reject it,
            and the desktop shows a notification.
          </p>
          <button type="button" className="button" onClick={onShowTasks}>
            See all tasks
          </button>
        </div>
      )}
      <ul className="approvals" aria-label="Pending approvals">
        {approvals.map((approval) => {
          const isSelected = approval.id === selected?.id;
          return (
            <li
              key={approval.id}
              className={isSelected ? "approval selected" : "approval"}
              aria-current={isSelected ? "true" : undefined}
              onClick={() => {
                setSelectedId(approval.id);
              }}
            >
              <p className="prompt">{approval.prompt}</p>
              <dl className="meta">
                <div>
                  <dt>Workflow</dt>
                  <dd>{approval.workflow}</dd>
                </div>
                <div>
                  <dt>Step</dt>
                  <dd>
                    <code>{approval.state_name}</code>
                  </dd>
                </div>
                <div>
                  <dt>Approvers</dt>
                  <dd>{approval.approvers.join(", ")}</dd>
                </div>
                <div>
                  <dt>Requested</dt>
                  <dd title={formatDateTime(approval.requested_at)}>
                    {ago(approval.requested_at, now)} by {approval.requester}
                  </dd>
                </div>
                <div>
                  <dt>Expires</dt>
                  <dd
                    className={
                      approval.expires_at !== null && approval.expires_at - now < 3_600_000
                        ? "soon"
                        : undefined
                    }
                    title={
                      approval.expires_at === null ? undefined : formatDateTime(approval.expires_at)
                    }
                  >
                    {timeLeft(approval.expires_at, now)}
                  </dd>
                </div>
              </dl>
              {rejecting === approval.id ? (
                <form
                  className="reject"
                  onSubmit={(event) => {
                    event.preventDefault();
                    if (reason.trim() !== "") decide(approval, false, reason.trim());
                  }}
                >
                  <label htmlFor={`reason-${approval.id}`}>Why are you rejecting this?</label>
                  <textarea
                    id={`reason-${approval.id}`}
                    ref={reasonField}
                    rows={2}
                    value={reason}
                    onChange={(event) => {
                      setReason(event.target.value);
                    }}
                    onKeyDown={(event) => {
                      if (event.key === "Escape") setRejecting(null);
                    }}
                  />
                  <div className="actions">
                    <button
                      type="submit"
                      className="button danger"
                      disabled={busy || reason.trim() === ""}
                    >
                      Reject
                    </button>
                    <button
                      type="button"
                      className="button"
                      onClick={() => {
                        setRejecting(null);
                      }}
                    >
                      Keep it waiting
                    </button>
                  </div>
                </form>
              ) : (
                <div className="actions">
                  <button
                    type="button"
                    className="button primary"
                    disabled={busy}
                    onClick={() => {
                      decide(approval, true, null);
                    }}
                  >
                    Approve
                  </button>
                  <button
                    type="button"
                    className="button"
                    disabled={busy}
                    onClick={() => {
                      startRejecting(approval);
                    }}
                  >
                    Reject…
                  </button>
                  <button
                    type="button"
                    className="button link"
                    onClick={() => {
                      onOpenTask(approval.task_id);
                    }}
                  >
                    Open task {shortId(approval.task_id)}
                  </button>
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
