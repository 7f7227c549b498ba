import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { MemoryEntry } from "../bindings/MemoryEntry";
import { NOW, backend, commandError } from "../test/fixtures";
import { Memory, parseValue } from "./Memory";

const w4: MemoryEntry = {
  id: "m-1",
  subject: "EMP-6010",
  category: "document",
  key: "w4",
  value: { document_id: "DOC-1", kind: "w4", submitted_at: new Date(NOW - 3 * 60_000).toISOString() },
  text: "w4 handed in by EMP-6010",
  source_task: "3f1c2a9e-0000-4000-8000-000000000009",
  source_step: 4,
  source_person: null,
  created_at: NOW - 2 * 3_600_000,
  state: "live",
  superseded_by: null,
  deleted_at: null,
  deleted_by: null,
};

const contact: MemoryEntry = {
  ...w4,
  id: "m-2",
  subject: "CUST-1",
  category: "preference",
  key: "contact",
  value: "email",
  text: "CUST-1 prefers email",
  source_task: null,
  source_step: null,
  source_person: "carol",
};

const noop = () => undefined;

describe("Memory", () => {
  it("lists entries with their subject, value in words, source and time", async () => {
    backend({ list_memory: () => [w4, contact] });
    render(<Memory now={NOW} onOpenTask={noop} />);
    const row = await screen.findByRole("row", { name: "EMP-6010 document w4" });
    expect(within(row).getByText("w4 handed in by EMP-6010")).toBeInTheDocument();
    expect(within(row).getByText("document id")).toBeInTheDocument();
    expect(row).toHaveTextContent("document id DOC-1");
    // A moment in the value reads as the other times do: how long ago, in full on hover.
    const submitted = within(row).getByText("3 min ago");
    expect(submitted.closest("li")).toHaveTextContent("submitted at 3 min ago");
    expect(submitted).toHaveAttribute("title", expect.stringContaining("2026") as string);
    expect(submitted).toHaveAttribute("dateTime", new Date(NOW - 3 * 60_000).toISOString());
    expect(within(row).getByRole("button", { name: /^task 3f1c2a9e\s?, step 4$/ })).toBeInTheDocument();
    expect(within(row).getByText("2 h ago")).toBeInTheDocument();
    const other = screen.getByRole("row", { name: "CUST-1 preference contact" });
    expect(within(other).getByText("corrected by carol")).toBeInTheDocument();
    expect(within(other).getByText("email")).toBeInTheDocument();
  });

  it("tells a new user what writes memory", async () => {
    backend({ list_memory: () => [] });
    render(<Memory now={NOW} onOpenTask={noop} />);
    expect(await screen.findByText("Nothing remembered yet")).toBeInTheDocument();
    expect(screen.getByText("remember")).toBeInTheDocument();
  });

  it("searches, filters by subject and shows the history", async () => {
    const calls = backend({ list_memory: () => [] });
    render(<Memory now={NOW} onOpenTask={noop} />);
    await screen.findByText("Nothing remembered yet");
    fireEvent.change(screen.getByPlaceholderText("Words in the entries"), { target: { value: "w4" } });
    fireEvent.change(screen.getByPlaceholderText("Any"), { target: { value: "EMP-6010" } });
    await userEvent.click(screen.getByRole("checkbox", { name: /Show history/ }));
    await waitFor(() => {
      expect(calls.at(-1)?.args).toEqual({
        filter: { subject: "EMP-6010", search: "w4", with_history: true },
      });
    });
    expect(await screen.findByText("No entries match")).toBeInTheDocument();
  });

  it("shows a replaced and a forgotten entry without actions", async () => {
    backend({
      list_memory: () => [
        { ...contact, id: "m-3", state: "forgotten", value: null, deleted_at: NOW - 60_000, deleted_by: "sam" },
        { ...w4, state: "replaced", superseded_by: "m-9" },
      ],
    });
    render(<Memory now={NOW} onOpenTask={noop} />);
    const gone = await screen.findByRole("row", { name: "CUST-1 preference contact" });
    expect(gone).toHaveTextContent("forgotten by sam 1 min ago");
    expect(within(gone).queryByRole("button", { name: /^Forget / })).toBeNull();
    const replaced = screen.getByRole("row", { name: "EMP-6010 document w4" });
    expect(within(replaced).getByText("Replaced")).toBeInTheDocument();
    expect(within(replaced).queryByRole("button", { name: /^Correct / })).toBeNull();
  });

  it("corrects an entry after showing the old and the new value", async () => {
    const calls = backend({
      list_memory: () => [contact],
      correct_memory: () => ({ ...contact, id: "m-4", value: "phone" }),
    });
    render(<Memory now={NOW} onOpenTask={noop} />);
    const row = await screen.findByRole("row", { name: "CUST-1 preference contact" });
    await userEvent.click(within(row).getByRole("button", { name: /^Correct / }));
    const form = screen.getByRole("form", { name: "Correct CUST-1 contact" });
    const editor = within(form).getByRole("textbox", { name: /New value/ });
    expect(editor).toHaveValue('"email"');
    fireEvent.change(editor, { target: { value: '"phone"' } });
    await userEvent.click(within(form).getByRole("button", { name: "Review the change" }));
    const diff = within(form).getByRole("table");
    expect(within(diff).getByText("email")).toBeInTheDocument();
    expect(within(diff).getByText("phone")).toBeInTheDocument();
    expect(within(form).getByText(/preference contact: "phone"/)).toBeInTheDocument();
    expect(calls.some((c) => c.cmd === "correct_memory")).toBe(false);
    await userEvent.click(within(form).getByRole("button", { name: "Save correction" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Corrected CUST-1's contact");
    expect(calls.find((c) => c.cmd === "correct_memory")?.args).toEqual({
      id: "m-2",
      value: "phone",
      text: null,
    });
  });

  it("refuses broken JSON in words before anything is sent", async () => {
    const calls = backend({ list_memory: () => [w4] });
    render(<Memory now={NOW} onOpenTask={noop} />);
    await userEvent.click(await screen.findByRole("button", { name: /^Correct / }));
    const editor = screen.getByRole("textbox", { name: /New value/ });
    fireEvent.change(editor, { target: { value: '{"kind": ' } });
    await userEvent.click(screen.getByRole("button", { name: "Review the change" }));
    expect(screen.getByText(/not valid JSON/)).toBeInTheDocument();
    expect(calls.some((c) => c.cmd === "correct_memory")).toBe(false);
  });

  it("forgets an entry only once confirmed", async () => {
    const calls = backend({ list_memory: () => [w4], forget_memory: () => null });
    render(<Memory now={NOW} onOpenTask={noop} />);
    await userEvent.click(await screen.findByRole("button", { name: /^Forget / }));
    const confirm = screen.getByRole("group", { name: "Forget EMP-6010 w4" });
    expect(calls.some((c) => c.cmd === "forget_memory")).toBe(false);
    await userEvent.click(within(confirm).getByRole("button", { name: "Forget it" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Forgot EMP-6010's w4");
    expect(calls.find((c) => c.cmd === "forget_memory")?.args).toEqual({ id: "m-1" });
  });
});

describe("parseValue", () => {
  it("says why forgetting failed, and reads memory again", async () => {
    let reads = 0;
    backend({
      list_memory: () => {
        reads += 1;
        return [w4];
      },
      forget_memory: () => {
        throw commandError("not_found", "memory entry m-1 was already replaced");
      },
    });
    render(<Memory now={NOW} onOpenTask={noop} />);
    await userEvent.click(await screen.findByRole("button", { name: /^Forget / }));
    const confirm = screen.getByRole("group", { name: "Forget EMP-6010 w4" });
    await userEvent.click(within(confirm).getByRole("button", { name: "Forget it" }));
    expect(await screen.findByText(/already replaced/)).toHaveClass("bad-text");
    expect(screen.queryByRole("status")).toBeNull();
    await waitFor(() => {
      expect(reads).toBe(2);
    });
    expect(within(confirm).getByRole("button", { name: "Forget it" })).toBeEnabled();
  });

  it("reads JSON, takes a bare word as text, and refuses broken JSON", () => {
    expect(parseValue("42")).toEqual({ ok: true, value: 42 });
    expect(parseValue("phone")).toEqual({ ok: true, value: "phone" });
    expect(parseValue('{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseValue("[1,").ok).toBe(false);
    expect(parseValue("  ").ok).toBe(false);
  });
});
