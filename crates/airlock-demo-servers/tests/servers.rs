//! The four demo servers as real child processes, driven by rmcp's client over stdio:
//! handshake, tool listing (names, annotations, schemas), reads against the seed,
//! idempotent writes counted in the server's own SQLite file, tool errors, and the
//! idempotency key carried in `_meta`. Also: the seed is deterministic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_demo_servers::{Dataset, Db, IDEMPOTENCY_META_KEY, REPLAY_META_KEY};
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, JsonObject, MetaObject, ProtocolVersion,
    RequestMetaObject, Tool,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A server under test: the child process, its client and its database file.
struct Server {
    client: RunningService<RoleClient, ()>,
    db: PathBuf,
    _dir: TempDir,
}

fn command(binary: &str, db: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command.arg("--db").arg(db).env("AIRLOCK_LOG", "warn");
    command
}

impl Server {
    async fn start(binary: &str) -> Server {
        Server::start_with(binary, ClientLifecycleMode::Initialize).await
    }

    async fn start_with(binary: &str, lifecycle: ClientLifecycleMode) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("demo.sqlite");
        let transport = TokioChildProcess::new(command(binary, &db)).expect("spawn the server");
        let client = ().serve_with_lifecycle(transport, lifecycle).await.expect("MCP handshake");
        Server {
            client,
            db,
            _dir: dir,
        }
    }

    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        self.call_with_meta(tool, arguments, None).await
    }

    async fn call_with_meta(
        &self,
        tool: &str,
        arguments: Value,
        idempotency_key: Option<&str>,
    ) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object");
        };
        let mut params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        if let Some(key) = idempotency_key {
            let mut meta = JsonObject::new();
            meta.insert(IDEMPOTENCY_META_KEY.into(), json!(key));
            params.meta = Some(RequestMetaObject(MetaObject(meta)));
        }
        self.client
            .call_tool(params)
            .await
            .unwrap_or_else(|e| panic!("tools/call {tool} failed at the protocol level: {e}"))
    }

    async fn count(&self, sql: &'static str) -> i64 {
        let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&self.db))
            .await
            .expect("open the server's database");
        let n = sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .expect("count query");
        pool.close().await;
        n
    }

    async fn stop(self) {
        self.client.cancel().await.expect("close the client");
    }
}

/// The structured content of a successful call (fails on a tool error).
fn structured(result: &CallToolResult) -> &Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "unexpected tool error: {result:?}"
    );
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structuredContent: {result:?}"))
}

