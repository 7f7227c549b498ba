import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { backend, refundDetail, refundTask } from "../test/fixtures";
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

  it("points a waiting task to the Approvals view", async () => {
    backend({ task_detail: () => ({ ...refundDetail, task: refundTask }) });
    const onShowApprovals = vi.fn();
    render(<TaskDetail id={refundTask.id} onBack={vi.fn()} onShowApprovals={onShowApprovals} />);
    await userEvent.click(await screen.findByRole("button", { name: "Review in Approvals" }));
    expect(onShowApprovals).toHaveBeenCalled();
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
