// Grants in words: what a grant lets through, shared by the inbox and the Policy view.
import { shortId } from "./format";

type Scope = {
  tool: string;
  workflow: string | null;
  task_id: string | null;
  condition: string | null;
};

/** "in support-refund tasks, while args.amount_cents <= 25000": where a grant applies. */
export function grantWhere(grant: Scope): string {
  const where =
    grant.task_id !== null
      ? `in task ${shortId(grant.task_id)}`
      : grant.workflow !== null
        ? `in ${grant.workflow} tasks`
        : "in any task";
  const condition = grant.condition === null ? "" : `, while ${grant.condition}`;
  return `${where}${condition}`;
}

/** "support.issue_refund in support-refund tasks, while args.amount_cents <= 25000". */
export function grantScope(grant: Scope): string {
  return `${grant.tool} ${grantWhere(grant)}`;
}

/** A CEL path to a top-level argument, or null when its name is not a plain identifier. */
export function argPath(key: string): string | null {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `args.${key}` : null;
}
