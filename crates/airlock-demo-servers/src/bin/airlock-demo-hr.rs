//! `airlock-demo-hr`: the demo HR MCP server over stdio.

fn main() -> std::process::ExitCode {
    airlock_demo_servers::main::<airlock_demo_servers::hr::HrServer>("airlock-demo-hr")
}
