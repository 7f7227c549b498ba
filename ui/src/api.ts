// The UI's only door to the desktop shell: typed wrappers over Tauri `invoke` and the
// `task-changed` event. Types come from `./bindings` (generated from the Rust wire types),
// never written by hand.
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { AnswerReply } from "./bindings/AnswerReply";
import type { AnswerRequest } from "./bindings/AnswerRequest";
import type { AppInfo } from "./bindings/AppInfo";
import type { CancelReply } from "./bindings/CancelReply";
import type { CommandError } from "./bindings/CommandError";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { GrantRequest } from "./bindings/GrantRequest";
import type { GrantRow } from "./bindings/GrantRow";
import type { HistoryCall } from "./bindings/HistoryCall";
import type { HistoryChoices } from "./bindings/HistoryChoices";
import type { HistoryCursor } from "./bindings/HistoryCursor";
import type { HistoryExport } from "./bindings/HistoryExport";
import type { HistoryQuery } from "./bindings/HistoryQuery";
import type { Inbox } from "./bindings/Inbox";
import type { LessonRow } from "./bindings/LessonRow";
import type { MemoryEntry } from "./bindings/MemoryEntry";
import type { MemoryFilter } from "./bindings/MemoryFilter";
import type { MetricsBucket } from "./bindings/MetricsBucket";
import type { MetricsView } from "./bindings/MetricsView";
import type { OpenInbox } from "./bindings/OpenInbox";
import type { PolicyView } from "./bindings/PolicyView";
import type { RatingView } from "./bindings/RatingView";
import type { ServerList } from "./bindings/ServerList";
import type { StartedTask } from "./bindings/StartedTask";
import type { TaskChanged } from "./bindings/TaskChanged";
import type { TaskDetail } from "./bindings/TaskDetail";
import type { TaskRow } from "./bindings/TaskRow";
import type { TaskStatus } from "./bindings/TaskStatus";
import type { WorkflowList } from "./bindings/WorkflowList";

export function appInfo(): Promise<AppInfo> {
  return invoke<AppInfo>("app_info");
}

export function listWorkflows(): Promise<WorkflowList> {
  return invoke<WorkflowList>("list_workflows");
}

export function startTask(workflow: string, inputs: Record<string, unknown>): Promise<StartedTask> {
  return invoke<StartedTask>("start_task", { workflow, inputs });
}

export function listTasks(status: TaskStatus | null): Promise<TaskRow[]> {
  return invoke<TaskRow[]>("list_tasks", { status });
}

export function taskDetail(id: string): Promise<TaskDetail> {
  return invoke<TaskDetail>("task_detail", { id });
}

export function rateTask(id: string, rating: number, comment: string | null): Promise<RatingView> {
  return invoke<RatingView>("rate_task", { id, rating, comment });
}

export function listApprovals(): Promise<Inbox> {
  return invoke<Inbox>("list_approvals");
}

export function answerApproval(id: string, answer: AnswerRequest): Promise<AnswerReply> {
  return invoke<AnswerReply>("answer_approval", { id, answer });
}

export function resolveInDoubt(callId: string, happened: boolean): Promise<TaskRow> {
  return invoke<TaskRow>("resolve_in_doubt", { callId, happened });
}

export function cancelTask(id: string, reason: string | null): Promise<CancelReply> {
  return invoke<CancelReply>("cancel_task", { id, reason });
}

export function listGrants(): Promise<GrantRow[]> {
  return invoke<GrantRow[]>("list_grants");
}

export function createGrant(grant: GrantRequest): Promise<GrantRow> {
  return invoke<GrantRow>("create_grant", { grant });
}

export function revokeGrant(id: string): Promise<GrantRow> {
  return invoke<GrantRow>("revoke_grant", { id });
}

export function policyInfo(): Promise<PolicyView> {
  return invoke<PolicyView>("policy_info");
}

export function listServers(): Promise<ServerList> {
  return invoke<ServerList>("list_servers");
}

