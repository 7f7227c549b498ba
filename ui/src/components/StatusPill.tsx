import type { TaskStatus } from "../bindings/TaskStatus";
import { statusLabel, statusTone } from "../format";

/** `testId` names the pill for the end-to-end tests (tests/e2e). */
export function StatusPill({ status, testId }: { status: TaskStatus; testId?: string }) {
  return (
    <span className={`pill pill-${statusTone(status)}`} data-testid={testId}>
      {statusLabel(status)}
    </span>
  );
}
