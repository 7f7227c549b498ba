//! The CRM and billing server: accounts, contacts, notes, invoices (billing status) and
//! renewals (with stored renewal summaries). Money is in integer cents (USD).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use crate::{
    Dataset, Db, DemoServer, ToolError, Written, found, idempotency_key, non_blank, now_iso, one_of,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    industry TEXT NOT NULL,
    owner TEXT NOT NULL,
    plan TEXT NOT NULL,
    arr_cents INTEGER NOT NULL,
    health TEXT NOT NULL CHECK (health IN ('green', 'amber', 'red')),
    payment_terms TEXT NOT NULL,
    billing_email TEXT NOT NULL,
    customer_since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    email TEXT NOT NULL,
    is_primary INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS crm_notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    issued_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('paid', 'open', 'overdue')),
    paid_on TEXT
);
CREATE TABLE IF NOT EXISTS renewals (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL UNIQUE REFERENCES accounts(id),
    renewal_date TEXT NOT NULL,
    current_arr_cents INTEGER NOT NULL,
    proposed_arr_cents INTEGER NOT NULL,
    stage TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS renewal_summaries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    renewal_id TEXT NOT NULL REFERENCES renewals(id),
    summary TEXT NOT NULL,
    created_at TEXT NOT NULL
);
";

/// The renewal stages, in order.
pub const STAGES: [&str; 6] = [
    "prospecting",
    "proposal",
    "negotiation",
    "committed",
    "closed_won",
    "closed_lost",
];

// ---------------------------------------------------------------------------------------
// Seed data

/// (id, name, domain, industry, owner, plan, arr, health, terms, since)
type SeedAccount = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static str,
    &'static str,
);

const ACCOUNTS: [SeedAccount; 12] = [
    (
        "ACC-3001",
        "Northwind Traders",
        "northwind.example",
        "Logistics",
        "Rachel Kim",
        "enterprise",
        14_400_000,
        "green",
        "net 30",
        "2021-04-12",
    ),
    (
        "ACC-3002",
        "Bluefin Analytics",
        "bluefin.example",
        "Software",
        "Marcus Lee",
        "growth",
        4_800_000,
        "amber",
        "net 30",
        "2022-09-01",
    ),
    (
        "ACC-3003",
        "Cedar & Pine Dental",
        "cedarpine.example",
        "Healthcare",
        "Elena Petrova",
        "starter",
        960_000,
        "green",
        "net 15",
        "2024-02-20",
    ),
    (
        "ACC-3004",
        "Harborview Logistics",
        "harborview.example",
        "Logistics",
        "Rachel Kim",
        "growth",
        6_000_000,
        "red",
        "net 45",
        "2022-01-17",
    ),
    (
        "ACC-3005",
        "Lumen Solar Co-op",
        "lumensolar.example",
        "Energy",
        "Marcus Lee",
        "growth",
        3_600_000,
        "green",
        "net 30",
        "2023-06-05",
    ),
    (
        "ACC-3006",
        "Maple Street Bakeries",
        "maplestreet.example",
        "Food & beverage",
        "Elena Petrova",
        "starter",
        720_000,
        "amber",
        "net 15",
        "2024-11-11",
    ),
    (
        "ACC-3007",
        "Orion Biotech",
        "orionbio.example",
        "Life sciences",
        "Rachel Kim",
        "enterprise",
        21_600_000,
        "green",
        "net 60",
        "2020-08-24",
    ),
    (
        "ACC-3008",
        "Quarry Stone Architects",
        "quarrystone.example",
        "Architecture",
        "Marcus Lee",
        "starter",
        1_200_000,
        "green",
        "net 30",
        "2023-03-30",
    ),
    (
        "ACC-3009",
        "Redwood Credit Union",
        "redwoodcu.example",
        "Financial services",
        "Elena Petrova",
        "enterprise",
        12_000_000,
        "amber",
        "net 30",
        "2021-12-06",
    ),
    (
        "ACC-3010",
        "Summit Outdoor Gear",
        "summitgear.example",
        "Retail",
        "Rachel Kim",
        "growth",
        5_400_000,
        "green",
        "net 30",
        "2022-05-19",
    ),
    (
        "ACC-3011",
        "Tidewater School District",
        "tidewater.example",
        "Education",
        "Marcus Lee",
        "growth",
        2_400_000,
        "red",
        "net 60",
        "2023-09-14",
    ),
    (
        "ACC-3012",
        "Vantage Media Labs",
        "vantagemedia.example",
        "Media",
        "Elena Petrova",
        "starter",
        1_080_000,
        "green",
        "net 15",
        "2025-01-08",
    ),
];

