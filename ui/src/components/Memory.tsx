// Memory: what workflows remember across tasks (about a customer, an employee, an
// account), searchable by words and filtered by subject. A person corrects an entry (the
// old and new values shown before saving; the old one stays in the history) or forgets one
// (after a confirmation; a tombstone says who and when). Every change is recorded.
import { Fragment, useState } from "react";
import { useAction } from "../action";
import { correctMemory, forgetMemory, listMemory } from "../api";
import type { MemoryEntry } from "../bindings/MemoryEntry";
import type { MemoryState } from "../bindings/MemoryState";
import { isoMoment, prettyJson } from "../format";
import { useLive } from "../live";
import { valueText } from "./Args";
import { Done, NotReady, PanelHeader } from "./Panel";
import { TaskLink } from "./TaskLink";
import { When } from "./When";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One value in words; a moment ("2026-11-27T18:48:40Z") as how long ago, in full on hover. */
function Said({ value, now }: { value: unknown; now: number }) {
  const at = isoMoment(value);
  return at === null ? <>{valueText(value)}</> : <When at={at} now={now} />;
}

/** A remembered value for people: its fields, each with its value in words, or the value. */
export function MemoryValue({ value, now }: { value: unknown; now: number }) {
  if (isRecord(value) && Object.keys(value).length > 0) {
    return (
      <ul className="fields">
        {Object.entries(value).map(([key, field]) => (
          <li key={key}>
            <span className="muted">{key.replaceAll("_", " ")}</span> <Said value={field} now={now} />
          </li>
        ))}
      </ul>
    );
  }
  return (
    <span>
      <Said value={value} now={now} />
    </span>
  );
}

const STATE_LABEL: Record<MemoryState, string> = {
  live: "In use",
  replaced: "Replaced",
  forgotten: "Forgotten",
};

/** Who or what wrote an entry, in words. */
function Source({ entry, onOpenTask }: { entry: MemoryEntry; onOpenTask: (id: string) => void }) {
  if (entry.source_person !== null) {
    return <span>corrected by {entry.source_person}</span>;
  }
  if (entry.source_task !== null) {
    return (
      <TaskLink id={entry.source_task} onOpenTask={onOpenTask}>
        {entry.source_step !== null && <span className="muted">, step {entry.source_step}</span>}
      </TaskLink>
    );
  }
  return <span className="muted">unknown</span>;
}

type Action = { id: string; kind: "correct" | "forget" };

