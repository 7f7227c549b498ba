// Wire values for component tests, typed by the generated bindings so they drift with them.
import { mockIPC } from "@tauri-apps/api/mocks";
import type { ApprovalRow } from "../bindings/ApprovalRow";
import type { ErrorCode } from "../bindings/ErrorCode";
import type { GrantRow } from "../bindings/GrantRow";
import type { InDoubtCall } from "../bindings/InDoubtCall";
import type { Person } from "../bindings/Person";
import type { PolicyView } from "../bindings/PolicyView";
import type { TaskDetail } from "../bindings/TaskDetail";
import type { TaskRow } from "../bindings/TaskRow";
import type { WorkflowList } from "../bindings/WorkflowList";

export const NOW = Date.UTC(2026, 5, 12, 9, 30);

export const refundTask: TaskRow = {
  id: "3f1c2a9e-0000-4000-8000-000000000001",
  workflow: "support-refund",
  status: "waiting_approval",
  current_state: "controller_approval",
  requester: "ada",
  error: null,
  created_at: NOW - 5 * 60_000,
  updated_at: NOW - 4 * 60_000,
};

/** Who the app decides as. */
export const me: Person = { name: "carol", display_name: null, roles: ["controller", "finance-lead"], listed: false };

export const refundApproval: ApprovalRow = {
  id: "ap-1",
  task_id: refundTask.id,
  workflow: "support-refund",
  state_name: "controller_approval",
  requester: "ada",
  prompt: "Refund $60.00 on order ORD-5002?",
  approvers: ["controller"],
  requested_at: NOW - 4 * 60_000,
  expires_at: NOW + 3 * 3_600_000 + 20 * 60_000,
  state: "pending",
  decided_by: null,
  decided_at: null,
  reason: null,
  held: null,
  edited_args: null,
};

/** A refund the policy held for a finance lead. */
export const heldRefund: ApprovalRow = {
  id: "ap-9",
  task_id: refundTask.id,
  workflow: "support-refund",
  state_name: "refund",
  requester: "ada",
  prompt: "`support.issue_refund` wants to run for task 3f1c2a9e (support-refund): rule “refunds above $200.00 need a finance lead”",
  approvers: ["finance-lead"],
  requested_at: NOW - 4 * 60_000,
  expires_at: NOW + 23 * 3_600_000 + 56 * 60_000,
  state: "pending",
  decided_by: null,
  decided_at: null,
  reason: null,
  held: {
    tool: "support.issue_refund",
    args: { order_id: "ORD-5001", amount_cents: 25000, reason: "customer request" },
    risk: "medium",
    rule: "refunds above $200.00 need a finance lead",
    condition: "args.amount_cents > 20000",
    seen: [
      { path: "call.tool", value: "support.issue_refund" },
      { path: "args.amount_cents", value: 25000 },
    ],
    condition_error: null,
    policy_version: "a1b2c3d4e5f6",
    requester: "ada",
    approvals_needed: 1,
    votes: [],
    escalate_at: NOW + 3 * 3_600_000 + 56 * 60_000,
    escalate_to: ["controller"],
    four_eyes: false,
  },
  edited_args: null,
};

/** A refund whose answer never came. */
export const lostRefund: InDoubtCall = {
  call_id: "c-7",
  task_id: refundTask.id,
  workflow: "support-refund",
  state_name: "refund",
  requester: "ada",
  tool: "support.issue_refund",
  args: { order_id: "ORD-5001", amount_cents: 25000, reason: "customer request" },
  reason: "no answer within 30s",
  attempt: 1,
  idempotency_key: `${refundTask.id}/4/0`,
  intent_at: NOW - 3 * 60_000,
  outcome_at: NOW - 2 * 60_000,
  task_status: "in_doubt",
};

