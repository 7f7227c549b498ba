import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { ApprovalRow } from "../bindings/ApprovalRow";
import type { GrantRow } from "../bindings/GrantRow";
import {
  NOW,
  backend,
  commandError,
  heldRefund,
  lostRefund,
  me,
  refundApproval,
  refundTask,
} from "../test/fixtures";
import { Approvals } from "./Approvals";

type Handlers = Record<string, (args: Record<string, unknown>) => unknown>;

function setup(pending: ApprovalRow[], extra: Handlers = {}, now = NOW) {
  let current = pending;
  const calls = backend({
    list_approvals: () => ({ acting_as: me, approvals: current, in_doubt: [] }),
    answer_approval: (args) => {
      current = current.filter((a) => a.id !== args.id);
      return { outcome: "decided", task: { ...refundTask, status: "running" } };
    },
    ...extra,
  });
  render(<Approvals now={now} onOpenTask={vi.fn()} onShowTasks={vi.fn()} />);
  return calls;
}

function answers(calls: { cmd: string; args: Record<string, unknown> }[]) {
  return calls.filter((c) => c.cmd === "answer_approval").map((c) => c.args);
}

const grant: GrantRow = {
  id: "g-1",
  tool: "support.issue_refund",
  workflow: "support-refund",
  task_id: null,
  condition: "args.amount_cents <= 25000",
  max_uses: 5,
  uses: 0,
  expires_at: NOW + 3_600_000,
  created_by: "carol",
  created_at: NOW,
  from_approval: "ap-9",
  note: null,
  revoked_at: null,
  revoked_by: null,
  state: "in_force",
};

