// History: every tool call across tasks, newest first, with what let it through the
// policy — or what refused it: a refused proposal (denied by a rule, rejected by a person,
// its approval expired, stopped by the checks) is a row too, never made, with its reason.
// Filtered by server, tool, outcome, decision, task, workflow, approver, time and
// words; a windowed list that asks for a page only when its rows come into view, so
// 100,000 calls scroll like a hundred. New calls appear as tasks make them; everything a
// filter matches can be exported as CSV.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  countHistory,
  describeError,
  exportHistory,
  historyChoices,
  listHistory,
  onTaskChanged,
} from "../api";
import type { Allowance } from "../bindings/Allowance";
import type { CallOutcome } from "../bindings/CallOutcome";
import type { HistoryCall } from "../bindings/HistoryCall";
import type { HistoryChoices } from "../bindings/HistoryChoices";
import type { HistoryCursor } from "../bindings/HistoryCursor";
import type { HistoryExport } from "../bindings/HistoryExport";
import type { HistoryOutcome } from "../bindings/HistoryOutcome";
import type { HistoryQuery } from "../bindings/HistoryQuery";
import type { Refusal } from "../bindings/Refusal";
import { outcomeLabel, shortId } from "../format";
import { Problem } from "./Problem";

/** Rows one request asks for. */
export const PAGE = 100;
/** Every row is this tall, so a row's place is its index times this. */
export const ROW_HEIGHT = 44;
/** Rows drawn above and below the visible ones. */
const OVERSCAN = 10;
/** The list's height when the page has no layout to measure (tests). */
const FALLBACK_HEIGHT = 600;
/** Text filters wait this long after the last key before asking. */
const TYPING_MS = 250;

const OUTCOMES: readonly { value: HistoryOutcome; label: string }[] = [
  { value: "pending", label: "Under way" },
  { value: "succeeded", label: "Succeeded" },
  { value: "failed", label: "Failed" },
  { value: "in_doubt", label: "In doubt" },
  { value: "happened", label: "Happened (confirmed)" },
  { value: "not_happened", label: "Did not happen" },
  { value: "refused", label: "Refused (not made)" },
];

/** The decision filter's choices: what let a call through, or what refused it. */
type Decision = `allowed:${Allowance}` | `refused:${Refusal}`;

const ALLOWANCES: readonly { value: Allowance; label: string }[] = [
  { value: "policy", label: "A policy rule" },
  { value: "grant", label: "A grant" },
  { value: "approval", label: "A person's approval" },
];

const REFUSALS: readonly { value: Refusal; label: string }[] = [
  { value: "policy", label: "Denied by a policy rule" },
  { value: "person", label: "Rejected by a person" },
  { value: "expiry", label: "Approval expired" },
  { value: "cancel", label: "Task cancelled while it waited" },
  { value: "check", label: "Stopped by the checks" },
];

const OUTCOME_TONE: Record<CallOutcome, string> = {
  intent_only: "active",
  succeeded: "good",
  failed: "bad",
  in_doubt: "attention",
  happened: "good",
  not_happened: "quiet",
  refused: "stopped",
};

/** The filter bar's fields as typed. */
type Form = {
  server: string;
  tool: string;
  outcome: HistoryOutcome | "";
  decision: Decision | "";
  task: string;
  workflow: string;
  approved_by: string;
  rejected_by: string;
  text: string;
  since: string;
  until: string;
};

const EMPTY_FORM: Form = {
  server: "",
  tool: "",
  outcome: "",
  decision: "",
  task: "",
  workflow: "",
  approved_by: "",
  rejected_by: "",
  text: "",
  since: "",
  until: "",
};

const DAY_MS = 86_400_000;

/** A `YYYY-MM-DD` field as UTC midnight (the next one for an inclusive end day). */
function day(value: string, end: boolean): number | null {
  if (value === "") return null;
  const ms = Date.parse(`${value}T00:00:00Z`);
  if (Number.isNaN(ms)) return null;
  return end ? ms + DAY_MS : ms;
}

function blank(value: string): string | null {
  const trimmed = value.trim();
  return trimmed === "" ? null : trimmed;
}

