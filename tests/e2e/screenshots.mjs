// Screenshots of each view of the desktop app for the README (scripts/screenshots runs this
// under Xvfb). The database is seeded first with the `airlock` CLI built beside the app,
// on the demo workspace and its real MCP servers: refunds approved, edited, rejected and
// refused, an onboarding that remembers documents, a variance review, a renewal rejected,
// a grant, two ratings, and three things left waiting in the inbox. Then the app opens on
// that database and each view is photographed at the window's own size (1200 x 760).
// Then, when `airlock-seed-history` is beside the app, the History view is shot again on
// a 100,000-call history it seeds, with Task detail opened at a call from it.
//
//   node tests/e2e/screenshots.mjs OUT_DIR
import { execFileSync, spawn } from "node:child_process";
import { access, constants, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { appBinary, launch, root, saveScreenshot } from "./app.mjs";
import { openSection, openTask, waitForText } from "./views.mjs";

const out = path.resolve(process.argv[2] ?? path.join(root, "docs/screenshots"));
const cli = path.join(path.dirname(appBinary()), "airlock");

/** Runs the CLI with `--json`; exit 4 (task failed or cancelled) and 5 (waits) are answers too. */
function airlock(env, ...args) {
  return new Promise((resolve, reject) => {
    // The app reads an empty variable as unset; the CLI's flags would take it as a value.
    const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ""));
    const child = spawn(cli, [...args, "--json"], { env: set, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.once("error", (error) => reject(new Error(`could not run ${cli}: ${error.message}`)));
    child.once("exit", (code) => {
      if (code === 0 || code === 4 || code === 5) {
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`airlock ${args.join(" ")} printed no JSON:\n${stdout}\n${stderr}`));
        }
      } else {
        reject(new Error(`airlock ${args.join(" ")} exited with ${code}:\n${stderr}`));
      }
    });
  });
}

/** The approval a task waits on now. */
function waitingOn(task) {
  if (task.phase?.at !== "waiting_approval") {
    throw new Error(`task ${task.id} (${task.workflow_name}) is ${task.status} at ${task.current_state}, not waiting for an approval`);
  }
  return task.phase.approval_id;
}

/** Approves whatever `task` waits on until it stops waiting (a checkpoint, then a held call...). */
async function approveThrough(env, task, ...extra) {
  while (task.phase?.at === "waiting_approval") {
    task = await airlock(env, "approve", task.phase.approval_id, ...extra);
  }
  return task;
}

/** Seeds the database; returns the ids the shots need. */
async function seed(env) {
  const run = (workflow, inputs) =>
    airlock(env, "run", workflow, ...Object.entries(inputs).flatMap(([k, v]) => ["-i", `${k}=${v}`]));

  const quick = await approveThrough(env, await run("support-refund", { order_id: "ORD-5003", amount_cents: 7000 }));
  await airlock(env, "rate", quick.id, "5", "--comment", "Right amount, the customer was happy");

  // Above $200.00: the checkpoint, then the refund call itself waits for a finance lead, who
  // lowers the amount.
  let edited = await run("support-refund", { order_id: "ORD-5008", amount_cents: 26000, reason: "damaged on arrival" });
  edited = await airlock(env, "approve", waitingOn(edited), "--as", "sam");
  edited = await airlock(env, "approve", waitingOn(edited), "--as", "fiona", "--edit",
    JSON.stringify({ order_id: "ORD-5008", amount_cents: 20000, reason: "damaged on arrival" }),
    "--reason", "Capped at $200.00; the rest goes back as store credit");

  const rejected = await run("support-refund", { order_id: "ORD-5006", amount_cents: 6000 });
  await airlock(env, "reject", waitingOn(rejected), "--as", "sam", "--reason", "Duplicate of the refund paid last week");
  await run("support-refund", { order_id: "ORD-5010", amount_cents: 999_999 });

  const hired = await approveThrough(env, await run("hr-onboarding", { employee_id: "EMP-6010", document: "w4" }));
  await airlock(env, "rate", hired.id, "4", "--comment", "Laptop ordered a day late");
  await approveThrough(env, await run("hr-onboarding", { employee_id: "EMP-6011", document: "w4" }), "--as", "maya");
  await run("hr-onboarding", { employee_id: "EMP-6011", document: "handbook_ack" });
  // EMP-6010's next day: the handbook is filed; the laptop was ordered on the first day.
  await run("hr-onboarding", { employee_id: "EMP-6010", document: "handbook_ack" });
  await approveThrough(env, await run("finance-variance", { month: "2026-06" }));
  const renewal = await run("sales-renewal", { account_id: "ACC-3003" });
  await airlock(env, "reject", waitingOn(renewal), "--reason", "The owner is renegotiating; no renewals this week");

  await airlock(env, "grants", "add", "support.issue_refund", "--workflow", "support-refund",
    "--for", "8h", "--uses", "10", "--when", "args.amount_cents <= 15000");

  // Left waiting: a checkpoint, a held call (edited in a shot), a laptop for a manager (a
  // new hire's first day).
  waitingOn(await run("support-refund", { order_id: "ORD-5002", amount_cents: 6000 }));
  const held = await run("support-refund", { order_id: "ORD-5001", amount_cents: 25000, reason: "damaged on arrival" });
  waitingOn(await airlock(env, "approve", waitingOn(held), "--as", "sam"));
  waitingOn(await run("hr-onboarding", { employee_id: "EMP-6012", document: "w4" }));
  return { edited: edited.id, rated: quick.id };
}

