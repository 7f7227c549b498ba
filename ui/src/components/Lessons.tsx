// Lessons: what people's corrections teach each workflow. A rejection's reason, an edit
// before approving, a failed outcome check or a low rating proposes a lesson; it does
// nothing until a person accepts it (maybe in their own words) or dismisses it. Accepted
// lessons are given to that workflow's agent steps with every request.
import { useEffect, useState } from "react";
import { useAction } from "../action";
import { listLessons, reviewLesson, taskDetail } from "../api";
import type { ApprovalRow } from "../bindings/ApprovalRow";
import type { LessonOrigin } from "../bindings/LessonOrigin";
import type { LessonRow } from "../bindings/LessonRow";
import { useLive } from "../live";
import { ArgsDiff, ArgsList, changedKeys, valueWords } from "./Args";
import { Done, NotReady, PanelHeader } from "./Panel";
import { TaskLink } from "./TaskLink";
import { When } from "./When";

const ORIGIN: Record<LessonOrigin, string> = {
  rejection: "From a rejection",
  edit: "From an edit before approval",
  failed_check: "From a failed outcome check",
  low_rating: "From a low rating",
  policy: "From a policy exception",
};

/** " · task 3f1c2a9e", when the lesson comes from a task. */
function FromTask({ id, onOpenTask }: { id: string | null; onOpenTask: (id: string) => void }) {
  if (id === null) return null;
  return (
    <>
      {" · "}
      <TaskLink id={id} onOpenTask={onOpenTask} />
    </>
  );
}

/** How many of the lessons' tasks are read to tell their edits and rejections. */
const SOURCE_TASKS_READ = 40;

/** Lessons that come from a decision on a held call: its approval tells what was changed. */
function fromHeldCall(lesson: LessonRow): boolean {
  return (lesson.origin === "edit" || lesson.origin === "rejection") && lesson.task_id !== null;
}

/**
 * The approvals the lessons come from, by id, read from their tasks (one read a task, for
 * the newest tasks). A task that cannot be read leaves its lessons in their own words.
 */
function useSourceApprovals(lessons: readonly LessonRow[]): ReadonlyMap<string, ApprovalRow> {
  const [approvals, setApprovals] = useState<ReadonlyMap<string, ApprovalRow>>(new Map());
  // Lessons come newest first; only the newest tasks are read, so a long record costs a
  // bounded number of reads (older lessons keep their own words).
  const tasks = [...new Set(lessons.filter(fromHeldCall).map((l) => l.task_id ?? ""))]
    .slice(0, SOURCE_TASKS_READ)
    .sort();
  const key = tasks.join(" ");
  useEffect(() => {
    if (key === "") return;
    let live = true;
    void Promise.allSettled(key.split(" ").map((id) => taskDetail(id))).then((details) => {
      if (!live) return;
      const found = new Map<string, ApprovalRow>();
      for (const detail of details) {
        if (detail.status !== "fulfilled") continue;
        for (const approval of detail.value.approvals) found.set(approval.id, approval);
      }
      setApprovals(found);
    });
    return () => {
      live = false;
    };
  }, [key]);
  return approvals;
}

/**
 * A held call's edit or rejection in plain words, for a person to start rewording from:
 * "fiona approved support.issue_refund only after changing amount_cents from 26000 (260.00)
 * to 20000 (200.00): capped". Null when the approval does not tell it.
 */
export function plainWords(lesson: LessonRow, approval: ApprovalRow | undefined): string | null {
  const held = approval?.held ?? null;
  if (approval === undefined || held === null) return null;
  const who = approval.decided_by ?? "Someone";
  const why = approval.reason === null ? "" : `: ${approval.reason}`;
  const edited = approval.edited_args;
  if (lesson.origin === "edit" && edited !== null) {
    const changes = changedKeys(held.args, edited).map(
      (key) => `${key} from ${valueWords(key, held.args[key])} to ${valueWords(key, edited[key])}`,
    );
    return `${who} approved ${held.tool} only after changing ${changes.join(", ")}${why}`;
  }
  const fields = Object.entries(held.args).map(([key, value]) => `${key} ${valueWords(key, value)}`);
  return `${who} rejected a call to ${held.tool} with ${fields.join(", ")}${why}`;
}

