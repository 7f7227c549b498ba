//! The call history over a real SQLite file filled by the seeder, whose pattern gives
//! every answer (see `history_seed::SeedPlan`): each filter, the keyset pages and their
//! boundaries, positions reached by skipping, counts of what arrived since, and the
//! migration that fills in the decisions of rows written before they were recorded.

#![allow(clippy::unwrap_used)]

use airlock_engine::history_seed::{GRANT_ID, GRANT_RULE, SeedPlan, Seeded, seed_history};
use airlock_engine::store::{
    AllowedBy, CallAllowance, CallRefusal, HistoryFilter, HistoryKey, HistoryRange, HistoryRow,
    OutcomeFilter, RefusedBy, Store, StoreOptions, ToolCallOutcome,
};
use sqlx::Connection;

const T0: i64 = 1_795_392_000_000;
const CALLS: u64 = 300;

fn plan() -> SeedPlan {
    SeedPlan {
        calls: CALLS,
        calls_per_task: 10,
        first_at: T0,
        task_every_ms: 25_000,
        call_every_ms: 2_000,
        concurrency: 8,
    }
}

async fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path().join("a.sqlite")), T0)
        .await
        .unwrap();
    let seeded = seed_history(&store, &plan()).await.unwrap();
    assert_eq!(
        (seeded.tasks, seeded.calls),
        (30, CALLS),
        "seeded {seeded:?}"
    );
    (dir, store)
}

async fn all(store: &Store, filter: &HistoryFilter) -> Vec<HistoryRow> {
    store
        .call_history(filter, &HistoryRange::default(), 0, 1_000)
        .await
        .unwrap()
}

async fn count(store: &Store, filter: &HistoryFilter) -> u64 {
    store
        .count_call_history(filter, &HistoryRange::default())
        .await
        .unwrap()
}

/// The call numbers of `rows` (the seeder's ids are `c` and the number in hex).
fn numbers(rows: &[HistoryRow]) -> Vec<u64> {
    rows.iter()
        .map(|r| u64::from_str_radix(&r.call.id[1..], 16).unwrap())
        .collect()
}

/// Every call number matching `keep`, newest first.
fn expected(keep: impl Fn(u64) -> bool) -> Vec<u64> {
    (0..CALLS).rev().filter(|&i| keep(i)).collect()
}

