// Servers: the MCP servers of the servers file in force, and where each one stands.
import { listServers } from "../api";
import { useLive } from "../live";
import { FilePath } from "./FilePath";
import { NotReady, PanelHeader } from "./Panel";

const HEALTH = { starting: "Starting", ready: "Ready", failed: "Failed" } as const;
const TONE = { starting: "active", ready: "good", failed: "bad" } as const;

export function Servers() {
  const [load, reload] = useLive(listServers, () => false);

  return (
    <section className="panel wide" aria-labelledby="servers-title">
      <PanelHeader
        id="servers-title"
        title="Servers"
        lede="The MCP servers that give workflows their tools."
        onRefresh={reload}
      />
      <NotReady load={load} loading="Asking the servers…" failed="Airlock could not list the servers." />
      {load.state === "ready" && load.data.servers.length === 0 && (
        <div className="card empty">
          <h2>No MCP servers</h2>
          <p>
            Workflows here can use the built-in tools only. To add servers, put a{" "}
            <code>servers.json</code> (Claude&apos;s <code>mcpServers</code> shape) in the
            workspace, or import Claude Desktop&apos;s with{" "}
            <code>airlock servers import &lt;file&gt;</code>, then restart Airlock.
          </p>
        </div>
      )}
      {load.state === "ready" && load.data.servers.length > 0 && (
        <>
          {load.data.servers_file !== null && (
            <p className="muted">
              From <FilePath path={load.data.servers_file} />
            </p>
          )}
          <div className="card flush">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Server</th>
                  <th scope="col">Status</th>
                  <th scope="col">Tools</th>
                </tr>
              </thead>
              <tbody>
                {load.data.servers.map((server) => (
                  <tr key={server.name}>
                    <td>
                      <span className="strong">{server.name}</span>
                    </td>
                    <td>
                      <span className={`pill pill-${TONE[server.health]}`}>{HEALTH[server.health]}</span>
                    </td>
                    <td>
                      {server.health === "failed" ? (
                        <span className="bad-text">{server.error}</span>
                      ) : (
                        <>
                          <span className="strong">{server.tools.length}</span>{" "}
                          <span className="muted">{server.tools.join(", ")}</span>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
