// Words and times for people. Timestamps always come from the backend (ms since the
// epoch); `now` is only used to say how long ago or how long until.
import type { CallOutcome } from "./bindings/CallOutcome";
import type { TaskStatus } from "./bindings/TaskStatus";

const STATUS_LABELS: Record<TaskStatus, string> = {
  running: "Running",
  waiting_approval: "Waiting for approval",
  in_doubt: "In doubt",
  quarantined: "Quarantined",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function statusLabel(status: TaskStatus): string {
  return STATUS_LABELS[status];
}

/** The tone of a status pill: calm for done, warm for waiting on a person, red for trouble. */
export function statusTone(status: TaskStatus): "active" | "attention" | "good" | "bad" | "quiet" {
  switch (status) {
    case "running":
      return "active";
    case "waiting_approval":
    case "in_doubt":
    case "quarantined":
      return "attention";
    case "succeeded":
      return "good";
    case "failed":
      return "bad";
    case "cancelled":
      return "quiet";
  }
}

const OUTCOME_LABELS: Record<CallOutcome, string> = {
  intent_only: "In flight",
  succeeded: "Succeeded",
  failed: "Failed",
  in_doubt: "In doubt",
  happened: "Happened (confirmed)",
  not_happened: "Did not happen",
  refused: "Refused",
};

export function outcomeLabel(outcome: CallOutcome): string {
  return OUTCOME_LABELS[outcome];
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});

const clock = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function formatDateTime(ms: number): string {
  return dateTime.format(new Date(ms));
}

export function formatClock(ms: number): string {
  return clock.format(new Date(ms));
}

const exact = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  timeZoneName: "short",
});

/** The moment in full, for a hover: "Fri, Nov 27, 2026, 06:48:40 PM UTC". */
export function formatExact(ms: number): string {
  return exact.format(new Date(ms));
}

// An ISO 8601 date and time with a zone, as tools and stored values write them.
const ISO_MOMENT = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** The ms since the epoch a value such as "2026-11-27T18:48:40Z" names; null for anything else. */
export function isoMoment(value: unknown): number | null {
  if (typeof value !== "string" || !ISO_MOMENT.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** "just now", "4 min ago", "3 h ago", else the date and time. */
export function ago(ms: number, now: number): string {
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${String(minutes)} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${String(hours)} h ago`;
  return formatDateTime(ms);
}

/** "23 h 59 min left", "24 h left", "12 min left", "expiring now", or "no expiry". */
export function timeLeft(expiresAt: number | null, now: number): string {
  if (expiresAt === null) return "no expiry";
  const minutes = Math.floor((expiresAt - now) / 60_000);
  if (minutes < 1) return "expiring now";
  if (minutes < 60) return `${String(minutes)} min left`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    return minutes % 60 === 0
      ? `${String(hours)} h left`
      : `${String(hours)} h ${String(minutes % 60)} min left`;
  }
  return `${String(Math.floor(hours / 24))} days left`;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** "3 h 59 min", "12 min", "2 days": how long until `at`; null when it has passed. */
export function duration(at: number, now: number): string | null {
  const minutes = Math.floor((at - now) / 60_000);
  if (minutes < 1) return null;
  if (minutes < 60) return `${String(minutes)} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 === 0 ? `${String(hours)} h` : `${String(hours)} h ${String(minutes % 60)} min`;
  return `${String(Math.floor(hours / 24))} days`;
}

/** "15 minutes", "1 hour", "4 hours", "1 day": a grant's length in words. */
export function minutesWords(minutes: number): string {
  if (minutes % 1440 === 0) return minutes === 1440 ? "1 day" : `${String(minutes / 1440)} days`;
  if (minutes % 60 === 0) return minutes === 60 ? "1 hour" : `${String(minutes / 60)} hours`;
  return minutes === 1 ? "1 minute" : `${String(minutes)} minutes`;
}

/** "low risk" in the tone of its pill. */
export function riskTone(risk: string): "quiet" | "attention" | "bad" {
  if (risk === "high") return "bad";
  if (risk === "medium") return "attention";
  return "quiet";
}

/** "a, b or c". */
export function orWords(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} or ${items[items.length - 1] ?? ""}`;
}

/** `path` inside `folder` as a relative path ("policy.toml"); anything else as it is. */
export function inFolder(path: string, folder: string | null): string {
  if (folder === null) return path;
  const base = folder.replace(/[\\/]+$/, "");
  const rest = path.slice(base.length);
  return base !== "" && path.startsWith(base) && /^[\\/]./.test(rest) ? rest.slice(1) : path;
}
