// Starts the built desktop app in a real window and hands a test a WebDriver session on it.
//
// Each launch gets its own world: a fresh temporary folder for the database (so the demo
// MCP servers seed their own SQLite files beside it), the demo workspace, the scripted
// offline model, and a private D-Bus session bus (so the single-instance plugin never
// hands the launch to another Airlock, and notifications go to a bus of our own). The
// chain is tauri-driver -> WebKitWebDriver -> airlock-desktop -> airlock-demo-* servers.
//
// The display is the caller's: run under `xvfb-run` (scripts/e2e does).
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { access, constants, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { remote } from "webdriverio";

export const root = path.resolve(import.meta.dirname, "../..");

/** The app under test: AIRLOCK_E2E_APP, else the debug build in the shared target dir. */
export function appBinary() {
  if (process.env.AIRLOCK_E2E_APP) return path.resolve(process.env.AIRLOCK_E2E_APP);
  const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache/airlock/target");
  return path.join(target, "debug", "airlock-desktop");
}

/** How long a test waits for the window to show something it expects. */
export const WAIT_MS = 20_000;

/** `n` distinct free ports: all are held open together, so none is handed out twice. */
async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
      });
    }
    return servers.map((server) => server.address().port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

async function waitForPort(port, child, log, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) {
      throw new Error(`tauri-driver exited with ${child.exitCode} before listening; its log:\n${await tail(log)}`);
    }
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listened on port ${port} within ${ms} ms (tauri-driver, or the WebKitWebDriver it starts)`);
}

/**
 * Starts a session bus of our own; resolves to its address and process. What it and the
 * services it starts (the accessibility bus, a notification daemon) say goes to `out`.
 */
export async function privateBus(env, out) {
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--nopidfile", "--print-address=1"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (out === null) bus.stderr.resume();
  else bus.stderr.pipe(out);
  const address = await new Promise((resolve, reject) => {
    let text = "";
    bus.stdout.on("data", (chunk) => {
      text += chunk;
      const line = text.split("\n")[0];
      if (text.includes("\n")) resolve(line.trim());
    });
    bus.once("error", reject);
    bus.once("exit", (code) => reject(new Error(`dbus-daemon exited with ${code} before giving its address`)));
  });
  return { bus, address };
}

async function tail(file, lines = 60) {
  try {
    return (await readFile(file, "utf8")).split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * The processes this launch started, found by the marker in their environment: the driver,
 * WebKitWebDriver, the app, its WebKit helpers and MCP servers, and anything the private bus
 * started (a notification daemon).
 */
export async function processesMarked(marker) {
  const found = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = await readFile(`/proc/${entry}/environ`, "latin1");
      if (environ.split("\0").includes(marker)) found.push(Number(entry));
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return found;
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Ends every process carrying `marker` (SIGTERM, then SIGKILL after 2 s). */
export async function endMarked(marker) {
  for (let i = 0; i < 30; i++) {
    const left = await processesMarked(marker);
    if (left.length === 0) return;
    for (const pid of left) signal(pid, i < 20 ? "SIGTERM" : "SIGKILL");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The marker `appEnv` puts in the environment of everything a launch in `dir` starts. */
export function markerOf(dir) {
  return `AIRLOCK_E2E_RUN=${dir}`;
}

/**
 * The environment of an app whose data lives in `dir`: its database there (the demo MCP
 * servers seed their files beside it), the demo workspace, the scripted model, and the
 * launch's marker.
 */
export function appEnv(dir, extra = {}) {
  return {
    ...process.env,
    AIRLOCK_E2E_RUN: dir,
    AIRLOCK_DB: path.join(dir, "airlock.sqlite"),
    AIRLOCK_WORKSPACE: path.join(root, "workspace/demo"),
    // Empty counts as unset: everything else follows from the workspace and the database.
    AIRLOCK_SERVERS: "",
    AIRLOCK_EFFECTS_DB: "",
    AIRLOCK_POLICY: "",
    AIRLOCK_IDENTITIES: "",
    // Offline and repeatable: the workspace's scripted model, never a network model.
    AIRLOCK_MODEL: "scripted",
    ANTHROPIC_API_KEY: "",
    RUST_LOG: "warn,airlock_desktop=debug",
    XDG_CONFIG_HOME: path.join(dir, "config"),
    ...extra,
  };
}

/**
 * Launches the app for one test and returns `{ browser, dir, env, log, stop }`. `stop` ends
 * the session and every process of this launch, and removes its folder; `launch` registers it
 * with `t.after` too (when given a test context), so a failing test still cleans up.
 * `before(env)` runs after the folder exists and before the app starts, with the app's
 * environment (e.g. to seed the database with the `airlock` CLI). `dir` launches on the
 * data of an earlier launch instead of a fresh folder (and leaves it in place).
 */
export async function launch(t, { env: extra = {}, before = null, dir: reuse = null } = {}) {
  const binary = appBinary();
  try {
    await access(binary, constants.X_OK);
  } catch {
    throw new Error(`no app at ${binary}: build it with cargo build -p airlock-desktop -p airlock-demo-servers --features tauri/custom-protocol`);
  }
  const dir = reuse ?? (await mkdtemp(path.join(os.tmpdir(), "airlock-e2e-")));
  const marker = markerOf(dir);
  const log = path.join(dir, "app.log");
  const env = appEnv(dir, extra);

  let bus = null;
  let driver = null;
  let browser = null;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (browser !== null) {
      // Closing the session closes the window; the app then exits on its own.
      await Promise.race([browser.deleteSession().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
    }
    if (driver !== null) signal(driver.pid, "SIGTERM");
    await endMarked(marker);
    if (bus !== null) signal(bus.bus.pid, "SIGTERM");
    if (reuse === null) await rm(dir, { recursive: true, force: true });
  };
  t?.after(stop);

  if (before !== null) {
    try {
      await before(env);
    } catch (error) {
      await stop();
      throw error;
    }
  }
  const out = createWriteStream(log);
  bus = await privateBus(env, out);
  env.DBUS_SESSION_BUS_ADDRESS = bus.address;
  const [port, nativePort] = await freePorts(2);
  driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  driver.stdout.pipe(out);
  driver.stderr.pipe(out);
  await new Promise((resolve, reject) => {
    driver.once("spawn", resolve);
    driver.once("error", (error) =>
      reject(new Error(`could not start tauri-driver (scripts/setup installs it): ${error.message}`)),
    );
  });
  // Both the driver and the WebKitWebDriver it starts must listen before a session is asked for.
  await waitForPort(port, driver, log, 10_000);
  await waitForPort(nativePort, driver, log, 10_000);

  try {
    browser = await remote({
      hostname: "127.0.0.1",
      port,
      // WebdriverIO's own log repeats every failed poll of a wait; failures carry their reason.
      logLevel: process.env.AIRLOCK_E2E_LOG || "silent",
      capabilities: {
        "tauri:options": { application: binary },
        "wdio:enforceWebDriverClassic": true,
      },
      // A start that fails (no display, no binary) must fail now, not be retried for minutes.
      connectionRetryCount: 0,
      connectionRetryTimeout: 30_000,
      waitforTimeout: WAIT_MS,
    });
  } catch (error) {
    error.message += `\n--- tauri-driver and app log ---\n${await tail(log)}`;
    await stop();
    throw error;
  }
  return { browser, dir, env, log, stop };
}

/** The id of the pixel `saveScreenshot` repaints while WebKit takes the picture. */
const REPAINTED_PIXEL = "airlock-e2e-repainted-pixel";

/**
 * Saves a WebDriver screenshot of the window to `file`, working around WebKitGTK 2.50
 * when it draws without its GL compositor (what the app chooses where there is no GPU,
 * src-tauri/src/rendering.rs). Take Screenshot first waits for "the next presentation
 * update", and in that mode the web process only releases that wait after it paints
 * something (WebKitGTK 2.50.6, WebProcess/WebPage/CoordinatedGraphics/
 * DrawingAreaCoordinatedGraphics.cpp: `dispatchAfterEnsuringDrawing` schedules a display
 * without marking anything dirty, and `display()` returns before releasing the waiters
 * when the dirty region is empty; later WebKit marks the whole view dirty there first).
 * A view that has finished drawing (Start, Memory) never paints again on its own, so the
 * request hangs until the HTTP timeout; a rendering update alone (`requestAnimationFrame`)
 * does not release it, a repaint does. So while the picture is taken, one
 * pixel that is fully transparent in both of its colours changes colour every animation
 * frame: each change repaints that pixel, which releases the screenshot and alters no pixel
 * of it. With the GL compositor (a GPU) it is not needed and changes nothing.
 */
export async function saveScreenshot(browser, file) {
  await browser.execute((id) => {
    if (document.getElementById(id)) return;
    const pixel = document.createElement("div");
    pixel.id = id;
    pixel.setAttribute("aria-hidden", "true");
    pixel.style.cssText = "position: fixed; left: 0; top: 0; width: 1px; height: 1px; pointer-events: none";
    document.body.append(pixel);
    let odd = false;
    const repaint = () => {
      if (!pixel.isConnected) return;
      odd = !odd;
      pixel.style.backgroundColor = odd ? "rgba(255, 255, 255, 0)" : "rgba(0, 0, 0, 0)";
      requestAnimationFrame(repaint);
    };
    requestAnimationFrame(repaint);
  }, REPAINTED_PIXEL);
  try {
    await browser.saveScreenshot(file);
  } finally {
    await browser.execute((id) => document.getElementById(id)?.remove(), REPAINTED_PIXEL).catch(() => undefined);
  }
}

/**
 * Runs `body` and, when it throws, adds what the app logged and a screenshot of the window
 * (saved under AIRLOCK_E2E_ARTIFACTS, if set) to the failure.
 */
export async function explained(app, name, body) {
  try {
    await body();
  } catch (error) {
    let shot = "";
    const keep = process.env.AIRLOCK_E2E_ARTIFACTS;
    if (keep) {
      const file = path.join(keep, `${name.replace(/[^a-z0-9]+/gi, "-")}.png`);
      try {
        await saveScreenshot(app.browser, file);
        shot = `\nscreenshot of the window: ${file}`;
      } catch {
        shot = "\n(no screenshot: the session is gone)";
      }
    }
    error.message += `${shot}\n--- app log (last lines) ---\n${await tail(app.log)}`;
    throw error;
  }
}
