// Overview: which build is running, where its data lives, and how to start a task from a
// terminal on the same database.
import { useEffect, useState } from "react";
import { appInfo, describeError } from "../api";
import type { AppInfo } from "../bindings/AppInfo";

type Load =
  | { state: "loading" }
  | { state: "ready"; info: AppInfo }
  | { state: "failed"; message: string };

export function Overview() {
  const [load, setLoad] = useState<Load>({ state: "loading" });

  useEffect(() => {
    let live = true;
    appInfo().then(
      (info) => {
        if (live) setLoad({ state: "ready", info });
      },
      (error: unknown) => {
        if (live) setLoad({ state: "failed", message: describeError(error) });
      },
    );
    return () => {
      live = false;
    };
  }, []);

  return (
    <section className="panel" aria-labelledby="overview-title">
      <header className="panel-header">
        <h1 id="overview-title">Overview</h1>
        <p className="lede">
          Airlock runs Claude automations under explicit policy, with your approval where it
          matters and a record of every action.
        </p>
      </header>

      <div className="card">
        <h2>This installation</h2>
        <Installation load={load} />
      </div>

      <div className="card">
        <h2>Run a workflow</h2>
        <p>
          A task is one run of a workflow. Start one here with <strong>Start</strong> in the
          sidebar, or from a terminal, on this app&apos;s database:
        </p>
        <pre className="command">
          <code>{runCommand(load)}</code>
        </pre>
        <p className="hint">
          {load.state === "ready" && load.info.workspace_path !== null ? (
            <>
              Replace <code>&lt;workflow&gt;</code> with one of the workspace&apos;s workflows
              (Start lists them) and give its inputs with <code>-i name=value</code>.
            </>
          ) : (
            <>
              Replace <code>&lt;workflow&gt;</code> with a workflow file (a source checkout has
              some in <code>workspace/examples</code>) and give its inputs with{" "}
              <code>-i name=value</code>.
            </>
          )}{" "}
          In a source checkout without <code>airlock</code> installed, run{" "}
          <code>cargo run -p airlock-cli -- …</code> instead.
        </p>
      </div>
    </section>
  );
}

/** The CLI command that starts a task on the database (and workspace) this app uses. */
function runCommand(load: Load): string {
  if (load.state !== "ready") return "airlock run <workflow>";
  const { database_path: db, workspace_path: workspace } = load.info;
  const lines = [`airlock --db ${shellWord(db)}`];
  if (workspace !== null) lines.push(`  --workspace ${shellWord(workspace)}`);
  lines.push("  run <workflow>");
  return lines.join(" \\\n");
}

/** A path as one POSIX shell word: as it is when nothing in it is special, else quoted. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

function Installation({ load }: { load: Load }) {
  switch (load.state) {
    case "loading":
      return <p className="muted">Reading the app&apos;s settings…</p>;
    case "failed":
      return (
        <div className="error" role="alert">
          <strong>Airlock could not read its settings.</strong>
          <p>{load.message}</p>
        </div>
      );
    case "ready":
      return (
        <dl className="facts">
          <dt>Version</dt>
          <dd>{load.info.version}</dd>
          <dt>Database</dt>
          <dd>
            <code>{load.info.database_path}</code>
          </dd>
          <dt>Workspace</dt>
          <dd>
            {load.info.workspace_path === null ? (
              <span className="muted">
                None. Set <code>AIRLOCK_WORKSPACE</code> to a folder of workflows and policies.
              </span>
            ) : (
              <code>{load.info.workspace_path}</code>
            )}
          </dd>
          <dt>Data folder</dt>
          <dd>
            <code>{load.info.data_dir}</code>
          </dd>
        </dl>
      );
  }
}
