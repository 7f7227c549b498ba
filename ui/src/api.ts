// The UI's only door to the desktop shell: typed wrappers over Tauri `invoke`.
// Types come from `./bindings` (generated from the Rust wire types), never written by hand.
import { invoke } from "@tauri-apps/api/core";
import type { AppInfo } from "./bindings/AppInfo";
import type { CommandError } from "./bindings/CommandError";

export function appInfo(): Promise<AppInfo> {
  return invoke<AppInfo>("app_info");
}

function isCommandError(value: unknown): value is CommandError {
  return (
    typeof value === "object" &&
    value !== null &&
    "code" in value &&
    "message" in value &&
    typeof value.message === "string"
  );
}

/** True when the page runs inside the desktop app, where `invoke` can reach Rust. */
export function insideDesktopApp(): boolean {
  const internals: unknown = Reflect.get(window, "__TAURI_INTERNALS__");
  return (
    typeof internals === "object" &&
    internals !== null &&
    typeof Reflect.get(internals, "invoke") === "function"
  );
}

/** Turns anything an `invoke` rejects with into a sentence a person can act on. */
export function describeError(error: unknown): string {
  if (!insideDesktopApp()) {
    return "This page is open in a plain browser, so it cannot reach the Airlock engine. Open it through the desktop app (./scripts/demo, or `cargo run -p airlock-desktop` next to `npm run dev`).";
  }
  if (isCommandError(error) && error.message.trim() !== "") {
    return error.message;
  }
  if (error instanceof Error && error.message.trim() !== "") {
    return error.message;
  }
  if (typeof error === "string" && error.trim() !== "") {
    return error;
  }
  return "The desktop app did not answer and gave no reason. Restart Airlock; if it happens again, start it from a terminal and read the log it prints.";
}
