//! The call history over 100,000 calls: `cargo bench -p airlock-engine --bench history`.
//!
//! Seeds a real database with `history_seed` (100,000 calls, ten per task, through the
//! store's ordinary commits), then times what the History view asks for when it opens and
//! as it is used, each the median of 20 runs on the store's read connections:
//!
//! `peer=airlock test=history calls=100000 first_page_ms=… count_ms=… …`
//!
//! - `first_page_ms`: the newest 100 calls, no filter (the view's first request);
//! - `count_ms`: how many calls there are (asked beside it);
//! - `deep_page_ms`: 100 calls 50,000 rows down (a scrollbar dragged halfway);
//! - `next_page_ms`: the 100 after a given row (keyset);
//! - `filtered_page_ms` / `filtered_count_ms`: failed calls to one server's tools;
//! - `approver_page_ms`, `workflow_page_ms`, `text_page_ms` / `text_count_ms`: calls one
//!   person approved, of one workflow, with words in their arguments;
//! - `choices_ms`: the filter bar's choices; `csv_all_ms`: every call as CSV (in memory).
//!
//! Under `cargo test` (no `--bench` argument) this does nothing.

use std::error::Error;
use std::future::Future;
use std::time::Instant;

use airlock_engine::history::export_history_csv;
use airlock_engine::history_seed::{SeedPlan, seed_history, seeded_tools};
use airlock_engine::store::{
    AllowedBy, HistoryFilter, HistoryKey, HistoryRange, OutcomeFilter, RefusedBy, Store,
    StoreOptions, ToolCallOutcome,
};

type Res<T> = Result<T, Box<dyn Error>>;

const CALLS: u64 = 100_000;
const NEWEST: i64 = 1_795_392_000_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "the history benchmark only runs under `cargo bench -p airlock-engine --bench history`"
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// The median of 20 runs of `f`, in milliseconds, and the last run's answer.
async fn median_ms<T, F, Fut>(mut f: F) -> Res<(f64, T)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Res<T>>,
{
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..20 {
        let started = Instant::now();
        last = Some(f().await?);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], last.ok_or("no run")?))
}

async fn page(
    store: &Store,
    filter: &HistoryFilter,
    range: &HistoryRange,
    skip: u64,
) -> Res<usize> {
    Ok(store.call_history(filter, range, skip, 100).await?.len())
}

async fn count(store: &Store, filter: &HistoryFilter) -> Res<u64> {
    Ok(store
        .count_call_history(filter, &HistoryRange::default())
        .await?)
}

fn check(ok: bool, what: &str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("wrong answer: {what}").into())
    }
}

async fn run() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("history.sqlite");
    eprintln!("seeding {}", path.display());
    let store = Store::open(StoreOptions::new(&path), NEWEST).await?;
    let seeding = Instant::now();
    let plan = SeedPlan::ending_at(CALLS, NEWEST);
    seed_history(&store, &plan).await?;
    let seed_s = seeding.elapsed().as_secs_f64();
    let db_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;

    let all = HistoryFilter::default();
    let top = HistoryRange::default();
    let s = &store;

    let (first_page_ms, n) = median_ms(|| page(s, &all, &top, 0)).await?;
    check(n == 100, "first page")?;
    let (count_ms, total) = median_ms(|| count(s, &all)).await?;
    check(total == CALLS, "count")?;
    let (deep_page_ms, n) = median_ms(|| page(s, &all, &top, 50_000)).await?;
    check(n == 100, "deep page")?;
    let middle = HistoryRange {
        older_than: Some(HistoryKey {
            intent_at: plan.intent_at(50_000),
            id: SeedPlan::call_id(50_000),
        }),
        newer_than: None,
    };
    let (next_page_ms, n) = median_ms(|| page(s, &all, &middle, 0)).await?;
    check(n == 100, "next page")?;

    let failed_erp = HistoryFilter {
        server: Some("erp".into()),
        outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Failed)),
        ..HistoryFilter::default()
    };
    let (filtered_page_ms, n) = median_ms(|| page(s, &failed_erp, &top, 0)).await?;
    check(n == 100, "filtered page")?;
    let (filtered_count_ms, filtered) = median_ms(|| count(s, &failed_erp)).await?;
    let by_carol = HistoryFilter {
        approved_by: Some("carol".into()),
        allowed_by: Some(AllowedBy::Approval),
        ..HistoryFilter::default()
    };
    let (approver_page_ms, n) = median_ms(|| page(s, &by_carol, &top, 0)).await?;
    check(n == 100, "approver page")?;
    // Refused proposals: 1,000 rows (1 in 100), half of them held writes a person rejected.
    let rejected = HistoryFilter {
        refused_by: Some(RefusedBy::Person),
        ..HistoryFilter::default()
    };
    let (refused_page_ms, n) = median_ms(|| page(s, &rejected, &top, 0)).await?;
    check(n == 100, "refused page")?;
    let (refused_count_ms, refused) = median_ms(|| count(s, &rejected)).await?;
    check(refused == CALLS / 200, "refused count")?;
    let payout = HistoryFilter {
        workflow: Some("payout".into()),
        ..HistoryFilter::default()
    };
    let (workflow_page_ms, n) = median_ms(|| page(s, &payout, &top, 0)).await?;
    check(n == 100, "workflow page")?;
    let words = HistoryFilter {
        text: Some("SO-4242".into()),
        ..HistoryFilter::default()
    };
    let (text_page_ms, n) = median_ms(|| page(s, &words, &top, 0)).await?;
    check(n == 11, "text page")?;
    let (text_count_ms, _) = median_ms(|| count(s, &words)).await?;
    let (choices_ms, tools) =
        median_ms(|| async { Ok(s.history_choices().await?.tools.len()) }).await?;
    check(tools == seeded_tools().len(), "choices")?;

    let started = Instant::now();
    let mut csv = Vec::new();
    let rows = export_history_csv(&store, &all, &mut csv).await?;
    let csv_all_ms = started.elapsed().as_secs_f64() * 1000.0;
    check(rows == CALLS, "csv rows")?;

    println!(
        "peer=airlock test=history calls={CALLS} first_page_ms={first_page_ms:.2} \
         count_ms={count_ms:.2} deep_page_ms={deep_page_ms:.2} next_page_ms={next_page_ms:.2} \
         filtered_page_ms={filtered_page_ms:.2} filtered_count_ms={filtered_count_ms:.2} \
         filtered={filtered} approver_page_ms={approver_page_ms:.2} \
         refused_page_ms={refused_page_ms:.2} refused_count_ms={refused_count_ms:.2} \
         refused={refused} \
         workflow_page_ms={workflow_page_ms:.2} text_page_ms={text_page_ms:.2} \
         text_count_ms={text_count_ms:.2} choices_ms={choices_ms:.2} csv_all_ms={csv_all_ms:.0} \
         csv_mb={:.1} seed_s={seed_s:.1} db_mb={db_mb:.0}",
        csv.len() as f64 / 1e6
    );
    Ok(())
}
