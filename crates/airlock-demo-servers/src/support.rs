//! The support desk server: customers, orders (items, history), tickets (messages),
//! refunds and account credits. Money is in integer cents (USD).

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
    one_of, positive_cents,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    tier TEXT NOT NULL,
    city TEXT NOT NULL,
    customer_since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    placed_on TEXT NOT NULL,
    status TEXT NOT NULL,
    total_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id TEXT NOT NULL REFERENCES orders(id),
    line INTEGER NOT NULL,
    sku TEXT NOT NULL REFERENCES products(sku),
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE IF NOT EXISTS order_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES orders(id),
    at TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    order_id TEXT REFERENCES orders(id),
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'closed')),
    priority TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    resolution TEXT
);
CREATE TABLE IF NOT EXISTS ticket_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES orders(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS account_credits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
";

// ---------------------------------------------------------------------------------------
// Seed data

const CUSTOMERS: [(&str, &str, &str, &str, &str, &str); 12] = [
    (
        "CUS-1001",
        "Maya Patel",
        "maya.patel@example.com",
        "gold",
        "Portland",
        "2023-03-14",
    ),
    (
        "CUS-1002",
        "Tom Okafor",
        "tom.okafor@example.com",
        "silver",
        "Austin",
        "2023-07-02",
    ),
    (
        "CUS-1003",
        "Sofia Marin",
        "sofia.marin@example.com",
        "bronze",
        "Denver",
        "2024-01-19",
    ),
    (
        "CUS-1004",
        "Liam Chen",
        "liam.chen@example.com",
        "gold",
        "Chicago",
        "2022-11-08",
    ),
    (
        "CUS-1005",
        "Amara Nwosu",
        "amara.nwosu@example.com",
        "silver",
        "Atlanta",
        "2024-04-27",
    ),
    (
        "CUS-1006",
        "Jonas Berg",
        "jonas.berg@example.com",
        "bronze",
        "Seattle",
        "2025-02-11",
    ),
    (
        "CUS-1007",
        "Priya Raman",
        "priya.raman@example.com",
        "gold",
        "Boston",
        "2021-09-30",
    ),
    (
        "CUS-1008",
        "Daniel Costa",
        "daniel.costa@example.com",
        "silver",
        "Phoenix",
        "2024-08-15",
    ),
    (
        "CUS-1009",
        "Hannah Novak",
        "hannah.novak@example.com",
        "bronze",
        "Madison",
        "2025-05-06",
    ),
    (
        "CUS-1010",
        "Oliver Grant",
        "oliver.grant@example.com",
        "silver",
        "Raleigh",
        "2023-12-01",
    ),
    (
        "CUS-1011",
        "Chloe Dubois",
        "chloe.dubois@example.com",
        "gold",
        "San Diego",
        "2022-06-23",
    ),
    (
        "CUS-1012",
        "Samuel Reyes",
        "samuel.reyes@example.com",
        "bronze",
        "Minneapolis",
        "2025-10-17",
    ),
];

const PRODUCTS: [(&str, &str, i64); 10] = [
    ("KB-201", "Mechanical keyboard", 12_900),
    ("MS-110", "Wireless mouse", 3_900),
    ("HD-330", "Noise-cancelling headphones", 24_900),
    ("MN-270", "27-inch monitor", 32_900),
    ("DK-050", "Standing desk converter", 18_900),
    ("CB-012", "USB-C cable, 2 m", 1_500),
    ("WC-720", "HD webcam", 7_900),
    ("LS-040", "Laptop stand", 4_900),
    ("SP-090", "Bluetooth speaker", 8_900),
    ("CH-880", "Ergonomic chair", 45_900),
];

type SeedOrder = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, i64)],
);