#[tokio::test]
async fn each_filter_finds_exactly_the_calls_the_pattern_says() {
    let (_dir, store) = seeded().await;
    let p = plan();
    let cases: Vec<(&str, HistoryFilter, Vec<u64>)> = vec![
        ("everything", HistoryFilter::default(), expected(|_| true)),
        (
            "server erp",
            HistoryFilter {
                server: Some("erp".into()),
                ..HistoryFilter::default()
            },
            expected(|i| p.tool(i).starts_with("erp.")),
        ),
        (
            "server that is a prefix of none",
            HistoryFilter {
                server: Some("er".into()),
                ..HistoryFilter::default()
            },
            vec![],
        ),
        (
            "tool",
            HistoryFilter {
                tool: Some("erp.create_refund".into()),
                ..HistoryFilter::default()
            },
            expected(|i| i % 10 == 3 && (i / 10) % 3 == 0),
        ),
        (
            "outcome failed",
            HistoryFilter {
                outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Failed)),
                ..HistoryFilter::default()
            },
            expected(|i| i % 50 == 7),
        ),
        (
            "outcome happened",
            HistoryFilter {
                outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Happened)),
                ..HistoryFilter::default()
            },
            vec![13],
        ),
        (
            "outcome pending",
            HistoryFilter {
                outcome: Some(OutcomeFilter::Pending),
                ..HistoryFilter::default()
            },
            vec![],
        ),
        (
            "approved",
            HistoryFilter {
                allowed_by: Some(AllowedBy::Approval),
                ..HistoryFilter::default()
            },
            expected(|i| i % 10 == 3 && (i / 10) % 4 == 0),
        ),
        (
            "granted",
            HistoryFilter {
                allowed_by: Some(AllowedBy::Grant),
                ..HistoryFilter::default()
            },
            expected(|i| i % 10 == 5 && (i / 10) % 10 == 1),
        ),
        (
            "allowed by a rule",
            HistoryFilter {
                allowed_by: Some(AllowedBy::Policy),
                ..HistoryFilter::default()
            },
            expected(|i| p.allowed_by(i) == Some(AllowedBy::Policy)),
        ),
        (
            "outcome refused",
            HistoryFilter {
                outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Refused)),
                ..HistoryFilter::default()
            },
            expected(|i| p.refused_by(i).is_some()),
        ),
        (
            "denied by a rule",
            HistoryFilter {
                refused_by: Some(RefusedBy::Policy),
                ..HistoryFilter::default()
            },
            expected(|i| p.refused_by(i) == Some(RefusedBy::Policy)),
        ),
        (
            "rejected by a person",
            HistoryFilter {
                refused_by: Some(RefusedBy::Person),
                ..HistoryFilter::default()
            },
            expected(|i| p.refused_by(i) == Some(RefusedBy::Person)),
        ),
        (
            "refused calls of one server",
            HistoryFilter {
                server: Some("erp".into()),
                refused_by: Some(RefusedBy::Person),
                ..HistoryFilter::default()
            },
            vec![23],
        ),
        (
            "approved by dan",
            HistoryFilter {
                approved_by: Some("dan".into()),
                ..HistoryFilter::default()
            },
            expected(|i| i % 10 == 3 && (i / 10) % 4 == 0 && (i / 40) % 2 == 1),
        ),
        (
            "task by full id",
            HistoryFilter {
                task: Some(SeedPlan::task_id(17)),
                ..HistoryFilter::default()
            },
            expected(|i| i / 10 == 17),
        ),
        (
            "task by the start of its id",
            HistoryFilter {
                task: Some(SeedPlan::task_id(17)[..8].to_owned()),
                ..HistoryFilter::default()
            },
            expected(|i| i / 10 == 17),
        ),
        (
            "workflow",
            HistoryFilter {
                workflow: Some("payout".into()),
                ..HistoryFilter::default()
            },
            expected(|i| (i / 10) % 3 == 2),
        ),
        (
            "time range, since inclusive and until exclusive",
            HistoryFilter {
                since: Some(p.intent_at(100)),
                until: Some(p.intent_at(200)),
                ..HistoryFilter::default()
            },
            expected(|i| (100..200).contains(&i)),
        ),
        (
            "words in the arguments, any case",
            HistoryFilter {
                text: Some("so-42".into()),
                ..HistoryFilter::default()
            },
            vec![42],
        ),
        (
            "words in the tool's name",
            HistoryFilter {
                text: Some("REFUND".into()),
                ..HistoryFilter::default()
            },
            expected(|i| p.tool(i).contains("refund")),
        ),
        (
            "words in the error",
            HistoryFilter {
                text: Some("code 503".into()),
                ..HistoryFilter::default()
            },
            expected(|i| i % 50 == 7),
        ),
        (
            "a LIKE wildcard is only a character",
            HistoryFilter {
                text: Some("%".into()),
                ..HistoryFilter::default()
            },
            vec![],
        ),
        (
            "filters combine",
            HistoryFilter {
                server: Some("erp".into()),
                outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Failed)),
                ..HistoryFilter::default()
            },
            // Call 7 of a task fails; only a payout (tasks 5 and 20) calls erp there.
            vec![207, 57],
        ),
    ];
    for (name, filter, want) in cases {
        let rows = all(&store, &filter).await;
        assert_eq!(numbers(&rows), want, "{name}: rows");
        assert_eq!(
            count(&store, &filter).await,
            want.len() as u64,
            "{name}: count"
        );
    }
}

#[tokio::test]
async fn rows_carry_their_task_workflow_and_decision() {
    let (_dir, store) = seeded().await;
    let rows = all(&store, &HistoryFilter::default()).await;
    let row = |i: u64| {
        rows.iter()
            .find(|r| r.call.id == SeedPlan::call_id(i))
            .unwrap()
    };

    // Task 2 (a payout): its write held and rejected; task 7 (an onboarding): a later
    // write denied by a rule. Refused, never made, with what refused them and why.
    let rejected = row(23);
    assert_eq!(rejected.call.tool, "erp.create_payout");
    assert_eq!(rejected.call.outcome, Some(ToolCallOutcome::Refused));
    assert_eq!(rejected.call.allowed, None);
    assert_eq!(
        rejected.call.refusal,
        Some(CallRefusal::Person {
            approval_id: format!("a{:031x}", 23),
            rejected_by: "dan".into(),
            rule: Some("payouts need a controller".into()),
        })
    );
    assert_eq!(
        rejected.call.error.as_deref(),
        Some("refused: dan rejected this call: a duplicate of an earlier request")
    );
    let denied = row(76);
    assert_eq!(denied.call.tool, "hr.book_orientation");
    assert_eq!(
        denied.call.refusal,
        Some(CallRefusal::Policy {
            rule: Some(airlock_engine::history_seed::DENY_RULE.into()),
            approval_id: None,
        })
    );
    assert_eq!(denied.call.outcome_at, Some(denied.call.intent_at));

    let approved = row(43);
    assert_eq!(approved.call.task_id, SeedPlan::task_id(4));
    assert_eq!(approved.workflow, "onboard");
    assert_eq!(approved.call.tool, "hr.create_account");
    assert_eq!(approved.server(), "hr");
    assert_eq!(approved.call.intent_at, plan().intent_at(43));
    assert_eq!(
        approved.call.allowed,
        Some(CallAllowance::Approval {
            approval_id: format!("a{:031x}", 43),
            approver: "dan".into(),
            rule: Some("new accounts need IT".into()),
        })
    );
    assert_eq!(
        row(15).call.allowed,
        Some(CallAllowance::Grant {
            grant_id: GRANT_ID.into(),
            rule: Some(GRANT_RULE.into()),
        })
    );
    let failed = row(57);
    assert_eq!(failed.call.outcome, Some(ToolCallOutcome::Failed));
    assert!(failed.call.error.as_deref().unwrap().contains("code 503"));
    assert_eq!(row(13).call.resolved_by.as_deref(), Some("carol"));
}