/// The text of a tool error (fails on a success).
fn tool_error(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error: {result:?}"
    );
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn replayed(result: &CallToolResult) -> bool {
    result
        .meta
        .as_ref()
        .and_then(|m| m.get(REPLAY_META_KEY))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn assert_matches_output_schema(tool: &Tool, result: &CallToolResult) {
    let schema = Value::Object(
        tool.output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no outputSchema", tool.name))
            .as_ref()
            .clone(),
    );
    let content = structured(result);
    if let Err(e) = jsonschema::validate(&schema, content) {
        panic!(
            "{}: structuredContent does not match outputSchema: {e}\n{content:#}",
            tool.name
        );
    }
}

/// What one server must offer, and one scenario of each kind to run against it.
struct Spec {
    binary: &'static str,
    reads: &'static [&'static str],
    /// (tool, destructive)
    writes: &'static [(&'static str, bool)],
    read: (&'static str, Value),
    /// Fields the read's structured content must have, with these values.
    read_expect: Value,
    /// A write, called without a key; `idempotency_key` is added by the test.
    write: (&'static str, Value),
    /// Counts the write's effect rows.
    count: &'static str,
    bad: (&'static str, Value),
    bad_message: &'static str,
}

fn assert_subset(actual: &Value, expected: &Value) {
    let expected = expected.as_object().expect("expectation is an object");
    for (key, value) in expected {
        assert_eq!(actual.get(key), Some(value), "field {key} of {actual:#}");
    }
}

async fn exercise(spec: Spec) {
    let server = Server::start(spec.binary).await;

    // Initialize: the server names itself and offers tools.
    let info = server
        .client
        .peer_info()
        .expect("server info after initialize");
    let server_name = info.server_info.as_ref().map(|i| i.name.as_str());
    let binary_name = Path::new(spec.binary).file_name().and_then(|n| n.to_str());
    assert_eq!(server_name, binary_name);
    assert!(info.capabilities.tools.is_some(), "tools capability");

    // tools/list: exactly the expected tools, honest annotations, schemas for both ways.
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let expected: BTreeSet<&str> = spec
        .reads
        .iter()
        .copied()
        .chain(spec.writes.iter().map(|w| w.0))
        .collect();
    assert_eq!(names, expected);
    for tool in &tools {
        let name = tool.name.as_ref();
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() > 20),
            "{name} has a description"
        );
        assert!(tool.output_schema.is_some(), "{name} has an outputSchema");
        let a = tool.annotations.as_ref().expect("annotations");
        assert_eq!(a.open_world_hint, Some(false), "{name} openWorldHint");
        assert_eq!(a.idempotent_hint, Some(true), "{name} idempotentHint");
        let properties = tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .expect("input schema properties");
        let required: Vec<&str> = tool
            .input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some((_, destructive)) = spec.writes.iter().find(|w| w.0 == name) {
            assert_eq!(a.read_only_hint, Some(false), "{name} readOnlyHint");
            assert_eq!(
                a.destructive_hint,
                Some(*destructive),
                "{name} destructiveHint"
            );
            assert!(
                properties.contains_key("idempotency_key"),
                "{name} takes a key"
            );
            assert!(
                !required.contains(&"idempotency_key"),
                "{name}: key optional"
            );
        } else {
            assert_eq!(a.read_only_hint, Some(true), "{name} readOnlyHint");
            assert!(
                !properties.contains_key("idempotency_key"),
                "{name} is a read"
            );
        }
    }
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    };

    // A read against the seed.
    let result = server.call(spec.read.0, spec.read.1.clone()).await;
    assert_subset(structured(&result), &spec.read_expect);
    assert_matches_output_schema(tool(spec.read.0), &result);

    // A write, twice with one key: one effect, the same result, the second a replay.
    let (write_tool, write_args) = &spec.write;
    let with_key = |key: &str| {
        let mut args = write_args.clone();
        args["idempotency_key"] = json!(key);
        args
    };
    let before = server.count(spec.count).await;
    let first = server.call(write_tool, with_key("test/1")).await;
    assert_matches_output_schema(tool(write_tool), &first);
    assert!(!replayed(&first));
    assert_eq!(
        server.count(spec.count).await,
        before + 1,
        "first call's effect"
    );
    let second = server.call(write_tool, with_key("test/1")).await;
    assert_eq!(
        structured(&second),
        structured(&first),
        "stored result returned"
    );
    assert!(replayed(&second), "the repeat is marked as a replay");
    assert_eq!(
        server.count(spec.count).await,
        before + 1,
        "no second effect"
    );

    // A new key: a second effect.
    let third = server.call(write_tool, with_key("test/2")).await;
    assert!(!replayed(&third));
    assert_ne!(structured(&third), structured(&first));
    assert_eq!(
        server.count(spec.count).await,
        before + 2,
        "new key, new effect"
    );

    // The key in _meta (no argument): honoured the same way.
    let by_meta = server
        .call_with_meta(write_tool, write_args.clone(), Some("test/meta"))
        .await;
    assert!(!replayed(&by_meta));
    assert_eq!(
        server.count(spec.count).await,
        before + 3,
        "meta key, new effect"
    );
    let again = server
        .call_with_meta(write_tool, write_args.clone(), Some("test/meta"))
        .await;
    assert!(replayed(&again), "the _meta key is honoured");
    assert_eq!(structured(&again), structured(&by_meta));
    assert_eq!(
        server.count(spec.count).await,
        before + 3,
        "meta key, no second effect"
    );

    // Without any key, every call is a new effect (the key is what makes it idempotent).
    server.call(write_tool, write_args.clone()).await;
    assert_eq!(
        server.count(spec.count).await,
        before + 4,
        "no key, new effect"
    );

    // Bad input: a tool error with a plain sentence, and no effect.
    let result = server.call(spec.bad.0, spec.bad.1.clone()).await;
    let message = tool_error(&result);
    assert!(
        message.contains(spec.bad_message),
        "{message:?} should contain {:?}",
        spec.bad_message
    );
    assert_eq!(server.count(spec.count).await, before + 4);

    server.stop().await;
}

async fn within_timeout(test: impl Future<Output = ()>) {
    tokio::time::timeout(TIMEOUT, test)
        .await
        .expect("the test finished in time");
}

