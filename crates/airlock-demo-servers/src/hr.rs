//! The HR server: employees, onboarding checklists (items with a status), submitted
//! documents, IT tickets and facilities tickets.

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
CREATE TABLE IF NOT EXISTS employees (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    title TEXT NOT NULL,
    department TEXT NOT NULL,
    manager_id TEXT REFERENCES employees(id),
    location TEXT NOT NULL,
    start_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'onboarding'))
);
CREATE TABLE IF NOT EXISTS onboarding_items (
    employee_id TEXT NOT NULL REFERENCES employees(id),
    item TEXT NOT NULL,
    title TEXT NOT NULL,
    owner TEXT NOT NULL,
    due_on TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done')),
    completed_at TEXT,
    PRIMARY KEY (employee_id, item)
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    employee_id TEXT NOT NULL REFERENCES employees(id),
    kind TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    UNIQUE (employee_id, kind)
);
CREATE TABLE IF NOT EXISTS it_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    employee_id TEXT NOT NULL REFERENCES employees(id),
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS facilities_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    employee_id TEXT NOT NULL REFERENCES employees(id),
    request TEXT NOT NULL,
    location TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL
);
";

/// The documents every new employee submits.
pub const DOCUMENT_KINDS: [&str; 6] = [
    "w4",
    "i9",
    "direct_deposit",
    "nda",
    "handbook_ack",
    "emergency_contact",
];

/// The categories an IT ticket can have.
pub const IT_CATEGORIES: [&str; 5] = ["laptop", "accounts", "access", "software", "other"];

// ---------------------------------------------------------------------------------------
// Seed data

/// (id, name, title, department, manager, location, start_date, status)
type SeedEmployee = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
);

const EMPLOYEES: [SeedEmployee; 12] = [
    (
        "EMP-6001",
        "Helen Alvarez",
        "VP People",
        "People",
        None,
        "Portland",
        "2019-03-04",
        "active",
    ),
    (
        "EMP-6002",
        "Raj Malhotra",
        "Engineering Manager",
        "Engineering",
        Some("EMP-6001"),
        "Portland",
        "2020-06-15",
        "active",
    ),
    (
        "EMP-6003",
        "Lucy Brennan",
        "Finance Controller",
        "Finance",
        Some("EMP-6001"),
        "Remote",
        "2021-01-11",
        "active",
    ),
    (
        "EMP-6004",
        "Kwame Mensah",
        "IT Lead",
        "IT",
        Some("EMP-6001"),
        "Portland",
        "2020-09-21",
        "active",
    ),
    (
        "EMP-6005",
        "Isabel Ortega",
        "Senior Engineer",
        "Engineering",
        Some("EMP-6002"),
        "Portland",
        "2022-04-04",
        "active",
    ),
    (
        "EMP-6006",
        "Noah Fischer",
        "Account Executive",
        "Sales",
        Some("EMP-6001"),
        "Austin",
        "2023-02-13",
        "active",
    ),
    (
        "EMP-6007",
        "Mei Ling Zhou",
        "Facilities Coordinator",
        "Operations",
        Some("EMP-6001"),
        "Portland",
        "2022-08-29",
        "active",
    ),
    (
        "EMP-6008",
        "Arjun Desai",
        "Support Lead",
        "Support",
        Some("EMP-6001"),
        "Remote",
        "2021-11-01",
        "active",
    ),
    (
        "EMP-6009",
        "Zoe Carter",
        "Software Engineer",
        "Engineering",
        Some("EMP-6002"),
        "Portland",
        "2026-07-06",
        "onboarding",
    ),
    (
        "EMP-6010",
        "Mateo Silva",
        "Financial Analyst",
        "Finance",
        Some("EMP-6003"),
        "Remote",
        "2026-07-13",
        "onboarding",
    ),
    (
        "EMP-6011",
        "Ava Robinson",
        "Support Specialist",
        "Support",
        Some("EMP-6008"),
        "Austin",
        "2026-07-13",
        "onboarding",
    ),
    (
        "EMP-6012",
        "Ethan Park",
        "Sales Development Rep",
        "Sales",
        Some("EMP-6006"),
        "Austin",
        "2026-07-20",
        "onboarding",
    ),
];