#[tokio::test]
async fn keyset_pages_cover_every_row_once_in_order() {
    let (_dir, store) = seeded().await;
    let filter = HistoryFilter::default();
    let mut seen = Vec::new();
    let mut range = HistoryRange::default();
    let mut pages = 0;
    loop {
        let page = store.call_history(&filter, &range, 0, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        pages += 1;
        assert!(page.len() == 7 || page.len() == (CALLS % 7) as usize);
        range.older_than = page.last().map(HistoryRow::key);
        seen.extend(page);
    }
    assert_eq!(pages, CALLS.div_ceil(7));
    assert_eq!(numbers(&seen), expected(|_| true));
    // Strictly descending by (intent_at, id).
    for pair in seen.windows(2) {
        let (a, b) = (pair[0].key(), pair[1].key());
        assert!((a.intent_at, &a.id) > (b.intent_at, &b.id));
    }
    // After the last row there is nothing; before the first, nothing newer.
    let last = seen.last().unwrap().key();
    let after_last = HistoryRange {
        older_than: Some(last),
        newer_than: None,
    };
    assert!(
        store
            .call_history(&filter, &after_last, 0, 7)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .count_call_history(&filter, &after_last)
            .await
            .unwrap(),
        0
    );
    // Positions with no filter are found in the index alone: the same rows.
    let below_top = HistoryRange {
        older_than: Some(seen[0].key()),
        newer_than: None,
    };
    for skip in [1_u64, 150, 296, 298, 299] {
        let page = store
            .call_history(&filter, &below_top, skip, 3)
            .await
            .unwrap();
        let want: Vec<u64> = expected(|_| true)
            .into_iter()
            .skip(skip as usize + 1)
            .take(3)
            .collect();
        assert_eq!(numbers(&page), want, "skip {skip}");
    }
}

#[tokio::test]
async fn a_page_continues_exactly_after_its_bound_even_within_one_millisecond() {
    let (_dir, store) = seeded().await;
    let filter = HistoryFilter::default();
    // A bound between two rows of the same time: the id decides.
    let at = plan().intent_at(120);
    let bound = HistoryKey {
        intent_at: at,
        id: SeedPlan::call_id(120),
    };
    let older = HistoryRange {
        older_than: Some(bound.clone()),
        newer_than: None,
    };
    let page = store.call_history(&filter, &older, 0, 3).await.unwrap();
    assert_eq!(numbers(&page), vec![119, 118, 117]);
    let newer = HistoryRange {
        older_than: None,
        newer_than: Some(bound),
    };
    assert_eq!(
        store.count_call_history(&filter, &newer).await.unwrap(),
        179
    );
    assert_eq!(
        numbers(&store.call_history(&filter, &newer, 0, 2).await.unwrap()),
        vec![299, 298]
    );
    // The same time with a greater id: call 120 itself is older than that.
    let same_ms = HistoryRange {
        older_than: Some(HistoryKey {
            intent_at: at,
            id: "d".into(),
        }),
        newer_than: None,
    };
    let page = store.call_history(&filter, &same_ms, 0, 2).await.unwrap();
    assert_eq!(numbers(&page), vec![120, 119]);
}

#[tokio::test]
async fn skipping_reaches_any_position_below_a_bound() {
    let (_dir, store) = seeded().await;
    let filter = HistoryFilter {
        server: Some("support".into()),
        ..HistoryFilter::default()
    };
    let p = plan();
    let every = expected(|i| p.tool(i).starts_with("support."));
    let top = store
        .call_history(&filter, &HistoryRange::default(), 0, 1)
        .await
        .unwrap();
    let below_top = HistoryRange {
        older_than: top.first().map(HistoryRow::key),
        newer_than: None,
    };
    // Row n of the whole list is row n - 1 below the top one.
    let page = store
        .call_history(&filter, &below_top, 40, 5)
        .await
        .unwrap();
    assert_eq!(numbers(&page), every[41..46].to_vec());
    // The last rows, a short page, and past the end.
    let tail = store
        .call_history(&filter, &below_top, (every.len() - 3) as u64, 5)
        .await
        .unwrap();
    assert_eq!(numbers(&tail), every[every.len() - 2..].to_vec());
    let past = store
        .call_history(&filter, &below_top, every.len() as u64, 5)
        .await
        .unwrap();
    assert!(past.is_empty());
}

#[tokio::test]
async fn choices_list_the_tools_workflows_and_approvers() {
    let (_dir, store) = seeded().await;
    let choices = store.history_choices().await.unwrap();
    assert_eq!(choices.tools, airlock_engine::history_seed::seeded_tools());
    assert_eq!(choices.workflows, vec!["onboard", "payout", "refund"]);
    assert_eq!(choices.approvers, vec!["carol", "dan"]);
}

/// A database written before migration 0011: its calls' decisions are read back from the
/// `policy_decided` events when it is opened.
#[tokio::test]
async fn the_migration_fills_in_decisions_from_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let before: Vec<HistoryRow>;
    {
        let store = Store::open(StoreOptions::new(&path), T0).await.unwrap();
        let _: Seeded = seed_history(&store, &plan()).await.unwrap();
        before = all(&store, &HistoryFilter::default()).await;
    }
    // Undo migration 0011, as if the rows had been written before it.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "DROP INDEX tool_calls_by_time;
         ALTER TABLE tool_calls DROP COLUMN allowed_by;
         ALTER TABLE tool_calls DROP COLUMN allow_rule;
         ALTER TABLE tool_calls DROP COLUMN allow_ref;
         ALTER TABLE tool_calls DROP COLUMN approved_by;
         DELETE FROM schema_migrations WHERE version = 11;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let store = Store::open(StoreOptions::new(&path), T0).await.unwrap();
    let after = all(&store, &HistoryFilter::default()).await;
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a.call.id, b.call.id);
        assert_eq!(a.call.allowed, b.call.allowed, "call {}", a.call.id);
    }
}