const ORDERS: [SeedOrder; 12] = [
    (
        "ORD-5001",
        "CUS-1001",
        "2026-05-02",
        "delivered",
        &[("HD-330", 1), ("CB-012", 2)],
    ),
    (
        "ORD-5002",
        "CUS-1002",
        "2026-05-04",
        "delivered",
        &[("KB-201", 1), ("MS-110", 1)],
    ),
    (
        "ORD-5003",
        "CUS-1003",
        "2026-05-07",
        "delivered",
        &[("MN-270", 2)],
    ),
    (
        "ORD-5004",
        "CUS-1004",
        "2026-05-11",
        "shipped",
        &[("CH-880", 1)],
    ),
    (
        "ORD-5005",
        "CUS-1001",
        "2026-05-15",
        "delivered",
        &[("WC-720", 1), ("LS-040", 1)],
    ),
    (
        "ORD-5006",
        "CUS-1005",
        "2026-05-18",
        "delivered",
        &[("SP-090", 1)],
    ),
    (
        "ORD-5007",
        "CUS-1006",
        "2026-05-21",
        "cancelled",
        &[("DK-050", 1)],
    ),
    (
        "ORD-5008",
        "CUS-1007",
        "2026-05-24",
        "delivered",
        &[("HD-330", 1), ("KB-201", 1), ("MS-110", 1)],
    ),
    (
        "ORD-5009",
        "CUS-1008",
        "2026-05-28",
        "processing",
        &[("MN-270", 1), ("CB-012", 1)],
    ),
    (
        "ORD-5010",
        "CUS-1009",
        "2026-06-01",
        "delivered",
        &[("LS-040", 2)],
    ),
    (
        "ORD-5011",
        "CUS-1010",
        "2026-06-03",
        "shipped",
        &[("CH-880", 1), ("DK-050", 1)],
    ),
    (
        "ORD-5012",
        "CUS-1011",
        "2026-06-06",
        "delivered",
        &[("WC-720", 1), ("SP-090", 1), ("CB-012", 3)],
    ),
];

/// (ticket, customer, order, subject, status, priority, opened_at, first message)
type SeedTicket = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const TICKETS: [SeedTicket; 12] = [
    (
        "TCK-2001",
        "CUS-1001",
        Some("ORD-5001"),
        "Headphones stopped charging",
        "open",
        "high",
        "2026-06-10T09:12:00Z",
        "My headphones stopped charging after two weeks. I'd like a refund or a replacement.",
    ),
    (
        "TCK-2002",
        "CUS-1002",
        Some("ORD-5002"),
        "Keyboard arrived with a missing keycap",
        "open",
        "normal",
        "2026-06-11T14:03:00Z",
        "The right shift keycap is missing from my new keyboard.",
    ),
    (
        "TCK-2003",
        "CUS-1003",
        Some("ORD-5003"),
        "Dead pixels on one monitor",
        "closed",
        "normal",
        "2026-05-13T10:40:00Z",
        "One of the two monitors has a cluster of dead pixels in the corner.",
    ),
    (
        "TCK-2004",
        "CUS-1004",
        Some("ORD-5004"),
        "Where is my chair?",
        "open",
        "normal",
        "2026-06-12T08:25:00Z",
        "Tracking has not moved for five days. When will the chair arrive?",
    ),
    (
        "TCK-2005",
        "CUS-1005",
        Some("ORD-5006"),
        "Speaker arrived damaged",
        "open",
        "high",
        "2026-06-12T16:48:00Z",
        "The speaker grille is dented and it rattles at any volume.",
    ),
    (
        "TCK-2006",
        "CUS-1006",
        Some("ORD-5007"),
        "Please confirm my cancellation",
        "closed",
        "low",
        "2026-05-21T19:02:00Z",
        "I cancelled the desk converter order. Can you confirm the refund?",
    ),
    (
        "TCK-2007",
        "CUS-1007",
        Some("ORD-5008"),
        "Mouse double-clicks",
        "closed",
        "normal",
        "2026-05-30T11:15:00Z",
        "The mouse registers a double click on every single click.",
    ),
    (
        "TCK-2008",
        "CUS-1008",
        Some("ORD-5009"),
        "Change the delivery address",
        "pending",
        "normal",
        "2026-05-29T07:55:00Z",
        "I am moving next week; please ship to my new address instead.",
    ),
    (
        "TCK-2009",
        "CUS-1009",
        Some("ORD-5010"),
        "Need an invoice copy",
        "open",
        "low",
        "2026-06-13T12:30:00Z",
        "Could you send me a copy of the invoice for my expense report?",
    ),
    (
        "TCK-2010",
        "CUS-1010",
        Some("ORD-5011"),
        "Only half of my order arrived",
        "open",
        "normal",
        "2026-06-14T09:05:00Z",
        "The desk converter came but there is no sign of the chair.",
    ),
    (
        "TCK-2011",
        "CUS-1011",
        Some("ORD-5012"),
        "Charged twice for cables",
        "open",
        "high",
        "2026-06-14T17:20:00Z",
        "My card statement shows the cables twice. Please check.",
    ),
    (
        "TCK-2012",
        "CUS-1012",
        None,
        "Update my email address",
        "open",
        "low",
        "2026-06-15T10:00:00Z",
        "Please change my email to sam.reyes@example.net.",
    ),
];

