//! `airlock-demo-erp`: the demo ERP MCP server over stdio.

fn main() -> std::process::ExitCode {
    airlock_demo_servers::main::<airlock_demo_servers::erp::ErpServer>("airlock-demo-erp")
}
