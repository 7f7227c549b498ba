//! `airlock-demo-crm`: the demo CRM and billing MCP server over stdio.

fn main() -> std::process::ExitCode {
    airlock_demo_servers::main::<airlock_demo_servers::crm::CrmServer>("airlock-demo-crm")
}