/**
 * What a lesson says. One proposed from a held call's edit or rejection is told from its
 * approval (who, the reason, and field by field what changed), the words the agents are
 * given a click away; any other lesson, or one reworded by a person, is its text.
 */
function LessonText({ lesson, approval }: { lesson: LessonRow; approval: ApprovalRow | undefined }) {
  const held = approval?.held ?? null;
  // The engine's own wording quotes the proposed arguments; a person's rewording does not.
  if (approval === undefined || held === null || !lesson.text.includes(JSON.stringify(held.args))) {
    return <p className="lesson-text">{lesson.text}</p>;
  }
  const who = approval.decided_by ?? "Someone";
  const edited = lesson.origin === "edit" && approval.edited_args !== null;
  return (
    <div className="lesson-text">
      <p>
        {edited ? (
          <>
            {who} approved <code>{held.tool}</code> only after changing its arguments
          </>
        ) : (
          <>
            {who} rejected a call to <code>{held.tool}</code>
          </>
        )}
        {approval.reason === null ? "." : <>: “{approval.reason}”</>}
      </p>
      {approval.edited_args !== null ? (
        <ArgsDiff before={held.args} after={approval.edited_args} afterLabel="Approved with" />
      ) : (
        <ArgsList args={held.args} />
      )}
      <details className="raw">
        <summary>As the agents are given it</summary>
        <p className="mono">{lesson.text}</p>
      </details>
    </div>
  );
}

export function Lessons({ now, onOpenTask }: { now: number; onOpenTask: (id: string) => void }) {
  const [load, reload] = useLive(listLessons);
  const [done, setDone] = useState<string | null>(null);

  const lessons = load.state === "ready" ? load.data : [];
  const proposed = lessons.filter((l) => l.state === "proposed");
  const accepted = lessons.filter((l) => l.state === "accepted");
  const dismissed = lessons.filter((l) => l.state === "dismissed");
  const workflows = [...new Set(accepted.map((l) => l.workflow))].sort();
  const approvals = useSourceApprovals(lessons);

  return (
    <section className="panel wide" aria-labelledby="lessons-title">
      <PanelHeader
        id="lessons-title"
        title="Lessons"
        lede={
          <>
            What people&apos;s corrections teach each workflow. A proposed lesson does nothing until
            you accept it; accepted lessons are given to that workflow&apos;s agents with every
            request.
          </>
        }
        onRefresh={reload}
      />
      <Done message={done} />
      <NotReady load={load} loading="Reading lessons…" failed="Airlock could not read the lessons." />
      {load.state === "ready" && lessons.length === 0 && (
        <div className="card empty">
          <h2>No lessons yet</h2>
          <p>
            Airlock proposes a lesson when someone rejects a call with a reason, changes a
            call&apos;s arguments before approving it, when a task&apos;s outcome check fails, or
            when a finished task is rated low. Review them here; from a terminal:{" "}
            <code>airlock lessons list</code>.
          </p>
        </div>
      )}
      {load.state === "ready" && lessons.length > 0 && (
        <>
          <h2 className="section-title">
            To review <span className="muted">{proposed.length}</span>
          </h2>
          {proposed.length === 0 ? (
            <p className="muted">Nothing waits for a review.</p>
          ) : (
            <ul className="lessons">
              {proposed.map((lesson) => (
                <Proposed
                  key={lesson.id}
                  lesson={lesson}
                  approval={approvals.get(lesson.source_ref)}
                  now={now}
                  onOpenTask={onOpenTask}
                  onDone={(message) => {
                    setDone(message);
                    reload();
                  }}
                />
              ))}
            </ul>
          )}

          <h2 className="section-title">Accepted: given to the workflow&apos;s agents</h2>
          {accepted.length === 0 ? (
            <p className="muted">No lesson has been accepted yet.</p>
          ) : (
            workflows.map((workflow) => (
              <section key={workflow} className="card lesson-group" aria-label={`Accepted for ${workflow}`}>
                <h3>
                  <code>{workflow}</code>
                </h3>
                <ul className="plain-list">
                  {accepted
                    .filter((l) => l.workflow === workflow)
                    .map((lesson) => (
                      <li key={lesson.id}>
                        <LessonText lesson={lesson} approval={approvals.get(lesson.source_ref)} />
                        <p className="muted">
                          Accepted by {lesson.reviewed_by}
                          {lesson.reviewed_at !== null && (
                            <>
                              {" "}
                              <When at={lesson.reviewed_at} now={now} />
                            </>
                          )}{" "}
                          · {ORIGIN[lesson.origin].toLowerCase()}
                          <FromTask id={lesson.task_id} onOpenTask={onOpenTask} />
                        </p>
                      </li>
                    ))}
                </ul>
              </section>
            ))
          )}

          {dismissed.length > 0 && (
            <details className="dismissed">
              <summary>Dismissed ({dismissed.length})</summary>
              <ul className="plain-list">
                {dismissed.map((lesson) => (
                  <li key={lesson.id}>
                    <LessonText lesson={lesson} approval={approvals.get(lesson.source_ref)} />
                    <p className="muted">
                      <code>{lesson.workflow}</code> · dismissed by {lesson.reviewed_by}
                      {lesson.reviewed_at !== null && (
                        <>
                          {" "}
                          <When at={lesson.reviewed_at} now={now} />
                        </>
                      )}
                    </p>
                  </li>
                ))}
              </ul>
            </details>
          )}
        </>
      )}
    </section>
  );
}

