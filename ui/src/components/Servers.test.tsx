import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { backend } from "../test/fixtures";
import { Servers } from "./Servers";

describe("Servers", () => {
  it("shows each server's status and tool count, and why one failed", async () => {
    backend({
      list_servers: () => ({
        servers_file: "/work/airlock/workspace/demo/servers.json",
        servers: [
          { name: "support", health: "ready", tools: ["get_order", "issue_refund"], error: null },
          { name: "hr", health: "failed", tools: [], error: "command `airlock-demo-hr` was not found" },
        ],
      }),
    });
    render(<Servers />);
    expect(await screen.findByText("support")).toBeInTheDocument();
    expect(screen.getByText("Ready")).toBeInTheDocument();
    expect(screen.getByText("2")).toBeInTheDocument();
    expect(screen.getByText("get_order, issue_refund")).toBeInTheDocument();
    expect(screen.getByText("Failed")).toBeInTheDocument();
    expect(screen.getByText("command `airlock-demo-hr` was not found")).toBeInTheDocument();
  });

  it("explains how to add servers when there are none", async () => {
    backend({ list_servers: () => ({ servers_file: null, servers: [] }) });
    render(<Servers />);
    expect(await screen.findByText("No MCP servers")).toBeInTheDocument();
  });
});