#[tokio::test]
async fn support_desk() {
    within_timeout(exercise(Spec {
        binary: env!("CARGO_BIN_EXE_airlock-demo-support"),
        reads: &["get_order", "list_orders", "get_ticket", "list_tickets", "get_customer"],
        writes: &[
            ("issue_refund", false),
            ("add_account_credit", false),
            ("reply_to_ticket", false),
            ("close_ticket", true),
        ],
        read: ("get_order", json!({"order_id": "ORD-5001"})),
        read_expect: json!({
            "id": "ORD-5001",
            "customer_id": "CUS-1001",
            "status": "delivered",
            "total_cents": 27_900,
            "refunded_cents": 0,
            "refundable_cents": 27_900,
        }),
        write: (
            "issue_refund",
            json!({"order_id": "ORD-5001", "amount_cents": 1_500, "reason": "Cable arrived frayed"}),
        ),
        count: "SELECT count(*) FROM refunds WHERE order_id = 'ORD-5001'",
        bad: (
            "issue_refund",
            json!({"order_id": "ORD-5001", "amount_cents": -500, "reason": "oops"}),
        ),
        bad_message: "amount_cents must be a positive number of cents, not -500.",
    }))
    .await;

    // Money in is positive, and the schemas say so: an approver's edit to -500 is refused
    // against the schema before anything runs, not by the tool after the approval.
    within_timeout(async {
        let server = Server::start(env!("CARGO_BIN_EXE_airlock-demo-support")).await;
        let tools = server.client.list_all_tools().await.expect("tools/list");
        for name in ["issue_refund", "add_account_credit"] {
            let tool = tools.iter().find(|t| t.name == name).expect("the tool");
            assert_eq!(
                tool.input_schema["properties"]["amount_cents"]["minimum"],
                json!(1),
                "{name}"
            );
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn crm_and_billing() {
    within_timeout(exercise(Spec {
        binary: env!("CARGO_BIN_EXE_airlock-demo-crm"),
        reads: &[
            "get_account",
            "list_contacts",
            "list_notes",
            "get_billing_status",
            "list_invoices",
            "get_renewal",
        ],
        writes: &[
            ("add_note", false),
            ("draft_renewal_summary", false),
            ("update_renewal_stage", true),
        ],
        read: ("get_billing_status", json!({"account_id": "ACC-3006"})),
        read_expect: json!({
            "account_id": "ACC-3006",
            "status": "overdue",
            "outstanding_cents": 180_000,
            "overdue_cents": 180_000,
            "overdue_invoice_count": 1,
            "last_paid_on": "2026-04-24",
        }),
        write: ("draft_renewal_summary", json!({"renewal_id": "REN-4004"})),
        count: "SELECT count(*) FROM renewal_summaries WHERE renewal_id = 'REN-4004'",
        bad: ("get_account", json!({"account_id": "ACC-0000"})),
        bad_message: "There is no account with id ACC-0000.",
    }))
    .await;
}

#[tokio::test]
async fn hr() {
    within_timeout(exercise(Spec {
        binary: env!("CARGO_BIN_EXE_airlock-demo-hr"),
        reads: &[
            "get_employee",
            "get_onboarding_checklist",
            "list_submitted_documents",
        ],
        writes: &[
            ("record_document", false),
            ("open_it_ticket", false),
            ("open_facilities_ticket", false),
            ("complete_checklist_item", true),
        ],
        read: ("get_onboarding_checklist", json!({"employee_id": "EMP-6009"})),
        read_expect: json!({"employee_id": "EMP-6009", "start_date": "2026-07-06", "done": 3, "total": 6}),
        write: (
            "open_it_ticket",
            json!({"employee_id": "EMP-6010", "category": "accounts", "description": "Create SSO and ERP accounts"}),
        ),
        count: "SELECT count(*) FROM it_tickets WHERE employee_id = 'EMP-6010'",
        bad: ("record_document", json!({"employee_id": "EMP-6010", "kind": "passport"})),
        bad_message: "Unknown document kind \"passport\"",
    }))
    .await;
}

#[tokio::test]
async fn erp() {
    within_timeout(exercise(Spec {
        binary: env!("CARGO_BIN_EXE_airlock-demo-erp"),
        reads: &["list_ledger_entries", "get_budget", "variance_report"],
        writes: &[("post_journal_entry", false), ("flag_variance", false)],
        read: ("get_budget", json!({"cost_centre": "CC-400", "month": "2026-06"})),
        read_expect: json!({"cost_centre": "CC-400", "cost_centre_name": "Operations", "budget_cents": 4_000_000}),
        write: (
            "flag_variance",
            json!({"cost_centre": "CC-400", "month": "2026-06", "note": "Utilities 31% over budget"}),
        ),
        count: "SELECT count(*) FROM variance_flags WHERE cost_centre = 'CC-400'",
        bad: ("variance_report", json!({"month": "June"})),
        bad_message: "month must look like 2026-06 (YYYY-MM), not \"June\".",
    }))
    .await;
}

/// Refunds are capped by what is left; a document already on file is reported, not
/// recorded twice; a key used for one tool is refused for another; the variance report
/// is computed from the ledger, so a journal posting moves it.
#[tokio::test]
async fn write_rules() {
    within_timeout(async {
        let support = Server::start(env!("CARGO_BIN_EXE_airlock-demo-support")).await;
        // ORD-5003: 65,800 total, 32,900 refunded.
        let over = support
            .call(
                "issue_refund",
                json!({"order_id": "ORD-5003", "amount_cents": 32_901, "reason": "second monitor"}),
            )
            .await;
        assert!(tool_error(&over).contains("exceeds the refundable remainder"));
        let exact = support
            .call(
                "issue_refund",
                json!({"order_id": "ORD-5003", "amount_cents": 32_900, "reason": "second monitor", "idempotency_key": "k"}),
            )
            .await;
        assert_eq!(structured(&exact)["refundable_remaining_cents"], json!(0));
        let unknown = support
            .call("get_order", json!({"order_id": "ORD-0000"}))
            .await;
        assert_eq!(tool_error(&unknown), "There is no order with id ORD-0000.");
        let reused = support
            .call(
                "add_account_credit",
                json!({"customer_id": "CUS-1003", "amount_cents": 500, "reason": "sorry", "idempotency_key": "k"}),
            )
            .await;
        assert!(tool_error(&reused).contains("already used for a call of issue_refund"));
        assert_eq!(
            support.count("SELECT count(*) FROM account_credits WHERE customer_id = 'CUS-1003'").await,
            0
        );
        support.stop().await;

        let hr = Server::start(env!("CARGO_BIN_EXE_airlock-demo-hr")).await;
        let count = "SELECT count(*) FROM documents WHERE employee_id = 'EMP-6010'";
        let before = hr.count(count).await;
        let existing = hr
            .call("record_document", json!({"employee_id": "EMP-6010", "kind": "w4"}))
            .await;
        assert_eq!(structured(&existing)["already_submitted"], json!(true));
        assert_eq!(hr.count(count).await, before, "no duplicate document");
        let new = hr
            .call("record_document", json!({"employee_id": "EMP-6010", "kind": "direct_deposit"}))
            .await;
        assert_eq!(structured(&new)["already_submitted"], json!(false));
        let again = hr
            .call("record_document", json!({"employee_id": "EMP-6010", "kind": "direct_deposit"}))
            .await;
        assert_eq!(structured(&again)["already_submitted"], json!(true));
        assert_eq!(hr.count(count).await, before + 1);
        hr.stop().await;

        let erp = Server::start(env!("CARGO_BIN_EXE_airlock-demo-erp")).await;
        let line = |report: &Value| report["lines"].as_array().expect("lines")[3].clone();
        let report = erp.call("variance_report", json!({"month": "2026-06"})).await;
        let before = line(structured(&report));
        assert_eq!(before["cost_centre"], json!("CC-400"));
        assert_eq!(before["actual_cents"], json!(5_240_000));
        assert_eq!(before["variance_percent"], json!(31.0));
        assert_eq!(before["over_threshold"], json!(true));
        let posted = erp
            .call(
                "post_journal_entry",
                json!({"cost_centre": "CC-400", "account": "6510 Utilities", "entry_date": "2026-06-30",
                       "amount_cents": -240_000, "description": "Reverse duplicated utilities accrual"}),
            )
            .await;
        assert_eq!(structured(&posted)["month_actual_cents"], json!(5_000_000));
        let report = erp.call("variance_report", json!({"month": "2026-06"})).await;
        assert_eq!(line(structured(&report))["variance_percent"], json!(25.0));
        erp.stop().await;
    })
    .await;
}

/// The 2026-07-28 lifecycle (`server/discover`, no `initialize`): tools, structured
/// content and the `_meta` key work the same.
#[tokio::test]
async fn discover_lifecycle() {
    within_timeout(async {
        let server = Server::start_with(
            env!("CARGO_BIN_EXE_airlock-demo-support"),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await;
        let tools = server.client.list_all_tools().await.expect("tools/list");
        assert_eq!(tools.len(), 9);
        let args =
            json!({"customer_id": "CUS-1002", "amount_cents": 700, "reason": "Late delivery"});
        let count = "SELECT count(*) FROM account_credits WHERE customer_id = 'CUS-1002'";
        let first = server
            .call_with_meta("add_account_credit", args.clone(), Some("discover/1"))
            .await;
        assert_eq!(structured(&first)["credit_balance_cents"], json!(700));
        let second = server
            .call_with_meta("add_account_credit", args, Some("discover/1"))
            .await;
        assert!(replayed(&second));
        assert_eq!(server.count(count).await, 1);
        server.stop().await;
    })
    .await;
}

/// Every row of every table, in a stable order, as text.
async fn dump(path: &Path) -> Vec<String> {
    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(path))
        .await
        .expect("open");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .expect("tables");
    let mut rows = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        )))
        .fetch_all(&pool)
        .await
        .expect("columns");
        let expr = columns
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let table_rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT '{table}|' || {expr} FROM \"{table}\" ORDER BY 1"
        )))
        .fetch_all(&pool)
        .await
        .expect("rows");
        rows.extend(table_rows);
    }
    pool.close().await;
    rows
}

