import { emit } from "@tauri-apps/api/event";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { HistoryCall } from "../bindings/HistoryCall";
import type { HistoryCursor } from "../bindings/HistoryCursor";
import type { Refusal } from "../bindings/Refusal";
import { NOW, backend } from "../test/fixtures";
import { History, PAGE, ROW_HEIGHT, toQuery } from "./History";

/** Call `i` of a history of `total`, newest (`i = 0`) first. */
function call(i: number): HistoryCall {
  return {
    id: `call-${String(i)}`,
    task_id: `${String(i).padStart(8, "0")}-0000-4000-8000-000000000001`,
    workflow: i % 2 === 0 ? "support-refund" : "hr-onboarding",
    server: "erp",
    tool: i % 3 === 0 ? "erp.create_refund" : "erp.get_invoice",
    step_no: 2,
    attempt: 1,
    args: { order: `SO-${String(i)}`, amount_cents: 6000 },
    outcome: i === 1 ? "failed" : "succeeded",
    result: { ok: true },
    error: i === 1 ? "erp: card declined" : null,
    resolved_by: null,
    intent_at: NOW - i * 60_000,
    outcome_at: NOW - i * 60_000 + 300,
    allowed_by: i === 0 ? "approval" : "policy",
    refused_by: null,
    rule: i === 0 ? "refunds need a controller" : "reads are allowed",
    approved_by: i === 0 ? "carol" : null,
    rejected_by: null,
    allowed_ref: i === 0 ? "ap-1" : null,
  };
}

/** A proposal that was refused (never made), by `by`. */
function refused(i: number, by: Refusal): HistoryCall {
  return {
    ...call(i),
    tool: "erp.create_refund",
    outcome: "refused",
    result: null,
    allowed_by: null,
    allowed_ref: null,
    approved_by: null,
    refused_by: by,
    rule: by === "check" ? null : by === "policy" ? "no goodwill refunds" : "refunds need a controller",
    rejected_by: by === "person" ? "carol" : null,
    error: {
      policy: "refused by policy rule “no goodwill refunds”: goodwill refunds go through the account team",
      person: "refused: carol rejected this call: wrong order",
      expiry: "refused: the approval expired before anyone decided, so the call was not made",
      cancel: "refused: dana cancelled the task while this call waited for approval",
      check: "refused: `erp.delete_everything` is not a tool this step may use",
    }[by],
  };
}

/** A backend holding `total` calls: pages below the newest by position, and counts. */
function history(total: number, extra: Record<string, (args: Record<string, unknown>) => unknown> = {}) {
  return backend({
    list_history: (args) => {
      const below = args.below as HistoryCursor | null;
      const skip = args.skip as number;
      const limit = args.limit as number;
      const start = below === null ? skip : Number(below.id.slice(5)) + 1 + skip;
      const rows = [];
      for (let i = start; i < Math.min(total, start + limit); i += 1) rows.push(call(i));
      return rows;
    },
    count_history: () => total,
    history_choices: () => ({
      servers: ["erp"],
      tools: ["erp.create_refund", "erp.get_invoice"],
      workflows: ["hr-onboarding", "support-refund"],
      approvers: ["carol"],
      rejecters: ["dana"],
    }),
    ...extra,
  });
}

const noop = () => undefined;