/// Two contacts per account, in account order: (name, title).
const CONTACTS: [(&str, &str); 24] = [
    ("Grace Holloway", "VP Operations"),
    ("Ian Mercer", "IT Manager"),
    ("Nadia Farouk", "Head of Data"),
    ("Peter Lindqvist", "Finance Director"),
    ("Dr. Alice Moreno", "Practice Owner"),
    ("Kevin Shaw", "Office Manager"),
    ("Fatima Haddad", "COO"),
    ("George Baptiste", "Procurement Lead"),
    ("Rosa Delgado", "General Manager"),
    ("Victor Osei", "Operations Analyst"),
    ("Emily Tran", "Owner"),
    ("Marco Bellini", "Finance Manager"),
    ("Dr. Hiro Tanaka", "VP Research"),
    ("Julia Brandt", "Procurement Director"),
    ("Ahmed Siddiqui", "Principal"),
    ("Laura Fischer", "Studio Manager"),
    ("Catherine Wu", "CIO"),
    ("Brian O'Neill", "Vendor Manager"),
    ("Sara Lindgren", "Head of E-commerce"),
    ("Tom Becker", "Finance Lead"),
    ("Michelle Adams", "Technology Director"),
    ("Derek Coleman", "Business Manager"),
    ("Yasmin Rahimi", "Managing Director"),
    ("Luke Harper", "Producer"),
];

/// One note per account: (author, created_at, body).
const NOTES: [(&str, &str, &str); 12] = [
    (
        "Rachel Kim",
        "2026-05-12T15:00:00Z",
        "QBR went well; they want SSO for the warehouse team next quarter.",
    ),
    (
        "Marcus Lee",
        "2026-05-20T10:30:00Z",
        "Usage dipped 18% after their reorg; champion Nadia is pushing for more dashboards.",
    ),
    (
        "Elena Petrova",
        "2026-04-28T09:15:00Z",
        "Happy with scheduling; asked about a second clinic location.",
    ),
    (
        "Rachel Kim",
        "2026-06-02T16:45:00Z",
        "Escalation: two outages in May hurt trust. Fatima wants a service credit.",
    ),
    (
        "Marcus Lee",
        "2026-05-07T11:00:00Z",
        "Expanding to three new sites; renewal likely to grow.",
    ),
    (
        "Elena Petrova",
        "2026-06-05T14:20:00Z",
        "Late on the Q2 invoice; owner says cash flow is tight this summer.",
    ),
    (
        "Rachel Kim",
        "2026-05-25T13:10:00Z",
        "Security review passed; procurement needs the renewal quote by July.",
    ),
    (
        "Marcus Lee",
        "2026-04-18T10:05:00Z",
        "Small team, very engaged; candidates for a case study.",
    ),
    (
        "Elena Petrova",
        "2026-05-30T09:40:00Z",
        "Board approved the budget; they are comparing us with one competitor.",
    ),
    (
        "Rachel Kim",
        "2026-06-08T17:25:00Z",
        "Black Friday load test planned in October; wants premium support.",
    ),
    (
        "Marcus Lee",
        "2026-06-10T08:50:00Z",
        "District budget cut; renewal at risk unless we offer a multi-year price.",
    ),
    (
        "Elena Petrova",
        "2026-05-15T12:00:00Z",
        "New producer onboarded; adoption steady.",
    ),
];

