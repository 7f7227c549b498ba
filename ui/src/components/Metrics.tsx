// Metrics: how the automations are doing over a period, per workflow and per day or week,
// from the store's figures (the ones `airlock metrics` prints). Each figure is said in
// words and drawn as a small bar chart of its days or weeks; the charts are inline SVG.
import { useState } from "react";
import { metrics } from "../api";
import type { FigureSet } from "../bindings/FigureSet";
import type { MetricsBucket } from "../bindings/MetricsBucket";
import type { MetricsView } from "../bindings/MetricsView";
import { useLive } from "../live";
import { NotReady, PanelHeader } from "./Panel";

type Period = { id: string; label: string; bucket: MetricsBucket; count: number };

const DEFAULT_PERIOD: Period = { id: "14d", label: "Last 14 days, by day", bucket: "day", count: 14 };

const PERIODS: readonly Period[] = [
  DEFAULT_PERIOD,
  { id: "30d", label: "Last 30 days, by day", bucket: "day", count: 30 },
  { id: "12w", label: "Last 12 weeks, by week", bucket: "week", count: 12 },
];

// Buckets are UTC days and weeks, so their dates are said in UTC too.
const dayLabel = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });

export function bucketLabel(start: number, bucket: MetricsBucket): string {
  const day = dayLabel.format(new Date(start));
  return bucket === "week" ? `week of ${day}` : day;
}

export function percent(rate: number | null): string {
  return rate === null ? "–" : `${String(Math.round(rate * 100))}%`;
}

/** "850 ms", "12 s", "4 min", "2 h 5 min", "3 days". */
export function span(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 1000) return `${String(Math.round(ms))} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${String(s)} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `${String(min)} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 === 0 ? `${String(h)} h` : `${String(h)} h ${String(min % 60)} min`;
  return `${String(Math.round(h / 24))} days`;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

function ended(f: FigureSet): number {
  return f.succeeded + f.failed + f.cancelled;
}

function decided(f: FigureSet): number {
  return f.approved + f.rejected + f.expired;
}

/** A row of bars, one per day or week; a bucket with nothing to show has a grey tick. */
export function Bars({
  label,
  values,
  starts,
  bucket,
  format,
  max,
  tone,
}: {
  label: string;
  values: readonly (number | null)[];
  starts: readonly number[];
  bucket: MetricsBucket;
  format: (value: number) => string;
  max?: number | undefined;
  tone?: "accent" | "good" | "bad" | undefined;
}) {
  const top = max ?? Math.max(0, ...values.map((v) => v ?? 0));
  const width = 100;
  const height = 40;
  const step = width / Math.max(1, values.length);
  const gap = Math.min(1.2, step * 0.2);
  const words = values
    .map((v, i) => `${bucketLabel(starts[i] ?? 0, bucket)}: ${v === null ? "nothing" : format(v)}`)
    .join("; ");
  return (
    <svg
      className={`bars tone-${tone ?? "accent"}`}
      viewBox={`0 0 ${String(width)} ${String(height)}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`${label}: ${words}`}
    >
      <line className="baseline" x1={0} x2={width} y1={height - 0.25} y2={height - 0.25} />
      {values.map((v, i) => {
        const x = i * step + gap / 2;
        const w = step - gap;
        if (v === null) {
          return <rect key={starts[i] ?? i} className="none" x={x} y={height - 1.2} width={w} height={1.2} />;
        }
        const h = top > 0 ? Math.max(v > 0 ? 1.5 : 0, (v / top) * (height - 2)) : 0;
        return (
          <rect key={starts[i] ?? i} className="bar" x={x} y={height - h} width={w} height={h}>
            <title>{`${bucketLabel(starts[i] ?? 0, bucket)}: ${format(v)}`}</title>
          </rect>
        );
      })}
    </svg>
  );
}

/** Tasks per day or week, stacked: succeeded, failed, cancelled, still open. */
function TaskBars({ view }: { view: MetricsView }) {
  const width = 100;
  const height = 40;
  const parts = ["succeeded", "failed", "cancelled", "open"] as const;
  const top = Math.max(1, ...view.buckets.map((b) => b.figures.tasks));
  const step = width / Math.max(1, view.buckets.length);
  const gap = Math.min(1.2, step * 0.2);
  const words = view.buckets
    .filter((b) => b.figures.tasks > 0)
    .map(
      (b) =>
        `${bucketLabel(b.start, view.bucket)}: ${count(b.figures.tasks, "task")} (${parts
          .filter((p) => b.figures[p] > 0)
          .map((p) => `${String(b.figures[p])} ${p}`)
          .join(", ")})`,
    )
    .join("; ");
  return (
    <svg
      className="bars stacked"
      viewBox={`0 0 ${String(width)} ${String(height)}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`Tasks by ${view.bucket}: ${words === "" ? "none" : words}`}
    >
      <line className="baseline" x1={0} x2={width} y1={height - 0.25} y2={height - 0.25} />
      {view.buckets.map((b, i) => {
        let y = height;
        return parts.map((part) => {
          const n = b.figures[part];
          if (n === 0) return null;
          const h = (n / top) * (height - 2);
          y -= h;
          return (
            <rect key={`${String(b.start)}-${part}`} className={`part-${part}`} x={i * step + gap / 2} y={y} width={step - gap} height={h}>
              <title>{`${bucketLabel(b.start, view.bucket)}: ${String(n)} ${part}`}</title>
            </rect>
          );
        });
      })}
    </svg>
  );
}

