//! `airlock-demo-support`: the demo support desk MCP server over stdio.

fn main() -> std::process::ExitCode {
    airlock_demo_servers::main::<airlock_demo_servers::support::SupportServer>(
        "airlock-demo-support",
    )
}
