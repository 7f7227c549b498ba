import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { ApprovalRow } from "../bindings/ApprovalRow";
import { NOW, backend, me, refundApproval, refundTask } from "../test/fixtures";
import { Approvals } from "./Approvals";

function setup(pending: ApprovalRow[]) {
  let current = pending;
  const calls = backend({
    list_approvals: () => ({ acting_as: me, approvals: current }),
    answer_approval: (args) => {
      current = current.filter((a) => a.id !== args.id);
      return { outcome: "decided", task: { ...refundTask, status: "running" } };
    },
  });
  render(<Approvals now={NOW} onOpenTask={vi.fn()} onShowTasks={vi.fn()} />);
  return calls;
}

describe("Approvals", () => {
  it("shows the prompt, workflow, step, approvers and time left", async () => {
    setup([refundApproval]);
    expect(await screen.findByText(refundApproval.prompt)).toBeInTheDocument();
    expect(screen.getByText("support-refund")).toBeInTheDocument();
    expect(screen.getByText("controller_approval")).toBeInTheDocument();
    expect(screen.getByText("controller")).toBeInTheDocument();
    expect(screen.getByText("3 h 20 min left")).toBeInTheDocument();
    expect(screen.getByText("4 min ago by ada")).toBeInTheDocument();
  });

  it("approves with the button", async () => {
    const calls = setup([refundApproval]);
    await userEvent.click(await screen.findByRole("button", { name: "Approve" }));
    expect(await screen.findByText("Nothing waits for you")).toBeInTheDocument();
    expect(calls.find((c) => c.cmd === "answer_approval")?.args).toEqual({
      id: "ap-1",
      answer: { kind: "approve", reason: null },
    });
  });

  it("`a` approves the selected approval; arrows move the selection", async () => {
    const second = { ...refundApproval, id: "ap-2", prompt: "Second?" };
    const calls = setup([refundApproval, second]);
    await screen.findByText("Second?");
    await userEvent.keyboard("{ArrowDown}a");
    await screen.findByText(refundApproval.prompt);
    expect(calls.find((c) => c.cmd === "answer_approval")?.args).toMatchObject({
      id: "ap-2",
      answer: { kind: "approve" },
    });
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
    expect(calls.find((c) => c.cmd === "answer_approval")?.args).toEqual({
      id: "ap-1",
      answer: { kind: "reject", reason: "order was already refunded" },
    });
  });

  it("says why a decision was not recorded", async () => {
    backend({
      list_approvals: () => ({ acting_as: me, approvals: [refundApproval] }),
      answer_approval: () => {
        throw new Error("Approval ap-1 was already decided.");
      },
    });
    render(<Approvals now={NOW} onOpenTask={vi.fn()} onShowTasks={vi.fn()} />);
    await userEvent.click(await screen.findByRole("button", { name: "Approve" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The decision was not recorded.");
    expect(alert).toHaveTextContent("Approval ap-1 was already decided.");
  });
});
