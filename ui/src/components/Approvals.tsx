// Approvals: the inbox of what waits for a person. A workflow checkpoint is approved or
// rejected; a tool call a policy rule held shows what it would do and why it waits, and can
// also be edited then approved, or approved with a grant for later calls like it. Below
// them, calls in doubt ask "did this happen?": yes moves the task on, no makes the call again.
// Keys act on the selected item: `a` then `a` (or Enter) approve, `r` reject, `e` edit, `g`
// approve and grant, `j`/`k` (or the arrows) move, Escape closes a form. Approving by key
// takes a second key, so stray typing outside a field never approves anything.
import { type ReactNode, useEffect, useRef, useState } from "react";
import {
  answerApproval,
  createGrant,
  describeError,
  errorCode,
  listApprovals,
  resolveInDoubt,
} from "../api";
import type { AnswerReply } from "../bindings/AnswerReply";
import type { AnswerRequest } from "../bindings/AnswerRequest";
import type { ApprovalRow } from "../bindings/ApprovalRow";
import type { GrantRequest } from "../bindings/GrantRequest";
import type { HeldCallView } from "../bindings/HeldCallView";
import type { InDoubtCall } from "../bindings/InDoubtCall";
import type { OpenInbox } from "../bindings/OpenInbox";
import type { Person } from "../bindings/Person";
import {
  duration,
  formatDateTime,
  formatExact,
  minutesWords,
  orWords,
  riskTone,
  shortId,
  timeLeft,
} from "../format";
import { argPath, grantScope } from "../grants";
import { useLive } from "../live";
import {
  ArgsDiff,
  ArgsEditor,
  ArgsList,
  changedKeys,
  draftOf,
  parseDraft,
  valueWords,
} from "./Args";
import type { Args, Draft } from "./Args";
import { NotReady } from "./Panel";
import { Problem } from "./Problem";
import { TaskLink } from "./TaskLink";
import { When } from "./When";

function typing(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    (target.tagName === "INPUT" ||
      target.tagName === "TEXTAREA" ||
      target.tagName === "SELECT" ||
      target.isContentEditable)
  );
}

type Mode = { id: string; kind: "confirm" | "reject" | "edit" | "review" | "grant" };

/** The grant an approver is choosing in "Approve and grant". */
type GrantChoice = {
  scope: "workflow" | "task";
  /** `null`: until revoked. */
  minutes: number | null;
  /** At most this many calls; empty for no limit. */
  uses: string;
  /** A CEL condition, empty for none. */
  condition: string;
};

const GRANT_LENGTHS: readonly (number | null)[] = [15, 60, 240, 480, 1440, null];

/** Caps the approver can choose from: each numeric argument at most its proposed value. */
function caps(args: Args): { condition: string; label: string }[] {
  const out: { condition: string; label: string }[] = [];
  for (const [key, value] of Object.entries(args)) {
    const path = argPath(key);
    if (path !== null && typeof value === "number") {
      out.push({
        condition: `${path} <= ${String(value)}`,
        label: `${key} is at most ${valueWords(key, value)}`,
      });
    }
  }
  return out;
}

function defaultGrant(held: HeldCallView): GrantChoice {
  return { scope: "workflow", minutes: 60, uses: "", condition: caps(held.args)[0]?.condition ?? "" };
}

function grantRequest(approval: ApprovalRow, held: HeldCallView, choice: GrantChoice): GrantRequest {
  const uses = choice.uses.trim();
  return {
    tool: held.tool,
    workflow: approval.workflow,
    task_id: choice.scope === "task" ? approval.task_id : null,
    condition: choice.condition === "" ? null : choice.condition,
    max_uses: uses === "" ? null : Number(uses),
    valid_for_minutes: choice.minutes,
    from_approval: approval.id,
    note: null,
  };
}

/** What to call an approval in a sentence. */
function subject(approval: ApprovalRow): string {
  return approval.held === null
    ? `${approval.workflow} (task ${shortId(approval.task_id)})`
    : `${approval.held.tool} for task ${shortId(approval.task_id)}`;
}

function answeredWords(approval: ApprovalRow, answer: AnswerRequest, reply: AnswerReply): string {
  if (reply.outcome === "voted") {
    return `Your approval of ${subject(approval)} is counted: ${String(reply.votes)} of ${String(reply.needed)}. It waits for another approver.`;
  }
  switch (answer.kind) {
    case "approve":
      return `Approved ${subject(approval)}.`;
    case "approve_edited":
      return `Approved ${subject(approval)} with your changes.`;
    case "reject":
      return `Rejected ${subject(approval)}.`;
  }
}

