//! `airlock-seed-history`: fills a database with a large, known history of tool calls
//! (ended tasks, their events, ledger rows, approvals), for benchmarks and end-to-end
//! tests of the history view. See `airlock_engine::history_seed` for what is written and
//! `docs/benchmarks.md` for how it is used.

use std::path::PathBuf;
use std::time::Instant;

use airlock_engine::history_seed::{SeedPlan, seed_history};
use airlock_engine::store::{Durability, Store, StoreOptions};
use airlock_engine::{Clock, SystemClock};
use anyhow::{Context, Result, bail};
use clap::Parser;

/// Seed a database with tool-call history (ended tasks only, so nothing will run).
#[derive(Parser)]
#[command(name = "airlock-seed-history", version)]
struct Args {
    /// The database to fill (created when missing; it must not hold seeded tasks yet)
    #[arg(long)]
    db: PathBuf,
    /// How many tool calls (ten per task)
    #[arg(long, default_value_t = 100_000)]
    calls: u64,
    /// When the newest task started, in milliseconds since the Unix epoch (default: now)
    #[arg(long)]
    newest_at: Option<i64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    let now = SystemClock.now();
    let plan = SeedPlan::ending_at(args.calls, args.newest_at.unwrap_or(now));
    // Seeding is re-runnable from nothing, so it need not survive power loss.
    let options = StoreOptions {
        durability: Durability::Normal,
        ..StoreOptions::new(&args.db)
    };
    let store = Store::open(options, now)
        .await
        .with_context(|| format!("opening {}", args.db.display()))?;
    let started = Instant::now();
    let seeded = seed_history(&store, &plan)
        .await
        .with_context(|| format!("seeding {}", args.db.display()))?;
    println!(
        "seeded db={} calls={} tasks={} commits={} seconds={:.1}",
        args.db.display(),
        seeded.calls,
        seeded.tasks,
        seeded.commits,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
