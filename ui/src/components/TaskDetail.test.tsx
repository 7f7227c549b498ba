import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { NOW, backend, heldRefund, refundApproval, refundDetail, refundTask } from "../test/fixtures";
import type { ModelCost } from "../bindings/ModelCost";
import type { TaskDetail as TaskDetailData } from "../bindings/TaskDetail";
import { totalWords } from "./Spend";
import { TaskDetail } from "./TaskDetail";

const sonnet: ModelCost = {
  model: "claude (claude-sonnet-4-5)",
  turns: 1,
  counted_turns: 1,
  input_tokens: 100,
  output_tokens: 10,
  cache_write_tokens: 0,
  cache_read_tokens: 0,
  usd: 0.001,
};

describe("TaskDetail", () => {
  it("marks and focuses the call it was opened at, its arguments open", async () => {
    backend({ task_detail: () => refundDetail });
    const target = refundDetail.tool_calls[0];
    if (target === undefined) throw new Error("no call in the fixture");
    render(<TaskDetail id={refundTask.id} now={NOW} callId={target.id} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const calls = await screen.findByTestId("task-calls");
    const marked = within(calls).getAllByRole("listitem").filter((li) => li.getAttribute("aria-current") === "true");
    expect(marked).toHaveLength(1);
    const [item] = marked;
    if (item === undefined) throw new Error("nothing marked");
    expect(item).toHaveClass("focused");
    expect(item).toHaveFocus();
    expect(item.querySelector("details")).toHaveAttribute("open");
  });

  it("shows status, inputs, outputs, tool calls, approvals and the history", async () => {
    const calls = backend({ task_detail: () => refundDetail });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);

    expect(await screen.findByRole("heading", { name: "support-refund" })).toBeInTheDocument();
    expect(screen.getAllByText("Succeeded").map((e) => e.className)).toEqual([
      "pill pill-good",
      "pill pill-good",
    ]);
    const inputs = screen.getByRole("heading", { name: "Inputs" }).parentElement;
    if (inputs === null) throw new Error("no inputs card");
    expect(within(inputs).getByText(/"amount_cents": 6000/)).toBeInTheDocument();
    expect(screen.getByText("lookup_order")).toBeInTheDocument();
    expect(screen.getByText("support.issue_refund")).toBeInTheDocument();
    expect(screen.getByText("step 4, attempt 1", { exact: false })).toBeInTheDocument();
    expect(screen.getByText(/Approved by carol ·/)).toBeInTheDocument();
    expect(screen.getByText("Created by ada from support-refund (version 1)")).toBeInTheDocument();
    expect(screen.getByText("Approved by carol; next: refund")).toBeInTheDocument();
    expect(calls[0]).toEqual({ cmd: "task_detail", args: { id: refundTask.id } });
  });

  it("shows a refused call as never made, with why", async () => {
    const refused = {
      id: "c2",
      tool: "support.issue_refund",
      step_no: 5,
      attempt: 1,
      args: { order_id: "ORD-5002", reason: "goodwill" },
      outcome: "refused" as const,
      result: null,
      error: "refused by policy rule “no goodwill refunds”: goodwill refunds go through the account team",
      resolved_by: null,
      intent_at: NOW - 50_000,
      outcome_at: NOW - 50_000,
    };
    backend({ task_detail: () => ({ ...refundDetail, tool_calls: [...refundDetail.tool_calls, refused] }) });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const calls = await screen.findByTestId("task-calls");
    expect(within(calls).getByText("Refused")).toHaveClass("pill-stopped");
    expect(within(calls).getByText(/goodwill refunds go through the account team/)).toBeInTheDocument();
  });

  it("shows a held call approved with changed arguments, and what was changed", async () => {
    backend({
      task_detail: () => ({
        ...refundDetail,
        approvals: [
          {
            ...heldRefund,
            state: "approved",
            decided_by: "fiona",
            decided_at: NOW - 60_000,
            reason: "capped at 200.00",
            edited_args: { ...heldRefund.held?.args, amount_cents: 20000 },
          },
        ],
      }),
    });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const approvals = (await screen.findByRole("heading", { name: "Approvals" })).parentElement;
    if (approvals === null) throw new Error("no approvals card");
    expect(approvals).toHaveTextContent("support.issue_refund held by rule “refunds above $200.00 need a finance lead”");
    expect(within(approvals).getByText(/Approved by fiona with changed arguments ·/)).toHaveTextContent(
      "“capped at 200.00”",
    );
    await userEvent.click(within(approvals).getByText("What was changed"));
    // Said after the fact: what it was approved with, not "approve with".
    expect(within(approvals).getByRole("columnheader", { name: "Approved with" })).toBeInTheDocument();
    const changed = within(approvals).getByRole("row", { name: /^amount_cents/ });
    expect(within(changed).getAllByRole("cell").map((c) => c.textContent)).toEqual([
      "25000 (250.00)",
      "20000 (200.00)",
    ]);
  });

  it("says first where the task stands: what it waits for, from whom, and since when", async () => {
    backend({ task_detail: () => ({ ...refundDetail, task: refundTask, approvals: [heldRefund] }) });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const standing = await screen.findByTestId("task-standing");
    expect(standing).toHaveTextContent("Waiting at controller_approval for an approval.");
    const waits = within(standing).getByRole("list", { name: "What it waits for" });
    expect(waits).toHaveTextContent(
      "Waits for finance-lead to approve support.issue_refund, held by rule “refunds above $200.00 need a finance lead” · asked 4 min ago · 23 h 56 min left",
    );
    // It comes before the inputs, outputs and everything else.
    const inputs = screen.getByRole("heading", { name: "Inputs" });
    expect(standing.compareDocumentPosition(inputs) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
  });

  it("says how an ended task ended, and the decision that ended it", async () => {
    backend({
      task_detail: () => ({
        ...refundDetail,
        task: { ...refundTask, status: "cancelled", current_state: "rejected" },
        approvals: [{ ...refundApproval, state: "rejected", decided_by: "sam", decided_at: NOW - 60_000, reason: "Duplicate" }],
      }),
    });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const standing = await screen.findByTestId("task-standing");
    expect(standing).toHaveTextContent("Cancelled at rejected.");
    expect(standing).toHaveTextContent("Last decision: Rejected by sam: “Duplicate”");
    expect(standing).toHaveTextContent("In all1 tool call, 1 decision by people");
    expect(within(standing).queryByRole("button", { name: "Review in Approvals" })).toBeNull();
  });

  it("says which step gave up when a task failed along its error path", async () => {
    backend({
      task_detail: () => ({
        ...refundDetail,
        task: { ...refundTask, status: "failed", current_state: "failed", error: null },
        gave_up: "`refund` gave up: There is no order with id ORD-9999.",
      }),
    });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const problem = await screen.findByRole("alert");
    expect(problem).toHaveTextContent("What went wrong");
    expect(problem).toHaveTextContent("`refund` gave up: There is no order with id ORD-9999.");
  });

  it("points a waiting task to the Approvals view", async () => {
    backend({ task_detail: () => ({ ...refundDetail, task: refundTask, approvals: [refundApproval] }) });
    const onShowApprovals = vi.fn();
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={onShowApprovals} />);
    await userEvent.click(await screen.findByRole("button", { name: "Review in Approvals" }));
    // On this task's approval, not whichever is first in the inbox.
    expect(onShowApprovals).toHaveBeenCalledWith({ approval_id: refundApproval.id, call_id: null, reject: false });
  });

  it("cancels a waiting task and follows it to cancelled", async () => {
    let detail = { ...refundDetail, task: refundTask };
    const calls = backend({
      task_detail: () => detail,
      cancel_task: () => {
        detail = { ...refundDetail, task: { ...refundTask, status: "cancelled" } };
        return { outcome: "cancelled", task: detail.task };
      },
    });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    await userEvent.click(await screen.findByRole("button", { name: "Cancel task…" }));
    const form = screen.getByRole("form", { name: "Cancel task 3f1c2a9e" });
    await userEvent.click(within(form).getByRole("button", { name: "Cancel task" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Cancelled support-refund (task 3f1c2a9e).");
    expect(calls.filter((c) => c.cmd === "cancel_task").map((c) => c.args)).toEqual([
      { id: refundTask.id, reason: null },
    ]);
    expect((await screen.findAllByText("Cancelled"))[0]).toHaveClass("pill");
    expect(screen.queryByRole("button", { name: "Cancel task…" })).toBeNull();
  });

  it("offers no cancel for an ended task", async () => {
    backend({ task_detail: () => refundDetail });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    await screen.findByRole("heading", { name: "support-refund" });
    expect(screen.queryByRole("button", { name: "Cancel task…" })).toBeNull();
  });

  it("says when the task cannot be found", async () => {
    backend({
      task_detail: () => {
        throw new Error("No task `x`.");
      },
    });
    render(<TaskDetail id="x" now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    expect(await screen.findByRole("alert")).toHaveTextContent("No task `x`.");
  });

  it("prices each model's tokens, and says so when a model's price is unknown", async () => {
    backend({
      task_detail: () => ({
        ...refundDetail,
        spend: [
          {
            model: "claude (claude-mystery-9)",
            turns: 1,
            counted_turns: 1,
            input_tokens: 500,
            output_tokens: 20,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
            usd: null,
          },
          {
            model: "claude (claude-sonnet-4-5)",
            turns: 3,
            counted_turns: 3,
            input_tokens: 12_000,
            output_tokens: 800,
            cache_write_tokens: 0,
            cache_read_tokens: 4_000,
            usd: 0.0492,
          },
          {
            model: "scripted (offline demo model)",
            turns: 2,
            counted_turns: 0,
            input_tokens: 0,
            output_tokens: 0,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
            usd: null,
          },
        ],
      }),
    });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const cost = (await screen.findByRole("heading", { name: "Cost" })).parentElement;
    if (cost === null) throw new Error("no cost card");
    expect(within(cost).getByText("At least $0.0492; cost unknown for claude (claude-mystery-9)")).toBeInTheDocument();
    const rows = within(cost).getAllByRole("listitem").map((li) => li.textContent);
    expect(rows).toEqual([
      "claude (claude-mystery-9)1 turn, 500 in / 20 out tokenscost unknown (no price for this model)",
      "claude (claude-sonnet-4-5)3 turns, 12,000 in / 800 out tokens, cache 0 written / 4,000 read$0.0492",
      "scripted (offline demo model)2 turns, tokens not counted",
    ]);
  });

  it("says when no model ran, and totals priced models", async () => {
    backend({ task_detail: () => refundDetail });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const cost = (await screen.findByRole("heading", { name: "Cost" })).parentElement;
    expect(cost).toHaveTextContent("No model has run for this task.");
    expect(
      totalWords([
        { ...sonnet, usd: 1.5 },
        { ...sonnet, model: "claude (claude-haiku-4-5)", usd: 0.25 },
      ]),
    ).toBe("Total $1.75");
    expect(totalWords([{ ...sonnet, counted_turns: 0, usd: null }])).toBe("No tokens counted: no cost to tell.");
    expect(totalWords([{ ...sonnet, usd: null }])).toBe(
      "Cost unknown (no price for claude (claude-sonnet-4-5))",
    );
  });

  it("rates an ended task with a comment and shows the rating", async () => {
    let detail: TaskDetailData = refundDetail;
    const calls = backend({
      task_detail: () => detail,
      rate_task: (args) => {
        const rating = {
          id: 1,
          rating: args.rating as number,
          comment: args.comment as string | null,
          rated_by: "carol",
          rated_at: NOW,
        };
        detail = { ...refundDetail, ratings: [rating] };
        return rating;
      },
    });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const form = await screen.findByRole("form", { name: "Rate this task" });
    const save = within(form).getByRole("button", { name: "Save rating" });
    expect(save).toBeDisabled();
    await userEvent.click(within(form).getByRole("radio", { name: "2 · Weak" }));
    await userEvent.type(within(form).getByRole("textbox", { name: /Comment/ }), "  refunded the wrong order  ");
    await userEvent.click(save);
    expect(await screen.findByLabelText("2 out of 5")).toHaveTextContent("★★☆☆☆");
    expect(screen.getByText("“refunded the wrong order”")).toBeInTheDocument();
    expect(calls.filter((c) => c.cmd === "rate_task").map((c) => c.args)).toEqual([
      { id: refundTask.id, rating: 2, comment: "refunded the wrong order" },
    ]);
    expect(within(screen.getByRole("form", { name: "Rate this task" })).getByRole("radio", { name: "2 · Weak" })).not.toBeChecked();
  });

  it("offers no rating before the task has ended, and shows a refusal in words", async () => {
    backend({ task_detail: () => ({ ...refundDetail, task: refundTask }) });
    const { unmount } = render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    expect(await screen.findByText("You can rate this task once it has ended.")).toBeInTheDocument();
    expect(screen.queryByRole("form", { name: "Rate this task" })).toBeNull();
    unmount();

    backend({
      task_detail: () => refundDetail,
      rate_task: () => {
        throw new Error("This task has not ended yet; it can be rated once it has.");
      },
    });
    render(<TaskDetail id={refundTask.id} now={NOW} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const form = await screen.findByRole("form", { name: "Rate this task" });
    await userEvent.click(within(form).getByRole("radio", { name: "5 · Excellent" }));
    await userEvent.click(within(form).getByRole("button", { name: "Save rating" }));
    expect(await within(form).findByRole("alert")).toHaveTextContent("The rating was not saved.");
  });
});
