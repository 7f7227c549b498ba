import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { emit } from "@tauri-apps/api/event";
import { describe, expect, it, vi } from "vitest";
import type { TaskRow } from "../bindings/TaskRow";
import { NOW, backend, commandError, refundTask } from "../test/fixtures";
import { Tasks } from "./Tasks";

describe("Tasks", () => {
  it("lists tasks with status, state, requester and age; a click opens one", async () => {
    backend({ list_tasks: () => [refundTask] });
    const onOpen = vi.fn();
    render(<Tasks now={NOW} onOpen={onOpen} onStart={vi.fn()} />);

    const row = (await screen.findByText("support-refund")).closest("tr");
    if (row === null) throw new Error("no row");
    expect(within(row).getByText("Waiting for approval")).toBeInTheDocument();
    expect(within(row).getByText("controller_approval")).toBeInTheDocument();
    expect(within(row).getByText("ada")).toBeInTheDocument();
    expect(within(row).getByText("4 min ago")).toBeInTheDocument();

    await userEvent.click(row);
    expect(onOpen).toHaveBeenCalledWith(refundTask.id);
  });

  it("asks again with the status filter, and again when a task changes", async () => {
    let tasks: TaskRow[] = [];
    const calls = backend({ list_tasks: () => tasks });
    render(<Tasks now={NOW} onOpen={vi.fn()} onStart={vi.fn()} />);
    expect(await screen.findByText("No tasks yet")).toBeInTheDocument();

    tasks = [{ ...refundTask, status: "succeeded" }];
    await emit("task-changed", { task_id: refundTask.id, status: "succeeded", seq: 9 });
    expect(await screen.findByText("Succeeded")).toBeInTheDocument();

    tasks = [];
    await userEvent.selectOptions(screen.getByLabelText("Show"), "failed");
    expect(await screen.findByText("No tasks are failed")).toBeInTheDocument();
    expect(calls.filter((c) => c.cmd === "list_tasks").map((c) => c.args.status)).toEqual([
      null,
      null,
      "failed",
    ]);
  });

  it("cancels a task from its row with a reason, and says what happened", async () => {
    let tasks: TaskRow[] = [refundTask, { ...refundTask, id: "done-1", status: "succeeded" }];
    const calls = backend({
      list_tasks: () => tasks,
      cancel_task: (args) => {
        tasks = tasks.map((t) => (t.id === args.id ? { ...t, status: "cancelled" } : t));
        return { outcome: "cancelled", task: { ...refundTask, status: "cancelled" } };
      },
    });
    const onOpen = vi.fn();
    render(<Tasks now={NOW} onOpen={onOpen} onStart={vi.fn()} />);
    await screen.findAllByText("support-refund");
    // An ended task has nothing to cancel.
    expect(screen.getAllByRole("button", { name: /^Cancel task/ })).toHaveLength(1);

    await userEvent.click(screen.getByRole("button", { name: "Cancel task 3f1c2a9e…" }));
    expect(onOpen).not.toHaveBeenCalled();
    const form = screen.getByRole("form", { name: "Cancel task 3f1c2a9e" });
    expect(form).toHaveTextContent("Its pending approval is rejected with your reason");
    await userEvent.type(within(form).getByRole("textbox"), "  duplicate order ");
    await userEvent.click(within(form).getByRole("button", { name: "Cancel task" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Cancelled support-refund (task 3f1c2a9e).");
    expect(calls.filter((c) => c.cmd === "cancel_task").map((c) => c.args)).toEqual([
      { id: refundTask.id, reason: "duplicate order" },
    ]);
    expect(await screen.findAllByText("Cancelled")).not.toHaveLength(0);
    expect(screen.queryByRole("button", { name: /^Cancel task/ })).toBeNull();
  });

  it("says a running task was asked to stop, and a refusal in words", async () => {
    const running = { ...refundTask, status: "running" as const };
    let refuse = false;
    backend({
      list_tasks: () => [running],
      cancel_task: () => {
        if (refuse) throw commandError("conflict", "This task has already ended (it succeeded); there is nothing to cancel.");
        return { outcome: "requested", task: running };
      },
    });
    render(<Tasks now={NOW} onOpen={vi.fn()} onStart={vi.fn()} />);
    await userEvent.click(await screen.findByRole("button", { name: "Cancel task 3f1c2a9e…" }));
    await userEvent.click(screen.getByRole("button", { name: "Cancel task" }));
    expect(await screen.findByRole("status")).toHaveTextContent(
      "Asked support-refund (task 3f1c2a9e) to stop. It was running, so it stops at its next safe point",
    );

    refuse = true;
    await userEvent.click(screen.getByRole("button", { name: "Cancel task 3f1c2a9e…" }));
    await userEvent.click(screen.getByRole("button", { name: "Cancel task" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The task was not cancelled.");
    expect(alert).toHaveTextContent("This task has already ended (it succeeded)");
    await userEvent.click(screen.getByRole("button", { name: "Keep it" }));
    expect(screen.queryByRole("form")).toBeNull();
  });

  it("shows the backend's error in words", async () => {
    backend({
      list_tasks: () => {
        throw new Error("the database is locked");
      },
    });
    render(<Tasks now={NOW} onOpen={vi.fn()} onStart={vi.fn()} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Airlock could not list the tasks.");
    expect(alert).toHaveTextContent("the database is locked");
  });
});
