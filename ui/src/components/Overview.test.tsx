import { render, screen } from "@testing-library/react";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import type { AppInfo } from "../bindings/AppInfo";
import type { CommandError } from "../bindings/CommandError";
import { Overview } from "./Overview";

const info: AppInfo = {
  version: "0.1.0",
  database_path: "/home/ada/.local/share/airlock/airlock.sqlite",
  workspace_path: "/work/airlock/workspace/demo",
  data_dir: "/home/ada/.local/share/airlock",
};

describe("Overview", () => {
  it("shows where the app keeps its data, and how to start a task", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "app_info") return info;
      throw new Error(`unexpected command ${cmd}`);
    });

    render(<Overview />);

    expect(await screen.findByText(info.database_path)).toBeInTheDocument();
    expect(screen.getByText(info.data_dir)).toBeInTheDocument();
    expect(screen.getByText("/work/airlock/workspace/demo")).toBeInTheDocument();
    expect(screen.getByText("0.1.0")).toBeInTheDocument();
    expect(screen.getByText(/^airlock --db/)).toHaveTextContent(
      "airlock --db /home/ada/.local/share/airlock/airlock.sqlite \\ " +
        "--workspace /work/airlock/workspace/demo \\ run <workflow>",
    );
    expect(calls).toEqual(["app_info"]);
  });

  it("gives a command that works as pasted, paths with spaces or quotes quoted", async () => {
    mockIPC(() => ({
      ...info,
      database_path: "/Users/Ada Lovelace/Library/Application Support/airlock/airlock.sqlite",
      workspace_path: null,
    }));

    render(<Overview />);

    const command = await screen.findByText(/^airlock --db/);
    expect(command.textContent).toBe(
      "airlock --db '/Users/Ada Lovelace/Library/Application Support/airlock/airlock.sqlite' \\\n" +
        "  run <workflow>",
    );
    expect(screen.getByText(/a workflow file/)).toHaveTextContent("workspace/examples");
  });

  it("quotes a quote in a path the way the shell reads it back", async () => {
    mockIPC(() => ({ ...info, database_path: "/data/it's/airlock.sqlite", workspace_path: null }));

    render(<Overview />);

    expect((await screen.findByText(/^airlock --db/)).textContent).toBe(
      "airlock --db '/data/it'\\''s/airlock.sqlite' \\\n  run <workflow>",
    );
  });

  it("says when no workspace is set", async () => {
    mockIPC(() => ({ ...info, workspace_path: null }));

    render(<Overview />);

    expect(await screen.findByText(/Set/)).toHaveTextContent(
      "None. Set AIRLOCK_WORKSPACE to a folder of workflows and policies.",
    );
  });

  it("shows the command's error in words", async () => {
    const error: CommandError = {
      code: "not_configured",
      message: "this system reports no user data directory; set AIRLOCK_DB to a file path",
    };
    // Tauri rejects with the command's serialized error object, not an `Error`.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    mockIPC(() => Promise.reject(error));

    render(<Overview />);

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Airlock could not read its settings.");
    expect(alert).toHaveTextContent(error.message);
  });

  it("never shows a blank error when the rejection carries no message", async () => {
    mockIPC(() => Promise.reject(new Error("")));

    render(<Overview />);

    expect(await screen.findByRole("alert")).toHaveTextContent(
      /did not answer and gave no reason/,
    );
  });

  it("explains when the page runs outside the desktop app", async () => {
    render(<Overview />);

    expect(await screen.findByRole("alert")).toHaveTextContent(/open in a plain browser/);
  });
});