function Axis({ view }: { view: MetricsView }) {
  const first = view.buckets[0];
  const last = view.buckets.at(-1);
  if (first === undefined || last === undefined) return null;
  return (
    <div className="axis muted" aria-hidden="true">
      <span>{bucketLabel(first.start, view.bucket)}</span>
      <span>{bucketLabel(last.start, view.bucket)}</span>
    </div>
  );
}

type Figure = {
  title: string;
  value: string;
  words: string;
  values: (f: FigureSet) => number | null;
  format: (v: number) => string;
  max?: number;
  tone?: "accent" | "good" | "bad";
};

function figures(t: FigureSet): Figure[] {
  return [
    {
      title: "Completion rate",
      value: percent(t.completion_rate),
      words:
        ended(t) === 0
          ? "No task has ended yet."
          : `${count(t.succeeded, "task")} of ${String(ended(t))} ended succeeded.`,
      values: (f) => f.completion_rate,
      format: percent,
      max: 1,
      tone: "good",
    },
    {
      title: "Exception rate",
      value: percent(t.exception_rate),
      words:
        t.tasks === 0
          ? "No tasks."
          : `${count(t.exceptions, "task")} of ${String(t.tasks)} failed, had a call in doubt, were quarantined or failed an outcome check.`,
      values: (f) => f.exception_rate,
      format: percent,
      max: 1,
      tone: "bad",
    },
    {
      title: "Approval rate",
      value: percent(t.approval_rate),
      words:
        decided(t) === 0
          ? "No approval has been decided."
          : `${String(t.approved)} approved, ${String(t.rejected)} rejected, ${String(t.expired)} expired of ${count(decided(t), "decision")}.`,
      values: (f) => f.approval_rate,
      format: percent,
      max: 1,
    },
    {
      title: "Rejection rate",
      value: percent(t.rejection_rate),
      words: decided(t) === 0 ? "No approval has been decided." : `${count(t.rejected, "rejection")}.`,
      values: (f) => f.rejection_rate,
      format: percent,
      max: 1,
      tone: "bad",
    },
    {
      title: "Override rate",
      value: percent(t.override_rate),
      words:
        t.approved === 0
          ? "Nothing approved yet."
          : `${count(t.overridden, "approval")} of ${String(t.approved)} came after a person changed the arguments.`,
      values: (f) => f.override_rate,
      format: percent,
      max: 1,
    },
    {
      title: "Time to approval",
      value: span(t.time_to_decision_p50_ms),
      words:
        t.time_to_decision_p50_ms === null
          ? "No approval has been decided by a person."
          : `Median; 9 in 10 were decided within ${span(t.time_to_decision_p90_ms)}.`,
      values: (f) => f.time_to_decision_p50_ms,
      format: span,
    },
    {
      title: "Outcome checks passed",
      value: percent(t.check_pass_rate),
      words:
        t.checks_run === 0
          ? "No outcome check has run."
          : `${String(t.checks_passed)} of ${count(t.checks_run, "check")} passed.`,
      values: (f) => f.check_pass_rate,
      format: percent,
      max: 1,
      tone: "good",
    },
    {
      title: "Duplicate actions",
      value: t.duplicate_actions.toLocaleString(),
      words:
        t.duplicate_actions === 0
          ? `None in ${count(t.tool_calls, "tool call")}, as it should be.`
          : `A tool that is not safe to repeat ran twice with the same arguments in one task. Look at these tasks.`,
      values: (f) => f.duplicate_actions,
      format: (v) => String(v),
      tone: "bad",
    },
    {
      title: "Satisfaction",
      value: t.satisfaction === null ? "–" : `${t.satisfaction.toFixed(1)} / 5`,
      words:
        t.ratings === 0
          ? "No task has been rated yet: rate an ended task from its detail page."
          : `The mean of ${count(t.ratings, "rating")}.`,
      values: (f) => f.satisfaction,
      format: (v) => `${v.toFixed(1)} / 5`,
      max: 5,
      tone: "good",
    },
    {
      title: "Human corrections",
      value: t.corrections.toLocaleString(),
      words: "Edits before approval, rejections, and calls in doubt a person settled.",
      values: (f) => f.corrections,
      format: (v) => String(v),
    },
    {
      title: "Model tokens",
      value: t.tokens.toLocaleString(),
      words:
        t.model_turns === 0
          ? "No model turn in this period."
          : t.tokens === 0
            ? `${count(t.model_turns, "model turn")}, none with a token count (the scripted demo model counts none).`
            : `In ${count(t.model_turns, "model turn")}. airlock metrics prices them at list prices.`,
      values: (f) => f.tokens,
      format: (v) => v.toLocaleString(),
    },
    {
      title: "Wall time",
      value: span(t.wall_time_p50_ms),
      words:
        t.wall_time_p50_ms === null
          ? "No task has ended."
          : `Median from start to end; 9 in 10 within ${span(t.wall_time_p90_ms)}.`,
      values: (f) => f.wall_time_p50_ms,
      format: span,
    },
  ];
}

