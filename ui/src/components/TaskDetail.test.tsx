import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { NOW, backend, heldRefund, refundDetail, refundTask } from "../test/fixtures";
import { TaskDetail } from "./TaskDetail";

describe("TaskDetail", () => {
  it("shows status, inputs, outputs, tool calls, approvals and the history", async () => {
    const calls = backend({ task_detail: () => refundDetail });
    render(<TaskDetail id={refundTask.id} onBack={vi.fn()} onShowApprovals={vi.fn()} />);

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
    render(<TaskDetail id={refundTask.id} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    const approvals = (await screen.findByRole("heading", { name: "Approvals" })).parentElement;
    if (approvals === null) throw new Error("no approvals card");
    expect(approvals).toHaveTextContent("support.issue_refund held by rule “refunds above 200.00 need a finance lead”");
    expect(within(approvals).getByText(/Approved by fiona with changed arguments ·/)).toHaveTextContent(
      "“capped at 200.00”",
    );
    await userEvent.click(within(approvals).getByText("What was changed"));
    const changed = within(approvals).getByRole("row", { name: /^amount_cents/ });
    expect(within(changed).getAllByRole("cell").map((c) => c.textContent)).toEqual([
      "25000 (250.00)",
      "20000 (200.00)",
    ]);
  });

  it("points a waiting task to the Approvals view", async () => {
    backend({ task_detail: () => ({ ...refundDetail, task: refundTask }) });
    const onShowApprovals = vi.fn();
    render(<TaskDetail id={refundTask.id} onBack={vi.fn()} onShowApprovals={onShowApprovals} />);
    await userEvent.click(await screen.findByRole("button", { name: "Review in Approvals" }));
    expect(onShowApprovals).toHaveBeenCalled();
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
    render(<TaskDetail id={refundTask.id} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
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
    render(<TaskDetail id={refundTask.id} onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    await screen.findByRole("heading", { name: "support-refund" });
    expect(screen.queryByRole("button", { name: "Cancel task…" })).toBeNull();
  });

  it("says when the task cannot be found", async () => {
    backend({
      task_detail: () => {
        throw new Error("No task `x`.");
      },
    });
    render(<TaskDetail id="x" onBack={vi.fn()} onShowApprovals={vi.fn()} />);
    expect(await screen.findByRole("alert")).toHaveTextContent("No task `x`.");
  });
});
