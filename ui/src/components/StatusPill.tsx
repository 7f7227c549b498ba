import type { TaskStatus } from "../bindings/TaskStatus";
import { statusLabel, statusTone } from "../format";

export function StatusPill({ status }: { status: TaskStatus }) {
  return <span className={`pill pill-${statusTone(status)}`}>{statusLabel(status)}</span>;
}