export function Metrics() {
  const [periodId, setPeriodId] = useState("14d");
  const [workflow, setWorkflow] = useState<string | null>(null);
  const [known, setKnown] = useState<readonly string[]>([]);
  const period = PERIODS.find((p) => p.id === periodId) ?? DEFAULT_PERIOD;
  const [load, reload] = useLive(
    () =>
      metrics(workflow, period.bucket, period.count).then((view) => {
        setKnown((names) => [...new Set([...names, ...view.workflows.map((w) => w.workflow)])].sort());
        return view;
      }),
    (change) => change.status !== "running",
    `${periodId}/${workflow ?? ""}`,
  );

  return (
    <section className="panel wide" aria-labelledby="metrics-title">
      <PanelHeader
        id="metrics-title"
        title="Metrics"
        lede={
          <>
            How the automations are doing: tasks completed, exceptions, what people approved,
            rejected or changed, outcome checks, and what it took. A task counts in the day or week
            it started (UTC).
          </>
        }
        onRefresh={reload}
      />

      <div className="filters">
        <label className="inline-field">
          <span>Workflow</span>
          <select
            value={workflow ?? ""}
            onChange={(event) => {
              setWorkflow(event.target.value === "" ? null : event.target.value);
            }}
          >
            <option value="">All workflows</option>
            {known.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field">
          <span>Period</span>
          <select
            value={periodId}
            onChange={(event) => {
              setPeriodId(event.target.value);
            }}
          >
            {PERIODS.map((p) => (
              <option key={p.id} value={p.id}>
                {p.label}
              </option>
            ))}
          </select>
        </label>
      </div>

      <NotReady load={load} loading="Counting…" failed="Airlock could not compute the metrics." />
      {load.state === "ready" && load.data.total.tasks === 0 && (
        <div className="card empty">
          <h2>No tasks in this period</h2>
          <p>
            The figures come from the tasks started in the period
            {workflow !== null && (
              <>
                {" "}
                of <code>{workflow}</code>
              </>
            )}
            . Start a workflow from <strong>Start</strong>, or choose a longer period. From a
            terminal: <code>airlock metrics --by day</code>.
          </p>
        </div>
      )}
      {load.state === "ready" && load.data.total.tasks > 0 && <Report view={load.data} />}
    </section>
  );
}

function Report({ view }: { view: MetricsView }) {
  const t = view.total;
  const starts = view.buckets.map((b) => b.start);
  return (
    <>
      <div className="card">
        <h2>Tasks</h2>
        <p className="summary" data-testid="metrics-summary">
          {count(t.tasks, "task")} started: {t.succeeded} succeeded, {t.failed} failed, {t.cancelled}{" "}
          cancelled, {t.open} still running or waiting.
        </p>
        <TaskBars view={view} />
        <Axis view={view} />
        <ul className="legend" aria-label="Legend">
          <li>
            <span className="swatch part-succeeded" /> Succeeded
          </li>
          <li>
            <span className="swatch part-failed" /> Failed
          </li>
          <li>
            <span className="swatch part-cancelled" /> Cancelled
          </li>
          <li>
            <span className="swatch part-open" /> Running or waiting
          </li>
        </ul>
      </div>

      <div className="figures">
        {figures(t).map((f) => (
          <section key={f.title} className="card figure" aria-label={f.title}>
            <h3>{f.title}</h3>
            <p className={`figure-value${f.title === "Duplicate actions" && t.duplicate_actions > 0 ? " bad-text" : ""}`}>
              {f.value}
            </p>
            <p className="muted figure-words">{f.words}</p>
            <Bars
              label={`${f.title} by ${view.bucket}`}
              values={view.buckets.map((b) => f.values(b.figures))}
              starts={starts}
              bucket={view.bucket}
              format={f.format}
              max={f.max}
              tone={f.tone}
            />
            <Axis view={view} />
          </section>
        ))}
      </div>

      {view.workflows.length > 0 && (
        <div className="card flush">
          <div className="card-intro">
            <h2>By workflow</h2>
          </div>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Workflow</th>
                <th scope="col">Tasks</th>
                <th scope="col">Completed</th>
                <th scope="col">Exceptions</th>
                <th scope="col">Approved</th>
                <th scope="col">Overrides</th>
                <th scope="col">Checks passed</th>
                <th scope="col">Duplicates</th>
              </tr>
            </thead>
            <tbody>
              {view.workflows.map(({ workflow, figures: f }) => (
                <tr key={workflow} aria-label={workflow}>
                  <td className="nowrap">
                    <code className="strong">{workflow}</code>
                  </td>
                  <td>{f.tasks}</td>
                  <td>{percent(f.completion_rate)}</td>
                  <td>{percent(f.exception_rate)}</td>
                  <td>{percent(f.approval_rate)}</td>
                  <td>{percent(f.override_rate)}</td>
                  <td>{percent(f.check_pass_rate)}</td>
                  <td className={f.duplicate_actions > 0 ? "bad-text" : undefined}>{f.duplicate_actions}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