/** The backend's `task-changed` event name (`wire::TASK_CHANGED`). */
export const TASK_CHANGED = "task-changed";

/**
 * Calls `handler` for every committed task transition. Resolves to an unsubscribe function;
 * outside the desktop app (no event bus) it resolves to a no-op.
 */
/** The event a notification or the tray sends to open the Approvals inbox. */
export const OPEN_INBOX = "open-inbox";

export async function onOpenInbox(handler: (open: OpenInbox) => void): Promise<() => void> {
  try {
    return await listen<OpenInbox>(OPEN_INBOX, (event) => {
      handler(event.payload);
    });
  } catch {
    return () => undefined;
  }
}

export async function onTaskChanged(handler: (change: TaskChanged) => void): Promise<() => void> {
  try {
    return await listen<TaskChanged>(TASK_CHANGED, (event) => {
      handler(event.payload);
    });
  } catch {
    return () => undefined;
  }
}

function isCommandError(value: unknown): value is CommandError {
  return (
    typeof value === "object" &&
    value !== null &&
    "code" in value &&
    "message" in value &&
    typeof value.message === "string"
  );
}

/** The backend's error code, when `error` is a command's error. */
export function errorCode(error: unknown): ErrorCode | null {
  return isCommandError(error) ? error.code : null;
}

/** True when the page runs inside the desktop app, where `invoke` can reach Rust. */
export function insideDesktopApp(): boolean {
  const internals: unknown = Reflect.get(window, "__TAURI_INTERNALS__");
  return (
    typeof internals === "object" &&
    internals !== null &&
    typeof Reflect.get(internals, "invoke") === "function"
  );
}

/** Turns anything an `invoke` rejects with into a sentence a person can act on. */
export function describeError(error: unknown): string {
  if (!insideDesktopApp()) {
    return "This page is open in a plain browser, so it cannot reach the Airlock engine. Open it through the desktop app (./scripts/demo, or `cargo run -p airlock-desktop` next to `npm run dev`).";
  }
  if (isCommandError(error) && error.message.trim() !== "") {
    return error.message;
  }
  if (error instanceof Error && error.message.trim() !== "") {
    return error.message;
  }
  if (typeof error === "string" && error.trim() !== "") {
    return error;
  }
  return "The desktop app did not answer and gave no reason. Restart Airlock; if it happens again, start it from a terminal and read the log it prints.";
}

export function listMemory(filter: MemoryFilter): Promise<MemoryEntry[]> {
  return invoke<MemoryEntry[]>("list_memory", { filter });
}

export function correctMemory(id: string, value: unknown, text: string | null): Promise<MemoryEntry> {
  return invoke<MemoryEntry>("correct_memory", { id, value, text });
}

export function forgetMemory(id: string): Promise<null> {
  return invoke<null>("forget_memory", { id });
}

export function listLessons(): Promise<LessonRow[]> {
  return invoke<LessonRow[]>("list_lessons");
}

export function reviewLesson(id: string, accept: boolean, text: string | null): Promise<LessonRow> {
  return invoke<LessonRow>("review_lesson", { id, accept, text });
}

export function metrics(workflow: string | null, bucket: MetricsBucket, count: number): Promise<MetricsView> {
  return invoke<MetricsView>("metrics", { workflow, bucket, count });
}

export function listHistory(
  filter: HistoryQuery,
  below: HistoryCursor | null,
  skip: number,
  limit: number,
): Promise<HistoryCall[]> {
  return invoke<HistoryCall[]>("list_history", { filter, below, skip, limit });
}

export function countHistory(
  filter: HistoryQuery,
  below: HistoryCursor | null,
  above: HistoryCursor | null,
): Promise<number> {
  return invoke<number>("count_history", { filter, below, above });
}

export function historyChoices(): Promise<HistoryChoices> {
  return invoke<HistoryChoices>("history_choices");
}

export function exportHistory(filter: HistoryQuery): Promise<HistoryExport> {
  return invoke<HistoryExport>("export_history", { filter });
}
