// A file of the workspace as its user knows it: relative to the workspace folder
// ("policy.toml"), the whole path on hover. A file outside the workspace keeps its path.
import { useEffect, useState } from "react";
import { appInfo } from "../api";
import { inFolder } from "../format";

// The workspace folder never changes while the app runs: asked once, then known to every view.
let known: string | null | undefined;
let asking: Promise<string | null> | null = null;

function askFolder(): Promise<string | null> {
  asking ??= appInfo().then(
    (info) => {
      known = info.workspace_path;
      return known;
    },
    () => {
      // Not known this time (the paths stay whole); the next view asks again.
      asking = null;
      return null;
    },
  );
  return asking;
}

/** The workspace folder, once the backend has said it; null before that or without one. */
export function useWorkspaceFolder(): string | null {
  const [folder, setFolder] = useState<string | null>(known ?? null);
  useEffect(() => {
    if (known !== undefined) return;
    let live = true;
    void askFolder().then((found) => {
      if (live) setFolder(found);
    });
    return () => {
      live = false;
    };
  }, []);
  return folder;
}

export function FilePath({ path, suffix = "" }: { path: string; suffix?: string }) {
  const folder = useWorkspaceFolder();
  return (
    <code title={path}>
      {inFolder(path, folder)}
      {suffix}
    </code>
  );
}