export const workflows: WorkflowList = {
  workspace_path: "/work/airlock/workspace/demo",
  workflows: [
    {
      name: "support-refund",
      description: "Refund an order",
      inputs: [
        { name: "order_id", type: "string", required: true, default: null, description: "The order" },
        { name: "amount_cents", type: "integer", required: true, default: null, description: null },
        { name: "reason", type: "string", required: false, default: "customer request", description: null },
        { name: "notify", type: "boolean", required: false, default: true, description: null },
        { name: "tags", type: "array", required: false, default: null, description: null },
      ],
    },
    { name: "nightly-sync", description: null, inputs: [] },
  ],
  problems: [
    {
      file: "/work/airlock/workspace/demo/broken.toml",
      line: 3,
      column: 9,
      code: "unknown-state",
      message: "`start` names state `nowhere`, which does not exist",
    },
  ],
};

export const refundDetail: TaskDetail = {
  task: { ...refundTask, status: "succeeded", current_state: "done" },
  inputs: { order_id: "ORD-5002", amount_cents: 6000 },
  outputs: { lookup_order: { total_cents: 16800 } },
  events: [
    { seq: 1, at: NOW - 300_000, kind: "created", summary: "Created by ada from support-refund (version 1)" },
    { seq: 2, at: NOW - 200_000, kind: "approval_decided", summary: "Approved by carol; next: refund" },
  ],
  tool_calls: [
    {
      id: "c1",
      tool: "support.issue_refund",
      step_no: 4,
      attempt: 1,
      args: { order_id: "ORD-5002" },
      outcome: "succeeded",
      result: { refund_id: "R-1" },
      error: null,
      resolved_by: null,
      intent_at: NOW - 100_000,
      outcome_at: NOW - 99_000,
    },
  ],
  approvals: [{ ...refundApproval, state: "approved", decided_by: "carol", decided_at: NOW - 200_000, reason: "ok" }],
  spend: [],
  ratings: [],
  gave_up: null,
};

export const demoPolicy: PolicyView = {
  file: "/work/airlock/workspace/demo/policy.toml",
  looked_for: [],
  version: "a1b2c3d4e5f6",
  label: "demo-1",
  rules: [
    {
      name: "reads are free",
      description: null,
      line: 9,
      workflows: [],
      roles: [],
      servers: [],
      tools: [],
      risk: ["low"],
      when: null,
      effect: "allow",
      effect_words: "allowed",
    },
    {
      name: "refunds above $200.00 need a finance lead",
      description: null,
      line: 42,
      workflows: [],
      roles: [],
      servers: [],
      tools: ["support.issue_refund"],
      risk: [],
      when: "args.amount_cents > 20000",
      effect: "require_approval",
      effect_words: "1 approval from finance-lead; expires after 1d; after 4h controller may decide too",
    },
    {
      name: "nothing closes tickets on its own",
      description: null,
      line: 60,
      workflows: ["support-*"],
      roles: [],
      servers: [],
      tools: ["support.close_ticket"],
      risk: [],
      when: null,
      effect: "deny",
      effect_words: "closing a ticket is a person's call in this workspace",
    },
  ],
  problems: [],
  identities_file: "/work/airlock/workspace/demo/identities.toml",
  people: [{ name: "sam", display_name: "Sam Okafor (controller)", roles: ["controller"], listed: true }],
  default_roles: ["operator", "controller"],
  approver_roles_checked: true,
  acting_as: me,
};

export const refundGrant: GrantRow = {
  id: "g-1",
  tool: "support.issue_refund",
  workflow: "support-refund",
  task_id: null,
  condition: "args.amount_cents <= 25000",
  max_uses: 5,
  uses: 2,
  expires_at: NOW + 40 * 60_000,
  created_by: "carol",
  created_at: NOW - 20 * 60_000,
  from_approval: "ap-9",
  note: null,
  revoked_at: null,
  revoked_by: null,
  state: "in_force",
};

/** What a command rejects with: an error with the backend's code and sentence. */
export function commandError(code: ErrorCode, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Mocks the backend with one handler per command; an unexpected command fails the test. */
export function backend(handlers: Record<string, (args: Record<string, unknown>) => unknown>) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  mockIPC(
    (cmd, args) => {
      const given = (args ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args: given });
      const handler = handlers[cmd];
      if (handler === undefined) throw new Error(`unexpected command ${cmd}`);
      return handler(given);
    },
    { shouldMockEvents: true },
  );
  return calls;
}
