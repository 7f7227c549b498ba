// Overview: which build is running, where its data lives, and how to start a first task.
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

      <div className="card empty">
        <h2>Run a workflow</h2>
        <p>
          A task is one run of a workflow. Start one from the workspace with{" "}
          <strong>Start</strong> in the sidebar, or from a terminal in the repository, run a
          workflow file from the examples folder:
        </p>
        <pre className="command">
          <code>airlock run workspace/examples/&lt;file&gt;.toml</code>
        </pre>
        <p className="hint">
          Replace <code>&lt;file&gt;</code> with one of the workflow files there. In a source
          checkout without <code>airlock</code> installed, run{" "}
          <code>cargo run -p airlock-cli -- run …</code> instead. The command and this app
          use the same database by default; <code>AIRLOCK_DB</code> overrides it for both.
        </p>
      </div>
    </section>
  );
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
