//! The ERP server: cost centres, ledger entries, monthly budgets per cost centre, the
//! computed variance report, journal postings and variance flags for the controller.
//! Money is in integer cents (USD); a positive ledger amount is an expense (debit).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use crate::{
    Dataset, Db, DemoServer, ToolError, Written, found, idempotency_key, non_blank, now_iso,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cost_centres (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS budgets (
    cost_centre TEXT NOT NULL REFERENCES cost_centres(code),
    month TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    PRIMARY KEY (cost_centre, month)
);
CREATE TABLE IF NOT EXISTS ledger_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_date TEXT NOT NULL,
    cost_centre TEXT NOT NULL REFERENCES cost_centres(code),
    account TEXT NOT NULL,
    description TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('subledger', 'journal')),
    posted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_centre_date ON ledger_entries (cost_centre, entry_date);
CREATE TABLE IF NOT EXISTS variance_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cost_centre TEXT NOT NULL REFERENCES cost_centres(code),
    month TEXT NOT NULL,
    budget_cents INTEGER NOT NULL,
    actual_cents INTEGER NOT NULL,
    note TEXT NOT NULL,
    assigned_to TEXT NOT NULL,
    created_at TEXT NOT NULL
);
";

// ---------------------------------------------------------------------------------------
// Seed data

