import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { emit } from "@tauri-apps/api/event";
import { describe, expect, it, vi } from "vitest";
import type { TaskRow } from "../bindings/TaskRow";
import { NOW, backend, refundTask } from "../test/fixtures";
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
