// The approval path in a real window: a refund started from the Tasks view's form stops
// at the workflow's controller checkpoint, a person decides it in the Approvals inbox, and
// the task's detail, its history and the Metrics view follow. The demo's real MCP servers
// make the calls (their SQLite files live in the test's temp folder).
//
// On a fresh database the demo also starts its own three tasks (workspace/demo/demo.toml),
// which wait in the inbox too: the tests pick their own task out by its order, and compare
// the Metrics figures before and after rather than expecting fixed totals (the demo's two
// refunds exist once ORD-5002, the second, is in the inbox; none of its tasks ends alone).
import assert from "node:assert/strict";
import { test } from "node:test";
import { explained, launch } from "./app.mjs";
import {
  inboxItem,
  metricsOf,
  openSection,
  openTask,
  startFromTasks,
  waitForStatus,
  waitForText,
} from "./views.mjs";

/** Both flows run the refund workflow; its checkpoint holds refunds above $50.00. */
const WORKFLOW = "support-refund";

test("a refund waits for approval, is approved in the inbox, and finishes", async (t) => {
  const app = await launch(t);
  const { browser } = app;
  await explained(app, "approve", async () => {
    // The demo's first tasks are counted before ours starts.
    await openSection(browser, "Approvals");
    await inboxItem(browser, "ORD-5002");
    const before = await metricsOf(browser, WORKFLOW);

    const id = await startFromTasks(browser, WORKFLOW, { order_id: "ORD-5003", amount_cents: 7000 });
    const waiting = await waitForStatus(browser, "Waiting for approval");
    assert.equal(waiting.state, "controller_approval");
    assert.match(waiting.history, /Created by .+ from support-refund/);
    assert.match(waiting.history, /Called support\.get_order/);
    assert.match(waiting.history, /controller_approval: waiting for approval by controller/);
    assert.match(waiting.approvals, /Refund \$70\.00 on order ORD-5003/);
    assert.match(waiting.approvals, /Waiting for a decision/);

    // From the task to the inbox, as the task's notice offers.
    await browser.$("button=Review in Approvals").click();
    const item = await inboxItem(browser, "ORD-5003");
    await item.$("button=Approve").click();
    await waitForText(
      browser,
      "the inbox's confirmation",
      () => browser.$('[role="status"]').getText(),
      (text) => text.startsWith("Approved support-refund"),
    );
    await browser.$('ul[aria-label="Pending approvals"] li[aria-label*="ORD-5003"]').waitForExist({ reverse: true });

    await openTask(browser, id);
    const done = await waitForStatus(browser, "Succeeded");
    assert.equal(done.state, "done");
    assert.match(done.approvals, /Approved by \S+/);
    assert.match(done.history, /Approved by \S+; next: refund/);
    assert.match(done.history, /Called support\.issue_refund/);
    assert.match(done.history, /refund done; next: draft_note/);
    // The workflow's post-condition read the order again before the success was recorded.
    assert.match(done.history, /Post-conditions held: the outcome is as it should be/);
    assert.match(done.history, /Ended succeeded at done/);
    assert.match(done.calls, /support\.issue_refund\s*Succeeded/);

    const after = await metricsOf(browser, WORKFLOW);
    assert.equal(after.succeeded, before.succeeded + 1, `after: ${after.text}`);
    assert.ok(after.row !== null, "support-refund has a row in By workflow");
    assert.equal(Number(after.row[1]), Number(before.row?.[1] ?? 0) + 1, `the row: ${after.row.join(" | ")}`);
    assert.notEqual(after.row[2], "–", "its completion rate is known once a task ended");
  });
});

test("a rejected refund takes its rejection path, with the reason on record", async (t) => {
  const app = await launch(t);
  const { browser } = app;
  await explained(app, "reject", async () => {
    await openSection(browser, "Approvals");
    await inboxItem(browser, "ORD-5002");
    const before = await metricsOf(browser, WORKFLOW);

    const id = await startFromTasks(browser, WORKFLOW, { order_id: "ORD-5006", amount_cents: 6000 });
    await waitForStatus(browser, "Waiting for approval");

    const item = await inboxItem(browser, "ORD-5006");
    await item.$("button=Reject…").click();
    const reason = await item.$("textarea");
    await reason.waitForDisplayed();
    await reason.setValue("Duplicate of a refund already paid");
    await item.$("button=Reject").click();
    await waitForText(
      browser,
      "the inbox's confirmation",
      () => browser.$('[role="status"]').getText(),
      (text) => text.startsWith("Rejected support-refund"),
    );

    await openTask(browser, id);
    // on_reject = "rejected", an end state with status cancelled: the refund is never made.
    const ended = await waitForStatus(browser, "Cancelled");
    assert.equal(ended.state, "rejected");
    assert.match(ended.approvals, /Rejected by \S+/);
    assert.match(ended.approvals, /“Duplicate of a refund already paid”/);
    assert.match(ended.history, /Rejected by \S+ \(Duplicate of a refund already paid\); next: rejected/);
    assert.match(ended.history, /Ended cancelled at rejected/);
    assert.doesNotMatch(ended.history, /issue_refund/);
    assert.doesNotMatch(ended.calls, /issue_refund/);

    const after = await metricsOf(browser, WORKFLOW);
    assert.equal(after.cancelled, before.cancelled + 1, `before: ${before.text}; after: ${after.text}`);
    assert.equal(after.succeeded, before.succeeded, `after: ${after.text}`);
  });
});
