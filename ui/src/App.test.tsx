import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { emit } from "@tauri-apps/api/event";
import { act } from "react";
import { describe, expect, it } from "vitest";
import { App } from "./App";
import { OPEN_INBOX } from "./api";
import type { OpenInbox } from "./bindings/OpenInbox";
import { backend, heldRefund, me, refundApproval } from "./test/fixtures";

describe("App", () => {
  it("opens the inbox on the approval a notification's Reject asked for", async () => {
    backend({
      app_info: () => ({
        version: "0.1.0",
        database_path: "/tmp/airlock.sqlite",
        workspace_path: "/work/demo",
        data_dir: "/tmp",
      }),
      list_approvals: () => ({ acting_as: me, approvals: [refundApproval, heldRefund], in_doubt: [] }),
      list_tasks: () => [],
    });
    render(<App />);
    await userEvent.click(await screen.findByRole("button", { name: "Tasks" }));
    expect(await screen.findByRole("heading", { name: "Tasks" })).toBeInTheDocument();

    const open: OpenInbox = { approval_id: heldRefund.id, call_id: null, reject: true };
    await act(async () => {
      await emit(OPEN_INBOX, open);
    });
    expect(await screen.findByRole("heading", { name: "Approvals" })).toBeInTheDocument();
    expect(await screen.findByLabelText("Why are you rejecting this?")).toHaveFocus();
  });
});
