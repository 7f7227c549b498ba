import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { LessonRow } from "../bindings/LessonRow";
import { NOW, backend, heldRefund, refundDetail } from "../test/fixtures";
import { Lessons } from "./Lessons";

const proposed: LessonRow = {
  id: "rejection:ap-9",
  workflow: "support-refund",
  origin: "rejection",
  source_ref: "ap-9",
  task_id: "3f1c2a9e-0000-4000-8000-000000000001",
  text: "carol rejected a call to `support.issue_refund`: no refunds on opened items",
  created_at: NOW - 10 * 60_000,
  state: "proposed",
  reviewed_by: null,
  reviewed_at: null,
};

const accepted: LessonRow = {
  ...proposed,
  id: "edit:ap-3",
  origin: "edit",
  text: "Refund the order's amount, never more.",
  state: "accepted",
  reviewed_by: "carol",
  reviewed_at: NOW - 60_000,
};

const noop = () => undefined;

/** An edit before approval, in the engine's words: the arguments as JSON. */
const edit: LessonRow = {
  ...proposed,
  id: "edit:ap-9",
  origin: "edit",
  text:
    'fiona approved a call to `support.issue_refund` only after changing its arguments from ' +
    '{"order_id":"ORD-5001","amount_cents":25000,"reason":"customer request"} to ' +
    '{"order_id":"ORD-5001","amount_cents":20000,"reason":"customer request"}: capped at $200.00',
};

const editedApproval = {
  ...heldRefund,
  state: "approved" as const,
  decided_by: "fiona",
  decided_at: NOW - 60_000,
  reason: "capped at $200.00",
  edited_args: { order_id: "ORD-5001", amount_cents: 20000, reason: "customer request" },
};

describe("Lessons", () => {
  it("tells an edit field by field, old and new, with the agents' words a click away", async () => {
    const calls = backend({
      list_lessons: () => [edit],
      task_detail: () => ({ ...refundDetail, approvals: [editedApproval] }),
    });
    render(<Lessons now={NOW} onOpenTask={noop} />);
    const card = await screen.findByRole("listitem", { name: "Lesson for support-refund" });
    const diff = await within(card).findByRole("table");
    expect(card).toHaveTextContent("fiona approved support.issue_refund only after changing its arguments: “capped at $200.00”");
    const changed = within(diff).getByRole("row", { name: /amount_cents/ });
    expect(changed).toHaveTextContent("amount_cents25000 (250.00)20000 (200.00)");
    expect(within(diff).getByRole("row", { name: /order_id/ })).toHaveTextContent("ORD-5001 · unchanged");
    // The raw words stay reachable, folded away.
    const raw = within(card).getByText("As the agents are given it").closest("details");
    expect(raw).not.toHaveAttribute("open");
    expect(raw).toHaveTextContent(edit.text);
    expect(calls.filter((c) => c.cmd === "task_detail").map((c) => c.args)).toEqual([{ id: edit.task_id }]);
  });

  it("offers the edit in plain words to start rewording from", async () => {
    const calls = backend({
      list_lessons: () => [edit],
      task_detail: () => ({ ...refundDetail, approvals: [editedApproval] }),
      review_lesson: () => ({ ...edit, state: "accepted", reviewed_by: "carol", reviewed_at: NOW }),
    });
    render(<Lessons now={NOW} onOpenTask={noop} />);
    const card = await screen.findByRole("listitem", { name: "Lesson for support-refund" });
    await within(card).findByRole("table");
    await userEvent.click(within(card).getByRole("button", { name: "Accept with my wording" }));
    expect(within(card).getByRole("textbox", { name: "The lesson in your words" })).toHaveValue(
      "fiona approved support.issue_refund only after changing amount_cents from 25000 (250.00) to 20000 (200.00): capped at $200.00",
    );
    await userEvent.click(within(card).getByRole("button", { name: "Accept this wording" }));
    await screen.findByRole("status");
    expect(calls.find((c) => c.cmd === "review_lesson")?.args).toMatchObject({ accept: true });
  });

  it("keeps a lesson in its own words when its approval cannot be read", async () => {
    backend({ list_lessons: () => [edit] });
    render(<Lessons now={NOW} onOpenTask={noop} />);
    const card = await screen.findByRole("listitem", { name: "Lesson for support-refund" });
    expect(within(card).getByText(edit.text)).toBeInTheDocument();
    expect(within(card).queryByRole("table")).toBeNull();
  });

  it("lists proposed lessons to review and accepted ones by workflow", async () => {
    backend({ list_lessons: () => [proposed, accepted] });
    render(<Lessons now={NOW} onOpenTask={noop} />);
    const card = await screen.findByRole("listitem", { name: "Lesson for support-refund" });
    expect(within(card).getByText(proposed.text)).toBeInTheDocument();
    expect(within(card).getByText(/From a rejection/)).toBeInTheDocument();
    const given = screen.getByRole("region", { name: "Accepted for support-refund" });
    expect(within(given).getByText("Refund the order's amount, never more.")).toBeInTheDocument();
    expect(within(given).getByText(/Accepted by carol/)).toBeInTheDocument();
  });

  it("accepts a lesson in the reviewer's own words", async () => {
    const calls = backend({
      list_lessons: () => [proposed],
      review_lesson: () => ({ ...proposed, state: "accepted", reviewed_by: "carol", reviewed_at: NOW }),
    });
    render(<Lessons now={NOW} onOpenTask={noop} />);
    await userEvent.click(await screen.findByRole("button", { name: "Accept with my wording" }));
    const box = screen.getByRole("textbox", { name: "The lesson in your words" });
    await userEvent.clear(box);
    await userEvent.type(box, "Never refund opened items.");
    await userEvent.click(screen.getByRole("button", { name: "Accept this wording" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Accepted");
    expect(calls.find((c) => c.cmd === "review_lesson")?.args).toEqual({
      id: "rejection:ap-9",
      accept: true,
      text: "Never refund opened items.",
    });
  });

  it("dismisses a lesson", async () => {
    const calls = backend({
      list_lessons: () => [proposed],
      review_lesson: () => ({ ...proposed, state: "dismissed", reviewed_by: "carol", reviewed_at: NOW }),
    });
    render(<Lessons now={NOW} onOpenTask={noop} />);
    await userEvent.click(await screen.findByRole("button", { name: "Dismiss" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Dismissed");
    expect(calls.find((c) => c.cmd === "review_lesson")?.args).toEqual({
      id: "rejection:ap-9",
      accept: false,
      text: null,
    });
  });

  it("says what proposes lessons when there are none", async () => {
    backend({ list_lessons: () => [] });
    render(<Lessons now={NOW} onOpenTask={noop} />);
    expect(await screen.findByText("No lessons yet")).toBeInTheDocument();
  });
});