/// The onboarding checklist: (item, title, owner, days relative to the start date).
const CHECKLIST: [(&str, &str, &str, i64); 6] = [
    (
        "paperwork",
        "Submit W-4, I-9, direct deposit, NDA, handbook and emergency contact",
        "hr",
        -3,
    ),
    ("laptop", "Laptop ordered, imaged and shipped", "it", -2),
    (
        "accounts",
        "Email, SSO and Slack accounts created",
        "it",
        -1,
    ),
    ("badge", "Building badge and desk assigned", "facilities", 0),
    ("orientation", "Attend new-hire orientation", "hr", 1),
    (
        "buddy",
        "Meet onboarding buddy and manager 1:1",
        "manager",
        3,
    ),
];

/// How far each onboarding employee has got: the first N items are done.
const ITEMS_DONE: [(&str, usize); 4] = [
    ("EMP-6009", 3),
    ("EMP-6010", 0),
    ("EMP-6011", 0),
    ("EMP-6012", 0),
];

/// Documents already submitted: (employee, kind, submitted_at).
const DOCUMENTS: [(&str, &str, &str); 12] = [
    ("EMP-6009", "w4", "2026-06-20T10:00:00Z"),
    ("EMP-6009", "i9", "2026-06-20T10:05:00Z"),
    ("EMP-6009", "direct_deposit", "2026-06-21T08:30:00Z"),
    ("EMP-6009", "nda", "2026-06-21T08:35:00Z"),
    ("EMP-6009", "handbook_ack", "2026-06-22T17:10:00Z"),
    ("EMP-6009", "emergency_contact", "2026-06-22T17:12:00Z"),
    ("EMP-6010", "w4", "2026-06-25T09:00:00Z"),
    ("EMP-6010", "nda", "2026-06-25T09:04:00Z"),
    ("EMP-6010", "i9", "2026-06-26T14:20:00Z"),
    ("EMP-6011", "nda", "2026-06-29T11:45:00Z"),
    ("EMP-6005", "emergency_contact", "2026-01-15T12:00:00Z"),
    ("EMP-6006", "direct_deposit", "2026-03-02T16:30:00Z"),
];

/// (employee, category, description, status, opened_at)
const IT_TICKETS: [(&str, &str, &str, &str, &str); 6] = [
    (
        "EMP-6009",
        "laptop",
        "New hire laptop: 16-inch, engineering image",
        "resolved",
        "2026-06-23T09:00:00Z",
    ),
    (
        "EMP-6009",
        "accounts",
        "Create email, SSO, Slack and GitHub accounts",
        "resolved",
        "2026-06-24T09:00:00Z",
    ),
    (
        "EMP-6010",
        "laptop",
        "New hire laptop: 14-inch, finance image",
        "in_progress",
        "2026-06-27T10:30:00Z",
    ),
    (
        "EMP-6005",
        "software",
        "License for the database profiler",
        "open",
        "2026-06-18T15:20:00Z",
    ),
    (
        "EMP-6006",
        "access",
        "CRM admin access for the renewal dashboard",
        "open",
        "2026-06-19T11:10:00Z",
    ),
    (
        "EMP-6008",
        "other",
        "Headset microphone crackles",
        "resolved",
        "2026-05-30T13:40:00Z",
    ),
];

/// (employee, request, location, status, opened_at)
const FACILITIES_TICKETS: [(&str, &str, &str, &str, &str); 5] = [
    (
        "EMP-6009",
        "Desk assignment and building badge",
        "Portland",
        "in_progress",
        "2026-06-24T10:00:00Z",
    ),
    (
        "EMP-6005",
        "Standing desk motor is stuck",
        "Portland",
        "open",
        "2026-06-16T09:25:00Z",
    ),
    (
        "EMP-6007",
        "Restock the third-floor kitchen",
        "Portland",
        "resolved",
        "2026-06-12T08:00:00Z",
    ),
    (
        "EMP-6006",
        "Parking permit for the Austin office",
        "Austin",
        "resolved",
        "2026-05-22T14:15:00Z",
    ),
    (
        "EMP-6002",
        "Book the large room for the team offsite",
        "Portland",
        "open",
        "2026-06-20T16:50:00Z",
    ),
];