/// The CSV export writes every matching row (more than one page's worth), newest first,
/// each field quoted as RFC 4180 says.
#[tokio::test]
async fn the_csv_export_writes_every_matching_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path().join("a.sqlite")), T0)
        .await
        .unwrap();
    let big = SeedPlan {
        calls: 2_500,
        ..plan()
    };
    seed_history(&store, &big).await.unwrap();
    let mut out = Vec::new();
    let all =
        airlock_engine::history::export_history_csv(&store, &HistoryFilter::default(), &mut out)
            .await
            .unwrap();
    assert_eq!(
        all,
        2_500,
        "more than one page of {}",
        airlock_engine::store::MAX_HISTORY_PAGE
    );
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines.len(),
        2_502,
        "a header, the rows, and the empty rest after the last CRLF"
    );
    assert_eq!(lines[0], airlock_engine::history::CSV_COLUMNS.join(","));
    assert!(
        lines[1].contains(&SeedPlan::call_id(2_499)),
        "newest first: {}",
        lines[1]
    );
    assert_eq!(lines[2_501], "");

    let mut out = Vec::new();
    let filter = HistoryFilter {
        approved_by: Some("carol".into()),
        ..HistoryFilter::default()
    };
    let n = airlock_engine::history::export_history_csv(&store, &filter, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(n, text.split("\r\n").count() as u64 - 2);
    // Call 3 of task 0: approved by carol, its JSON arguments quoted with doubled quotes.
    let row = text
        .split("\r\n")
        .find(|l| l.contains(&SeedPlan::call_id(3)))
        .unwrap();
    assert!(
        row.starts_with(&format!(
            "{},",
            airlock_engine::history::utc_time(plan().intent_at(3))
        )),
        "{row}"
    );
    assert!(
        row.contains(
            ",erp,erp.create_refund,4,1,succeeded,approval,,refunds need a controller,carol,,"
        ),
        "{row}"
    );
    assert!(
        row.contains(",\"{\"\"customer_id\"\":\"\"C-0\"\","),
        "{row}"
    );
}