function Proposed({
  lesson,
  approval,
  now,
  onOpenTask,
  onDone,
}: {
  lesson: LessonRow;
  approval: ApprovalRow | undefined;
  now: number;
  onOpenTask: (id: string) => void;
  onDone: (message: string) => void;
}) {
  const [rewording, setRewording] = useState(false);
  const [words, setWords] = useState(lesson.text);
  const { busy, failure, run } = useAction();

  const review = (accept: boolean, text: string | null) => {
    run(
      () => reviewLesson(lesson.id, accept, text),
      () => {
        onDone(
          accept
            ? `Accepted: ${lesson.workflow}'s agents are given this lesson from their next request.`
            : "Dismissed: the lesson will not be given to any agent.",
        );
      },
    );
  };

  return (
    <li className="card lesson" aria-label={`Lesson for ${lesson.workflow}`}>
      <p className="lesson-meta muted">
        <code>{lesson.workflow}</code> · {ORIGIN[lesson.origin]}
        <FromTask id={lesson.task_id} onOpenTask={onOpenTask} /> · <When at={lesson.created_at} now={now} />
      </p>
      {rewording ? (
        <label className="field">
          <span className="label">The lesson in your words</span>
          <textarea
            rows={3}
            value={words}
            onChange={(event) => {
              setWords(event.target.value);
            }}
          />
        </label>
      ) : (
        <LessonText lesson={lesson} approval={approval} />
      )}
      {failure !== null && <p className="bad-text">{failure}</p>}
      <div className="actions">
        {rewording ? (
          <>
            <button
              type="button"
              className="button primary"
              disabled={busy || words.trim() === ""}
              onClick={() => {
                review(true, words.trim());
              }}
            >
              Accept this wording
            </button>
            <button
              type="button"
              className="button"
              disabled={busy}
              onClick={() => {
                setRewording(false);
                setWords(lesson.text);
              }}
            >
              Cancel
            </button>
          </>
        ) : (
          <>
            <button
              type="button"
              className="button primary"
              disabled={busy}
              onClick={() => {
                review(true, null);
              }}
            >
              Accept
            </button>
            <button
              type="button"
              className="button"
              disabled={busy}
              onClick={() => {
                // Start from the lesson in plain words rather than its arguments' JSON.
                setWords(plainWords(lesson, approval) ?? lesson.text);
                setRewording(true);
              }}
            >
              Accept with my wording
            </button>
            <button
              type="button"
              className="button"
              disabled={busy}
              onClick={() => {
                review(false, null);
              }}
            >
              Dismiss
            </button>
          </>
        )}
      </div>
    </li>
  );
}