/// Renewal stage and price uplift (percent) per account.
const RENEWALS: [(&str, i64); 12] = [
    ("negotiation", 6),
    ("proposal", 0),
    ("committed", 5),
    ("prospecting", -10),
    ("proposal", 20),
    ("prospecting", 0),
    ("negotiation", 8),
    ("committed", 5),
    ("proposal", 4),
    ("negotiation", 10),
    ("prospecting", -15),
    ("committed", 3),
];

async fn seed(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    for (i, (id, name, domain, industry, owner, plan, arr, health, terms, since)) in
        ACCOUNTS.into_iter().enumerate()
    {
        let n = i as i64;
        sqlx::query("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(industry)
            .bind(owner)
            .bind(plan)
            .bind(arr)
            .bind(health)
            .bind(terms)
            .bind(format!("billing@{domain}"))
            .bind(since)
            .execute(&mut *conn)
            .await?;
        for (j, (contact, title)) in CONTACTS[2 * i..2 * i + 2].iter().enumerate() {
            let local: String = contact
                .trim_start_matches("Dr. ")
                .to_lowercase()
                .replace(' ', ".")
                .replace('\'', "");
            sqlx::query("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?)")
                .bind(format!("CON-{}", 7001 + 2 * n + j as i64))
                .bind(id)
                .bind(*contact)
                .bind(*title)
                .bind(format!("{local}@{domain}"))
                .bind(j == 0)
                .execute(&mut *conn)
                .await?;
        }
        let (author, at, body) = NOTES[i];
        sqlx::query(
            "INSERT INTO crm_notes (account_id, author, created_at, body) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(author)
        .bind(at)
        .bind(body)
        .execute(&mut *conn)
        .await?;
        // Two quarterly invoices: Q2 (mostly paid) and Q3 (paid, open or overdue).
        let quarter = arr / 4;
        let q2 = if n % 5 == 3 {
            ("overdue", None)
        } else {
            ("paid", Some("2026-04-24"))
        };
        let q3 = match n % 3 {
            0 => ("paid", Some("2026-07-22")),
            1 => ("open", None),
            _ => ("overdue", None),
        };
        for (k, (issued, due, (status, paid_on))) in [
            ("2026-04-01", "2026-05-01", q2),
            ("2026-07-01", "2026-07-31", q3),
        ]
        .into_iter()
        .enumerate()
        {
            sqlx::query("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(format!("INV-{}", 8001 + 2 * n + k as i64))
                .bind(id)
                .bind(issued)
                .bind(due)
                .bind(quarter)
                .bind(status)
                .bind(paid_on)
                .execute(&mut *conn)
                .await?;
        }
        let (stage, uplift) = RENEWALS[i];
        sqlx::query(
            "INSERT INTO renewals VALUES (?, ?, date('2026-08-01', ?), ?, ?, ?, '2026-06-15T09:00:00Z')",
        )
        .bind(format!("REN-{}", 4001 + n))
        .bind(id)
        .bind(format!("+{} days", 10 * n))
        .bind(arr)
        .bind(arr * (100 + uplift) / 100)
        .bind(stage)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tool inputs and outputs

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AccountRef {
    /// Account id, e.g. `ACC-3001`.
    pub account_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct InvoiceFilter {
    /// Account id, e.g. `ACC-3001`.
    pub account_id: String,
    /// Only invoices in this status: `paid`, `open` or `overdue`.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddNote {
    /// Account id, e.g. `ACC-3001`.
    pub account_id: String,
    /// The note's text.
    pub body: String,
    /// Who writes the note; defaults to `Airlock`.
    #[serde(default)]
    pub author: Option<String>,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and adds no second note.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DraftRenewalSummary {
    /// Renewal id, e.g. `REN-4001`.
    pub renewal_id: String,
    /// The summary to store. When absent, one is drafted from the account's records
    /// (ARR, health, billing status, latest note).
    #[serde(default)]
    pub summary: Option<String>,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and stores no second summary.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateRenewalStage {
    /// Renewal id, e.g. `REN-4001`.
    pub renewal_id: String,
    /// The new stage: prospecting, proposal, negotiation, committed, closed_won or
    /// closed_lost.
    pub stage: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub industry: String,
    /// The account executive who owns the account.
    pub owner: String,
    /// `starter`, `growth` or `enterprise`.
    pub plan: String,
    /// Annual recurring revenue, cents.
    pub arr_cents: i64,
    /// `green`, `amber` or `red`.
    pub health: String,
    pub customer_since: String,
    pub renewal_id: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub title: String,
    pub email: String,
    pub is_primary: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ContactList {
    pub account_id: String,
    pub contacts: Vec<Contact>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Note {
    pub note_id: i64,
    pub author: String,
    pub created_at: String,
    pub body: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct NoteList {
    pub account_id: String,
    /// Newest first.
    pub notes: Vec<Note>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Invoice {
    pub id: String,
    pub issued_on: String,
    pub due_on: String,
    pub amount_cents: i64,
    /// `paid`, `open` or `overdue`.
    pub status: String,
    pub paid_on: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct InvoiceList {
    pub account_id: String,
    pub invoices: Vec<Invoice>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct BillingStatus {
    pub account_id: String,
    /// `current` (nothing outstanding), `open` (invoices due, none late) or `overdue`.
    pub status: String,
    pub payment_terms: String,
    pub billing_email: String,
    pub outstanding_cents: i64,
    pub overdue_cents: i64,
    pub overdue_invoice_count: i64,
    pub last_paid_on: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RenewalSummary {
    pub summary_id: i64,
    pub summary: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Renewal {
    pub id: String,
    pub account_id: String,
    pub account_name: String,
    pub renewal_date: String,
    pub current_arr_cents: i64,
    pub proposed_arr_cents: i64,
    pub stage: String,
    pub updated_at: String,
    /// Stored summaries, newest first.
    pub summaries: Vec<RenewalSummary>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct NoteAdded {
    pub note_id: i64,
    pub account_id: String,
    pub author: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SummaryStored {
    pub summary_id: i64,
    pub renewal_id: String,
    pub account_id: String,
    /// Whether the text was drafted by the server (no `summary` argument was given).
    pub drafted: bool,
    pub summary: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct StageUpdated {
    pub renewal_id: String,
    pub previous_stage: String,
    pub stage: String,
    pub updated_at: String,
}

// ---------------------------------------------------------------------------------------
// Queries

async fn account(conn: &mut SqliteConnection, id: &str) -> Result<Account, ToolError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        i64,
        String,
        String,
        String,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT a.id, a.name, a.industry, a.owner, a.plan, a.arr_cents, a.health, a.customer_since, r.id
         FROM accounts a JOIN renewals r ON r.account_id = a.id WHERE a.id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, name, industry, owner, plan, arr_cents, health, customer_since, renewal_id) =
        found(row, "account", id)?;
    Ok(Account {
        id,
        name,
        industry,
        owner,
        plan,
        arr_cents,
        health,
        customer_since,
        renewal_id,
    })
}

async fn billing_status(conn: &mut SqliteConnection, id: &str) -> Result<BillingStatus, ToolError> {
    type Row = (String, String, String, i64, i64, i64, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT a.id, a.payment_terms, a.billing_email,
            coalesce(sum(CASE WHEN i.status != 'paid' THEN i.amount_cents END), 0),
            coalesce(sum(CASE WHEN i.status = 'overdue' THEN i.amount_cents END), 0),
            count(CASE WHEN i.status = 'overdue' THEN 1 END),
            max(i.paid_on)
         FROM accounts a LEFT JOIN invoices i ON i.account_id = a.id
         WHERE a.id = ? GROUP BY a.id",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let (account_id, payment_terms, billing_email, outstanding, overdue, overdue_count, last_paid) =
        found(row, "account", id)?;
    let status = if overdue_count > 0 {
        "overdue"
    } else if outstanding > 0 {
        "open"
    } else {
        "current"
    };
    Ok(BillingStatus {
        account_id,
        status: status.into(),
        payment_terms,
        billing_email,
        outstanding_cents: outstanding,
        overdue_cents: overdue,
        overdue_invoice_count: overdue_count,
        last_paid_on: last_paid,
    })
}

async fn renewal_by_id(conn: &mut SqliteConnection, id: &str) -> Result<Renewal, ToolError> {
    type Row = (String, String, String, String, i64, i64, String, String);
    let row: Option<Row> = sqlx::query_as(
        "SELECT r.id, r.account_id, a.name, r.renewal_date, r.current_arr_cents, r.proposed_arr_cents,
            r.stage, r.updated_at
         FROM renewals r JOIN accounts a ON a.id = r.account_id WHERE r.id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, account_id, account_name, renewal_date, current, proposed, stage, updated_at) =
        found(row, "renewal", id)?;
    let summaries: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, summary, created_at FROM renewal_summaries WHERE renewal_id = ? ORDER BY id DESC",
    )
    .bind(id.clone())
    .fetch_all(&mut *conn)
    .await?;
    Ok(Renewal {
        id,
        account_id,
        account_name,
        renewal_date,
        current_arr_cents: current,
        proposed_arr_cents: proposed,
        stage,
        updated_at,
        summaries: summaries
            .into_iter()
            .map(|(summary_id, summary, created_at)| RenewalSummary {
                summary_id,
                summary,
                created_at,
            })
            .collect(),
    })
}

fn dollars(cents: i64) -> String {
    // The sign goes in front: `cents / 100` alone loses it for -99..=-1.
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}${}.{:02}", abs / 100, abs % 100)
}

// ---------------------------------------------------------------------------------------
// Effects

async fn add_note(conn: &mut SqliteConnection, args: AddNote) -> Result<NoteAdded, ToolError> {
    let body = non_blank("body", &args.body)?;
    let author = match &args.author {
        Some(author) => non_blank("author", author)?,
        None => "Airlock".to_string(),
    };
    let account_id = account(conn, &args.account_id).await?.id;
    let at = now_iso(conn).await?;
    let note_id: i64 = sqlx::query_scalar(
        "INSERT INTO crm_notes (account_id, author, created_at, body) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(account_id.clone())
    .bind(author.clone())
    .bind(at.clone())
    .bind(body)
    .fetch_one(&mut *conn)
    .await?;
    Ok(NoteAdded {
        note_id,
        account_id,
        author,
        created_at: at,
    })
}

async fn draft_renewal_summary(
    conn: &mut SqliteConnection,
    args: DraftRenewalSummary,
) -> Result<SummaryStored, ToolError> {
    let renewal = renewal_by_id(conn, &args.renewal_id).await?;
    let (summary, drafted) = match &args.summary {
        Some(summary) => (non_blank("summary", summary)?, false),
        None => {
            let account = account(conn, &renewal.account_id).await?;
            let billing = billing_status(conn, &renewal.account_id).await?;
            let latest_note: Option<String> = sqlx::query_scalar(
                "SELECT body FROM crm_notes WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(account.id.clone())
            .fetch_optional(&mut *conn)
            .await?;
            let change = renewal.proposed_arr_cents - renewal.current_arr_cents;
            let text = format!(
                "{name} ({plan}, owner {owner}) renews on {date}: ARR {current} -> {proposed} ({sign}{change}). \
                 Health {health}; billing {billing} with {outstanding} outstanding ({overdue} overdue). \
                 Stage: {stage}. Latest note: {note}",
                name = account.name,
                plan = account.plan,
                owner = account.owner,
                date = renewal.renewal_date,
                current = dollars(renewal.current_arr_cents),
                proposed = dollars(renewal.proposed_arr_cents),
                sign = if change >= 0 { "+" } else { "-" },
                change = dollars(change.abs()),
                health = account.health,
                billing = billing.status,
                outstanding = dollars(billing.outstanding_cents),
                overdue = dollars(billing.overdue_cents),
                stage = renewal.stage,
                note = latest_note.unwrap_or_else(|| "none".into()),
            );
            (text, true)
        }
    };
    let at = now_iso(conn).await?;
    let summary_id: i64 = sqlx::query_scalar(
        "INSERT INTO renewal_summaries (renewal_id, summary, created_at) VALUES (?, ?, ?) RETURNING id",
    )
    .bind(renewal.id.clone())
    .bind(summary.clone())
    .bind(at.clone())
    .fetch_one(&mut *conn)
    .await?;
    Ok(SummaryStored {
        summary_id,
        renewal_id: renewal.id,
        account_id: renewal.account_id,
        drafted,
        summary,
        created_at: at,
    })
}

async fn update_renewal_stage(
    conn: &mut SqliteConnection,
    args: UpdateRenewalStage,
) -> Result<StageUpdated, ToolError> {
    let stage = args.stage.trim();
    one_of("renewal stage", &args.stage, stage, &STAGES)?;
    let renewal = renewal_by_id(conn, &args.renewal_id).await?;
    let at = now_iso(conn).await?;
    sqlx::query("UPDATE renewals SET stage = ?, updated_at = ? WHERE id = ?")
        .bind(stage.to_string())
        .bind(at.clone())
        .bind(renewal.id.clone())
        .execute(&mut *conn)
        .await?;
    Ok(StageUpdated {
        renewal_id: renewal.id,
        previous_stage: renewal.stage,
        stage: stage.to_string(),
        updated_at: at,
    })
}

// ---------------------------------------------------------------------------------------
// The server

#[derive(Clone, Debug)]
pub struct CrmServer {
    db: Db,
    tool_router: ToolRouter<Self>,
}

impl Dataset for CrmServer {
    const NAME: &'static str = "crm";
    const SCHEMA: &'static str = SCHEMA;
    fn seed(conn: &mut SqliteConnection) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        seed(conn)
    }
}

impl DemoServer for CrmServer {
    fn new(db: Db) -> Self {
        CrmServer {
            db,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl CrmServer {
    /// An account: industry, owner, plan, ARR, health and its renewal id.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_account(
        &self,
        Parameters(args): Parameters<AccountRef>,
    ) -> Result<Json<Account>, ToolError> {
        let mut conn = self.db.read().await?;
        Ok(Json(account(&mut conn, &args.account_id).await?))
    }

    /// The people at an account, primary contact first.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn list_contacts(
        &self,
        Parameters(args): Parameters<AccountRef>,
    ) -> Result<Json<ContactList>, ToolError> {
        let mut conn = self.db.read().await?;
        let account_id = account(&mut conn, &args.account_id).await?.id;
        let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(
            "SELECT id, name, title, email, is_primary FROM contacts WHERE account_id = ?
             ORDER BY is_primary DESC, id",
        )
        .bind(account_id.clone())
        .fetch_all(&mut *conn)
        .await?;
        Ok(Json(ContactList {
            account_id,
            contacts: rows
                .into_iter()
                .map(|(id, name, title, email, is_primary)| Contact {
                    id,
                    name,
                    title,
                    email,
                    is_primary,
                })
                .collect(),
        }))
    }

    /// The notes on an account, newest first.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn list_notes(
        &self,
        Parameters(args): Parameters<AccountRef>,
    ) -> Result<Json<NoteList>, ToolError> {
        let mut conn = self.db.read().await?;
        let account_id = account(&mut conn, &args.account_id).await?.id;
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, author, created_at, body FROM crm_notes WHERE account_id = ?
             ORDER BY created_at DESC, id DESC",
        )
        .bind(account_id.clone())
        .fetch_all(&mut *conn)
        .await?;
        Ok(Json(NoteList {
            account_id,
            notes: rows
                .into_iter()
                .map(|(note_id, author, created_at, body)| Note {
                    note_id,
                    author,
                    created_at,
                    body,
                })
                .collect(),
        }))
    }

    /// An account's billing status: outstanding and overdue amounts, terms, last payment.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_billing_status(
        &self,
        Parameters(args): Parameters<AccountRef>,
    ) -> Result<Json<BillingStatus>, ToolError> {
        let mut conn = self.db.read().await?;
        Ok(Json(billing_status(&mut conn, &args.account_id).await?))
    }

    /// An account's invoices, newest first, optionally only one status (`paid`, `open`,
    /// `overdue`).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn list_invoices(
        &self,
        Parameters(args): Parameters<InvoiceFilter>,
    ) -> Result<Json<InvoiceList>, ToolError> {
        if let Some(status) = &args.status {
            one_of(
                "invoice status",
                status,
                status,
                &["paid", "open", "overdue"],
            )?;
        }
        let mut conn = self.db.read().await?;
        let account_id = account(&mut conn, &args.account_id).await?.id;
        let rows: Vec<(String, String, String, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, issued_on, due_on, amount_cents, status, paid_on FROM invoices
             WHERE account_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY issued_on DESC, id DESC",
        )
        .bind(account_id.clone())
        .bind(args.status)
        .fetch_all(&mut *conn)
        .await?;
        Ok(Json(InvoiceList {
            account_id,
            invoices: rows
                .into_iter()
                .map(
                    |(id, issued_on, due_on, amount_cents, status, paid_on)| Invoice {
                        id,
                        issued_on,
                        due_on,
                        amount_cents,
                        status,
                        paid_on,
                    },
                )
                .collect(),
        }))
    }

    /// An account's upcoming renewal: date, current and proposed ARR, stage, and the
    /// summaries stored for it.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_renewal(
        &self,
        Parameters(args): Parameters<AccountRef>,
    ) -> Result<Json<Renewal>, ToolError> {
        let mut conn = self.db.read().await?;
        let renewal_id = account(&mut conn, &args.account_id).await?.renewal_id;
        Ok(Json(renewal_by_id(&mut conn, &renewal_id).await?))
    }

    /// Adds a note to an account's timeline. Pass an idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<NoteAdded>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn add_note(
        &self,
        Parameters(args): Parameters<AddNote>,
        meta: RequestMetaObject,
    ) -> Result<Written<NoteAdded>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("add_note", key, async |conn| add_note(conn, args).await)
            .await
    }

    /// Stores a renewal summary for the account team: the given text, or one drafted from
    /// the account's records when no text is given. Earlier summaries are kept. Pass an
    /// idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<SummaryStored>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn draft_renewal_summary(
        &self,
        Parameters(args): Parameters<DraftRenewalSummary>,
        meta: RequestMetaObject,
    ) -> Result<Written<SummaryStored>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("draft_renewal_summary", key, async |conn| {
                draft_renewal_summary(conn, args).await
            })
            .await
    }

    /// Moves a renewal to another stage (replacing the current one). Pass an idempotency
    /// key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<StageUpdated>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn update_renewal_stage(
        &self,
        Parameters(args): Parameters<UpdateRenewalStage>,
        meta: RequestMetaObject,
    ) -> Result<Written<StageUpdated>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("update_renewal_stage", key, async |conn| {
                update_renewal_stage(conn, args).await
            })
            .await
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "airlock-demo-crm",
    instructions = "Demo CRM and billing (offline, seeded data): accounts ACC-3001..ACC-3012, renewals REN-4001..REN-4012. Money is in integer cents (USD). Write tools take an optional idempotency_key (or _meta \"dev.airlock/idempotency_key\")."
)]
impl ServerHandler for CrmServer {}

#[cfg(test)]
mod tests {
    use super::dollars;

    #[test]
    fn dollars_keep_the_sign_of_any_amount() {
        assert_eq!(dollars(6000), "$60.00");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(-50), "-$0.50");
        assert_eq!(dollars(-12_345), "-$123.45");
        assert_eq!(dollars(i64::MIN), "-$92233720368547758.08");
    }
}