export function toQuery(form: Form): HistoryQuery {
  return {
    server: blank(form.server),
    tool: blank(form.tool),
    outcome: form.outcome === "" ? null : form.outcome,
    allowed_by: form.decision.startsWith("allowed:") ? (form.decision.slice(8) as Allowance) : null,
    refused_by: form.decision.startsWith("refused:") ? (form.decision.slice(8) as Refusal) : null,
    task: blank(form.task),
    workflow: blank(form.workflow),
    since: day(form.since, false),
    until: day(form.until, true),
    approved_by: blank(form.approved_by),
    rejected_by: blank(form.rejected_by),
    text: blank(form.text),
  };
}

/** What refused a call, in words; the reason itself is the call's error. */
function refusedWords(call: HistoryCall, by: Refusal): string {
  const rule = call.rule === null ? "" : ` (rule “${call.rule}”)`;
  switch (by) {
    case "policy":
      return call.rule === null ? "Denied: no rule allows it" : `Denied by rule “${call.rule}”`;
    case "person":
      return `Rejected by ${call.rejected_by ?? "a person"}${rule}`;
    case "expiry":
      return `Approval expired${rule}`;
    case "cancel":
      return `Withdrawn: task cancelled${rule}`;
    case "check":
      return "Stopped by the checks";
  }
}

/** Who or what let a call through, or refused it, in words. */
export function allowedWords(call: HistoryCall): string {
  if (call.refused_by !== null) return refusedWords(call, call.refused_by);
  switch (call.allowed_by) {
    case "approval":
      return `Approved by ${call.approved_by ?? "a person"}`;
    case "grant":
      return `Grant ${shortId(call.allowed_ref ?? "")}`;
    case "policy":
      return call.rule === null ? "Policy" : `Rule “${call.rule}”`;
    case null:
      return "Not recorded";
  }
}

/** `100,000`: digits in groups of three, whatever the machine's locale. */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

const callTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});

