// Loading data that follows the backend: load once, load again when a task changes (the
// `task-changed` feed), and refresh slowly as a safety net. The UI never edits what it
// loaded; it asks again.
import { useCallback, useEffect, useRef, useState } from "react";
import { describeError, onTaskChanged } from "./api";
import type { TaskChanged } from "./bindings/TaskChanged";

/** How often a view re-reads even without a change event (a missed event heals here). */
export const SAFETY_REFRESH_MS = 30_000;

export type Load<T> =
  | { state: "loading" }
  | { state: "ready"; data: T }
  | { state: "failed"; message: string };

/**
 * Loads with `fetch` and reloads on every task change that `relevant` accepts (all by
 * default), and whenever `key` changes (what `fetch` asks for, e.g. a filter). Overlapping
 * reloads collapse into one. Returns the load and a manual reload.
 */
export function useLive<T>(
  fetch: () => Promise<T>,
  relevant: (change: TaskChanged) => boolean = () => true,
  key = "",
): [Load<T>, () => void] {
  const [load, setLoad] = useState<Load<T>>({ state: "loading" });
  const fetchRef = useRef(fetch);
  const relevantRef = useRef(relevant);
  const running = useRef(false);
  const again = useRef(false);
  const live = useRef(true);

  useEffect(() => {
    fetchRef.current = fetch;
    relevantRef.current = relevant;
  });

  const reload = useCallback(() => {
    if (running.current) {
      again.current = true;
      return;
    }
    running.current = true;
    const run = () => {
      fetchRef.current().then(
        (data) => {
          if (live.current) setLoad({ state: "ready", data });
        },
        (error: unknown) => {
          if (live.current) setLoad({ state: "failed", message: describeError(error) });
        },
      ).finally(() => {
        if (again.current && live.current) {
          again.current = false;
          run();
        } else {
          running.current = false;
        }
      });
    };
    run();
  }, []);

  useEffect(() => {
    live.current = true;
    reload();
    let unlisten: (() => void) | null = null;
    let closed = false;
    void onTaskChanged((change) => {
      if (relevantRef.current(change)) reload();
    }).then((stop) => {
      if (closed) stop();
      else unlisten = stop;
    });
    const timer = window.setInterval(reload, SAFETY_REFRESH_MS);
    return () => {
      live.current = false;
      closed = true;
      window.clearInterval(timer);
      unlisten?.();
    };
  }, [reload]);

  const shownKey = useRef(key);
  useEffect(() => {
    if (shownKey.current !== key) {
      shownKey.current = key;
      reload();
    }
  }, [key, reload]);

  return [load, reload];
}