describe("Approvals: workflow checkpoints", () => {
  it("shows the prompt, workflow, step, approvers and time left, and who decides", async () => {
    setup([refundApproval]);
    expect(await screen.findByText(refundApproval.prompt)).toBeInTheDocument();
    expect(screen.getByText("support-refund")).toBeInTheDocument();
    expect(screen.getByText("controller_approval")).toBeInTheDocument();
    expect(screen.getByText("controller")).toBeInTheDocument();
    expect(screen.getByText("3 h 20 min left")).toBeInTheDocument();
    const requested = screen.getByText("4 min ago");
    expect(requested).toHaveAttribute("title");
    expect(requested.closest("dd")).toHaveTextContent("4 min ago by ada");
    expect(screen.getByText(/You decide as/)).toHaveTextContent("You decide as carol.");
    expect(screen.getByText("carol")).toHaveAttribute("title", "roles controller, finance-lead");
    // A checkpoint holds no call: nothing to edit or grant.
    expect(screen.queryByRole("button", { name: "Edit, then approve…" })).toBeNull();
  });

  it("approves with the button and says so", async () => {
    const calls = setup([refundApproval]);
    await userEvent.click(await screen.findByRole("button", { name: "Approve" }));
    expect(await screen.findByText("Nothing waits for you")).toBeInTheDocument();
    expect(answers(calls)).toEqual([{ id: "ap-1", answer: { kind: "approve", reason: null } }]);
    expect(screen.getByRole("status")).toHaveTextContent("Approved support-refund (task 3f1c2a9e).");
  });

  it("`a` then `a` approves the selected approval; j and the arrows move the selection", async () => {
    const second = { ...refundApproval, id: "ap-2", prompt: "Second?" };
    const third = { ...refundApproval, id: "ap-3", prompt: "Third?" };
    const calls = setup([refundApproval, second, third]);
    await screen.findByText("Third?");
    await userEvent.keyboard("jj{ArrowUp}a");
    const confirm = screen.getByRole("group", { name: "Confirm the approval" });
    expect(within(confirm).getByRole("button", { name: "Approve" })).toHaveFocus();
    expect(answers(calls)).toEqual([]);
    await userEvent.keyboard("a");
    await screen.findByRole("status");
    expect(answers(calls)).toEqual([{ id: "ap-2", answer: { kind: "approve", reason: null } }]);
  });

  it("Enter confirms a keyed approval; any other key calls it off, so stray typing approves nothing", async () => {
    const calls = setup([refundApproval]);
    await screen.findByText(refundApproval.prompt);
    await userEvent.keyboard("Capped at 200.00");
    expect(answers(calls)).toEqual([]);
    expect(screen.queryByRole("group", { name: "Confirm the approval" })).toBeNull();
    await userEvent.keyboard("a{Enter}");
    await screen.findByRole("status");
    expect(answers(calls)).toEqual([{ id: "ap-1", answer: { kind: "approve", reason: null } }]);
  });

  it("`r` asks for a reason, and rejecting needs one", async () => {
    const calls = setup([refundApproval]);
    await screen.findByText(refundApproval.prompt);
    await userEvent.keyboard("r");
    const reason = screen.getByLabelText("Why are you rejecting this?");
    expect(reason).toHaveFocus();
    const reject = screen.getByRole("button", { name: "Reject" });
    expect(reject).toBeDisabled();
    await userEvent.type(reason, "order was already refunded");
    await userEvent.click(reject);
    expect(await screen.findByText("Nothing waits for you")).toBeInTheDocument();
    expect(answers(calls)).toEqual([
      { id: "ap-1", answer: { kind: "reject", reason: "order was already refunded" } },
    ]);
  });

  it("Escape puts a form away without deciding", async () => {
    const calls = setup([refundApproval]);
    await screen.findByText(refundApproval.prompt);
    await userEvent.keyboard("r");
    await userEvent.keyboard("{Escape}");
    expect(screen.queryByLabelText("Why are you rejecting this?")).toBeNull();
    expect(answers(calls)).toEqual([]);
  });

  it("says why a decision was not recorded, on the approval", async () => {
    backend({
      list_approvals: () => ({ acting_as: me, approvals: [refundApproval], in_doubt: [] }),
      answer_approval: () => {
        throw commandError("conflict", "Approval ap-1 was already decided.");
      },
    });
    render(<Approvals now={NOW} onOpenTask={vi.fn()} onShowTasks={vi.fn()} />);
    await userEvent.click(await screen.findByRole("button", { name: "Approve" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The decision was not recorded.");
    expect(alert).toHaveTextContent("Approval ap-1 was already decided.");
    expect(within(screen.getByRole("listitem")).getByRole("alert")).toBe(alert);
  });
});

describe("Approvals: held tool calls", () => {
  it("shows the tool, the arguments in words, the risk, the rule and what it saw", async () => {
    setup([heldRefund]);
    const item = await screen.findByRole("listitem", { name: "support.issue_refund for task 3f1c2a9e" });
    const what = within(item).getByRole("region", { name: "What it would do" });
    expect(within(what).getByText("order_id").nextSibling).toHaveTextContent("ORD-5001");
    expect(within(what).getByText("amount_cents").nextSibling).toHaveTextContent("25000 (250.00)");
    expect(within(what).getByText("reason").nextSibling).toHaveTextContent("customer request");
    expect(within(item).getByText("Medium risk")).toHaveClass("pill-attention");
    expect(within(item).getByText(/^support-refund · step/)).toHaveTextContent(
      "support-refund · step refund · task 3f1c2a9e",
    );
    const why = within(item).getByRole("region", { name: "Why it waits" });
    expect(why).toHaveTextContent(
      "Rule “refunds above $200.00 need a finance lead” applies when args.amount_cents > 20000.",
    );
    expect(within(why).getByText("args.amount_cents").closest("div")).toHaveTextContent(
      "args.amount_cents25000 (250.00)",
    );
    expect(within(item).getByText("4 min ago").closest("dd")).toHaveTextContent("4 min ago by ada");
    expect(within(item).getByText("1 approval from finance-lead")).toBeInTheDocument();
    expect(within(item).getByText("23 h 56 min left")).toBeInTheDocument();
    expect(within(item).getByText("controller may decide too in 3 h 56 min")).toBeInTheDocument();
    expect(within(item).queryByText("Escalated")).toBeNull();
  });

  it("says when it has escalated, and counts the votes of a call needing several", async () => {
    const twoNeeded: ApprovalRow = {
      ...heldRefund,
      held: heldRefund.held && {
        ...heldRefund.held,
        approvals_needed: 2,
        votes: [{ voter: "sam", at: NOW - 60_000 }],
        four_eyes: true,
      },
    };
    setup([twoNeeded], {}, NOW + 4 * 3_600_000);
    expect(await screen.findByText("Escalated")).toHaveClass("pill");
    expect(screen.getByText("Escalated: controller may decide too")).toBeInTheDocument();
    expect(
      screen.getByText("2 approvals from different people with role finance-lead; 1 so far (sam)"),
    ).toBeInTheDocument();
    expect(screen.getByText("ada may not approve it")).toBeInTheDocument();
  });

  it("reports a vote that still needs another approver", async () => {
    const calls = setup([heldRefund], {
      answer_approval: () => ({
        outcome: "voted",
        task: refundTask,
        votes: 1,
        needed: 2,
      }),
    });
    await userEvent.click(await screen.findByRole("button", { name: "Approve" }));
    expect(await screen.findByRole("status")).toHaveTextContent(
      "Your approval of support.issue_refund for task 3f1c2a9e is counted: 1 of 2. It waits for another approver.",
    );
    expect(answers(calls)).toHaveLength(1);
  });

  it("edits then approves, showing the proposed and edited arguments side by side first", async () => {
    const calls = setup([heldRefund]);
    await screen.findByRole("listitem", { name: /^support.issue_refund/ });
    await userEvent.keyboard("e");
    const amount = screen.getByLabelText("amount_cents");
    expect(screen.getByLabelText("order_id")).toHaveFocus();
    await userEvent.clear(amount);
    await userEvent.type(amount, "20000");
    expect(screen.getByText("was")).toHaveTextContent("was 25000 (250.00)");
    await userEvent.click(screen.getByRole("button", { name: "Review changes" }));

    expect(screen.getByRole("heading", { name: "1 change" })).toBeInTheDocument();
    // While editing, the why shrinks to one line and the arguments list gives way to the diff.
    expect(screen.queryByRole("region", { name: "What it would do" })).toBeNull();
    expect(screen.getByText(/^Held by/)).toHaveTextContent(
      "Held by “refunds above $200.00 need a finance lead” (args.amount_cents > 20000) · 1 approval from finance-lead · 23 h 56 min left",
    );
    const diff = screen.getByRole("table", { name: "Proposed and edited arguments" });
    const changed = within(diff).getByRole("row", { name: /^amount_cents/ });
    expect(changed).toHaveClass("changed");
    expect(within(changed).getAllByRole("cell").map((c) => c.textContent)).toEqual([
      "25000 (250.00)",
      "20000 (200.00)",
    ]);
    expect(within(diff).getByRole("row", { name: /^order_id/ })).toHaveTextContent(
      "ORD-5001 · unchanged",
    );
    await userEvent.type(screen.getByLabelText("Why the change (kept with the override)"), "policy cap");
    await userEvent.click(screen.getByRole("button", { name: "Approve with changes" }));
    expect(await screen.findByRole("status")).toHaveTextContent(
      "Approved support.issue_refund for task 3f1c2a9e with your changes.",
    );
    expect(answers(calls)).toEqual([
      {
        id: "ap-9",
        answer: {
          kind: "approve_edited",
          args: { order_id: "ORD-5001", amount_cents: 20000, reason: "customer request" },
          reason: "policy cap",
        },
      },
    ]);
  });

  it("keeps an edit that does not read as its type from being reviewed", async () => {
    setup([heldRefund]);
    await userEvent.click(await screen.findByRole("button", { name: "Edit, then approve…" }));
    const amount = screen.getByLabelText("amount_cents");
    await userEvent.clear(amount);
    await userEvent.type(amount, "two hundred");
    await userEvent.click(screen.getByRole("button", { name: "Review changes" }));
    expect(screen.getByText("Write a number.")).toBeInTheDocument();
    expect(amount).toHaveAttribute("aria-invalid", "true");
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("an unchanged edit cannot be approved as a change", async () => {
    setup([heldRefund]);
    await userEvent.click(await screen.findByRole("button", { name: "Edit, then approve…" }));
    await userEvent.click(screen.getByRole("button", { name: "Review changes" }));
    expect(screen.getByRole("heading", { name: "Nothing changed" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Approve with changes" })).toBeDisabled();
  });

  it("shows a refused edit in place and lets the approver go back to editing", async () => {
    setup([heldRefund], {
      answer_approval: () => {
        throw commandError("invalid_input", "The edited call cannot be approved: the policy denies it (rule “no refund above 1000.00”): too large.");
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Edit, then approve…" }));
    const amount = screen.getByLabelText("amount_cents");
    await userEvent.clear(amount);
    await userEvent.type(amount, "900000");
    await userEvent.click(screen.getByRole("button", { name: "Review changes" }));
    await userEvent.click(screen.getByRole("button", { name: "Approve with changes" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The change was refused.");
    expect(alert).toHaveTextContent("the policy denies it (rule “no refund above 1000.00”): too large.");
    await userEvent.click(screen.getByRole("button", { name: "Back to editing" }));
    expect(screen.getByLabelText("amount_cents")).toHaveValue("900000");
  });

  it("says in words when this person may not decide", async () => {
    setup([heldRefund], {
      answer_approval: () => {
        throw commandError("not_allowed", "ada asked for this call, and its rule needs four eyes: someone else must approve it.");
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Approve" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("You cannot decide this one.");
    expect(alert).toHaveTextContent("someone else must approve it.");
  });

  it("approves and grants later calls like it, scoped to the workflow, an hour and the amount", async () => {
    const calls = setup([heldRefund], { create_grant: () => grant });
    await screen.findByRole("listitem", { name: /^support.issue_refund/ });
    await userEvent.keyboard("g");
    expect(screen.getByLabelText("For")).toHaveValue("60");
    expect(screen.getByLabelText("Only while")).toHaveValue("args.amount_cents <= 25000");
    expect(screen.getByRole("radio", { name: "every support-refund task" })).toBeChecked();
    await userEvent.type(screen.getByLabelText("At most"), "5");
    expect(screen.getByText(/^Grants:/)).toHaveTextContent(
      "Grants: support.issue_refund in support-refund tasks, while args.amount_cents <= 25000, for 1 hour, at most 5 calls.",
    );
    await userEvent.click(screen.getByRole("button", { name: "Approve and grant" }));
    expect(await screen.findByRole("status")).toHaveTextContent(
      /^Approved support.issue_refund for task 3f1c2a9e. Granted: support.issue_refund in support-refund tasks, while args.amount_cents <= 25000, until .+, at most 5 calls.$/,
    );
    expect(calls.map((c) => c.cmd).filter((c) => c !== "list_approvals")).toEqual([
      "answer_approval",
      "create_grant",
    ]);
    expect(calls.find((c) => c.cmd === "create_grant")?.args).toEqual({
      grant: {
        tool: "support.issue_refund",
        workflow: "support-refund",
        task_id: null,
        condition: "args.amount_cents <= 25000",
        max_uses: 5,
        valid_for_minutes: 60,
        from_approval: "ap-9",
        note: null,
      },
    });
  });

  it("refuses a count of calls that is not a whole number, and can grant for this task only", async () => {
    const calls = setup([heldRefund], { create_grant: () => grant });
    await userEvent.click(await screen.findByRole("button", { name: "Approve and grant…" }));
    await userEvent.type(screen.getByLabelText("At most"), "1.5");
    expect(screen.getByText(/Write a whole number of calls/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Approve and grant" })).toBeDisabled();
    await userEvent.clear(screen.getByLabelText("At most"));
    await userEvent.click(screen.getByRole("radio", { name: "only task 3f1c2a9e" }));
    await userEvent.selectOptions(screen.getByLabelText("Only while"), "any arguments");
    await userEvent.selectOptions(screen.getByLabelText("For"), "until revoked");
    expect(screen.getByText(/It has no end/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Approve and grant" }));
    await screen.findByRole("status");
    expect(calls.find((c) => c.cmd === "create_grant")?.args.grant).toMatchObject({
      task_id: refundTask.id,
      condition: null,
      max_uses: null,
      valid_for_minutes: null,
    });
  });

  it("says so when the call was approved but the grant could not be made", async () => {
    setup([heldRefund], {
      create_grant: () => {
        throw commandError("invalid_input", "The grant cannot be made: its condition does not compile.");
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Approve and grant…" }));
    await userEvent.click(screen.getByRole("button", { name: "Approve and grant" }));
    const status = await screen.findByRole("status");
    expect(status).toHaveClass("warn");
    expect(status).toHaveTextContent(
      "Approved support.issue_refund for task 3f1c2a9e. The grant was not made: The grant cannot be made: its condition does not compile.",
    );
  });
});

describe("Approvals: calls in doubt", () => {
  function doubtful(extra: Handlers = {}) {
    let doubts = [lostRefund];
    const calls = backend({
      list_approvals: () => ({ acting_as: me, approvals: [], in_doubt: doubts }),
      resolve_in_doubt: () => {
        doubts = [];
        return { ...refundTask, status: "running" };
      },
      ...extra,
    });
    render(<Approvals now={NOW} onOpenTask={vi.fn()} onShowTasks={vi.fn()} />);
    return calls;
  }

  it("asks whether it happened, with the tool, arguments, task and why", async () => {
    doubtful();
    const item = await screen.findByRole("listitem", { name: "support.issue_refund in doubt, task 3f1c2a9e" });
    expect(screen.getByRole("heading", { name: "Did this happen?" })).toBeInTheDocument();
    expect(item).toHaveTextContent("support-refund · step refund · task 3f1c2a9e");
    expect(within(item).getByText("ORD-5001")).toBeInTheDocument();
    expect(within(item).getByText("No answer within 30s.")).toBeInTheDocument();
    expect(item).toHaveTextContent(lostRefund.idempotency_key);
    expect(item).toHaveTextContent("3 min ago for ada");
    expect(screen.queryByText("Nothing waits for you")).toBeNull();
  });

  it("records that it happened after a confirmation", async () => {
    const calls = doubtful();
    await userEvent.click(await screen.findByRole("button", { name: "It happened" }));
    expect(calls.filter((c) => c.cmd === "resolve_in_doubt")).toEqual([]);
    await userEvent.click(screen.getByRole("button", { name: "Yes, it happened" }));
    expect(await screen.findByRole("status")).toHaveTextContent(
      "Recorded that support.issue_refund happened; task 3f1c2a9e moves on without making it again.",
    );
    expect(calls.filter((c) => c.cmd === "resolve_in_doubt").map((c) => c.args)).toEqual([
      { callId: "c-7", happened: true },
    ]);
    expect(await screen.findByText("Nothing waits for you")).toBeInTheDocument();
  });

  it("makes the call again when it did not happen, and shows a refusal in words", async () => {
    const calls = doubtful({
      resolve_in_doubt: () => {
        throw commandError("conflict", "This call is no longer in doubt: someone has already said whether it happened.");
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "It did not happen — make it again" }));
    const confirm = screen.getByRole("group", { name: "Confirm your answer" });
    expect(confirm).toHaveTextContent("Only if you checked that it did not take effect, or it happens twice.");
    await userEvent.click(within(confirm).getByRole("button", { name: "Make it again" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Your answer was not recorded.");
    expect(alert).toHaveTextContent("This call is no longer in doubt");
    expect(calls.filter((c) => c.cmd === "resolve_in_doubt").map((c) => c.args)).toEqual([
      { callId: "c-7", happened: false },
    ]);
  });
});

describe("Approvals: a call in doubt of a cancelled task", () => {
  it("records the answer without making the call again", async () => {
    let doubts = [{ ...lostRefund, task_status: "cancelled" as const }];
    const calls = backend({
      list_approvals: () => ({ acting_as: me, approvals: [], in_doubt: doubts }),
      resolve_in_doubt: () => {
        doubts = [];
        return { ...refundTask, status: "cancelled" };
      },
    });
    render(<Approvals now={NOW} onOpenTask={vi.fn()} onShowTasks={vi.fn()} />);
    const item = await screen.findByRole("listitem", { name: "support.issue_refund in doubt, task 3f1c2a9e" });
    expect(item).toHaveTextContent("Task cancelled");
    expect(within(item).queryByRole("button", { name: "It did not happen — make it again" })).toBeNull();
    await userEvent.click(within(item).getByRole("button", { name: "It did not happen" }));
    const confirm = screen.getByRole("group", { name: "Confirm your answer" });
    expect(confirm).toHaveTextContent(
      "Record that support.issue_refund did not take effect? The task stays cancelled; nothing is made again.",
    );
    await userEvent.click(within(confirm).getByRole("button", { name: "Yes, it did not happen" }));
    expect(await screen.findByRole("status")).toHaveTextContent(
      "Recorded that support.issue_refund did not happen; task 3f1c2a9e stays cancelled.",
    );
    expect(calls.filter((c) => c.cmd === "resolve_in_doubt").map((c) => c.args)).toEqual([
      { callId: "c-7", happened: false },
    ]);
  });
});

describe("Approvals: opened from a notification", () => {
  it("selects the notified approval and, after Reject there, asks for the reason", async () => {
    backend({ list_approvals: () => ({ acting_as: me, approvals: [refundApproval, heldRefund], in_doubt: [] }) });
    render(
      <Approvals
        now={NOW}
        onOpenTask={vi.fn()}
        onShowTasks={vi.fn()}
        target={{ approval_id: heldRefund.id, call_id: null, reject: true, nonce: 1 }}
      />,
    );
    const reason = await screen.findByLabelText("Why are you rejecting this?");
    expect(reason).toHaveFocus();
    const held = screen.getByRole("listitem", { name: /^support\.issue_refund for task/ });
    expect(held).toHaveAttribute("aria-current", "true");
    expect(within(held).getByLabelText("Why are you rejecting this?")).toBe(reason);
    expect(screen.getByRole("button", { name: "Reject" })).toBeDisabled();
  });

  it("selects the approval a click opened without asking anything", async () => {
    backend({ list_approvals: () => ({ acting_as: me, approvals: [refundApproval, heldRefund], in_doubt: [] }) });
    render(
      <Approvals
        now={NOW}
        onOpenTask={vi.fn()}
        onShowTasks={vi.fn()}
        target={{ approval_id: heldRefund.id, call_id: null, reject: false, nonce: 1 }}
      />,
    );
    const held = await screen.findByRole("listitem", { name: /^support\.issue_refund for task/ });
    expect(held).toHaveAttribute("aria-current", "true");
    expect(screen.queryByLabelText("Why are you rejecting this?")).toBeNull();
  });

  it("says so when the notified approval no longer waits", async () => {
    backend({ list_approvals: () => ({ acting_as: me, approvals: [refundApproval], in_doubt: [] }) });
    render(
      <Approvals
        now={NOW}
        onOpenTask={vi.fn()}
        onShowTasks={vi.fn()}
        target={{ approval_id: "ap-gone", call_id: null, reject: true, nonce: 1 }}
      />,
    );
    expect(await screen.findByRole("status")).toHaveTextContent(
      "That approval no longer waits: it was decided, cancelled or has expired.",
    );
    expect(screen.queryByLabelText("Why are you rejecting this?")).toBeNull();
  });
});
