import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { GrantRow } from "../bindings/GrantRow";
import { NOW, backend, commandError, demoPolicy, me, refundGrant } from "../test/fixtures";
import { Policy } from "./Policy";

const ended: GrantRow = {
  ...refundGrant,
  id: "g-0",
  tool: "crm.update_account",
  workflow: null,
  task_id: "3f1c2a9e-0000-4000-8000-000000000001",
  condition: null,
  state: "revoked",
  revoked_at: NOW - 60 * 60_000,
  revoked_by: "sam",
};

describe("Policy", () => {
  it("describes the policy in force and each rule in words", async () => {
    backend({
      policy_info: () => demoPolicy,
      list_grants: () => [],
      app_info: () => ({
        version: "0.1.0",
        database_path: "/data/airlock.sqlite",
        workspace_path: "/work/airlock/workspace/demo/",
        data_dir: "/data",
      }),
    });
    render(<Policy now={NOW} />);
    await screen.findByRole("heading", { name: "Rules" });
    // The file as the workspace's user knows it; its whole path on hover.
    await waitFor(() => {
      expect(screen.getByText(/^In force:/)).toHaveTextContent(
        "In force: version demo-1 a1b2c3d4e5f6 of policy.toml, 3 rules.",
      );
    });
    expect(screen.getByText("policy.toml")).toHaveAttribute("title", "/work/airlock/workspace/demo/policy.toml");

    // Grouped by what they do, what waits for a person first; each keeps its line.
    expect(
      screen
        .getAllByRole("region")
        .filter((region) => region.classList.contains("rule-group"))
        .map((group) => group.getAttribute("aria-label")),
    ).toEqual(["Wait for a person", "Refused", "Run without asking"]);
    const waiting = screen.getByRole("region", { name: "Wait for a person" });
    expect(within(waiting).getByRole("heading")).toHaveTextContent("Wait for a person 1 rule");
    expect(within(waiting).getByText("Wait for a person")).toHaveClass("pill-attention");
    const refunds = within(waiting).getByRole("listitem", { name: "refunds above $200.00 need a finance lead" });
    expect(refunds).toHaveTextContent("line 42");
    expect(refunds).toHaveTextContent(
      "Calls to support.issue_refund when args.amount_cents > 20000 waits for 1 approval from finance-lead; expires after 1d; after 4h controller may decide too.",
    );
    const refused = screen.getByRole("region", { name: "Refused" });
    expect(within(refused).getByRole("listitem", { name: "nothing closes tickets on its own" })).toHaveTextContent(
      "Calls to support.close_ticket in support-* is refused: closing a ticket is a person's call in this workspace.",
    );
    const free = screen.getByRole("region", { name: "Run without asking" });
    expect(within(free).getByText("Run without asking")).toHaveClass("pill-good");
    expect(within(free).getByRole("listitem", { name: "reads are free" })).toHaveTextContent(
      "Any call of low risk runs without asking.",
    );
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("explains a refused edit of the policy file, with where each problem is", async () => {
    backend({
      policy_info: () => ({
        ...demoPolicy,
        problems: [
          {
            file: "/work/airlock/workspace/demo/policy.toml",
            line: 10,
            column: 10,
            code: "bad-value",
            message: "`effect` must be allow, require_approval or deny, not `permit`",
          },
        ],
      }),
      list_grants: () => [],
    });
    render(<Policy now={NOW} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The policy file was changed, but the change was refused.");
    expect(alert).toHaveTextContent("The version below stays in force until the file validates again.");
    expect(alert).toHaveTextContent(
      "policy.toml:10:10 `effect` must be allow, require_approval or deny, not `permit`",
    );
    // The rules in force are still shown.
    expect(screen.getByRole("region", { name: "Wait for a person" })).toBeInTheDocument();
  });

  it("says what to do when there is no policy file", async () => {
    backend({
      policy_info: () => ({
        ...demoPolicy,
        file: null,
        version: "none",
        label: null,
        rules: [],
        looked_for: ["/w/policy.toml", "/data/policy.toml"],
      }),
      list_grants: () => [],
    });
    render(<Policy now={NOW} />);
    expect(
      await screen.findByRole("heading", { name: "No policy file: every tool call is refused" }),
    ).toBeInTheDocument();
    expect(screen.queryByRole("heading", { name: "Rules" })).toBeNull();
    expect(screen.getByText("/w/policy.toml")).toBeInTheDocument();
    expect(screen.getByText("/data/policy.toml")).toBeInTheDocument();
  });

  it("lists grants with scope, use count and expiry, and revokes one with a click", async () => {
    let grants = [refundGrant, ended];
    const calls = backend({
      policy_info: () => demoPolicy,
      list_grants: () => grants,
      revoke_grant: (args) => {
        grants = grants.map((g) =>
          g.id === args.id ? { ...g, state: "revoked", revoked_at: NOW, revoked_by: "carol" } : g,
        );
        return grants[0];
      },
    });
    render(<Policy now={NOW} />);
    const row = await screen.findByRole("row", {
      name: "support.issue_refund in support-refund tasks, while args.amount_cents <= 25000",
    });
    expect(within(row).getAllByRole("cell").map((c) => c.textContent)).toEqual([
      "support.issue_refundin support-refund tasks, while args.amount_cents <= 25000",
      "2 of 5",
      "40 min left",
      "carol20 min ago, with an approval",
      "Revoke",
    ]);
    // Ended grants are history, shown on request.
    expect(screen.queryByText(/crm.update_account/)).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Show 1 ended" }));
    const old = screen.getByRole("row", { name: "crm.update_account in task 3f1c2a9e" });
    expect(old).toHaveTextContent("revoked 1 h ago by sam");
    expect(within(old).getByText("Revoked")).toHaveClass("pill");

    await userEvent.click(
      within(row).getByRole("button", {
        name: "Revoke support.issue_refund in support-refund tasks, while args.amount_cents <= 25000",
      }),
    );
    expect(calls.find((c) => c.cmd === "revoke_grant")?.args).toEqual({ id: "g-1" });
    expect(
      await screen.findByRole("button", { name: "Hide ended grants" }),
    ).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /^Revoke / })).toBeNull();
  });

  it("says when a grant could not be revoked, and when there are none", async () => {
    backend({
      policy_info: () => demoPolicy,
      list_grants: () => [refundGrant],
      revoke_grant: () => {
        throw commandError("not_found", "No grant `g-1` that is still in force.");
      },
    });
    render(<Policy now={NOW} />);
    await userEvent.click(await screen.findByRole("button", { name: /^Revoke / }));
    expect(await screen.findByText("Not revoked: No grant `g-1` that is still in force.")).toBeInTheDocument();
  });

  it("shows an empty grants list and the people, with who this app decides as", async () => {
    backend({ policy_info: () => demoPolicy, list_grants: () => [] });
    render(<Policy now={NOW} />);
    expect(await screen.findByText(/No grant is in force/)).toBeInTheDocument();
    expect(screen.getByText(/You decide as/)).toHaveTextContent(
      `You decide as ${me.name}, who is not listed, so has the default roles: controller, finance-lead.`,
    );
    expect(screen.getByRole("row", { name: "sam Sam Okafor (controller) controller" })).toBeInTheDocument();
    expect(screen.getByRole("row", { name: "Anyone else operator, controller" })).toBeInTheDocument();
  });

  it("says when anyone may decide", async () => {
    backend({
      policy_info: () => ({ ...demoPolicy, approver_roles_checked: false, identities_file: null, people: [] }),
      list_grants: () => [],
    });
    render(<Policy now={NOW} />);
    expect(await screen.findByText(/so anyone may decide an approval/)).toBeInTheDocument();
  });
});