function argsLine(args: unknown): string {
  const text = (JSON.stringify(args) as string | undefined) ?? "";
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

/** The rows shown for one filter: how many there are below the newest, and those loaded. */
type Snapshot = {
  key: string;
  /** The newest row when the snapshot was taken; later rows are counted, not shown. */
  top: HistoryCursor | null;
  total: number;
  rows: Map<number, HistoryCall>;
};

export function History({ onOpenCall }: { onOpenCall: (taskId: string, callId: string) => void }) {
  const [form, setForm] = useState<Form>(EMPTY_FORM);
  const [query, setQuery] = useState<HistoryQuery>(() => toQuery(EMPTY_FORM));
  const key = JSON.stringify(query);
  const [snapshot, setSnapshot] = useState<Snapshot>({ key: "", top: null, total: 0, rows: new Map() });
  const [failure, setFailure] = useState<string | null>(null);
  const [newer, setNewer] = useState(0);
  const [choices, setChoices] = useState<HistoryChoices | null>(null);
  const [exported, setExported] = useState<HistoryExport | null>(null);
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(FALLBACK_HEIGHT);
  const viewport = useRef<HTMLDivElement>(null);
  const requested = useRef(new Set<number>());
  const current = useRef(snapshot);

  // A new query only when it asks for something else; the list starts again at its top.
  const ask = useCallback((next: HistoryQuery) => {
    setQuery((now) => {
      if (JSON.stringify(now) === JSON.stringify(next)) return now;
      if (viewport.current !== null) viewport.current.scrollTop = 0;
      setScrollTop(0);
      return next;
    });
  }, []);

  // Text fields settle before they ask; choices ask at once.
  useEffect(() => {
    const timer = window.setTimeout(() => {
      ask(toQuery(form));
    }, TYPING_MS);
    return () => {
      window.clearTimeout(timer);
    };
  }, [form, ask]);

  const choose = (patch: Partial<Form>) => {
    const next = { ...form, ...patch };
    setForm(next);
    ask(toQuery(next));
  };

  // The filter's suggestions read every call (60-230 ms for 100,000): asked once the first
  // page is in, so that reading does not compete with the first page for the machine.
  const firstAnswered = snapshot.key !== "" || failure !== null;
  useEffect(() => {
    if (firstAnswered) historyChoices().then(setChoices, () => undefined);
  }, [firstAnswered]);

  /** The first page and the count, for `query`: a new snapshot. */
  const loadTop = useCallback(
    () => {
      const asked = JSON.stringify(query);
      Promise.all([listHistory(query, null, 0, PAGE), countHistory(query, null, null)]).then(
        ([rows, total]) => {
          if (JSON.stringify(query) !== asked) return;
          const map = new Map<number, HistoryCall>();
          rows.forEach((row, i) => map.set(i, row));
          requested.current = new Set([0]);
          const top = rows[0] === undefined ? null : { intent_at: rows[0].intent_at, id: rows[0].id };
          setSnapshot({ key: asked, top, total: Math.max(total, rows.length), rows: map });
          setNewer(0);
          setFailure(null);
        },
        (error: unknown) => {
          setFailure(describeError(error));
        },
      );
    },
    [query],
  );

  useEffect(loadTop, [loadTop]);

  // New calls: shown at once when the list is at its top, else counted in a banner.
  const atTop = scrollTop < ROW_HEIGHT;
  const atTopRef = useRef(atTop);
  useEffect(() => {
    current.current = snapshot;
    atTopRef.current = atTop;
  });
  useEffect(() => {
    let pending: number | null = null;
    const check = () => {
      pending = null;
      const shown = current.current;
      if (atTopRef.current || shown.top === null) {
        loadTop();
        return;
      }
      countHistory(query, null, shown.top).then(
        (count) => {
          if (current.current === shown) setNewer(count);
        },
        () => undefined,
      );
    };
    let stop: (() => void) | null = null;
    let closed = false;
    void onTaskChanged(() => {
      // A burst of changes asks once.
      pending ??= window.setTimeout(check, 500);
    }).then((unlisten) => {
      if (closed) unlisten();
      else stop = unlisten;
    });
    return () => {
      closed = true;
      stop?.();
      if (pending !== null) window.clearTimeout(pending);
    };
  }, [query, loadTop]);

  // The viewport's height, kept as the window resizes.
  useEffect(() => {
    const element = viewport.current;
    if (element === null) return;
    const measure = () => {
      setHeight(element.clientHeight > 0 ? element.clientHeight : FALLBACK_HEIGHT);
    };
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => {
      observer.disconnect();
    };
  }, [snapshot.key]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(snapshot.total, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);

  // Ask for the pages the visible rows are on, once each.
  useEffect(() => {
    const shown = snapshot;
    if (shown.top === null || shown.key !== key) return;
    for (let page = Math.floor(first / PAGE); page * PAGE < last; page += 1) {
      if (requested.current.has(page)) continue;
      requested.current.add(page);
      // Row 0 is the top row itself; row n is n - 1 rows below it.
      listHistory(query, shown.top, page * PAGE - 1, PAGE).then(
        (rows) => {
          setSnapshot((now) => {
            if (now.key !== shown.key || now.top !== shown.top) return now;
            const map = new Map(now.rows);
            rows.forEach((row, i) => map.set(page * PAGE + i, row));
            return { ...now, rows: map };
          });
        },
        (error: unknown) => {
          requested.current.delete(page);
          setFailure(describeError(error));
        },
      );
    }
  }, [first, last, snapshot, key, query]);

  const filtered = key !== JSON.stringify(toQuery(EMPTY_FORM));
  // What is shown is for this query once its first page is in; until then, the last one.
  const loading = snapshot.key !== key && failure === null;
  const ready = snapshot.key === key && failure === null;
  const visible = useMemo(() => {
    const out: { index: number; call: HistoryCall | undefined }[] = [];
    for (let index = first; index < last; index += 1) {
      out.push({ index, call: snapshot.rows.get(index) });
    }
    return out;
  }, [first, last, snapshot]);

  const exportCsv = () => {
    setExporting(true);
    setExportError(null);
    setExported(null);
    setCopied(false);
    exportHistory(query).then(
      (done) => {
        setExported(done);
        setExporting(false);
      },
      (error: unknown) => {
        setExportError(describeError(error));
        setExporting(false);
      },
    );
  };

  const copyPath = (path: string) => {
    const clipboard = navigator.clipboard as Clipboard | undefined;
    if (clipboard === undefined) return;
    clipboard.writeText(path).then(
      () => {
        setCopied(true);
      },
      () => undefined,
    );
  };

  const field = (name: keyof Form, label: string, placeholder: string, list?: readonly string[]) => (
    <label className="inline-field">
      <span>{label}</span>
      <input
        type="text"
        placeholder={placeholder}
        list={list === undefined ? undefined : `history-${name}`}
        value={form[name]}
        onChange={(event) => {
          setForm({ ...form, [name]: event.target.value });
        }}
      />
      {list !== undefined && (
        <datalist id={`history-${name}`}>
          {list.map((value) => (
            <option key={value} value={value} />
          ))}
        </datalist>
      )}
    </label>
  );

  return (
    <section className="panel wide history" aria-labelledby="history-title">
      <header className="panel-header row">
        <div>
          <h1 id="history-title">History</h1>
          <p className="lede">
            Every tool call of every task, newest first: what was called, with which arguments,
            what came of it, and what let it through (a policy rule, a grant, or who approved
            it) — or what refused it, so it was never made. Open a call to see it in its task.
          </p>
        </div>
        <div className="toolbar">
          <button type="button" className="button" disabled={exporting} onClick={exportCsv}>
            {exporting ? "Exporting…" : "Export CSV"}
          </button>
        </div>
      </header>

      <div className="filters history-filters" role="search">
        <label className="inline-field">
          <span>Find</span>
          <input
            type="search"
            placeholder="Words in the tool, arguments or error"
            value={form.text}
            onChange={(event) => {
              setForm({ ...form, text: event.target.value });
            }}
          />
        </label>
        {field("server", "Server", "Any", choices?.servers)}
        {field("tool", "Tool", "Any", choices?.tools)}
        <label className="inline-field">
          <span>Outcome</span>
          <select
            value={form.outcome}
            onChange={(event) => {
              choose({ outcome: event.target.value as HistoryOutcome | "" });
            }}
          >
            <option value="">Any</option>
            {OUTCOMES.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field">
          <span>Decision</span>
          <select
            value={form.decision}
            onChange={(event) => {
              choose({ decision: event.target.value as Decision | "" });
            }}
          >
            <option value="">Anything</option>
            <optgroup label="Allowed by">
              {ALLOWANCES.map((a) => (
                <option key={a.value} value={`allowed:${a.value}`}>
                  {a.label}
                </option>
              ))}
            </optgroup>
            <optgroup label="Refused">
              {REFUSALS.map((r) => (
                <option key={r.value} value={`refused:${r.value}`}>
                  {r.label}
                </option>
              ))}
            </optgroup>
          </select>
        </label>
        {field("approved_by", "Approved by", "Anyone", choices?.approvers)}
        {field("rejected_by", "Rejected by", "Anyone", choices?.rejecters)}
        {field("workflow", "Workflow", "Any", choices?.workflows)}
        {field("task", "Task", "Id or its start")}
        <label className="inline-field">
          <span>From</span>
          <input
            type="date"
            aria-label="From day (UTC)"
            value={form.since}
            onChange={(event) => {
              choose({ since: event.target.value });
            }}
          />
        </label>
        <label className="inline-field">
          <span>To</span>
          <input
            type="date"
            aria-label="To day (UTC), included"
            value={form.until}
            onChange={(event) => {
              choose({ until: event.target.value });
            }}
          />
        </label>
        {filtered && (
          <button
            type="button"
            className="button link"
            onClick={() => {
              choose(EMPTY_FORM);
            }}
          >
            Clear filters
          </button>
        )}
      </div>

      {exported !== null && (
        <p className="done" role="status">
          Saved {thousands(exported.rows)} call{exported.rows === 1 ? "" : "s"} to{" "}
          <code>{exported.path}</code>{" "}
          <button
            type="button"
            className="button small"
            onClick={() => {
              copyPath(exported.path);
            }}
          >
            {copied ? "Copied" : "Copy path"}
          </button>
        </p>
      )}
      {exportError !== null && <Problem title="The CSV could not be written." message={exportError} />}

      {failure !== null && (
        <Problem title="Airlock could not read the call history." message={failure} />
      )}
      {loading && snapshot.key === "" && <p className="muted">Reading the history…</p>}
      {ready && snapshot.total === 0 && !filtered && (
        <div className="card empty">
          <h2>No tool calls yet</h2>
          <p>
            Each call a task makes to a tool is listed here as it happens, with its arguments, its
            outcome and what let it through. Start a task from <strong>Start</strong> (the demo
            workspace has workflows ready to run), or from a terminal with{" "}
            <code>airlock run &lt;workflow&gt;</code>; <code>airlock history</code> lists the same
            calls there.
          </p>
        </div>
      )}
      {ready && snapshot.total === 0 && filtered && (
        <div className="card empty">
          <h2>No calls match</h2>
          <p>
            No tool call matches every filter above. Loosen one, or{" "}
            <button
              type="button"
              className="button link inline"
              onClick={() => {
                choose(EMPTY_FORM);
              }}
            >
              clear them all
            </button>
            .
          </p>
        </div>
      )}
      {snapshot.key !== "" && failure === null && snapshot.total > 0 && (
        <>
          <p className="history-count muted" aria-live="polite">
            {thousands(snapshot.total)} call{snapshot.total === 1 ? "" : "s"}
            {filtered ? " match" : ""}
            {newer > 0 && (
              <>
                {" · "}
                <button
                  type="button"
                  className="button link inline"
                  onClick={() => {
                    if (viewport.current !== null) viewport.current.scrollTop = 0;
                    setScrollTop(0);
                    loadTop();
                  }}
                >
                  {thousands(newer)} new — show
                </button>
              </>
            )}
          </p>
          <div
            className="card flush history-list"
            role="table"
            aria-label="Tool calls"
            aria-rowcount={snapshot.total + 1}
          >
            <div className="history-row history-head" role="row" aria-rowindex={1}>
              <span role="columnheader">Time</span>
              <span role="columnheader">Tool</span>
              <span role="columnheader">Task</span>
              <span role="columnheader">Outcome</span>
              <span role="columnheader">Allowed by</span>
              <span role="columnheader">Arguments</span>
            </div>
            <div
              className="history-viewport"
              ref={viewport}
              data-testid="history-viewport"
              onScroll={(event) => {
                setScrollTop(event.currentTarget.scrollTop);
              }}
            >
              <div style={{ height: snapshot.total * ROW_HEIGHT, position: "relative" }}>
                {visible.map(({ index, call }) =>
                  call === undefined ? (
                    <div
                      key={`wait-${String(index)}`}
                      className="history-row placeholder"
                      role="row"
                      aria-rowindex={index + 2}
                      style={{ transform: `translateY(${String(index * ROW_HEIGHT)}px)` }}
                    >
                      <span role="cell" className="muted">
                        …
                      </span>
                    </div>
                  ) : (
                    <div
                      key={call.id}
                      className={call.refused_by === null ? "history-row" : "history-row refused"}
                      role="row"
                      aria-rowindex={index + 2}
                      aria-label={`${call.tool} ${outcomeLabel(call.outcome)} in task ${shortId(call.task_id)}`}
                      tabIndex={0}
                      style={{ transform: `translateY(${String(index * ROW_HEIGHT)}px)` }}
                      onClick={() => {
                        onOpenCall(call.task_id, call.id);
                      }}
                      onKeyDown={(event) => {
                        if (event.key === "Enter") onOpenCall(call.task_id, call.id);
                      }}
                    >
                      <span role="cell" className="nowrap" title={new Date(call.intent_at).toISOString()}>
                        {callTime.format(new Date(call.intent_at))}
                      </span>
                      <span role="cell" className="mono">
                        {call.tool}
                      </span>
                      <span role="cell" className="nowrap">
                        {call.workflow} <span className="muted">{shortId(call.task_id)}</span>
                      </span>
                      <span role="cell">
                        <span className={`pill pill-${OUTCOME_TONE[call.outcome]}`}>
                          {outcomeLabel(call.outcome)}
                        </span>
                      </span>
                      <span role="cell" className="clip decision" title={call.rule ?? undefined}>
                        {allowedWords(call)}
                      </span>
                      <span role="cell" className="clip mono muted" title={call.error ?? undefined}>
                        {call.error ?? argsLine(call.args)}
                      </span>
                    </div>
                  ),
                )}
              </div>
            </div>
          </div>
        </>
      )}
    </section>
  );
}