async fn seed(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    for (id, name, title, department, manager, location, start, status) in EMPLOYEES {
        let email = format!(
            "{}@airlock-demo.example",
            name.to_lowercase().replace(' ', ".")
        );
        sqlx::query("INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(email)
            .bind(title)
            .bind(department)
            .bind(manager)
            .bind(location)
            .bind(start)
            .bind(status)
            .execute(&mut *conn)
            .await?;
    }
    for (employee, done) in ITEMS_DONE {
        let start = EMPLOYEES
            .iter()
            .find(|e| e.0 == employee)
            .map(|e| e.6)
            .unwrap_or_default();
        for (n, (item, title, owner, days)) in CHECKLIST.into_iter().enumerate() {
            let done = n < done;
            sqlx::query(
                "INSERT INTO onboarding_items VALUES (?, ?, ?, ?, date(?, ?), ?,
                    CASE WHEN ? THEN date(?, ?) || 'T16:00:00Z' END)",
            )
            .bind(employee)
            .bind(item)
            .bind(title)
            .bind(owner)
            .bind(start)
            .bind(format!("{days:+} days"))
            .bind(if done { "done" } else { "pending" })
            .bind(done)
            .bind(start)
            .bind(format!("{:+} days", days - 1))
            .execute(&mut *conn)
            .await?;
        }
    }
    for (employee, kind, at) in DOCUMENTS {
        sqlx::query("INSERT INTO documents (employee_id, kind, submitted_at) VALUES (?, ?, ?)")
            .bind(employee)
            .bind(kind)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    }
    for (employee, category, description, status, at) in IT_TICKETS {
        sqlx::query(
            "INSERT INTO it_tickets (employee_id, category, description, status, opened_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(employee)
        .bind(category)
        .bind(description)
        .bind(status)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    for (employee, request, location, status, at) in FACILITIES_TICKETS {
        sqlx::query(
            "INSERT INTO facilities_tickets (employee_id, request, location, status, opened_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(employee)
        .bind(request)
        .bind(location)
        .bind(status)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tool inputs and outputs

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EmployeeRef {
    /// Employee id, e.g. `EMP-6009`.
    pub employee_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecordDocument {
    /// Employee id, e.g. `EMP-6009`.
    pub employee_id: String,
    /// One of: w4, i9, direct_deposit, nda, handbook_ack, emergency_contact.
    pub kind: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OpenItTicket {
    /// Employee id, e.g. `EMP-6009`.
    pub employee_id: String,
    /// One of: laptop, accounts, access, software, other.
    pub category: String,
    /// What is needed.
    pub description: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and opens no second ticket.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OpenFacilitiesTicket {
    /// Employee id, e.g. `EMP-6009`.
    pub employee_id: String,
    /// What is needed (desk, badge, parking, ...).
    pub request: String,
    /// Office; defaults to the employee's location.
    #[serde(default)]
    pub location: Option<String>,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and opens no second ticket.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CompleteChecklistItem {
    /// Employee id, e.g. `EMP-6009`.
    pub employee_id: String,
    /// Item code: paperwork, laptop, accounts, badge, orientation or buddy.
    pub item: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Employee {
    pub id: String,
    pub name: String,
    pub email: String,
    pub title: String,
    pub department: String,
    pub manager_id: Option<String>,
    pub manager_name: Option<String>,
    pub location: String,
    pub start_date: String,
    /// `active` or `onboarding`.
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ChecklistItem {
    pub item: String,
    pub title: String,
    /// Who does it: `hr`, `it`, `facilities` or `manager`.
    pub owner: String,
    pub due_on: String,
    /// `pending` or `done`.
    pub status: String,
    pub completed_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Checklist {
    pub employee_id: String,
    pub start_date: String,
    pub items: Vec<ChecklistItem>,
    pub done: i64,
    pub total: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Document {
    pub document_id: i64,
    pub kind: String,
    pub submitted_at: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DocumentList {
    pub employee_id: String,
    pub documents: Vec<Document>,
    /// Required kinds not submitted yet.
    pub missing_kinds: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DocumentRecorded {
    pub document_id: i64,
    pub employee_id: String,
    pub kind: String,
    pub submitted_at: String,
    /// True when this kind was already on file: nothing new was recorded.
    pub already_submitted: bool,
    pub missing_kinds: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TicketOpened {
    pub ticket_id: i64,
    pub employee_id: String,
    /// IT category, or the facilities location.
    pub queue: String,
    pub status: String,
    pub opened_at: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ItemCompleted {
    pub employee_id: String,
    pub item: String,
    pub status: String,
    pub completed_at: String,
    /// True when the item was already done: nothing changed.
    pub already_completed: bool,
    /// Items still pending.
    pub remaining: i64,
}

// ---------------------------------------------------------------------------------------
// Queries

async fn employee(conn: &mut SqliteConnection, id: &str) -> Result<Employee, ToolError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT e.id, e.name, e.email, e.title, e.department, e.manager_id, m.name, e.location,
            e.start_date, e.status
         FROM employees e LEFT JOIN employees m ON m.id = e.manager_id WHERE e.id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let (
        id,
        name,
        email,
        title,
        department,
        manager_id,
        manager_name,
        location,
        start_date,
        status,
    ) = found(row, "employee", id)?;
    Ok(Employee {
        id,
        name,
        email,
        title,
        department,
        manager_id,
        manager_name,
        location,
        start_date,
        status,
    })
}

async fn documents(
    conn: &mut SqliteConnection,
    employee_id: &str,
) -> Result<DocumentList, ToolError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, kind, submitted_at FROM documents WHERE employee_id = ? ORDER BY submitted_at, id",
    )
    .bind(employee_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let missing_kinds = DOCUMENT_KINDS
        .iter()
        .filter(|kind| !rows.iter().any(|r| r.1 == **kind))
        .map(|kind| kind.to_string())
        .collect();
    Ok(DocumentList {
        employee_id: employee_id.to_string(),
        documents: rows
            .into_iter()
            .map(|(document_id, kind, submitted_at)| Document {
                document_id,
                kind,
                submitted_at,
            })
            .collect(),
        missing_kinds,
    })
}

async fn pending_items(conn: &mut SqliteConnection, employee_id: &str) -> Result<i64, ToolError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM onboarding_items WHERE employee_id = ? AND status = 'pending'",
    )
    .bind(employee_id.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

// ---------------------------------------------------------------------------------------
// Effects

async fn record_document(
    conn: &mut SqliteConnection,
    args: RecordDocument,
) -> Result<DocumentRecorded, ToolError> {
    let kind = args.kind.trim().to_lowercase();
    one_of("document kind", &args.kind, &kind, &DOCUMENT_KINDS)?;
    let employee_id = employee(conn, &args.employee_id).await?.id;
    let existing: Option<(i64, String)> =
        sqlx::query_as("SELECT id, submitted_at FROM documents WHERE employee_id = ? AND kind = ?")
            .bind(employee_id.clone())
            .bind(kind.clone())
            .fetch_optional(&mut *conn)
            .await?;
    let (document_id, submitted_at, already_submitted) = match existing {
        Some((id, at)) => (id, at, true),
        None => {
            let at = now_iso(conn).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO documents (employee_id, kind, submitted_at) VALUES (?, ?, ?) RETURNING id",
            )
            .bind(employee_id.clone())
            .bind(kind.clone())
            .bind(at.clone())
            .fetch_one(&mut *conn)
            .await?;
            (id, at, false)
        }
    };
    let missing_kinds = documents(conn, &employee_id).await?.missing_kinds;
    Ok(DocumentRecorded {
        document_id,
        employee_id,
        kind,
        submitted_at,
        already_submitted,
        missing_kinds,
    })
}

async fn open_it_ticket(
    conn: &mut SqliteConnection,
    args: OpenItTicket,
) -> Result<TicketOpened, ToolError> {
    let category = args.category.trim().to_lowercase();
    one_of(
        "IT ticket category",
        &args.category,
        &category,
        &IT_CATEGORIES,
    )?;
    let description = non_blank("description", &args.description)?;
    let employee_id = employee(conn, &args.employee_id).await?.id;
    let at = now_iso(conn).await?;
    let ticket_id: i64 = sqlx::query_scalar(
        "INSERT INTO it_tickets (employee_id, category, description, status, opened_at)
         VALUES (?, ?, ?, 'open', ?) RETURNING id",
    )
    .bind(employee_id.clone())
    .bind(category.clone())
    .bind(description)
    .bind(at.clone())
    .fetch_one(&mut *conn)
    .await?;
    Ok(TicketOpened {
        ticket_id,
        employee_id,
        queue: category,
        status: "open".into(),
        opened_at: at,
    })
}

async fn open_facilities_ticket(
    conn: &mut SqliteConnection,
    args: OpenFacilitiesTicket,
) -> Result<TicketOpened, ToolError> {
    let request = non_blank("request", &args.request)?;
    let employee = employee(conn, &args.employee_id).await?;
    let location = match &args.location {
        Some(location) => non_blank("location", location)?,
        None => employee.location,
    };
    let at = now_iso(conn).await?;
    let ticket_id: i64 = sqlx::query_scalar(
        "INSERT INTO facilities_tickets (employee_id, request, location, status, opened_at)
         VALUES (?, ?, ?, 'open', ?) RETURNING id",
    )
    .bind(employee.id.clone())
    .bind(request)
    .bind(location.clone())
    .bind(at.clone())
    .fetch_one(&mut *conn)
    .await?;
    Ok(TicketOpened {
        ticket_id,
        employee_id: employee.id,
        queue: location,
        status: "open".into(),
        opened_at: at,
    })
}

async fn complete_checklist_item(
    conn: &mut SqliteConnection,
    args: CompleteChecklistItem,
) -> Result<ItemCompleted, ToolError> {
    let employee_id = employee(conn, &args.employee_id).await?.id;
    let item = args.item.trim().to_lowercase();
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, completed_at FROM onboarding_items WHERE employee_id = ? AND item = ?",
    )
    .bind(employee_id.clone())
    .bind(item.clone())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, completed_at)) = row else {
        return Err(ToolError::NotFound(format!(
            "{employee_id} has no onboarding checklist item {:?}.",
            args.item
        )));
    };
    let (completed_at, already_completed) = if status == "done" {
        (completed_at.unwrap_or_default(), true)
    } else {
        let at = now_iso(conn).await?;
        sqlx::query(
            "UPDATE onboarding_items SET status = 'done', completed_at = ? WHERE employee_id = ? AND item = ?",
        )
        .bind(at.clone())
        .bind(employee_id.clone())
        .bind(item.clone())
        .execute(&mut *conn)
        .await?;
        (at, false)
    };
    let remaining = pending_items(conn, &employee_id).await?;
    Ok(ItemCompleted {
        employee_id,
        item,
        status: "done".into(),
        completed_at,
        already_completed,
        remaining,
    })
}

// ---------------------------------------------------------------------------------------
// The server

#[derive(Clone, Debug)]
pub struct HrServer {
    db: Db,
    tool_router: ToolRouter<Self>,
}

impl Dataset for HrServer {
    const NAME: &'static str = "hr";
    const SCHEMA: &'static str = SCHEMA;
    fn seed(conn: &mut SqliteConnection) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        seed(conn)
    }
}

impl DemoServer for HrServer {
    fn new(db: Db) -> Self {
        HrServer {
            db,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl HrServer {
    /// An employee: title, department, manager, location, start date, status.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_employee(
        &self,
        Parameters(args): Parameters<EmployeeRef>,
    ) -> Result<Json<Employee>, ToolError> {
        let mut conn = self.db.read().await?;
        Ok(Json(employee(&mut conn, &args.employee_id).await?))
    }

    /// A new employee's onboarding checklist: each item with its owner, due date and
    /// status.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_onboarding_checklist(
        &self,
        Parameters(args): Parameters<EmployeeRef>,
    ) -> Result<Json<Checklist>, ToolError> {
        let mut conn = self.db.read().await?;
        let employee = employee(&mut conn, &args.employee_id).await?;
        let rows: Vec<(String, String, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT item, title, owner, due_on, status, completed_at FROM onboarding_items
             WHERE employee_id = ? ORDER BY due_on, rowid",
        )
        .bind(employee.id.clone())
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Err(ToolError::NotFound(format!(
                "{} ({}) has no onboarding checklist.",
                employee.id, employee.name
            )));
        }
        let items: Vec<ChecklistItem> = rows
            .into_iter()
            .map(
                |(item, title, owner, due_on, status, completed_at)| ChecklistItem {
                    item,
                    title,
                    owner,
                    due_on,
                    status,
                    completed_at,
                },
            )
            .collect();
        Ok(Json(Checklist {
            employee_id: employee.id,
            start_date: employee.start_date,
            done: items.iter().filter(|i| i.status == "done").count() as i64,
            total: items.len() as i64,
            items,
        }))
    }

    /// The documents an employee has submitted, and the required kinds still missing.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn list_submitted_documents(
        &self,
        Parameters(args): Parameters<EmployeeRef>,
    ) -> Result<Json<DocumentList>, ToolError> {
        let mut conn = self.db.read().await?;
        let employee_id = employee(&mut conn, &args.employee_id).await?.id;
        Ok(Json(documents(&mut conn, &employee_id).await?))
    }

    /// Records that an employee submitted a document. A kind already on file is reported
    /// (`already_submitted: true`), not recorded twice. Pass an idempotency key to make a
    /// retry safe.
    #[tool(
        output_schema = schema_for_output::<DocumentRecorded>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn record_document(
        &self,
        Parameters(args): Parameters<RecordDocument>,
        meta: RequestMetaObject,
    ) -> Result<Written<DocumentRecorded>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("record_document", key, async |conn| {
                record_document(conn, args).await
            })
            .await
    }

    /// Opens an IT ticket for an employee (laptop, accounts, access, software, other).
    /// Pass an idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<TicketOpened>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn open_it_ticket(
        &self,
        Parameters(args): Parameters<OpenItTicket>,
        meta: RequestMetaObject,
    ) -> Result<Written<TicketOpened>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("open_it_ticket", key, async |conn| {
                open_it_ticket(conn, args).await
            })
            .await
    }

    /// Opens a facilities ticket for an employee (desk, badge, parking, ...). Pass an
    /// idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<TicketOpened>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn open_facilities_ticket(
        &self,
        Parameters(args): Parameters<OpenFacilitiesTicket>,
        meta: RequestMetaObject,
    ) -> Result<Written<TicketOpened>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("open_facilities_ticket", key, async |conn| {
                open_facilities_ticket(conn, args).await
            })
            .await
    }

    /// Marks an onboarding checklist item done (an item already done is reported as such).
    /// Pass an idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<ItemCompleted>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn complete_checklist_item(
        &self,
        Parameters(args): Parameters<CompleteChecklistItem>,
        meta: RequestMetaObject,
    ) -> Result<Written<ItemCompleted>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("complete_checklist_item", key, async |conn| {
                complete_checklist_item(conn, args).await
            })
            .await
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "airlock-demo-hr",
    instructions = "Demo HR (offline, seeded data): employees EMP-6001..EMP-6012; EMP-6009..EMP-6012 are onboarding. Write tools take an optional idempotency_key (or _meta \"dev.airlock/idempotency_key\")."
)]
impl ServerHandler for HrServer {}
