// The desktop benchmark (scripts/bench-desktop runs it under Xvfb; docs/benchmarks.md has
// the figures and what each means). Prints one line per measurement and a median per figure:
//
//   cold_start   process start -> first IPC answer, the app started directly (no driver):
//                the UI's first render calls `app_info`; the time is when its answer is
//                logged, read by this script from the app's stderr, against the clock read
//                just before spawn.
//   first_paint  process start -> the web view's first contentful paint (Paint Timing:
//                performance.timeOrigin + the `first-contentful-paint` entry), the app
//                started by tauri-driver; the process's start time comes from
//                /proc/<pid>/stat (10 ms ticks), so this figure is good to about 20 ms.
//                Beside it, from the same start: the shell's first log line (`main` ran),
//                the web view's navigation start, the engine open (database, MCP servers),
//                and the first IPC answer.
//   idle_memory  after the window has settled (`--settle` seconds after the first IPC
//                answer, the demo's first tasks waiting in the inbox): RSS of the app process
//                and of its WebKit web and network processes, and their sum; also PSS (shared
//                pages split among the processes sharing them, so it moves with whatever else
//                runs) and USS (private pages only). The demo MCP servers the engine started
//                are listed apart.
//
//   history_first_page
//                a database seeded with `--calls` (100,000) tool calls by
//                `airlock-seed-history` (beside the app), the app open on it: from the click
//                on History in the sidebar to the first painted frame holding its first
//                page of rows, timed in the page (performance.now() at the click, animation
//                frames until the rows are in the document, then one frame more). The first
//                opening, then `--runs` more, each coming back from the Tasks view.
//
// The start and memory figures are taken on a fresh database ("first" launch: migrations,
// the demo's first run) and again on the same database ("second" launch: the everyday start).
//
//   node tests/e2e/bench-desktop.mjs [--runs N] [--settle SECONDS] [--calls N]
//        [--only cold_start,first_paint,idle_memory,history]
import { execFileSync, spawn } from "node:child_process";
import { access, constants, mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { appBinary, appEnv, endMarked, launch, markerOf, privateBus, processesMarked } from "./app.mjs";

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
}
const runs = Number(option("--runs", "5"));
const settleS = Number(option("--settle", "10"));
const only = new Set(option("--only", "cold_start,first_paint,idle_memory,history").split(","));
const historyCalls = Number(option("--calls", "100000"));
const binary = appBinary();
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (n, digits = 0) => (n === null || Number.isNaN(n) ? "na" : n.toFixed(digits));
const median = (xs) => {
  const sorted = xs.filter((x) => x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const results = [];
function print(test, fields) {
  results.push({ test, ...fields });
  const words = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "number" ? round(v, k.endsWith("_mb") ? 1 : 0) : v}`);
  console.log(`peer=airlock-desktop test=${test} ${words.join(" ")}`);
}

/** When a process started, in ms since the epoch, from its start tick since boot. */
async function startedAt(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at field 3; starttime is 22.
  const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const uptime = Number((await readFile("/proc/uptime", "utf8")).split(" ")[0]);
  return Date.now() - (uptime * 1000 - (ticks * 1000) / CLK_TCK);
}

async function children() {
  const parents = new Map();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!parents.has(ppid)) parents.set(ppid, []);
      parents.get(ppid).push(Number(entry));
    } catch {
      // Gone.
    }
  }
  return parents;
}

/** The app and every process under it, each with its name, RSS and PSS (MB). */
async function memoryOf(pid) {
  const tree = await children();
  const all = [];
  const visit = (p) => {
    all.push(p);
    for (const child of tree.get(p) ?? []) visit(child);
  };
  visit(pid);
  const rows = [];
  for (const p of all) {
    try {
      const name = path.basename(await readlink(`/proc/${p}/exe`));
      const status = await readFile(`/proc/${p}/status`, "utf8");
      const rollup = await readFile(`/proc/${p}/smaps_rollup`, "utf8");
      const kb = (text, key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
      const uss = kb(rollup, "Private_Clean") + kb(rollup, "Private_Dirty");
      rows.push({ pid: p, name, rss: kb(status, "VmRSS") / 1024, pss: kb(rollup, "Pss") / 1024, uss: uss / 1024 });
    } catch {
      // Gone.
    }
  }
  return rows;
}

/** Starts the app directly (no driver) on `dir`; resolves when it answered its first IPC call. */
async function startDirect(dir) {
  const env = appEnv(dir);
  const bus = await privateBus(env, null);
  env.DBUS_SESSION_BUS_ADDRESS = bus.address;
  const t0 = performance.timeOrigin + performance.now();
  const app = spawn(binary, [], { env, stdio: ["ignore", "ignore", "pipe"] });
  const lines = readline.createInterface({ input: app.stderr });
  const ipcAt = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the app did not answer app_info within 60 s")), 60_000);
    lines.on("line", (line) => {
      if (line.includes("answered app_info")) {
        clearTimeout(timer);
        resolve(performance.timeOrigin + performance.now());
      }
    });
    app.once("exit", (code) => reject(new Error(`the app exited with ${code} before answering app_info`)));
  });
  lines.on("line", () => undefined); // keep draining stderr
  const started = await startedAt(app.pid);
  const stop = async () => {
    await endMarked(markerOf(dir));
    bus.bus.kill("SIGTERM");
  };
  return { app, t0, ipcMs: ipcAt - t0, clockErrorMs: started - t0, stop };
}

async function directRuns() {
  for (let run = 1; run <= runs; run++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "airlock-bench-"));
    try {
      for (const launchKind of ["first", "second"]) {
        const started = await startDirect(dir);
        if (only.has("cold_start")) {
          print("cold_start", { launch: launchKind, run, first_ipc_ms: started.ipcMs, proc_clock_skew_ms: started.clockErrorMs });
        }
        if (only.has("idle_memory")) {
          await sleep(settleS * 1000);
          const rows = await memoryOf(started.app.pid);
          const sum = (pick, key) => rows.filter(pick).reduce((n, r) => n + r[key], 0);
          const isApp = (r) => r.name === "airlock-desktop";
          const isWeb = (r) => r.name.startsWith("WebKitWebProcess");
          const isNet = (r) => r.name.startsWith("WebKitNetworkProcess");
          const isServer = (r) => r.name.startsWith("airlock-demo-");
          const ours = (r) => isApp(r) || isWeb(r) || isNet(r);
          print("idle_memory", {
            launch: launchKind,
            run,
            settle_s: settleS,
            app_rss_mb: sum(isApp, "rss"),
            web_rss_mb: sum(isWeb, "rss"),
            network_rss_mb: sum(isNet, "rss"),
            total_rss_mb: sum(ours, "rss"),
            total_pss_mb: sum(ours, "pss"),
            total_uss_mb: sum(ours, "uss"),
            web_processes: rows.filter(isWeb).length,
            servers_rss_mb: sum(isServer, "rss"),
            other: rows.filter((r) => !ours(r) && !isServer(r)).map((r) => r.name).join(",") || "none",
          });
        }
        await started.stop();
      }
    } finally {
      await endMarked(markerOf(dir));
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** The app's pid among the processes of a driver launch. */
async function appPid(dir) {
  for (const pid of await processesMarked(markerOf(dir))) {
    try {
      if ((await readlink(`/proc/${pid}/exe`)) === binary) return pid;
    } catch {
      // Gone.
    }
  }
  throw new Error("the app's process was not found");
}

async function paintRuns() {
  for (let run = 1; run <= runs; run++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "airlock-bench-"));
    try {
      for (const launchKind of ["first", "second"]) {
        const app = await launch(null, { dir });
        try {
          const started = await startedAt(await appPid(dir));
          await app.browser.$('nav[aria-label="Sections"]').waitForDisplayed();
          // The entry appears once the paint happened; wait for it rather than read too early.
          const page = await app.browser.executeAsync((done) => {
            const read = () => {
              const fcp = performance.getEntriesByType("paint").find((e) => e.name === "first-contentful-paint");
              if (fcp === undefined) {
                requestAnimationFrame(read);
                return;
              }
              done({ origin: performance.timeOrigin, fcp: fcp.startTime });
            };
            read();
          });
          // The app's own log lines carry their UTC time (µs; read to the ms).
          const log = (await readFile(app.log, "utf8")).split("\n");
          const loggedAt = (words) => {
            const line = log.find((l) => l.includes(words));
            return line ? Date.parse(line.slice(0, line.indexOf("Z") + 1)) - started : NaN;
          };
          print("first_paint", {
            launch: launchKind,
            run,
            first_paint_ms: page.origin + page.fcp - started,
            shell_start_ms: loggedAt("desktop shell starting"),
            navigation_start_ms: page.origin - started,
            engine_ready_ms: loggedAt("engine open and serving"),
            first_ipc_ms: loggedAt("answered app_info"),
          });
        } finally {
          await app.stop();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * The History view's rows of calls: ARIA rows with a label in its windowed table (the rows
 * still loading are placeholders without one).
 */
const HISTORY_ROWS = '[data-testid="history-viewport"] [role="row"][aria-label]';

/**
 * Seeds a database with `airlock-seed-history` (beside the app), opens the app on it, and
 * times the History view: from the click on its sidebar entry to the first painted frame
 * that holds its first page of rows (measured in the page: the click, then each animation
 * frame until rows are in the document, then one frame more, so the rows were painted).
 * The first opening reads a cold database; the next ones come back from another view.
 */
async function historyRuns() {
  const seeder = path.join(path.dirname(binary), "airlock-seed-history");
  try {
    await access(seeder, constants.X_OK);
  } catch {
    console.log(`peer=airlock-desktop test=history_first_page not_measured=no_seeder_at_${seeder}`);
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "airlock-bench-"));
  try {
    const t0 = performance.now();
    execFileSync(seeder, ["--db", path.join(dir, "airlock.sqlite"), "--calls", String(historyCalls)], { stdio: "ignore" });
    const seededS = (performance.now() - t0) / 1000;
    const app = await launch(null, { dir });
    try {
      const { browser } = app;
      await browser.$('nav[aria-label="Sections"]').waitForDisplayed();
      for (let open = 1; open <= runs + 1; open++) {
        // Away first (the Tasks view), so each opening mounts the History view afresh.
        await browser.$('nav[aria-label="Sections"]').$("button*=Tasks").click();
        await browser.$('section[aria-labelledby="tasks-title"]').waitForDisplayed();
        await sleep(500);
        const shown = await browser.executeAsync((rowsSelector, done) => {
          const button = [...document.querySelectorAll('nav[aria-label="Sections"] button')].find((b) =>
            b.textContent.trim().startsWith("History"),
          );
          if (button === undefined) {
            done({ problem: "no History section in the sidebar" });
            return;
          }
          const start = performance.now();
          const until = start + 30_000;
          const look = () => {
            const rows = document.querySelectorAll(rowsSelector).length;
            if (rows > 0) {
              const found = performance.now();
              requestAnimationFrame(() => done({ ms: performance.now() - start, found: found - start, rows }));
            } else if (performance.now() > until) {
              done({ problem: "no rows within 30 s" });
            } else {
              requestAnimationFrame(look);
            }
          };
          button.click();
          requestAnimationFrame(look);
        }, HISTORY_ROWS);
        if (shown.problem) {
          console.log(`peer=airlock-desktop test=history_first_page not_measured="${shown.problem}"`);
          return;
        }
        print("history_first_page", {
          open: open === 1 ? "first" : "again",
          run: open,
          calls: historyCalls,
          first_page_ms: shown.ms,
          rows_in_dom_ms: shown.found,
          rows: shown.rows,
          seeded_s: seededS,
        });
      }
    } finally {
      await app.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(`bench-desktop: ${binary}, ${runs} runs, ${os.cpus().length} cpus, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
if (only.has("cold_start") || only.has("idle_memory")) await directRuns();
if (only.has("first_paint")) await paintRuns();
if (only.has("history")) await historyRuns();

const summary = [
  ["cold_start", "first_ipc_ms"],
  ["first_paint", "first_paint_ms"],
  ["first_paint", "shell_start_ms"],
  ["first_paint", "navigation_start_ms"],
  ["first_paint", "engine_ready_ms"],
  ["idle_memory", "total_rss_mb"],
  ["idle_memory", "total_pss_mb"],
  ["idle_memory", "total_uss_mb"],
  ["idle_memory", "app_rss_mb"],
  ["idle_memory", "web_rss_mb"],
];
const again = results.filter((r) => r.test === "history_first_page" && r.open === "again").map((r) => r.first_page_ms);
if (again.length > 0) {
  console.log(
    `peer=airlock-desktop test=history_first_page open=again median_first_page_ms=${round(median(again))} min=${round(Math.min(...again))} max=${round(Math.max(...again))} runs=${again.length}`,
  );
}
for (const [test, key] of summary) {
  for (const launchKind of ["first", "second"]) {
    const values = results.filter((r) => r.test === test && r.launch === launchKind).map((r) => r[key]);
    if (values.length === 0) continue;
    const m = median(values);
    console.log(
      `peer=airlock-desktop test=${test} launch=${launchKind} median_${key}=${round(m, key.endsWith("_mb") ? 1 : 0)} min=${round(Math.min(...values), 1)} max=${round(Math.max(...values), 1)} runs=${values.length}`,
    );
  }
}
