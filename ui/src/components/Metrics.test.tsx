import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { FigureSet } from "../bindings/FigureSet";
import type { MetricsView } from "../bindings/MetricsView";
import { NOW, backend } from "../test/fixtures";
import { Metrics, span } from "./Metrics";

const DAY = 86_400_000;
const today = Math.floor(NOW / DAY) * DAY;

const empty: FigureSet = {
  tasks: 0,
  succeeded: 0,
  failed: 0,
  cancelled: 0,
  open: 0,
  completion_rate: null,
  exceptions: 0,
  exception_rate: null,
  tool_calls: 0,
  duplicate_actions: 0,
  approvals_requested: 0,
  approved: 0,
  rejected: 0,
  expired: 0,
  overridden: 0,
  approval_rate: null,
  rejection_rate: null,
  override_rate: null,
  time_to_decision_p50_ms: null,
  time_to_decision_p90_ms: null,
  checks_run: 0,
  checks_passed: 0,
  check_pass_rate: null,
  corrections: 0,
  ratings: 0,
  satisfaction: null,
  tokens: 0,
  model_turns: 0,
  wall_time_p50_ms: null,
  wall_time_p90_ms: null,
};

const busy: FigureSet = {
  ...empty,
  tasks: 4,
  succeeded: 2,
  failed: 1,
  open: 1,
  completion_rate: 2 / 3,
  exceptions: 1,
  exception_rate: 0.25,
  tool_calls: 9,
  approvals_requested: 4,
  approved: 3,
  rejected: 1,
  overridden: 1,
  approval_rate: 0.75,
  rejection_rate: 0.25,
  override_rate: 1 / 3,
  time_to_decision_p50_ms: 4 * 60_000,
  time_to_decision_p90_ms: 2 * 3_600_000,
  checks_run: 2,
  checks_passed: 1,
  check_pass_rate: 0.5,
  corrections: 2,
  ratings: 2,
  satisfaction: 4.5,
  tokens: 12_000,
  model_turns: 3,
  wall_time_p50_ms: 90_000,
  wall_time_p90_ms: 600_000,
};

function view(total: FigureSet): MetricsView {
  return {
    workflow: null,
    since: today - 13 * DAY,
    until: today + DAY,
    bucket: "day",
    total,
    workflows: total.tasks === 0 ? [] : [{ workflow: "support-refund", figures: total }],
    buckets: Array.from({ length: 14 }, (_, i) => ({
      start: today - (13 - i) * DAY,
      figures: i === 13 ? total : empty,
    })),
  };
}

describe("Metrics", () => {
  it("says each figure in words and draws it by day", async () => {
    backend({ metrics: () => view(busy) });
    render(<Metrics />);
    expect(await screen.findByText(/4 tasks started: 2 succeeded, 1 failed, 0 cancelled, 1 still running/)).toBeInTheDocument();
    const completion = screen.getByRole("region", { name: "Completion rate" });
    expect(within(completion).getByText("67%")).toBeInTheDocument();
    expect(within(completion).getByText("2 tasks of 3 ended succeeded.")).toBeInTheDocument();
    const chart = within(completion).getByRole("img");
    expect(chart.getAttribute("aria-label")).toMatch(/^Completion rate by day: .*nothing; .*: 67%$/);
    expect(chart.querySelectorAll("rect.bar")).toHaveLength(1);
    expect(chart.querySelectorAll("rect.none")).toHaveLength(13);
    const duplicates = screen.getByRole("region", { name: "Duplicate actions" });
    expect(within(duplicates).getByText("None in 9 tool calls, as it should be.")).toBeInTheDocument();
    const approval = screen.getByRole("region", { name: "Time to approval" });
    expect(within(approval).getByText("4 min")).toBeInTheDocument();
    expect(within(approval).getByText(/within 2 h\./)).toBeInTheDocument();
    expect(screen.getByRole("region", { name: "Satisfaction" })).toHaveTextContent("4.5 / 5");
    const row = screen.getByRole("row", { name: "support-refund" });
    expect(row).toHaveTextContent("75%");
    expect(screen.getByRole("img", { name: /^Tasks by day: .*4 tasks \(2 succeeded, 1 failed, 1 open\)$/ })).toBeInTheDocument();
  });

  it("asks again for one workflow and a period by week", async () => {
    const calls = backend({ metrics: () => view(busy) });
    render(<Metrics />);
    await screen.findByRole("row", { name: "support-refund" });
    expect(calls[0]?.args).toEqual({ workflow: null, bucket: "day", count: 14 });
    await userEvent.selectOptions(screen.getByRole("combobox", { name: "Workflow" }), "support-refund");
    await userEvent.selectOptions(screen.getByRole("combobox", { name: "Period" }), "Last 12 weeks, by week");
    await waitFor(() => {
      expect(calls.at(-1)?.args).toEqual({ workflow: "support-refund", bucket: "week", count: 12 });
    });
  });

  it("flags duplicate actions", async () => {
    backend({ metrics: () => view({ ...busy, duplicate_actions: 2 }) });
    render(<Metrics />);
    const duplicates = await screen.findByRole("region", { name: "Duplicate actions" });
    expect(within(duplicates).getByText("2")).toHaveClass("bad-text");
  });

  it("says how to get figures when the period has no tasks", async () => {
    backend({ metrics: () => view(empty) });
    render(<Metrics />);
    expect(await screen.findByText("No tasks in this period")).toBeInTheDocument();
  });
});

describe("span", () => {
  it("says durations in words", () => {
    expect(span(null)).toBe("–");
    expect(span(850)).toBe("850 ms");
    expect(span(12_000)).toBe("12 s");
    expect(span(125 * 60_000)).toBe("2 h 5 min");
    expect(span(3 * 86_400_000)).toBe("3 days");
  });
});
