// What a person does in the window, as steps the tests share: go to a section, start a
// task from its form, read a task's detail. Selectors are the UI's own words and ARIA
// names, plus a few `data-testid`s where a value is read back (the task's id and status).
import assert from "node:assert/strict";
import { WAIT_MS } from "./app.mjs";

/** Waits until `read()` (text) satisfies `ok`; fails naming what it last saw. */
export async function waitForText(browser, what, read, ok, timeout = WAIT_MS) {
  let last = "";
  try {
    await browser.waitUntil(
      async () => {
        try {
          last = await read();
        } catch {
          return false;
        }
        return ok(last);
      },
      { timeout, interval: 150 },
    );
  } catch {
    assert.fail(`${what}: not seen within ${timeout} ms; last seen:\n${last}`);
  }
  return last;
}

/** Clicks a section in the sidebar and waits for its heading. */
export async function openSection(browser, label) {
  const button = await browser.$('nav[aria-label="Sections"]').$(`button*=${label}`);
  await button.waitForClickable();
  await button.click();
  await waitForText(browser, `the ${label} view's heading`, () => browser.$("main h1").getText(), (t) => t !== "");
}

/**
 * Starts `workflow` the way a person does: Tasks, "Start a task", the form generated from its
 * inputs, Start. The app then shows the new task's detail; returns its id.
 */
export async function startFromTasks(browser, workflow, inputs) {
  await openSection(browser, "Tasks");
  const start = await browser.$("button=Start a task");
  await start.waitForClickable();
  await start.click();
  const form = await browser.$('section[aria-labelledby="start-title"]');
  const choice = await form.$("select");
  await choice.waitForDisplayed();
  await choice.selectByVisibleText(workflow);
  for (const [name, value] of Object.entries(inputs)) {
    const field = await form.$(`#input-${name}`);
    await field.waitForDisplayed();
    await field.clearValue();
    await field.setValue(String(value));
  }
  await form.$("button=Start").click();
  const id = await browser.$('[data-testid="task-id"]');
  await id.waitForDisplayed();
  return id.getText();
}

/** The detail of the task shown now: status label, current state, history, approvals, calls. */
export async function taskDetail(browser) {
  const text = async (testId) => {
    const el = await browser.$(`[data-testid="${testId}"]`);
    return (await el.isExisting()) ? el.getText() : "";
  };
  return {
    id: await text("task-id"),
    status: await text("task-status"),
    state: await text("task-state"),
    history: await text("task-history"),
    approvals: await text("task-approvals"),
    calls: await text("task-calls"),
  };
}

/** Waits until the task shown has `status` (its label, e.g. "Succeeded"); returns its detail. */
export async function waitForStatus(browser, status, timeout = WAIT_MS) {
  let detail = null;
  await waitForText(
    browser,
    `the task's status "${status}"`,
    async () => {
      detail = await taskDetail(browser);
      return `status: ${detail.status}, state: ${detail.state}\n${detail.history}`;
    },
    () => detail.status === status,
    timeout,
  );
  return detail;
}

/** Opens a task's detail from its row in the Tasks table. */
export async function openTask(browser, id) {
  await openSection(browser, "Tasks");
  // WebKitWebDriver does not click a table row itself: its first cell opens it the same.
  const cell = await browser.$(`[data-testid="task-row-${id}"] td`);
  await cell.waitForClickable();
  await cell.click();
  await waitForText(browser, `task ${id}'s detail`, () => browser.$('[data-testid="task-id"]').getText(), (t) => t === id);
}

/** The approval in the inbox whose text mentions `words` (e.g. the order it is about). */
export async function inboxItem(browser, words) {
  await openSection(browser, "Approvals");
  const item = await browser.$(`ul[aria-label="Pending approvals"] li[aria-label*="${words}"]`);
  await item.waitForDisplayed();
  return item;
}

/**
 * The Metrics view's figures for the default period: the summary's task counts, and the cells
 * of `workflow`'s row in "By workflow" (Tasks, Completed, Exceptions, Approved, Overrides,
 * Checks passed, Duplicates), or null when the table has no such row.
 */
export async function metricsOf(browser, workflow) {
  await openSection(browser, "Metrics");
  const summary = await browser.$('[data-testid="metrics-summary"]');
  await summary.waitForDisplayed();
  const text = await summary.getText();
  const counts = /([\d,]+) tasks? started: (\d+) succeeded, (\d+) failed, (\d+) cancelled, (\d+) still/.exec(text);
  assert.ok(counts, `the metrics summary reads "${text}"`);
  const [tasks, succeeded, failed, cancelled, open] = counts.slice(1).map((n) => Number(n.replace(/,/g, "")));
  const row = await browser.$(`tr[aria-label="${workflow}"]`);
  const cells = (await row.isExisting()) ? await row.$$("td").map((td) => td.getText()) : null;
  return { text, tasks, succeeded, failed, cancelled, open, row: cells };
}