/// (order, amount, reason, created_at)
const REFUNDS: [(&str, i64, &str, &str); 3] = [
    (
        "ORD-5003",
        32_900,
        "One monitor had a dead pixel cluster",
        "2026-05-15T09:30:00Z",
    ),
    (
        "ORD-5007",
        18_900,
        "Order cancelled before shipping",
        "2026-05-21T19:45:00Z",
    ),
    (
        "ORD-5008",
        3_900,
        "Faulty mouse (double-clicks)",
        "2026-06-01T13:10:00Z",
    ),
];

/// (customer, amount, reason, created_at)
const CREDITS: [(&str, i64, &str, &str); 3] = [
    (
        "CUS-1004",
        2_500,
        "Goodwill for a delayed shipment",
        "2026-05-20T10:00:00Z",
    ),
    ("CUS-1007", 1_000, "Loyalty reward", "2026-04-01T09:00:00Z"),
    (
        "CUS-1011",
        1_500,
        "Price match on webcam",
        "2026-06-08T15:45:00Z",
    ),
];

async fn seed(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    for (id, name, email, tier, city, since) in CUSTOMERS {
        sqlx::query("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(email)
            .bind(tier)
            .bind(city)
            .bind(since)
            .execute(&mut *conn)
            .await?;
    }
    for (sku, description, price) in PRODUCTS {
        sqlx::query("INSERT INTO products VALUES (?, ?, ?)")
            .bind(sku)
            .bind(description)
            .bind(price)
            .execute(&mut *conn)
            .await?;
    }
    for (id, customer, placed_on, status, items) in ORDERS {
        let price = |sku: &str| {
            PRODUCTS
                .iter()
                .find(|p| p.0 == sku)
                .map(|p| p.2)
                .unwrap_or_default()
        };
        let total: i64 = items.iter().map(|(sku, qty)| price(sku) * qty).sum();
        sqlx::query("INSERT INTO orders VALUES (?, ?, ?, ?, ?)")
            .bind(id)
            .bind(customer)
            .bind(placed_on)
            .bind(status)
            .bind(total)
            .execute(&mut *conn)
            .await?;
        for (line, (sku, qty)) in (1i64..).zip(items.iter()) {
            sqlx::query("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(line)
                .bind(*sku)
                .bind(*qty)
                .bind(price(sku))
                .execute(&mut *conn)
                .await?;
        }
        let mut events = vec![("+0 days", "Order placed")];
        match status {
            "processing" => events.push(("+1 days", "Payment captured; awaiting stock")),
            "shipped" => events.push(("+2 days", "Shipped")),
            "delivered" => {
                events.push(("+2 days", "Shipped"));
                events.push(("+5 days", "Delivered"));
            }
            "cancelled" => events.push(("+0 days", "Cancelled by the customer")),
            _ => {}
        }
        for (offset, event) in events {
            sqlx::query(
                "INSERT INTO order_history (order_id, at, event) VALUES (?, date(?, ?), ?)",
            )
            .bind(id)
            .bind(placed_on)
            .bind(offset)
            .bind(event)
            .execute(&mut *conn)
            .await?;
        }
    }
    for (id, customer, order, subject, status, priority, opened_at, message) in TICKETS {
        let (closed_at, resolution) = if status == "closed" {
            (Some("2026-06-01T12:00:00Z"), Some("Resolved with a refund"))
        } else {
            (None, None)
        };
        sqlx::query("INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(customer)
            .bind(order)
            .bind(subject)
            .bind(status)
            .bind(priority)
            .bind(opened_at)
            .bind(closed_at)
            .bind(resolution)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO ticket_messages (ticket_id, at, author, body) VALUES (?, ?, 'customer', ?)")
            .bind(id)
            .bind(opened_at)
            .bind(message)
            .execute(&mut *conn)
            .await?;
    }
    for (order, amount, reason, at) in REFUNDS {
        sqlx::query(
            "INSERT INTO refunds (order_id, amount_cents, reason, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(order)
        .bind(amount)
        .bind(reason)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    for (customer, amount, reason, at) in CREDITS {
        sqlx::query(
            "INSERT INTO account_credits (customer_id, amount_cents, reason, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(customer)
        .bind(amount)
        .bind(reason)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tool inputs and outputs

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CustomerRef {
    /// Customer id, e.g. `CUS-1001`.
    pub customer_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderRef {
    /// Order id, e.g. `ORD-5001`.
    pub order_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TicketRef {
    /// Ticket id, e.g. `TCK-2001`.
    pub ticket_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TicketFilter {
    /// Only this customer's tickets.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Only tickets in this status: `open`, `pending` or `closed`.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IssueRefund {
    /// The order to refund, e.g. `ORD-5001`.
    pub order_id: String,
    /// Amount in cents (USD); at most the order's refundable remainder.
    #[schemars(range(min = 1))]
    pub amount_cents: i64,
    /// Why the refund is issued (shown to the customer and to finance).
    pub reason: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and refunds nothing more.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddAccountCredit {
    /// Customer id, e.g. `CUS-1001`.
    pub customer_id: String,
    /// Amount in cents (USD), positive.
    #[schemars(range(min = 1))]
    pub amount_cents: i64,
    /// Why the credit is given.
    pub reason: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and adds no second credit.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReplyToTicket {
    /// Ticket id, e.g. `TCK-2001`.
    pub ticket_id: String,
    /// The reply sent to the customer.
    pub body: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result and posts no second reply.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CloseTicket {
    /// Ticket id, e.g. `TCK-2001`.
    pub ticket_id: String,
    /// How the ticket was resolved.
    pub resolution: String,
    /// Makes the call safe to repeat: a second call with the same key returns the first
    /// result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `gold`, `silver` or `bronze`.
    pub tier: String,
    pub city: String,
    pub customer_since: String,
    /// Sum of the account credits given to this customer, in cents.
    pub credit_balance_cents: i64,
    pub order_count: i64,
    pub open_ticket_count: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct OrderSummary {
    pub id: String,
    pub placed_on: String,
    /// `processing`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    pub total_cents: i64,
    pub refunded_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct OrderList {
    pub customer_id: String,
    pub orders: Vec<OrderSummary>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct OrderItem {
    pub line: i64,
    pub sku: String,
    pub description: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct OrderEvent {
    pub at: String,
    pub event: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Refund {
    pub refund_id: i64,
    pub amount_cents: i64,
    pub reason: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub placed_on: String,
    /// `processing`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    pub total_cents: i64,
    pub refunded_cents: i64,
    /// What can still be refunded: total minus refunds so far.
    pub refundable_cents: i64,
    pub items: Vec<OrderItem>,
    pub history: Vec<OrderEvent>,
    pub refunds: Vec<Refund>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TicketMessage {
    pub message_id: i64,
    pub at: String,
    /// `customer` or `agent`.
    pub author: String,
    pub body: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TicketSummary {
    pub id: String,
    pub customer_id: String,
    pub order_id: Option<String>,
    pub subject: String,
    /// `open`, `pending` or `closed`.
    pub status: String,
    /// `low`, `normal` or `high`.
    pub priority: String,
    pub opened_at: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TicketList {
    pub tickets: Vec<TicketSummary>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Ticket {
    #[serde(flatten)]
    pub summary: TicketSummary,
    pub closed_at: Option<String>,
    pub resolution: Option<String>,
    pub messages: Vec<TicketMessage>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RefundIssued {
    pub refund_id: i64,
    pub order_id: String,
    pub amount_cents: i64,
    pub reason: String,
    pub created_at: String,
    /// All refunds of the order so far, this one included.
    pub refunded_total_cents: i64,
    pub refundable_remaining_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CreditAdded {
    pub credit_id: i64,
    pub customer_id: String,
    pub amount_cents: i64,
    pub reason: String,
    pub created_at: String,
    pub credit_balance_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ReplyPosted {
    pub message_id: i64,
    pub ticket_id: String,
    pub at: String,
    pub ticket_status: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TicketClosed {
    pub ticket_id: String,
    pub status: String,
    pub closed_at: String,
    pub resolution: String,
}

// ---------------------------------------------------------------------------------------
// Queries

async fn customer(conn: &mut SqliteConnection, id: &str) -> Result<Customer, ToolError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        i64,
        i64,
        i64,
    );
    let row: Option<Row> = sqlx::query_as(
            "SELECT c.id, c.name, c.email, c.tier, c.city, c.customer_since,
                (SELECT coalesce(sum(amount_cents), 0) FROM account_credits WHERE customer_id = c.id),
                (SELECT count(*) FROM orders WHERE customer_id = c.id),
                (SELECT count(*) FROM tickets WHERE customer_id = c.id AND status != 'closed')
             FROM customers c WHERE c.id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let (id, name, email, tier, city, customer_since, credit, orders, open) =
        found(row, "customer", id)?;
    Ok(Customer {
        id,
        name,
        email,
        tier,
        city,
        customer_since,
        credit_balance_cents: credit,
        order_count: orders,
        open_ticket_count: open,
    })
}

async fn refunded(conn: &mut SqliteConnection, order_id: &str) -> Result<i64, ToolError> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(sum(amount_cents), 0) FROM refunds WHERE order_id = ?")
            .bind(order_id.to_string())
            .fetch_one(&mut *conn)
            .await?,
    )
}

async fn order(conn: &mut SqliteConnection, id: &str) -> Result<Order, ToolError> {
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT id, customer_id, placed_on, status, total_cents FROM orders WHERE id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, customer_id, placed_on, status, total_cents) = found(row, "order", id)?;
    let items: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
        "SELECT i.line, i.sku, p.description, i.quantity, i.unit_price_cents
         FROM order_items i JOIN products p ON p.sku = i.sku
         WHERE i.order_id = ? ORDER BY i.line",
    )
    .bind(id.clone())
    .fetch_all(&mut *conn)
    .await?;
    let history: Vec<(String, String)> =
        sqlx::query_as("SELECT at, event FROM order_history WHERE order_id = ? ORDER BY at, id")
            .bind(id.clone())
            .fetch_all(&mut *conn)
            .await?;
    let refunds: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT id, amount_cents, reason, created_at FROM refunds WHERE order_id = ? ORDER BY id",
    )
    .bind(id.clone())
    .fetch_all(&mut *conn)
    .await?;
    let refunded_cents: i64 = refunds.iter().map(|r| r.1).sum();
    Ok(Order {
        refundable_cents: refundable(total_cents, refunded_cents),
        id,
        customer_id,
        placed_on,
        status,
        total_cents,
        refunded_cents,
        items: items
            .into_iter()
            .map(
                |(line, sku, description, quantity, unit_price_cents)| OrderItem {
                    line,
                    sku,
                    description,
                    quantity,
                    unit_price_cents,
                },
            )
            .collect(),
        history: history
            .into_iter()
            .map(|(at, event)| OrderEvent { at, event })
            .collect(),
        refunds: refunds
            .into_iter()
            .map(|(refund_id, amount_cents, reason, created_at)| Refund {
                refund_id,
                amount_cents,
                reason,
                created_at,
            })
            .collect(),
    })
}

fn refundable(total_cents: i64, refunded_cents: i64) -> i64 {
    (total_cents - refunded_cents).max(0)
}

type TicketRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

fn ticket_summary(row: TicketRow) -> TicketSummary {
    let (id, customer_id, order_id, subject, status, priority, opened_at) = row;
    TicketSummary {
        id,
        customer_id,
        order_id,
        subject,
        status,
        priority,
        opened_at,
    }
}

async fn ticket(conn: &mut SqliteConnection, id: &str) -> Result<Ticket, ToolError> {
    type Row = (
        String,
        String,
        Option<String>,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
            "SELECT id, customer_id, order_id, subject, status, priority, opened_at, closed_at, resolution
             FROM tickets WHERE id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let (id, customer_id, order_id, subject, status, priority, opened_at, closed_at, resolution) =
        found(row, "ticket", id)?;
    let messages: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT id, at, author, body FROM ticket_messages WHERE ticket_id = ? ORDER BY id",
    )
    .bind(id.clone())
    .fetch_all(&mut *conn)
    .await?;
    Ok(Ticket {
        summary: ticket_summary((
            id,
            customer_id,
            order_id,
            subject,
            status,
            priority,
            opened_at,
        )),
        closed_at,
        resolution,
        messages: messages
            .into_iter()
            .map(|(message_id, at, author, body)| TicketMessage {
                message_id,
                at,
                author,
                body,
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------
// Effects (each runs inside the write transaction of its tool)

async fn issue_refund(
    conn: &mut SqliteConnection,
    args: IssueRefund,
) -> Result<RefundIssued, ToolError> {
    let amount = positive_cents("amount_cents", args.amount_cents)?;
    let reason = non_blank("reason", &args.reason)?;
    let order = order(conn, &args.order_id).await?;
    if order.status == "cancelled" && order.refundable_cents == 0 {
        return Err(ToolError::Invalid(format!(
            "Order {} was cancelled and already fully refunded.",
            order.id
        )));
    }
    if amount > order.refundable_cents {
        return Err(ToolError::Invalid(format!(
            "Refund of {amount} cents exceeds the refundable remainder of order {} ({} of {} cents already refunded, {} cents left).",
            order.id, order.refunded_cents, order.total_cents, order.refundable_cents
        )));
    }
    let at = now_iso(conn).await?;
    let refund_id: i64 = sqlx::query_scalar(
        "INSERT INTO refunds (order_id, amount_cents, reason, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(order.id.clone())
    .bind(amount)
    .bind(reason.clone())
    .bind(at.clone())
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO order_history (order_id, at, event) VALUES (?, ?, ?)")
        .bind(order.id.clone())
        .bind(at.clone())
        .bind(format!("Refund #{refund_id} of {amount} cents issued"))
        .execute(&mut *conn)
        .await?;
    let refunded_total = refunded(conn, &order.id).await?;
    Ok(RefundIssued {
        refund_id,
        order_id: order.id,
        amount_cents: amount,
        reason,
        created_at: at,
        refunded_total_cents: refunded_total,
        refundable_remaining_cents: refundable(order.total_cents, refunded_total),
    })
}

async fn add_account_credit(
    conn: &mut SqliteConnection,
    args: AddAccountCredit,
) -> Result<CreditAdded, ToolError> {
    let amount = positive_cents("amount_cents", args.amount_cents)?;
    let reason = non_blank("reason", &args.reason)?;
    let customer_id = customer(conn, &args.customer_id).await?.id;
    let at = now_iso(conn).await?;
    let credit_id: i64 = sqlx::query_scalar(
        "INSERT INTO account_credits (customer_id, amount_cents, reason, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(customer_id.clone())
    .bind(amount)
    .bind(reason.clone())
    .bind(at.clone())
    .fetch_one(&mut *conn)
    .await?;
    let balance = customer(conn, &customer_id).await?.credit_balance_cents;
    Ok(CreditAdded {
        credit_id,
        customer_id,
        amount_cents: amount,
        reason,
        created_at: at,
        credit_balance_cents: balance,
    })
}

async fn reply_to_ticket(
    conn: &mut SqliteConnection,
    args: ReplyToTicket,
) -> Result<ReplyPosted, ToolError> {
    let body = non_blank("body", &args.body)?;
    let ticket = ticket(conn, &args.ticket_id).await?;
    if ticket.summary.status == "closed" {
        return Err(ToolError::Invalid(format!(
            "Ticket {} is closed; it cannot take a reply.",
            ticket.summary.id
        )));
    }
    let at = now_iso(conn).await?;
    let message_id: i64 = sqlx::query_scalar(
        "INSERT INTO ticket_messages (ticket_id, at, author, body) VALUES (?, ?, 'agent', ?) RETURNING id",
    )
    .bind(ticket.summary.id.clone())
    .bind(at.clone())
    .bind(body)
    .fetch_one(&mut *conn)
    .await?;
    Ok(ReplyPosted {
        message_id,
        ticket_id: ticket.summary.id,
        at,
        ticket_status: ticket.summary.status,
    })
}

async fn close_ticket(
    conn: &mut SqliteConnection,
    args: CloseTicket,
) -> Result<TicketClosed, ToolError> {
    let resolution = non_blank("resolution", &args.resolution)?;
    let ticket = ticket(conn, &args.ticket_id).await?;
    if ticket.summary.status == "closed" {
        return Err(ToolError::Invalid(format!(
            "Ticket {} is already closed (at {}).",
            ticket.summary.id,
            ticket.closed_at.unwrap_or_default()
        )));
    }
    let at = now_iso(conn).await?;
    sqlx::query("UPDATE tickets SET status = 'closed', closed_at = ?, resolution = ? WHERE id = ?")
        .bind(at.clone())
        .bind(resolution.clone())
        .bind(ticket.summary.id.clone())
        .execute(&mut *conn)
        .await?;
    Ok(TicketClosed {
        ticket_id: ticket.summary.id,
        status: "closed".into(),
        closed_at: at,
        resolution,
    })
}

// ---------------------------------------------------------------------------------------
// The server

#[derive(Clone, Debug)]
pub struct SupportServer {
    db: Db,
    tool_router: ToolRouter<Self>,
}

impl Dataset for SupportServer {
    const NAME: &'static str = "support";
    const SCHEMA: &'static str = SCHEMA;
    fn seed(conn: &mut SqliteConnection) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        seed(conn)
    }
}

impl DemoServer for SupportServer {
    fn new(db: Db) -> Self {
        SupportServer {
            db,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl SupportServer {
    /// A customer's profile: contact details, tier, credit balance, counts of orders and
    /// open tickets.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_customer(
        &self,
        Parameters(args): Parameters<CustomerRef>,
    ) -> Result<Json<Customer>, ToolError> {
        let mut conn = self.db.read().await?;
        Ok(Json(customer(&mut conn, &args.customer_id).await?))
    }

    /// The orders of one customer, newest first, with totals and amounts refunded.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn list_orders(
        &self,
        Parameters(args): Parameters<CustomerRef>,
    ) -> Result<Json<OrderList>, ToolError> {
        let mut conn = self.db.read().await?;
        let customer_id = customer(&mut conn, &args.customer_id).await?.id;
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT o.id, o.placed_on, o.status, o.total_cents,
                (SELECT coalesce(sum(amount_cents), 0) FROM refunds WHERE order_id = o.id)
             FROM orders o WHERE o.customer_id = ? ORDER BY o.placed_on DESC, o.id DESC",
        )
        .bind(customer_id.clone())
        .fetch_all(&mut *conn)
        .await?;
        Ok(Json(OrderList {
            customer_id,
            orders: rows
                .into_iter()
                .map(
                    |(id, placed_on, status, total_cents, refunded_cents)| OrderSummary {
                        id,
                        placed_on,
                        status,
                        total_cents,
                        refunded_cents,
                    },
                )
                .collect(),
        }))
    }

    /// One order: items, status history, refunds so far and the refundable remainder.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_order(
        &self,
        Parameters(args): Parameters<OrderRef>,
    ) -> Result<Json<Order>, ToolError> {
        let mut conn = self.db.read().await?;
        Ok(Json(order(&mut conn, &args.order_id).await?))
    }

    /// One support ticket with its whole message thread.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn get_ticket(
        &self,
        Parameters(args): Parameters<TicketRef>,
    ) -> Result<Json<Ticket>, ToolError> {
        let mut conn = self.db.read().await?;
        Ok(Json(ticket(&mut conn, &args.ticket_id).await?))
    }

    /// Support tickets, newest first, optionally only one customer's and/or one status
    /// (`open`, `pending`, `closed`).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn list_tickets(
        &self,
        Parameters(args): Parameters<TicketFilter>,
    ) -> Result<Json<TicketList>, ToolError> {
        if let Some(status) = &args.status {
            one_of(
                "ticket status",
                status,
                status,
                &["open", "pending", "closed"],
            )?;
        }
        let mut conn = self.db.read().await?;
        let rows: Vec<TicketRow> = sqlx::query_as(
            "SELECT id, customer_id, order_id, subject, status, priority, opened_at FROM tickets
             WHERE (?1 IS NULL OR customer_id = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY opened_at DESC, id DESC",
        )
        .bind(args.customer_id)
        .bind(args.status)
        .fetch_all(&mut *conn)
        .await?;
        Ok(Json(TicketList {
            tickets: rows.into_iter().map(ticket_summary).collect(),
        }))
    }

    /// Refunds part or all of an order to the customer's original payment method. Refuses
    /// an amount above the order's refundable remainder (total minus earlier refunds).
    /// Pass an idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<RefundIssued>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn issue_refund(
        &self,
        Parameters(args): Parameters<IssueRefund>,
        meta: RequestMetaObject,
    ) -> Result<Written<RefundIssued>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("issue_refund", key, async |conn| {
                issue_refund(conn, args).await
            })
            .await
    }

    /// Adds store credit to a customer's account (usable on future orders). Pass an
    /// idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<CreditAdded>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn add_account_credit(
        &self,
        Parameters(args): Parameters<AddAccountCredit>,
        meta: RequestMetaObject,
    ) -> Result<Written<CreditAdded>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("add_account_credit", key, async |conn| {
                add_account_credit(conn, args).await
            })
            .await
    }

    /// Posts an agent reply on an open or pending ticket (the customer is emailed). Pass
    /// an idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<ReplyPosted>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn reply_to_ticket(
        &self,
        Parameters(args): Parameters<ReplyToTicket>,
        meta: RequestMetaObject,
    ) -> Result<Written<ReplyPosted>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("reply_to_ticket", key, async |conn| {
                reply_to_ticket(conn, args).await
            })
            .await
    }

    /// Closes a ticket with a resolution note; a closed ticket takes no more replies. Pass
    /// an idempotency key to make a retry safe.
    #[tool(
        output_schema = schema_for_output::<TicketClosed>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn close_ticket(
        &self,
        Parameters(args): Parameters<CloseTicket>,
        meta: RequestMetaObject,
    ) -> Result<Written<TicketClosed>, ToolError> {
        let key = idempotency_key(args.idempotency_key.clone(), &meta)?;
        self.db
            .write("close_ticket", key, async |conn| {
                close_ticket(conn, args).await
            })
            .await
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "airlock-demo-support",
    instructions = "Demo support desk (offline, seeded data): customers CUS-1001..CUS-1012, orders ORD-5001..ORD-5012, tickets TCK-2001..TCK-2012. Money is in integer cents (USD). Write tools take an optional idempotency_key (or _meta \"dev.airlock/idempotency_key\")."
)]
impl ServerHandler for SupportServer {}