function failureTitle(error: unknown, answer: AnswerRequest): string {
  const code = errorCode(error);
  if (code === "not_allowed") return "You cannot decide this one.";
  if (answer.kind === "approve_edited" && code === "invalid_input") return "The change was refused.";
  return "The decision was not recorded.";
}

function roleWords(person: Person): string {
  return person.roles.length === 0 ? "no roles" : `roles ${person.roles.join(", ")}`;
}

/** Where a notification or the tray asked the inbox to open; `nonce` tells two asks apart. */
export type InboxTarget = OpenInbox & { nonce: number };

export function Approvals({
  onOpenTask,
  onShowTasks,
  now,
  target = null,
}: {
  onOpenTask: (id: string) => void;
  onShowTasks: () => void;
  now: number;
  target?: InboxTarget | null;
}) {
  const [load, reload] = useLive(listApprovals, (change) => change.status !== "running");
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [mode, setMode] = useState<Mode | null>(null);
  const [reason, setReason] = useState("");
  const [draft, setDraft] = useState<Draft>({});
  const [draftProblems, setDraftProblems] = useState<Record<string, string>>({});
  const [edited, setEdited] = useState<Args | null>(null);
  const [grant, setGrant] = useState<GrantChoice | null>(null);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<{ id: string; title: string; message: string } | null>(
    null,
  );
  const [done, setDone] = useState<{ tone: "good" | "warn"; text: string } | null>(null);
  const [settling, setSettling] = useState<{ id: string; happened: boolean } | null>(null);
  const list = useRef<HTMLUListElement>(null);
  const doubtList = useRef<HTMLUListElement>(null);

  const approvals = load.state === "ready" ? load.data.approvals : [];
  const doubts = load.state === "ready" ? load.data.in_doubt : [];

  const settle = (call: InDoubtCall, happened: boolean) => {
    setBusy(true);
    setFailure(null);
    setDone(null);
    resolveInDoubt(call.call_id, happened)
      .then(() => {
        setSettling(null);
        setBusy(false);
        const task = shortId(call.task_id);
        setDone({
          tone: "good",
          text: ended(call)
            ? `Recorded that ${call.tool} ${happened ? "happened" : "did not happen"}; task ${task} stays ${call.task_status}.`
            : happened
              ? `Recorded that ${call.tool} happened; task ${task} moves on without making it again.`
              : `${call.tool} is made again for task ${task} (attempt ${String(call.attempt + 1)}).`,
        });
        reload();
      })
      .catch((error: unknown) => {
        setFailure({ id: call.call_id, title: "Your answer was not recorded.", message: describeError(error) });
        setSettling(null);
        setBusy(false);
        reload();
      });
  };
  const selected =
    approvals.find((approval) => approval.id === selectedId) ?? approvals[0] ?? null;

  const open = (approval: ApprovalRow, kind: Mode["kind"]) => {
    setSelectedId(approval.id);
    setFailure(null);
    setDone(null);
    if (kind === "edit" && approval.held !== null && mode?.id !== approval.id) {
      setDraft(draftOf(approval.held.args));
      setDraftProblems({});
      setReason("");
    }
    if (kind === "reject") setReason("");
    if (kind === "grant" && approval.held !== null) setGrant(defaultGrant(approval.held));
    setMode({ id: approval.id, kind });
  };

  const close = () => {
    setMode(null);
    setFailure(null);
  };

  const submit = (approval: ApprovalRow, answer: AnswerRequest, grantAsk: GrantRequest | null) => {
    setBusy(true);
    setFailure(null);
    setDone(null);
    answerApproval(approval.id, answer)
      .then(async (reply) => {
        let text = answeredWords(approval, answer, reply);
        let tone: "good" | "warn" = "good";
        if (grantAsk !== null && reply.outcome === "decided") {
          try {
            const made = await createGrant(grantAsk);
            const length =
              made.expires_at === null ? "until revoked" : `until ${formatDateTime(made.expires_at)}`;
            const uses = made.max_uses === null ? "" : `, at most ${String(made.max_uses)} calls`;
            text += ` Granted: ${grantScope(made)}, ${length}${uses}.`;
          } catch (error: unknown) {
            tone = "warn";
            text += ` The grant was not made: ${describeError(error)}`;
          }
        } else if (grantAsk !== null) {
          text += " No grant was made, since the call still needs another approver.";
        }
        setMode(null);
        setReason("");
        setBusy(false);
        setDone({ tone, text });
        reload();
      })
      .catch((error: unknown) => {
        setFailure({ id: approval.id, title: failureTitle(error, answer), message: describeError(error) });
        setBusy(false);
        reload();
      });
  };

  const approve = (approval: ApprovalRow) => {
    submit(approval, { kind: "approve", reason: null }, null);
  };

  const review = (approval: ApprovalRow) => {
    if (approval.held === null) return;
    const parsed = parseDraft(approval.held.args, draft);
    if (parsed.problems !== null) {
      setDraftProblems(parsed.problems);
      return;
    }
    setDraftProblems({});
    setEdited(parsed.args);
    setMode({ id: approval.id, kind: "review" });
  };

  // Opened from a notification: select its approval (its reject reason asked for when the
  // person chose Reject there), once per ask, when the list has loaded. Adjusted while
  // rendering, as React advises for state that follows a prop.
  const [appliedNonce, setAppliedNonce] = useState<number | null>(null);
  if (target !== null && target.nonce !== appliedNonce && load.state === "ready") {
    setAppliedNonce(target.nonce);
    if (target.approval_id !== null) {
      const approval = approvals.find((a) => a.id === target.approval_id);
      if (approval === undefined) {
        setDone({ tone: "warn", text: "That approval no longer waits: it was decided, cancelled or has expired." });
      } else if (target.reject) {
        open(approval, "reject");
      } else {
        setSelectedId(approval.id);
        setMode(null);
        setDone(null);
      }
    }
  }
  // …and brings it, or its call in doubt, into view.
  useEffect(() => {
    if (target === null || appliedNonce !== target.nonce) return;
    const row =
      target.approval_id !== null
        ? list.current?.querySelector<HTMLElement>(`[data-approval="${target.approval_id}"]`)
        : target.call_id !== null
          ? doubtList.current?.querySelector<HTMLElement>(`[data-call="${target.call_id}"]`)
          : null;
    if (row !== null && row !== undefined && "scrollIntoView" in row) row.scrollIntoView({ block: "nearest" });
  }, [target, appliedNonce]);

  // An opened form takes the focus at its first field.
  useEffect(() => {
    if (mode === null) return;
    const form = list.current?.querySelector<HTMLElement>(".step-form, .confirm");
    form?.querySelector<HTMLElement>("input, textarea, select, button")?.focus({ preventScroll: true });
    // The whole form, its buttons too, comes into view (jsdom has no scrolling).
    if (form !== null && form !== undefined && "scrollIntoView" in form) {
      form.scrollIntoView({ block: "nearest" });
    }
  }, [mode]);

  // The confirmation of an answer about a call in doubt comes into view, its button focused.
  useEffect(() => {
    if (settling === null) return;
    const confirm = doubtList.current?.querySelector<HTMLElement>(".confirm");
    confirm?.querySelector<HTMLElement>("button")?.focus({ preventScroll: true });
    if (confirm !== null && confirm !== undefined && "scrollIntoView" in confirm) {
      confirm.scrollIntoView({ block: "nearest" });
    }
  }, [settling]);

  // Keyboard: the handler reads the latest state through this ref.
  const keys = useRef<(event: KeyboardEvent) => void>(() => undefined);
  useEffect(() => {
    keys.current = (event) => {
      if (event.key === "Escape" && mode !== null && !busy) {
        event.preventDefault();
        close();
        return;
      }
      if (mode?.kind === "confirm" && !busy) {
        // The second `a` approves; any other key (but Enter on the focused button) calls it off.
        const confirming = approvals.find((approval) => approval.id === mode.id);
        if (event.key === "a" && confirming !== undefined) {
          event.preventDefault();
          approve(confirming);
        } else if (event.key !== "Enter" && event.key !== "Tab" && event.key !== "Shift") {
          close();
        }
        return;
      }
      if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (selected === null || busy || mode !== null) return;
      const index = approvals.indexOf(selected);
      const held = selected.held !== null;
      if (event.key === "a") {
        event.preventDefault();
        open(selected, "confirm");
      } else if (event.key === "r") {
        event.preventDefault();
        open(selected, "reject");
      } else if (event.key === "e" && held) {
        event.preventDefault();
        open(selected, "edit");
      } else if (event.key === "g" && held) {
        event.preventDefault();
        open(selected, "grant");
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

  const orphanFailure =
    failure !== null &&
    !approvals.some((approval) => approval.id === failure.id) &&
    !doubts.some((call) => call.call_id === failure.id)
      ? failure
      : null;

  return (
    <section className="panel wide" aria-labelledby="approvals-title">
      <header className="panel-header">
        <h1 id="approvals-title">Approvals</h1>
        <p className="lede">
          Actions that wait for a person.
          {load.state === "ready" && (
            <>
              {" "}
              You decide as{" "}
              <strong title={roleWords(load.data.acting_as)}>
                {load.data.acting_as.display_name ?? load.data.acting_as.name}
              </strong>
              .
            </>
          )}
          <br />
          <span className="keys">
            Keys: <kbd>a</kbd> <kbd>a</kbd> approve, <kbd>r</kbd> reject, <kbd>e</kbd> edit, <kbd>g</kbd> approve
            and grant, <kbd>j</kbd> <kbd>k</kbd> choose, <kbd>Esc</kbd> close.
          </span>
        </p>
      </header>

      {done !== null && (
        <p className={done.tone === "good" ? "done" : "done warn"} role="status">
          {done.text}
        </p>
      )}
      {orphanFailure !== null && <Problem title={orphanFailure.title} message={orphanFailure.message} />}
      <NotReady load={load} loading="Loading approvals…" failed="Airlock could not list the approvals." />
      {load.state === "ready" && approvals.length === 0 && doubts.length === 0 && (
        <div className="card empty">
          <h2>Nothing waits for you</h2>
          <p>
            When a task reaches an approval step, or the policy holds one of its tool calls for a
            person, it stops here until you decide, and the desktop shows a notification.
          </p>
          <button type="button" className="button" onClick={onShowTasks}>
            See all tasks
          </button>
        </div>
      )}
      <ul className="approvals" aria-label="Pending approvals" ref={list}>
        {approvals.map((approval) => {
          const isSelected = approval.id === selected?.id;
          const current = mode?.id === approval.id ? mode.kind : null;
          const held = approval.held;
          return (
            <li
              key={approval.id}
              className={isSelected ? "approval selected" : "approval"}
              aria-current={isSelected ? "true" : undefined}
              data-approval={approval.id}
              aria-label={held === null ? approval.prompt : `${held.tool} for task ${shortId(approval.task_id)}`}
              onClick={() => {
                setSelectedId(approval.id);
              }}
            >
              {held === null ? (
                <Checkpoint approval={approval} now={now} />
              ) : (
                <HeldCall
                  approval={approval}
                  held={held}
                  now={now}
                  compact={current === "edit" || current === "review"}
                />
              )}

              {failure?.id === approval.id && <Problem title={failure.title} message={failure.message} />}

              {current === "confirm" && (
                <div className="confirm" role="group" aria-label="Confirm the approval">
                  <span>
                    Approve{" "}
                    {held === null ? (
                      "this step"
                    ) : (
                      <>
                        <code className="strong">{held.tool}</code> as proposed
                      </>
                    )}
                    ?
                  </span>
                  <button
                    type="button"
                    className="button primary"
                    disabled={busy}
                    onClick={() => {
                      approve(approval);
                    }}
                  >
                    Approve
                  </button>
                  <button type="button" className="button" onClick={close}>
                    Cancel
                  </button>
                  <span className="hint">
                    <kbd>a</kbd> or <kbd>Enter</kbd> to approve, <kbd>Esc</kbd> to cancel
                  </span>
                </div>
              )}

              {current === "reject" && (
                <form
                  className="step-form"
                  onSubmit={(event) => {
                    event.preventDefault();
                    if (reason.trim() !== "") submit(approval, { kind: "reject", reason: reason.trim() }, null);
                  }}
                >
                  <label htmlFor={`reason-${approval.id}`}>Why are you rejecting this?</label>
                  <textarea
                    id={`reason-${approval.id}`}
                    rows={2}
                    required
                    value={reason}
                    onChange={(event) => {
                      setReason(event.target.value);
                    }}
                  />
                  <p className="hint">
                    {held === null
                      ? "A reason is needed: the task takes its rejection path, and the history says why."
                      : "A reason is needed: the call is not made, and the task is told why."}
                  </p>
                  <div className="actions">
                    <button type="submit" className="button danger" disabled={busy || reason.trim() === ""}>
                      Reject
                    </button>
                    <button type="button" className="button" onClick={close}>
                      Keep it waiting
                    </button>
                  </div>
                </form>
              )}

              {current === "edit" && held !== null && (
                <form
                  className="step-form"
                  onSubmit={(event) => {
                    event.preventDefault();
                    review(approval);
                  }}
                >
                  <h3>Edit the arguments</h3>
                  <p className="hint">
                    You approve the call as you change it. The changed call is checked again against
                    the tool&apos;s schema and the policy, and both versions are kept.
                  </p>
                  <ArgsEditor
                    original={held.args}
                    draft={draft}
                    problems={draftProblems}
                    onChange={setDraft}
                  />
                  <div className="actions">
                    <button
                      type="submit"
                      className="button primary"
                    >
                      Review changes
                    </button>
                    <button type="button" className="button" onClick={close}>
                      Cancel
                    </button>
                  </div>
                </form>
              )}

              {current === "review" && held !== null && edited !== null && (
                <form
                  className="step-form"
                  onSubmit={(event) => {
                    event.preventDefault();
                    submit(
                      approval,
                      { kind: "approve_edited", args: edited, reason: reason.trim() === "" ? null : reason.trim() },
                      null,
                    );
                  }}
                >
                  <h3>
                    {changedKeys(held.args, edited).length === 0
                      ? "Nothing changed"
                      : changedKeys(held.args, edited).length === 1
                        ? "1 change"
                        : `${String(changedKeys(held.args, edited).length)} changes`}
                  </h3>
                  <ArgsDiff before={held.args} after={edited} />
                  <label htmlFor={`why-${approval.id}`}>Why the change (kept with the override)</label>
                  <textarea
                    id={`why-${approval.id}`}
                    rows={2}
                    value={reason}
                    onChange={(event) => {
                      setReason(event.target.value);
                    }}
                  />
                  <div className="actions">
                    <button
                      type="submit"
                      className="button primary"
                      disabled={busy || changedKeys(held.args, edited).length === 0}
                    >
                      Approve with changes
                    </button>
                    <button
                      type="button"
                      className="button"
                      onClick={() => {
                        setFailure(null);
                        setMode({ id: approval.id, kind: "edit" });
                      }}
                    >
                      Back to editing
                    </button>
                    <button type="button" className="button link" onClick={close}>
                      Cancel
                    </button>
                  </div>
                </form>
              )}

              {current === "grant" && held !== null && grant !== null && (
                <GrantForm
                  approval={approval}
                  held={held}
                  choice={grant}
                  busy={busy}
                  onChange={setGrant}
                  onCancel={close}
                  onSubmit={() => {
                    submit(approval, { kind: "approve", reason: null }, grantRequest(approval, held, grant));
                  }}
                />
              )}

              {current === null && (
                <div className="actions">
                  <button
                    type="button"
                    className="button primary"
                    disabled={busy}
                    onClick={() => {
                      approve(approval);
                    }}
                  >
                    Approve
                  </button>
                  {held !== null && (
                    <>
                      <button
                        type="button"
                        className="button"
                        disabled={busy}
                        onClick={() => {
                          open(approval, "grant");
                        }}
                      >
                        Approve and grant…
                      </button>
                      <button
                        type="button"
                        className="button"
                        disabled={busy}
                        onClick={() => {
                          open(approval, "edit");
                        }}
                      >
                        Edit, then approve…
                      </button>
                    </>
                  )}
                  <button
                    type="button"
                    className="button"
                    disabled={busy}
                    onClick={() => {
                      open(approval, "reject");
                    }}
                  >
                    Reject…
                  </button>
                  <TaskLink id={approval.task_id} onOpenTask={onOpenTask} action />
                </div>
              )}
            </li>
          );
        })}
      </ul>

      {doubts.length > 0 && (
        <section className="doubts" aria-labelledby="in-doubt-title">
          <h2 id="in-doubt-title">Did this happen?</h2>
          <p className="lede">
            These calls may or may not have taken effect: no answer came back, and the tool is not safe
            to repeat. Check in the system it acts on, then say which; the task waits until you do. A
            task cancelled while its call was under way does not: your answer goes into its history.
          </p>
          <ul className="approvals" aria-label="Calls in doubt" ref={doubtList}>
            {doubts.map((call) => (
              <li
                key={call.call_id}
                className="approval doubt"
                data-call={call.call_id}
                aria-label={`${call.tool} in doubt, task ${shortId(call.task_id)}`}>
                <Doubt call={call} now={now} />
                {failure?.id === call.call_id && <Problem title={failure.title} message={failure.message} />}
                {settling?.id === call.call_id ? (
                  <div className="confirm" role="group" aria-label="Confirm your answer">
                    <span>
                      {ended(call) ? (
                        <>
                          Record that <code className="strong">{call.tool}</code>{" "}
                          {settling.happened ? "took effect" : "did not take effect"}? The task stays{" "}
                          {call.task_status}; nothing is made again.
                        </>
                      ) : settling.happened ? (
                        <>
                          Record that <code className="strong">{call.tool}</code> took effect? The task moves on
                          without making it again.
                        </>
                      ) : (
                        <>
                          Make <code className="strong">{call.tool}</code> again? Only if you checked that it did
                          not take effect, or it happens twice.
                        </>
                      )}
                    </span>
                    <button
                      type="button"
                      className={settling.happened ? "button primary" : "button danger"}
                      disabled={busy}
                      onClick={() => {
                        settle(call, settling.happened);
                      }}
                    >
                      {settling.happened ? "Yes, it happened" : ended(call) ? "Yes, it did not happen" : "Make it again"}
                    </button>
                    <button
                      type="button"
                      className="button"
                      disabled={busy}
                      onClick={() => {
                        setSettling(null);
                      }}
                    >
                      Back
                    </button>
                  </div>
                ) : (
                  <div className="actions">
                    <button
                      type="button"
                      className="button primary"
                      disabled={busy}
                      onClick={() => {
                        setFailure(null);
                        setSettling({ id: call.call_id, happened: true });
                      }}
                    >
                      It happened
                    </button>
                    <button
                      type="button"
                      className="button"
                      disabled={busy}
                      onClick={() => {
                        setFailure(null);
                        setSettling({ id: call.call_id, happened: false });
                      }}
                    >
                      {ended(call) ? "It did not happen" : "It did not happen — make it again"}
                    </button>
                    <TaskLink id={call.task_id} onOpenTask={onOpenTask} action />
                  </div>
                )}
              </li>
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}

/** Whether the call's task ended while the call was in doubt: the answer is only recorded. */
function ended(call: InDoubtCall): boolean {
  return call.task_status !== "in_doubt";
}

/** A call in doubt: what it was asked to do, for which task, and why nobody knows. */
function Doubt({ call, now }: { call: InDoubtCall; now: number }) {
  return (
    <>
      <CallHeading
        tool={call.tool}
        pills={
          <>
            <span className="pill pill-attention">In doubt</span>
            {ended(call) && <span className="pill">Task {call.task_status}</span>}
          </>
        }
        workflow={call.workflow}
        step={call.state_name}
        taskId={call.task_id}
        more={call.attempt > 1 ? ` · attempt ${String(call.attempt)}` : ""}
      />
      <WhatAndWhy what="What it was asked to do" args={call.args} why="Why it is in doubt">
        <p>{call.reason === null ? "Its answer never came." : sentence(call.reason)}</p>
        <p className="hint">
          It carried the key <code>{call.idempotency_key}</code>; a system that records it can tell you
          whether the call arrived.
        </p>
      </WhatAndWhy>
      <dl className="meta">
        <Fact label="Called">
          <When at={call.intent_at} now={now} /> for {call.requester}
        </Fact>
      </dl>
    </>
  );
}

/** An engine clause ("no answer within 30s") as a sentence. */
function sentence(text: string): string {
  const trimmed = text.trim();
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** One fact of a card's footer: its label over its value. */
function Fact({
  label,
  className,
  title,
  children,
}: {
  label: string;
  className?: string | undefined;
  title?: string | undefined;
  children: ReactNode;
}) {
  return (
    <div>
      <dt>{label}</dt>
      <dd className={className} title={title}>
        {children}
      </dd>
    </div>
  );
}

/** When the approval expires, marked when it is within the hour. */
function Expiry({ approval, now }: { approval: ApprovalRow; now: number }) {
  return (
    <Fact
      label="Expires"
      className={approval.expires_at !== null && approval.expires_at - now < 3_600_000 ? "soon" : undefined}
      title={approval.expires_at === null ? undefined : formatExact(approval.expires_at)}
    >
      {timeLeft(approval.expires_at, now)}
    </Fact>
  );
}

/** A held or doubtful call's heading: the tool and its pills, and where the call comes from. */
function CallHeading({
  tool,
  pills,
  workflow,
  step,
  taskId,
  more = "",
}: {
  tool: string;
  pills: ReactNode;
  workflow: string;
  step: string | null;
  taskId: string;
  /** Said last on the line (" · attempt 2"). */
  more?: string;
}) {
  return (
    <>
      <div className="call-title">
        <code className="tool">{tool}</code>
        {pills}
      </div>
      <p className="muted subline">
        {workflow}
        {step !== null && (
          <>
            {" "}
            · step <code>{step}</code>
          </>
        )}{" "}
        · task {shortId(taskId)}
        {more}
      </p>
    </>
  );
}

/** What a call would do or was asked to do (its arguments), beside why it waits for a person. */
function WhatAndWhy({ what, args, why, children }: { what: string; args: Args; why: string; children: ReactNode }) {
  return (
    <div className="held">
      <section aria-label={what}>
        <h3>{what}</h3>
        <ArgsList args={args} />
      </section>
      <section aria-label={why} className="why">
        <h3>{why}</h3>
        {children}
      </section>
    </div>
  );
}

/** A workflow's `approval` state: its prompt and who may decide. */
function Checkpoint({ approval, now }: { approval: ApprovalRow; now: number }) {
  return (
    <>
      <p className="prompt">{approval.prompt}</p>
      <dl className="meta">
        <Fact label="Workflow">{approval.workflow}</Fact>
        <Fact label="Step">
          <code>{approval.state_name}</code>
        </Fact>
        <Fact label="Approvers">{approval.approvers.join(", ")}</Fact>
        <Fact label="Requested">
          <When at={approval.requested_at} now={now} /> by {approval.requester}
        </Fact>
        <Expiry approval={approval} now={now} />
      </dl>
    </>
  );
}

/** Who must approve, how far it has got, and any escalation. */
function needsWords(approval: ApprovalRow, held: HeldCallView): string {
  const who = orWords(approval.approvers);
  if (held.approvals_needed <= 1) return `1 approval from ${who}`;
  const voters = held.votes.map((vote) => vote.voter).join(", ");
  const sofar = held.votes.length === 0 ? "none yet" : `${String(held.votes.length)} so far (${voters})`;
  return `${String(held.approvals_needed)} approvals from different people with role ${who}; ${sofar}`;
}

/**
 * A tool call the policy held: what it would do, why it waits, and where the decision is.
 * `compact` (while its arguments are edited) keeps only a line of why, so the editor and the
 * diff have the room.
 */
function HeldCall({
  approval,
  held,
  now,
  compact,
}: {
  approval: ApprovalRow;
  held: HeldCallView;
  now: number;
  compact: boolean;
}) {
  const escalated = held.escalate_at !== null && held.escalate_at <= now;
  return (
    <>
      <CallHeading
        tool={held.tool}
        pills={
          <>
            <span className={`pill pill-${riskTone(held.risk)}`}>
              {`${held.risk.charAt(0).toUpperCase()}${held.risk.slice(1)} risk`}
            </span>
            {escalated && <span className="pill pill-attention">Escalated</span>}
          </>
        }
        workflow={approval.workflow}
        step={approval.state_name}
        taskId={approval.task_id}
      />
      {compact ? (
        <p className="why-line">
          Held by {held.rule === null ? "the policy" : <strong>“{held.rule}”</strong>}
          {held.condition !== null && (
            <>
              {" "}
              (<code>{held.condition}</code>)
            </>
          )}{" "}
          · <span className="nowrap">{needsWords(approval, held)}</span> ·{" "}
          <span className="nowrap">{timeLeft(approval.expires_at, now)}</span>
        </p>
      ) : (
        <HeldDetails approval={approval} held={held} now={now} />
      )}
    </>
  );
}

function HeldDetails({ approval, held, now }: { approval: ApprovalRow; held: HeldCallView; now: number }) {
  const escalated = held.escalate_at !== null && held.escalate_at <= now;
  const escalatesIn = held.escalate_at === null ? null : duration(held.escalate_at, now);
  const argsSeen = held.seen.filter((value) => value.path.startsWith("args."));
  const otherSeen = held.seen.filter((value) => !value.path.startsWith("args."));
  return (
    <>
      <WhatAndWhy what="What it would do" args={held.args} why="Why it waits">
        <p>
          {held.rule === null ? (
            "The policy requires approval."
          ) : (
            <>
              Rule <strong>“{held.rule}”</strong>
              {held.condition !== null && (
                <>
                  {" "}
                  applies when <code>{held.condition}</code>
                </>
              )}
              .
            </>
          )}
        </p>
        {held.seen.length > 0 && (
          <dl className="seen">
            {[...argsSeen, ...otherSeen].map((value) => (
              <div key={value.path}>
                <dt>
                  <code>{value.path}</code>
                </dt>
                <dd>{valueWords(value.path.split(".").pop() ?? "", value.value)}</dd>
              </div>
            ))}
          </dl>
        )}
        {held.condition_error !== null && (
          <p className="bad-text">
            Its condition could not be evaluated ({held.condition_error}), so it applies: approval
            rules fail closed.
          </p>
        )}
      </WhatAndWhy>
      <dl className="meta">
        <Fact label="Asked">
          <When at={approval.requested_at} now={now} /> by {held.requester}
        </Fact>
        <Fact label="Needs">{needsWords(approval, held)}</Fact>
        <Expiry approval={approval} now={now} />
        {held.escalate_to.length > 0 && held.escalate_at !== null && (
          <Fact label="Escalation" className={escalated ? "soon" : undefined} title={formatExact(held.escalate_at)}>
            {escalated || escalatesIn === null
              ? `Escalated: ${orWords(held.escalate_to)} may decide too`
              : `${orWords(held.escalate_to)} may decide too in ${escalatesIn}`}
          </Fact>
        )}
        {held.four_eyes && <Fact label="Four eyes">{held.requester} may not approve it</Fact>}
      </dl>
    </>
  );
}

function GrantForm({
  approval,
  held,
  choice,
  busy,
  onChange,
  onCancel,
  onSubmit,
}: {
  approval: ApprovalRow;
  held: HeldCallView;
  choice: GrantChoice;
  busy: boolean;
  onChange: (choice: GrantChoice) => void;
  onCancel: () => void;
  onSubmit: () => void;
}) {
  const uses = choice.uses.trim();
  const usesProblem =
    uses !== "" && !(Number.isInteger(Number(uses)) && Number(uses) >= 1)
      ? "Write a whole number of calls, 1 or more, or leave it empty."
      : null;
  const options = caps(held.args);
  const unlimited = choice.minutes === null && uses === "";
  const id = approval.id;
  return (
    <form
      className="step-form"
      onSubmit={(event) => {
        event.preventDefault();
        if (usesProblem === null) onSubmit();
      }}
    >
      <h3>Approve, and let later calls like this one through</h3>
      <p className="hint">
        A grant stands in for approvals of <code>{held.tool}</code> until it runs out or you revoke
        it (under Policy). It never overrides a rule that denies a call.
      </p>
      <div className="grant-grid">
        <span className="label">Tasks</span>
        <div role="radiogroup" aria-label="Tasks" className="choices">
          <label>
            <input
              type="radio"
              name={`scope-${id}`}
              checked={choice.scope === "workflow"}
              onChange={() => {
                onChange({ ...choice, scope: "workflow" });
              }}
            />{" "}
            every {approval.workflow} task
          </label>
          <label>
            <input
              type="radio"
              name={`scope-${id}`}
              checked={choice.scope === "task"}
              onChange={() => {
                onChange({ ...choice, scope: "task" });
              }}
            />{" "}
            only task {shortId(approval.task_id)}
          </label>
        </div>

        <label className="label" htmlFor={`for-${id}`}>
          For
        </label>
        <select
          id={`for-${id}`}
          value={choice.minutes === null ? "" : String(choice.minutes)}
          onChange={(event) => {
            onChange({ ...choice, minutes: event.target.value === "" ? null : Number(event.target.value) });
          }}
        >
          {GRANT_LENGTHS.map((minutes) => (
            <option key={String(minutes)} value={minutes === null ? "" : String(minutes)}>
              {minutes === null ? "until revoked" : minutesWords(minutes)}
            </option>
          ))}
        </select>

        <label className="label" htmlFor={`uses-${id}`}>
          At most
        </label>
        <span>
          <input
            id={`uses-${id}`}
            type="text"
            inputMode="numeric"
            className="short"
            placeholder="no limit"
            value={choice.uses}
            aria-invalid={usesProblem !== null}
            onChange={(event) => {
              onChange({ ...choice, uses: event.target.value });
            }}
          />{" "}
          calls
          {usesProblem !== null && <span className="arg-problem">{usesProblem}</span>}
        </span>

        <label className="label" htmlFor={`when-${id}`}>
          Only while
        </label>
        <select
          id={`when-${id}`}
          value={choice.condition}
          onChange={(event) => {
            onChange({ ...choice, condition: event.target.value });
          }}
        >
          {options.map((option) => (
            <option key={option.condition} value={option.condition}>
              {option.label}
            </option>
          ))}
          <option value="">any arguments</option>
        </select>
      </div>
      <p className="hint">
        Grants:{" "}
        <strong>
          {grantScope({
            tool: held.tool,
            workflow: approval.workflow,
            task_id: choice.scope === "task" ? approval.task_id : null,
            condition: choice.condition === "" ? null : choice.condition,
          })}
        </strong>
        {choice.minutes === null ? ", until revoked" : `, for ${minutesWords(choice.minutes)}`}
        {uses !== "" && usesProblem === null && `, at most ${uses} calls`}.
        {unlimited && " It has no end: it lasts until you revoke it."}
      </p>
      <div className="actions">
        <button type="submit" className="button primary" disabled={busy || usesProblem !== null}>
          Approve and grant
        </button>
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