/// (code, name, owner, monthly budget, two ledger accounts with their share in percent)
type SeedCentre = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    [(&'static str, i64); 2],
);

const CENTRES: [SeedCentre; 4] = [
    (
        "CC-100",
        "Sales",
        "Noah Fischer",
        8_000_000,
        [("6100 Salaries", 70), ("6300 Travel", 30)],
    ),
    (
        "CC-200",
        "Marketing",
        "Priya Shah",
        5_000_000,
        [("6400 Advertising", 60), ("6410 Events", 40)],
    ),
    (
        "CC-300",
        "Engineering",
        "Raj Malhotra",
        12_000_000,
        [("6100 Salaries", 80), ("6200 Cloud hosting", 20)],
    ),
    (
        "CC-400",
        "Operations",
        "Mei Ling Zhou",
        4_000_000,
        [("6500 Rent", 55), ("6510 Utilities", 45)],
    ),
];

const MONTHS: [(&str, &str); 3] = [
    ("2026-04", "April"),
    ("2026-05", "May"),
    ("2026-06", "June"),
];

/// Actual spend as a percentage of budget, per centre (rows) and month (columns).
const ACTUAL_PERCENT: [[i64; 3]; 4] = [
    [96, 103, 112],
    [88, 121, 97],
    [101, 99, 104],
    [93, 108, 131],
];

const CONTROLLER: &str = "Lucy Brennan (controller)";

async fn seed(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    for (c, (code, name, owner, budget, accounts)) in CENTRES.into_iter().enumerate() {
        sqlx::query("INSERT INTO cost_centres VALUES (?, ?, ?)")
            .bind(code)
            .bind(name)
            .bind(owner)
            .execute(&mut *conn)
            .await?;
        for (m, (month, month_name)) in MONTHS.into_iter().enumerate() {
            sqlx::query("INSERT INTO budgets VALUES (?, ?, ?)")
                .bind(code)
                .bind(month)
                .bind(budget)
                .execute(&mut *conn)
                .await?;
            let actual = budget * ACTUAL_PERCENT[c][m] / 100;
            let first = actual * accounts[0].1 / 100;
            for (day, (account, amount)) in [
                (10, (accounts[0].0, first)),
                (24, (accounts[1].0, actual - first)),
            ] {
                let date = format!("{month}-{day}");
                let label = account.split_once(' ').map(|(_, l)| l).unwrap_or(account);
                sqlx::query(
                    "INSERT INTO ledger_entries (entry_date, cost_centre, account, description, amount_cents, source, posted_at)
                     VALUES (?, ?, ?, ?, ?, 'subledger', ? || 'T18:00:00Z')",
                )
                .bind(date.clone())
                .bind(code)
                .bind(account)
                .bind(format!("{label}, {month_name} ({name})"))
                .bind(amount)
                .bind(date)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    sqlx::query(
        "INSERT INTO variance_flags (cost_centre, month, budget_cents, actual_cents, note, assigned_to, created_at)
         VALUES ('CC-200', '2026-05', 5000000, 6050000, 'Spring campaign overspend; agency invoice booked twice?', ?, '2026-06-03T10:00:00Z')",
    )
    .bind(CONTROLLER)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tool inputs and outputs

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CentreMonth {
    /// Cost centre code, e.g. `CC-100`.
    pub cost_centre: String,
    /// Month as `YYYY-MM`, e.g. `2026-06`.
    pub month: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct VarianceQuery {
    /// Month as `YYYY-MM`, e.g. `2026-06`.
    pub month: String,
    /// Lines whose absolute variance exceeds this percentage of budget are marked
    /// `over_threshold`. Default 10.
    #[serde(default)]
    pub threshold_percent: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PostJournalEntry {
    /// Cost centre code, e.g. `CC-100`.
    pub cost_centre: String,
    /// General-ledger account, e.g. `6300 Travel`.
    pub account: String,
    /// Date as `YYYY-MM-DD`.
    pub entry_date: String,
    /// Cents; positive is an expense (debit), negative a credit or reversal. Not zero.
    pub amount_cents: i64,
    /// What the entry is for.
    pub description: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and posts nothing more.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FlagVariance {
    /// Cost centre code, e.g. `CC-100`.
    pub cost_centre: String,
    /// Month as `YYYY-MM`, e.g. `2026-06`.
    pub month: String,
    /// What the controller should look at.
    pub note: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and records no second flag.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct LedgerEntry {
    pub entry_id: i64,
    pub entry_date: String,
    pub account: String,
    pub description: String,
    pub amount_cents: i64,
    /// `subledger` or `journal`.
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct LedgerEntries {
    pub cost_centre: String,
    pub month: String,
    pub entries: Vec<LedgerEntry>,
    pub total_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Budget {
    pub cost_centre: String,
    pub cost_centre_name: String,
    pub owner: String,
    pub month: String,
    pub budget_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct VarianceLine {
    pub cost_centre: String,
    pub cost_centre_name: String,
    pub budget_cents: i64,
    pub actual_cents: i64,
    /// Actual minus budget: positive means overspent.
    pub variance_cents: i64,
    /// Variance as a percentage of budget, one decimal.
    pub variance_percent: f64,
    pub over_threshold: bool,
    /// Whether a variance flag is already recorded for this centre and month.
    pub flagged: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct VarianceReport {
    pub month: String,
    pub threshold_percent: f64,
    pub lines: Vec<VarianceLine>,
    pub total_budget_cents: i64,
    pub total_actual_cents: i64,
    pub total_variance_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct JournalPosted {
    pub entry_id: i64,
    pub cost_centre: String,
    pub account: String,
    pub entry_date: String,
    pub amount_cents: i64,
    pub description: String,
    pub posted_at: String,
    /// The cost centre's actual spend for the entry's month, this entry included.
    pub month_actual_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct VarianceFlagged {
    pub flag_id: i64,
    pub cost_centre: String,
    pub month: String,
    pub budget_cents: i64,
    pub actual_cents: i64,
    pub variance_cents: i64,
    pub note: String,
    pub assigned_to: String,
    pub created_at: String,
}

// ---------------------------------------------------------------------------------------
// Queries

fn month(text: &str) -> Result<String, ToolError> {
    let text = text.trim();
    let valid = text.len() == 7
        && text.as_bytes()[4] == b'-'
        && text[..4].bytes().all(|b| b.is_ascii_digit())
        && text[5..]
            .parse::<u32>()
            .is_ok_and(|m| (1..=12).contains(&m));
    if !valid {
        return Err(ToolError::Invalid(format!(
            "month must look like 2026-06 (YYYY-MM), not {text:?}."
        )));
    }
    Ok(text.to_string())
}

async fn budget(
    conn: &mut SqliteConnection,
    centre: &str,
    month: &str,
) -> Result<Budget, ToolError> {
    let centre_row: Option<(String, String, String)> =
        sqlx::query_as("SELECT code, name, owner FROM cost_centres WHERE code = ?")
            .bind(centre.trim().to_uppercase())
            .fetch_optional(&mut *conn)
            .await?;
    let (code, name, owner) = found(centre_row, "cost centre", centre)?;
    let amount: Option<i64> =
        sqlx::query_scalar("SELECT amount_cents FROM budgets WHERE cost_centre = ? AND month = ?")
            .bind(code.clone())
            .bind(month.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(budget_cents) = amount else {
        return Err(ToolError::NotFound(format!(
            "There is no budget for {code} ({name}) in {month}."
        )));
    };
    Ok(Budget {
        cost_centre: code,
        cost_centre_name: name,
        owner,
        month: month.to_string(),
        budget_cents,
    })
}

async fn actual(conn: &mut SqliteConnection, centre: &str, month: &str) -> Result<i64, ToolError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(amount_cents), 0) FROM ledger_entries
         WHERE cost_centre = ? AND substr(entry_date, 1, 7) = ?",
    )
    .bind(centre.to_string())
    .bind(month.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

fn percent(variance: i64, budget: i64) -> f64 {
    if budget == 0 {
        return 0.0;
    }
    (variance as f64 * 1000.0 / budget as f64).round() / 10.0
}

// ---------------------------------------------------------------------------------------
// Effects

async fn post_journal_entry(
    conn: &mut SqliteConnection,
    args: PostJournalEntry,
) -> Result<JournalPosted, ToolError> {
    if args.amount_cents == 0 {
        return Err(ToolError::Invalid("amount_cents must not be zero.".into()));
    }
    let account = non_blank("account", &args.account)?;
    let description = non_blank("description", &args.description)?;
    let date = args.entry_date.trim().to_string();
    let valid: Option<String> = sqlx::query_scalar("SELECT date(?1) WHERE date(?1) = ?1")
        .bind(date.clone())
        .fetch_optional(&mut *conn)
        .await?;
    if valid.is_none() {
        return Err(ToolError::Invalid(format!(
            "entry_date must be a date like 2026-06-30 (YYYY-MM-DD), not {:?}.",
            args.entry_date
        )));
    }
    let entry_month = &date[..7];
    let centre = budget(conn, &args.cost_centre, entry_month)
        .await?
        .cost_centre;
    let at = now_iso(conn).await?;
    let entry_id: i64 = sqlx::query_scalar(
        "INSERT INTO ledger_entries (entry_date, cost_centre, account, description, amount_cents, source, posted_at)
         VALUES (?, ?, ?, ?, ?, 'journal', ?) RETURNING id",
    )
    .bind(date.clone())
    .bind(centre.clone())
    .bind(account.clone())
    .bind(description.clone())
    .bind(args.amount_cents)
    .bind(at.clone())
    .fetch_one(&mut *conn)
    .await?;
    let month_actual_cents = actual(conn, &centre, entry_month).await?;
    Ok(JournalPosted {
        entry_id,
        cost_centre: centre,
        account,
        entry_date: date,
        amount_cents: args.amount_cents,
        description,
        posted_at: at,
        month_actual_cents,
    })
}

async fn flag_variance(
    conn: &mut SqliteConnection,
    args: FlagVariance,
) -> Result<VarianceFlagged, ToolError> {
    let month = month(&args.month)?;
    let note = non_blank("note", &args.note)?;
    let budget = budget(conn, &args.cost_centre, &month).await?;
    let actual_cents = actual(conn, &budget.cost_centre, &month).await?;
    let at = now_iso(conn).await?;
    let flag_id: i64 = sqlx::query_scalar(
        "INSERT INTO variance_flags (cost_centre, month, budget_cents, actual_cents, note, assigned_to, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(budget.cost_centre.clone())
    .bind(month.clone())
    .bind(budget.budget_cents)
    .bind(actual_cents)
    .bind(note.clone())
    .bind(CONTROLLER)
    .bind(at.clone())
    .fetch_one(&mut *conn)
    .await?;
    Ok(VarianceFlagged {
        flag_id,
        cost_centre: budget.cost_centre,
        month,
        budget_cents: budget.budget_cents,
        actual_cents,
        variance_cents: actual_cents - budget.budget_cents,
        note,
        assigned_to: CONTROLLER.into(),
        created_at: at,
    })
}

// ---------------------------------------------------------------------------------------
// The server

#[derive(Clone, Debug)]
pub struct ErpServer {
    db: Db,
    tool_router: ToolRouter<Self>,
}

impl Dataset for ErpServer {
    const NAME: &'static str = "erp";
    const SCHEMA: &'static str = SCHEMA;
    fn seed(conn: &mut SqliteConnection) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        seed(conn)
    }
}

impl DemoServer for ErpServer {
    fn new(db: Db) -> Self {
        ErpServer {
            db,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl ErpServer {
    /// The ledger entries of one cost centre in one month, oldest first, with their total.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn list_ledger_entries(
        &self,
        Parameters(args): Parameters<CentreMonth>,
    ) -> Result<Json<LedgerEntries>, ToolError> {
        let month = month(&args.month)?;
        let mut conn = self.db.read().await?;
        let centre = budget(&mut conn, &args.cost_centre, &month)
            .await?
            .cost_centre;
        let rows: Vec<(i64, String, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, entry_date, account, description, amount_cents, source FROM ledger_entries
             WHERE cost_centre = ? AND substr(entry_date, 1, 7) = ? ORDER BY entry_date, id",
        )
        .bind(centre.clone())
        .bind(month.clone())
        .fetch_all(&mut *conn)
        .await?;
        let entries: Vec<LedgerEntry> = rows
            .into_iter()
            .map(
                |(entry_id, entry_date, account, description, amount_cents, source)| LedgerEntry {
                    entry_id,
                    entry_date,
                    account,
                    description,
                    amount_cents,
                    source,
                },
            )
            .collect();
        Ok(Json(LedgerEntries {
            cost_centre: centre,
            month,
            total_cents: entries.iter().map(|e| e.amount_cents).sum(),
            entries,
        }))
    }

    /// The budget of one cost centre for one month.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_budget(
        &self,
        Parameters(args): Parameters<CentreMonth>,
    ) -> Result<Json<Budget>, ToolError> {
        let month = month(&args.month)?;
        let mut conn = self.db.read().await?;
        Ok(Json(budget(&mut conn, &args.cost_centre, &month).await?))
    }

    /// Actual spend against budget for every cost centre in one month, computed from the
    /// ledger, with lines beyond the threshold (default 10%) marked.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn variance_report(
        &self,
        Parameters(args): Parameters<VarianceQuery>,
    ) -> Result<Json<VarianceReport>, ToolError> {
        let month = month(&args.month)?;
        let threshold = args.threshold_percent.unwrap_or(10.0);
        if !threshold.is_finite() || threshold < 0.0 {
            return Err(ToolError::Invalid(format!(
                "threshold_percent must be zero or more, not {threshold}."
            )));
        }
        let mut conn = self.db.read().await?;
        let rows: Vec<(String, String, i64, i64, bool)> = sqlx::query_as(
            "SELECT c.code, c.name, b.amount_cents,
                (SELECT coalesce(sum(amount_cents), 0) FROM ledger_entries l
                 WHERE l.cost_centre = c.code AND substr(l.entry_date, 1, 7) = b.month),
                EXISTS (SELECT 1 FROM variance_flags f WHERE f.cost_centre = c.code AND f.month = b.month)
             FROM cost_centres c JOIN budgets b ON b.cost_centre = c.code
             WHERE b.month = ? ORDER BY c.code",
        )
        .bind(month.clone())
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Err(ToolError::NotFound(format!(
                "There are no budgets for {month}."
            )));
        }
        let lines: Vec<VarianceLine> = rows
            .into_iter()
            .map(|(code, name, budget_cents, actual_cents, flagged)| {
                let variance_cents = actual_cents - budget_cents;
                let variance_percent = percent(variance_cents, budget_cents);
                VarianceLine {
                    cost_centre: code,
                    cost_centre_name: name,
                    budget_cents,
                    actual_cents,
                    variance_cents,
                    variance_percent,
                    over_threshold: variance_percent.abs() > threshold,
                    flagged,
                }
            })
            .collect();
        let total_budget_cents = lines.iter().map(|l| l.budget_cents).sum();
        let total_actual_cents = lines.iter().map(|l| l.actual_cents).sum();
        Ok(Json(VarianceReport {
            month,
            threshold_percent: threshold,
            total_budget_cents,
            total_actual_cents,
            total_variance_cents: total_actual_cents - total_budget_cents,
            lines,
        }))
    }

    /// Posts a journal entry (one ledger line) to a cost centre that has a budget for the
    /// entry's month. Pass an idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<JournalPosted>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn post_journal_entry(
        &self,
        Parameters(args): Parameters<PostJournalEntry>,
        meta: RequestMetaObject,
    ) -> Result<Written<JournalPosted>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("post_journal_entry", key, async |conn| {
                post_journal_entry(conn, args).await
            })
            .await
    }

    /// Records a variance flag for the controller on one cost centre and month, with the
    /// budget and actual at the time of flagging. Pass an idempotency key to make a retry
    /// safe.
    #[tool(
        output_schema = schema_for_output::<VarianceFlagged>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn flag_variance(
        &self,
        Parameters(args): Parameters<FlagVariance>,
        meta: RequestMetaObject,
    ) -> Result<Written<VarianceFlagged>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("flag_variance", key, async |conn| {
                flag_variance(conn, args).await
            })
            .await
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "airlock-demo-erp",
    instructions = "Demo ERP (offline, seeded data): cost centres CC-100 Sales, CC-200 Marketing, CC-300 Engineering, CC-400 Operations; budgets and ledger for 2026-04..2026-06. Money is in integer cents (USD). Write tools take an optional idempotency_key (or _meta \"dev.airlock/idempotency_key\")."
)]
impl ServerHandler for ErpServer {}