/** Waits until the view shown has loaded (no "Loading…" line) and the last paint landed. */
async function settled(browser) {
  await waitForText(
    browser,
    "the view to load",
    () => browser.execute(() => document.querySelector("main")?.innerText ?? ""),
    (text) => text !== "" && !/(Loading|Counting|Reading the workspace)[^\n]*…/.test(text),
  );
  // Nothing hovered in the picture: the pointer rests on the sidebar's name (which never
  // scrolls, so the view stays where it was put).
  await browser.$("aside .brand").moveTo();
  await browser.pause(400);
}

async function shoot(browser, name) {
  await settled(browser);
  const file = path.join(out, `${name}.png`);
  await saveScreenshot(browser, file);
  console.log(`screenshots: ${path.relative(root, file)}`);
}

await mkdir(out, { recursive: true });
let ids = null;
let app = null;
try {
  app = await launch(null, {
    before: async (env) => {
      ids = await seed(env);
    },
  });
  const { browser } = app;
  await openSection(browser, "Approvals");
  await browser.$('ul[aria-label="Pending approvals"] li').waitForDisplayed();
  await shoot(browser, "approvals");

  // Editing the held refund: the amount lowered, the diff open, the reason typed.
  const held = await browser.$('ul[aria-label="Pending approvals"] li[aria-label^="support.issue_refund"]');
  await held.$("button*=Edit, then approve").click();
  const amount = await held.$("//div[contains(@class,'arg-field')][label[text()='amount_cents']]//input");
  await amount.waitForDisplayed();
  await amount.clearValue();
  await amount.setValue("20000");
  await held.$("button=Review changes").click();
  const why = await held.$("textarea");
  await why.waitForDisplayed();
  await why.setValue("Capped at $200.00; the rest goes back as store credit.");
  await shoot(browser, "approvals-edit");
  await held.$("button=Cancel").click();

  await openSection(browser, "Tasks");
  await shoot(browser, "tasks");
  // Where the task stands, first: how it ended and the last decision; then its approvals
  // (the edit opened).
  await openTask(browser, ids.edited);
  await browser.$("summary=What was changed").click();
  await shoot(browser, "task-detail");

  // A finished refund's cost (the offline model counts no tokens) and its rating, a second
  // one being given.
  await openTask(browser, ids.rated);
  const rate = await browser.$('form[aria-label="Rate this task"]');
  await rate.waitForDisplayed();
  await rate.$("label=4 · Good").click();
  await rate.$("textarea").setValue("Right amount, but it took two reminders");
  await browser.execute(() => {
    [...document.querySelectorAll(".card h2")].find((h) => h.textContent === "Cost")?.closest(".columns")?.scrollIntoView({ block: "center" });
  });
  await shoot(browser, "task-rating");

  await openSection(browser, "Start");
  await browser.$('section[aria-labelledby="start-title"] select').selectByVisibleText("support-refund");
  await shoot(browser, "start");

  for (const [label, name] of [
    ["Memory", "memory"],
    ["Lessons", "lessons"],
    ["Metrics", "metrics"],
    ["Policy", "policy"],
    ["Servers", "servers"],
    ["Overview", "overview"],
  ]) {
    await openSection(browser, label);
    await shoot(browser, name);
  }
} catch (error) {
  console.error(`screenshots: FAILED: ${error.message}`);
  process.exitCode = 1;
} finally {
  await app?.stop();
}

/** The History view over a seeded 100,000-call history, and Task detail at one of its calls. */
async function historyShots() {
  const seeder = path.join(path.dirname(appBinary()), "airlock-seed-history");
  try {
    await access(seeder, constants.X_OK);
  } catch {
    console.log(`screenshots: no ${seeder}; history.png and history-call.png not taken`);
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "airlock-shots-"));
  let seeded = null;
  try {
    execFileSync(seeder, ["--db", path.join(dir, "airlock.sqlite"), "--calls", "100000"], { stdio: "ignore" });
    seeded = await launch(null, { dir });
    const { browser } = seeded;
    await openSection(browser, "History");
    const rows = '[data-testid="history-viewport"] [role="row"][aria-label]';
    await browser.$(rows).waitForDisplayed({ timeout: 30_000 });
    await shoot(browser, "history");
    // The newest refund's reply to its ticket, a few rows down, opened in its task.
    const shown = await browser.$$(rows);
    await shown[4].click();
    await browser.$("li.focused").waitForDisplayed({ timeout: 30_000 });
    await browser.$("li.focused").scrollIntoView({ block: "center" });
    await shoot(browser, "history-call");
  } finally {
    await seeded?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.exitCode !== 1) {
  try {
    await historyShots();
  } catch (error) {
    console.error(`screenshots: FAILED: ${error.message}`);
    process.exitCode = 1;
  }
}