async fn assert_deterministic<D: Dataset>(tables: &[(&str, usize)]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    Db::open::<D>(&a).await.expect("open a");
    Db::open::<D>(&b).await.expect("open b");
    let rows = dump(&a).await;
    assert_eq!(rows, dump(&b).await, "{}: two fresh seeds differ", D::NAME);
    for (table, at_least) in tables {
        let n = rows
            .iter()
            .filter(|r| r.starts_with(&format!("{table}|")))
            .count();
        assert!(n >= *at_least, "{}: {table} has {n} rows", D::NAME);
    }
    // Opening again does not seed again.
    Db::open::<D>(&a).await.expect("reopen a");
    assert_eq!(
        dump(&a).await,
        rows,
        "{}: reopening changed the data",
        D::NAME
    );
}

#[tokio::test]
async fn seeds_are_deterministic() {
    use airlock_demo_servers::{
        crm::CrmServer, erp::ErpServer, hr::HrServer, support::SupportServer,
    };
    within_timeout(async {
        assert_deterministic::<SupportServer>(&[
            ("customers", 12),
            ("orders", 12),
            ("order_items", 12),
            ("order_history", 12),
            ("tickets", 12),
            ("ticket_messages", 12),
            ("refunds", 3),
            ("account_credits", 3),
        ])
        .await;
        assert_deterministic::<CrmServer>(&[
            ("accounts", 12),
            ("contacts", 12),
            ("crm_notes", 12),
            ("invoices", 12),
            ("renewals", 12),
        ])
        .await;
        assert_deterministic::<HrServer>(&[
            ("employees", 12),
            ("onboarding_items", 12),
            ("documents", 12),
            ("it_tickets", 5),
            ("facilities_tickets", 5),
        ])
        .await;
        assert_deterministic::<ErpServer>(&[
            ("cost_centres", 4),
            ("budgets", 12),
            ("ledger_entries", 12),
            ("variance_flags", 1),
        ])
        .await;
    })
    .await;
}

/// Calls with one key racing each other (a retry overtaking a slow first attempt) still
/// make one effect, and all get the same result.
#[tokio::test]
async fn concurrent_repeats_make_one_effect() {
    within_timeout(async {
        let server = Server::start(env!("CARGO_BIN_EXE_airlock-demo-crm")).await;
        let args = json!({"account_id": "ACC-3002", "body": "Renewal call booked", "idempotency_key": "race"});
        let (a, b, c) = tokio::join!(
            server.call("add_note", args.clone()),
            server.call("add_note", args.clone()),
            server.call("add_note", args.clone()),
        );
        assert_eq!(structured(&a), structured(&b));
        assert_eq!(structured(&b), structured(&c));
        assert_eq!(
            [&a, &b, &c].iter().filter(|r| !replayed(r)).count(),
            1,
            "exactly one call made the effect"
        );
        assert_eq!(
            server
                .count("SELECT count(*) FROM crm_notes WHERE account_id = 'ACC-3002'")
                .await,
            2,
            "the seeded note and one new note"
        );
        server.stop().await;
    })
    .await;
}