export function Memory({ now, onOpenTask }: { now: number; onOpenTask: (id: string) => void }) {
  const [search, setSearch] = useState("");
  const [subject, setSubject] = useState("");
  const [history, setHistory] = useState(false);
  const [action, setAction] = useState<Action | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [subjects, setSubjects] = useState<readonly string[]>([]);
  const filter = {
    subject: subject.trim() === "" ? null : subject.trim(),
    search: search.trim() === "" ? null : search.trim(),
    with_history: history,
  };
  const [load, reload] = useLive(
    () =>
      listMemory(filter).then((entries) => {
        // Every subject seen so far, for the subject filter's suggestions.
        setSubjects((known) => [...new Set([...known, ...entries.map((e) => e.subject)])].sort());
        return entries;
      }),
    undefined,
    JSON.stringify(filter),
  );
  const filtered = filter.subject !== null || filter.search !== null;

  const finished = (message: string) => {
    setAction(null);
    setDone(message);
    reload();
  };

  return (
    <section className="panel wide" aria-labelledby="memory-title">
      <PanelHeader
        id="memory-title"
        title="Memory"
        lede={
          <>
            What workflows remember from one task to the next, about a customer, an employee or an
            account. Correct an entry that is wrong, or forget one that should not be kept: each
            change is recorded, with who made it.
          </>
        }
        onRefresh={reload}
      />

      <div className="filters" role="search">
        <label className="inline-field">
          <span>Find</span>
          <input
            type="search"
            placeholder="Words in the entries"
            value={search}
            onChange={(event) => {
              setSearch(event.target.value);
            }}
          />
        </label>
        <label className="inline-field">
          <span>Subject</span>
          <input
            type="text"
            list="memory-subjects"
            placeholder="Any"
            value={subject}
            onChange={(event) => {
              setSubject(event.target.value);
            }}
          />
          <datalist id="memory-subjects">
            {subjects.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </label>
        <label className="inline-field">
          <input
            type="checkbox"
            checked={history}
            onChange={(event) => {
              setHistory(event.target.checked);
            }}
          />
          <span>Show history (replaced and forgotten entries)</span>
        </label>
      </div>

      <Done message={done} />
      <NotReady load={load} loading="Reading memory…" failed="Airlock could not read memory." />
      {load.state === "ready" && load.data.length === 0 && !filtered && (
        <div className="card empty">
          <h2>Nothing remembered yet</h2>
          <p>
            Workflows write memory only through a <code>remember</code> state (for example the
            demo&apos;s <code>hr-onboarding</code> remembers each document a new hire hands in), and
            read it back with a <code>recall</code> state. Entries appear here once such a step
            has run. From a terminal: <code>airlock memory list</code>.
          </p>
        </div>
      )}
      {load.state === "ready" && load.data.length === 0 && filtered && (
        <div className="card empty">
          <h2>No entries match</h2>
          <p>
            Nothing {filter.subject !== null && <>about <strong>{filter.subject}</strong> </>}
            {filter.search !== null && <>mentions “{filter.search}” </>}
            {history ? "in memory or its history." : "in memory now. Show the history to look at replaced and forgotten entries too."}
          </p>
        </div>
      )}
      {load.state === "ready" && load.data.length > 0 && (
        <div className="card flush">
          <table className="table memory">
            <thead>
              <tr>
                <th scope="col">Subject</th>
                <th scope="col">Entry</th>
                <th scope="col">Value</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {load.data.map((entry) => (
                <Fragment key={entry.id}>
                  <tr aria-label={`${entry.subject} ${entry.category} ${entry.key}`} className={entry.state === "live" ? undefined : "past"}>
                    <td className="strong nowrap">{entry.subject}</td>
                    <td>
                      <p>
                        <span className="muted">{entry.category}</span> · <code>{entry.key}</code>
                        {entry.state !== "live" && (
                          <>
                            {" "}
                            <span className="pill pill-quiet">{STATE_LABEL[entry.state]}</span>
                          </>
                        )}
                      </p>
                      <p className="muted">{entry.text}</p>
                      {entry.state === "live" && (
                        <p className="row-actions">
                          <button
                            type="button"
                            className="button small"
                            aria-label={`Correct ${entry.subject} ${entry.key}`}
                            onClick={() => {
                              setDone(null);
                              setAction({ id: entry.id, kind: "correct" });
                            }}
                          >
                            Correct
                          </button>{" "}
                          <button
                            type="button"
                            className="button small"
                            aria-label={`Forget ${entry.subject} ${entry.key}`}
                            onClick={() => {
                              setDone(null);
                              setAction({ id: entry.id, kind: "forget" });
                            }}
                          >
                            Forget
                          </button>
                        </p>
                      )}
                    </td>
                    <td className="value">
                      {entry.state === "forgotten" ? (
                        <span className="muted">
                          forgotten{entry.deleted_by !== null && ` by ${entry.deleted_by}`}
                          {entry.deleted_at !== null && (
                            <>
                              {" "}
                              <When at={entry.deleted_at} now={now} />
                            </>
                          )}
                        </span>
                      ) : (
                        <MemoryValue value={entry.value} now={now} />
                      )}
                    </td>
                    <td className="nowrap">
                      <Source entry={entry} onOpenTask={onOpenTask} />
                      <p className="muted">
                        <When at={entry.created_at} now={now} />
                      </p>
                    </td>
                  </tr>
                  {action?.id === entry.id && (
                    <tr className="form-row">
                      <td colSpan={4}>
                        {action.kind === "correct" ? (
                          <CorrectForm
                            entry={entry}
                            now={now}
                            onCancel={() => {
                              setAction(null);
                            }}
                            onDone={() => {
                              finished(`Corrected ${entry.subject}'s ${entry.key}. The old value stays in the history.`);
                            }}
                            onGone={reload}
                          />
                        ) : (
                          <ForgetForm
                            entry={entry}
                            onCancel={() => {
                              setAction(null);
                            }}
                            onDone={() => {
                              finished(`Forgot ${entry.subject}'s ${entry.key}. A note of who forgot it and when stays in the history.`);
                            }}
                            onGone={reload}
                          />
                        )}
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

type Parsed = { ok: true; value: unknown } | { ok: false; message: string };

/** The editor's text as JSON; a bare word that is not JSON is taken as text. */
export function parseValue(text: string): Parsed {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: false, message: "Give a value (JSON, or plain text)." };
  try {
    return { ok: true, value: JSON.parse(trimmed) as unknown };
  } catch {
    if (/^[[{"]/.test(trimmed)) {
      return { ok: false, message: "This is not valid JSON: check the brackets, quotes and commas." };
    }
    return { ok: true, value: trimmed };
  }
}

function CorrectForm({
  entry,
  now,
  onCancel,
  onDone,
  onGone,
}: {
  entry: MemoryEntry;
  now: number;
  onCancel: () => void;
  onDone: () => void;
  onGone: () => void;
}) {
  const [draft, setDraft] = useState(() => prettyJson(entry.value));
  const [words, setWords] = useState("");
  const [review, setReview] = useState<unknown>(undefined);
  const [reviewing, setReviewing] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const { busy, failure, run } = useAction();

  const check = () => {
    const parsed = parseValue(draft);
    if (!parsed.ok) {
      setProblem(parsed.message);
      return;
    }
    if (JSON.stringify(parsed.value) === JSON.stringify(entry.value)) {
      setProblem("The value is unchanged: edit it first.");
      return;
    }
    setProblem(null);
    setReview(parsed.value);
    setReviewing(true);
  };

  const save = () => {
    setProblem(null);
    run(() => correctMemory(entry.id, review, words.trim() === "" ? null : words.trim()), onDone, onGone);
  };

  return (
    <form
      className="memory-form"
      aria-label={`Correct ${entry.subject} ${entry.key}`}
      onSubmit={(event) => {
        event.preventDefault();
        if (reviewing) save();
        else check();
      }}
    >
      {!reviewing ? (
        <>
          <label className="field">
            <span>New value (JSON; plain text is taken as text)</span>
            <textarea
              className="mono"
              rows={Math.min(12, Math.max(3, draft.split("\n").length + 1))}
              value={draft}
              onChange={(event) => {
                setDraft(event.target.value);
              }}
            />
          </label>
          <label className="field">
            <span>In words (optional; said to workflows that recall it)</span>
            <input
              type="text"
              placeholder={entry.text}
              value={words}
              onChange={(event) => {
                setWords(event.target.value);
              }}
            />
          </label>
          {problem !== null && <p className="bad-text">{problem}</p>}
          <div className="actions">
            <button type="submit" className="button primary">
              Review the change
            </button>
            <button type="button" className="button" onClick={onCancel}>
              Cancel
            </button>
          </div>
        </>
      ) : (
        <>
          <table className="diff">
            <caption className="sr-only">The value now and the corrected value</caption>
            <thead>
              <tr>
                <th scope="col">Now</th>
                <th scope="col">Corrected</th>
              </tr>
            </thead>
            <tbody>
              <tr className="changed">
                <td className="before">
                  <MemoryValue value={entry.value} now={now} />
                </td>
                <td className="after">
                  <MemoryValue value={review} now={now} />
                </td>
              </tr>
            </tbody>
          </table>
          <p>
            <span className="muted">In words:</span>{" "}
            {words.trim() === "" ? (
              <>
                {entry.category} {entry.key}: {JSON.stringify(review)}{" "}
                <span className="muted">(written for you)</span>
              </>
            ) : (
              words.trim()
            )}
          </p>
          {failure !== null && <p className="bad-text">{failure}</p>}
          <div className="confirm">
            <span>Save this correction?</span>
            <button type="submit" className="button primary" disabled={busy}>
              Save correction
            </button>
            <button
              type="button"
              className="button"
              disabled={busy}
              onClick={() => {
                setReviewing(false);
              }}
            >
              Back to editing
            </button>
            <span className="hint">The old value stays in the history; the correction is recorded as yours.</span>
          </div>
        </>
      )}
    </form>
  );
}

function ForgetForm({
  entry,
  onCancel,
  onDone,
  onGone,
}: {
  entry: MemoryEntry;
  onCancel: () => void;
  onDone: () => void;
  onGone: () => void;
}) {
  const { busy, failure, run } = useAction();
  const forget = () => {
    run(() => forgetMemory(entry.id), onDone, onGone);
  };
  return (
    <div className="memory-form">
      {failure !== null && <p className="bad-text">{failure}</p>}
      <div className="confirm" role="group" aria-label={`Forget ${entry.subject} ${entry.key}`}>
        <span>
          Forget {entry.subject}&apos;s {entry.key}?
        </span>
        <button type="button" className="button danger" disabled={busy} onClick={forget}>
          Forget it
        </button>
        <button type="button" className="button" disabled={busy} onClick={onCancel}>
          Keep it
        </button>
        <span className="hint">
          Workflows will no longer recall it. Its value is dropped; a note of who forgot it and when
          stays.
        </span>
      </div>
    </div>
  );
}