describe("History", () => {
  it("lists calls newest first with what let them through, and opens one in its task", async () => {
    history(3);
    const open = vi.fn();
    render(<History onOpenCall={open} />);
    const approved = await screen.findByRole("row", { name: /^erp.create_refund Succeeded in task 00000000/ });
    expect(within(approved).getByText("Approved by carol")).toBeInTheDocument();
    expect(within(approved).getByText("support-refund")).toBeInTheDocument();
    const failed = screen.getByRole("row", { name: /^erp.get_invoice Failed/ });
    expect(within(failed).getByText("erp: card declined")).toBeInTheDocument();
    expect(within(failed).getByText("Rule “reads are allowed”")).toBeInTheDocument();
    expect(screen.getByText("3 calls")).toBeInTheDocument();
    await userEvent.click(failed);
    expect(open).toHaveBeenCalledWith(call(1).task_id, "call-1");
  });

  it("asks for the filter's suggestions only once the first page is in", async () => {
    let answer: (rows: HistoryCall[]) => void = () => undefined;
    const firstPage = new Promise<HistoryCall[]>((resolve) => {
      answer = resolve;
    });
    const calls = history(3, { list_history: () => firstPage });
    render(<History onOpenCall={noop} />);
    await waitFor(() => {
      expect(calls.map((c) => c.cmd)).toContain("list_history");
    });
    expect(calls.map((c) => c.cmd)).not.toContain("history_choices");
    answer([call(0), call(1), call(2)]);
    await screen.findByRole("row", { name: /^erp.create_refund Succeeded in task 00000000/ });
    await waitFor(() => {
      expect(document.querySelector('#history-tool option[value="erp.get_invoice"]')).not.toBeNull();
    });
    expect(calls.filter((c) => c.cmd === "history_choices")).toHaveLength(1);
  });

  it("shows refused calls as never made, with what refused them and why", async () => {
    backend({
      list_history: () => [
        refused(0, "person"),
        refused(1, "policy"),
        refused(2, "expiry"),
        refused(3, "check"),
        call(4),
        refused(5, "cancel"),
      ],
      count_history: () => 6,
      history_choices: () => ({ servers: [], tools: [], workflows: [], approvers: [], rejecters: [] }),
    });
    render(<History onOpenCall={noop} />);
    const rejected = await screen.findByRole("row", { name: /^erp.create_refund Refused in task 00000000/ });
    expect(rejected).toHaveClass("refused");
    expect(within(rejected).getByText("Refused")).toHaveClass("pill-stopped");
    expect(within(rejected).getByText("Rejected by carol (rule “refunds need a controller”)")).toBeInTheDocument();
    expect(within(rejected).getByText("refused: carol rejected this call: wrong order")).toBeInTheDocument();
    const denied = screen.getByRole("row", { name: /Refused in task 00000001/ });
    expect(within(denied).getByText("Denied by rule “no goodwill refunds”")).toBeInTheDocument();
    expect(within(denied).getByText(/goodwill refunds go through the account team/)).toBeInTheDocument();
    const expired = screen.getByRole("row", { name: /Refused in task 00000002/ });
    expect(within(expired).getByText("Approval expired (rule “refunds need a controller”)")).toBeInTheDocument();
    const stopped = screen.getByRole("row", { name: /Refused in task 00000003/ });
    expect(within(stopped).getByText("Stopped by the checks")).toBeInTheDocument();
    // A cancel withdraws the approval: nobody's rejection.
    const withdrawn = screen.getByRole("row", { name: /Refused in task 00000005/ });
    expect(within(withdrawn).getByText("Withdrawn: task cancelled (rule “refunds need a controller”)")).toBeInTheDocument();
    expect(within(withdrawn).queryByText(/Rejected by/)).toBeNull();
    // A call that was made looks as it did: a filled pill, what let it through.
    const made = screen.getByRole("row", { name: /Succeeded in task 00000004/ });
    expect(made).not.toHaveClass("refused");
    expect(within(made).getByText("Succeeded")).toHaveClass("pill-good");
  });

  it("filters by what refused a call, and by the refused outcome", async () => {
    const calls = history(0);
    render(<History onOpenCall={noop} />);
    await screen.findByText("No tool calls yet");
    await userEvent.selectOptions(screen.getByRole("combobox", { name: /^Decision/ }), "refused:person");
    await waitFor(() => {
      const filter = calls.filter((c) => c.cmd === "list_history").at(-1)?.args.filter as Record<string, unknown>;
      expect(filter.refused_by).toBe("person");
      expect(filter.allowed_by).toBeNull();
    });
    await userEvent.selectOptions(screen.getByRole("combobox", { name: /^Outcome/ }), "refused");
    await waitFor(() => {
      const filter = calls.filter((c) => c.cmd === "list_history").at(-1)?.args.filter as Record<string, unknown>;
      expect(filter.outcome).toBe("refused");
      expect(filter.refused_by).toBe("person");
    });
  });

  it("tells a new user where calls come from", async () => {
    history(0);
    render(<History onOpenCall={noop} />);
    expect(await screen.findByText("No tool calls yet")).toBeInTheDocument();
    expect(screen.getByText("airlock run <workflow>")).toBeInTheDocument();
  });

  it("sends each filter and says when nothing matches", async () => {
    const calls = history(0);
    render(<History onOpenCall={noop} />);
    await screen.findByText("No tool calls yet");
    await userEvent.selectOptions(screen.getByRole("combobox", { name: /^Outcome/ }), "failed");
    await userEvent.selectOptions(screen.getByRole("combobox", { name: /^Decision/ }), "allowed:approval");
    fireEvent.change(screen.getByPlaceholderText("Words in the tool, arguments or error"), {
      target: { value: " SO-42 " },
    });
    fireEvent.change(screen.getByRole("combobox", { name: /^Approved by/ }), { target: { value: "carol" } });
    fireEvent.change(screen.getByRole("combobox", { name: /^Rejected by/ }), { target: { value: "dana" } });
    fireEvent.change(screen.getByLabelText("From day (UTC)"), { target: { value: "2026-06-01" } });
    fireEvent.change(screen.getByLabelText("To day (UTC), included"), { target: { value: "2026-06-12" } });
    await waitFor(() => {
      expect(calls.filter((c) => c.cmd === "list_history").at(-1)?.args.filter).toEqual({
        server: null,
        tool: null,
        outcome: "failed",
        allowed_by: "approval",
        refused_by: null,
        task: null,
        workflow: null,
        since: Date.UTC(2026, 5, 1),
        until: Date.UTC(2026, 5, 13),
        approved_by: "carol",
        rejected_by: "dana",
        text: "SO-42",
      });
    });
    expect(await screen.findByText("No calls match")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "clear them all" }));
    expect(await screen.findByText("No tool calls yet")).toBeInTheDocument();
  });

  it("says in words why the history cannot be read", async () => {
    history(0, {
      list_history: () => {
        throw new Error("The database is locked by another program.");
      },
    });
    render(<History onOpenCall={noop} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Airlock could not read the call history.");
    expect(alert).toHaveTextContent("The database is locked by another program.");
  });

  it("draws only the rows in view and asks for a far page when it is scrolled to", async () => {
    const calls = history(100_000);
    render(<History onOpenCall={noop} />);
    await screen.findByRole("row", { name: /^erp.create_refund Succeeded in task 00000000/ });
    expect(screen.getByText("100,000 calls")).toBeInTheDocument();
    // A window of rows, not 100,000 of them.
    expect(screen.getAllByRole("row").length).toBeLessThan(60);
    expect(calls.filter((c) => c.cmd === "list_history")).toHaveLength(1);

    const viewport = screen.getByTestId("history-viewport");
    viewport.scrollTop = 50_000 * ROW_HEIGHT;
    fireEvent.scroll(viewport);
    const far = await screen.findByRole("row", { name: /in task 00050000/ });
    expect(far).toHaveAttribute("aria-rowindex", String(50_000 + 2));
    const pages = calls.filter((c) => c.cmd === "list_history").slice(1);
    // Below the newest call, by position: row n is n - 1 rows below it.
    expect(pages.map((p) => p.args.skip)).toContain(500 * PAGE - 1);
    expect(pages.every((p) => (p.args.below as HistoryCursor).id === "call-0")).toBe(true);
    expect(pages.length).toBeLessThanOrEqual(2);
  });

  it("shows new calls as tasks make them", async () => {
    let total = 2;
    const newest = (): HistoryCall => ({ ...call(0), id: "call-new", tool: "crm.find_customer", allowed_by: "grant", allowed_ref: "g-1234567890" });
    backend({
      list_history: () => (total === 2 ? [call(0), call(1)] : [newest(), call(0), call(1)]),
      count_history: () => total,
      history_choices: () => ({ servers: [], tools: [], workflows: [], approvers: [], rejecters: [] }),
    });
    render(<History onOpenCall={noop} />);
    await screen.findByText("2 calls");
    total = 3;
    await emit("task-changed", { task_id: call(0).task_id, status: "running", seq: 9 });
    const row = await screen.findByRole("row", { name: /^crm.find_customer/ });
    expect(within(row).getByText("Grant g-123456")).toBeInTheDocument();
    expect(screen.getByText("3 calls")).toBeInTheDocument();
  });

  it("exports what the filter matches and says where the file is", async () => {
    const calls = history(3, {
      export_history: () => ({ path: "/home/ada/Downloads/airlock-history-20260612-093000.csv", rows: 3 }),
    });
    render(<History onOpenCall={noop} />);
    await screen.findByText("3 calls");
    await userEvent.click(screen.getByRole("button", { name: "Export CSV" }));
    const done = await screen.findByRole("status");
    expect(done).toHaveTextContent("Saved 3 calls to /home/ada/Downloads/airlock-history-20260612-093000.csv");
    expect(within(done).getByRole("button", { name: "Copy path" })).toBeInTheDocument();
    expect(calls.find((c) => c.cmd === "export_history")?.args).toEqual({ filter: toQuery({
      server: "", tool: "", outcome: "", decision: "", task: "", workflow: "", approved_by: "", rejected_by: "", text: "", since: "", until: "",
    }) });
  });
});
