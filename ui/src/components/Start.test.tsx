import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { backend, workflows } from "../test/fixtures";
import { Start, parseField } from "./Start";

describe("Start", () => {
  it("builds the form from the input types, with defaults and required marks", async () => {
    backend({ list_workflows: () => workflows });
    render(<Start onStarted={vi.fn()} />);

    const order = await screen.findByLabelText(/order_id/);
    expect(order).toHaveValue("");
    expect(screen.getByText("The order")).toBeInTheDocument();
    expect(screen.getAllByLabelText("required")).toHaveLength(2);
    expect(screen.getByLabelText(/reason/)).toHaveValue("customer request");
    expect(screen.getByLabelText(/notify/)).toBeChecked();
    expect(screen.getByText(/`start` names state `nowhere`/)).toBeInTheDocument();
    expect(screen.getByText("/work/airlock/workspace/demo/broken.toml:3:9")).toBeInTheDocument();
  });

  it("starts the task with typed inputs and opens it", async () => {
    const calls = backend({
      list_workflows: () => workflows,
      start_task: () => ({ task_id: "t-42" }),
    });
    const onStarted = vi.fn();
    render(<Start onStarted={onStarted} />);

    await userEvent.type(await screen.findByLabelText(/order_id/), "ORD-5002");
    await userEvent.type(screen.getByLabelText(/amount_cents/), "6000");
    await userEvent.click(screen.getByRole("button", { name: "Start" }));

    await vi.waitFor(() => {
      expect(onStarted).toHaveBeenCalledWith("t-42");
    });
    expect(calls.find((c) => c.cmd === "start_task")?.args).toEqual({
      workflow: "support-refund",
      inputs: { order_id: "ORD-5002", amount_cents: 6000, reason: "customer request", notify: true },
    });
  });

  it("names missing and mistyped inputs before asking the engine, and shows its refusal", async () => {
    const calls = backend({
      list_workflows: () => workflows,
      start_task: () => {
        throw new Error("The inputs do not fit workflow `support-refund`.");
      },
    });
    render(<Start onStarted={vi.fn()} />);

    await userEvent.type(await screen.findByLabelText(/amount_cents/), "60.5");
    await userEvent.click(screen.getByRole("button", { name: "Start" }));
    const alert = screen.getByRole("alert");
    expect(alert).toHaveTextContent("order_id is required.");
    expect(alert).toHaveTextContent("amount_cents must be a whole number.");
    expect(calls.some((c) => c.cmd === "start_task")).toBe(false);

    await userEvent.type(screen.getByLabelText(/order_id/), "ORD-1");
    await userEvent.clear(screen.getByLabelText(/amount_cents/));
    await userEvent.type(screen.getByLabelText(/amount_cents/), "60");
    await userEvent.click(screen.getByRole("button", { name: "Start" }));
    expect(await screen.findByText("The task was not started.")).toBeInTheDocument();
    expect(screen.getByText("The inputs do not fit workflow `support-refund`.")).toBeInTheDocument();
  });

  it("explains an empty workspace", async () => {
    backend({ list_workflows: () => ({ workspace_path: null, workflows: [], problems: [] }) });
    render(<Start onStarted={vi.fn()} />);
    expect(await screen.findByText("No workflows to start")).toBeInTheDocument();
    expect(screen.getByText(/started without a workspace/)).toBeInTheDocument();
  });

  it("reads JSON inputs by their type", () => {
    const tags = { name: "tags", type: "array", required: false, default: null, description: null } as const;
    expect(parseField(tags, '["a"]')).toEqual({ ok: true, value: ["a"] });
    expect(parseField(tags, '{"a":1}')).toEqual({ ok: false, problem: "tags must be a JSON array ([…])." });
    expect(parseField(tags, "{")).toEqual({ ok: false, problem: "tags must be written as JSON." });
    expect(parseField(tags, "")).toEqual({ ok: true, value: undefined });
  });
});
