//! Refused calls in the call history: the demo's support refund workflow against a real
//! `airlock-demo-support` process, under a policy that denies one refund, holds others for
//! a controller (one rejected, one left to expire) and allows a small one. Every refused
//! refund is in the history with what refused it, filterable by that and by outcome, in
//! the CSV export, and never in doubt after the engine restarts; the metrics do not count
//! it as a call.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_engine::history::export_history_csv;
use airlock_engine::policy::{Identities, Policy};
use airlock_engine::store::{
    AllowedBy, CallRefusal, HistoryFilter, HistoryRange, HistoryRow, MetricsFilter, OutcomeFilter,
    RefusedBy, StoreOptions, TaskStatus, ToolCallOutcome,
};
use airlock_engine::{Engine, EngineConfig, Governance, ManualClock, ScriptedModel, ToolHosts};
use airlock_mcp::{McpTools, ServerConfig, ServersConfig};
use serde_json::{Value, json};

/// 2026-11-20 00:00 UTC.
const T0: i64 = 1_795_132_800_000;

const POLICY: &str = r#"
[[rules]]
name = "reads are free"
risk = ["low"]
effect = "allow"

[[rules]]
name = "refunds"
tools = ["support.issue_refund"]
effect = "allow"

[[rules]]
name = "refunds above 20.00 need a controller"
tools = ["support.issue_refund"]
when = "args.amount_cents > 2000"
effect = "require_approval"
approvers = ["controller"]
expires_after = "1h"

[[rules]]
name = "no goodwill refunds"
tools = ["support.issue_refund"]
when = "args.reason == 'goodwill'"
effect = "deny"
reason = "goodwill refunds go through the account team"
"#;

const PEOPLE: &str = r#"
[identities.ada]
roles = ["operator"]
[identities.carol]
roles = ["controller"]
"#;

fn demo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workspace/demo")
}

fn workflow() -> airlock_engine::workflow::Workflow {
    airlock_engine::workflow::load(&demo().join("support-refund.toml")).unwrap()
}

async fn engine(dir: &Path, clock: Arc<ManualClock>) -> Engine {
    let db = dir.join("support.sqlite");
    let mut servers = ServersConfig::default();
    servers.servers.insert(
        "support".into(),
        ServerConfig::stdio(
            env!("CARGO_BIN_EXE_airlock-demo-support"),
            &["--db", db.to_str().unwrap()],
        ),
    );
    let tools = Arc::new(McpTools::connect(servers).await);
    let governance = Governance {
        policy: Arc::new(Arc::new(
            Policy::parse(Path::new("policy.toml"), POLICY).unwrap(),
        )),
        identities: Arc::new(Identities::parse(Path::new("identities.toml"), PEOPLE).unwrap()),
        check_approvers: true,
    };
    Engine::open(
        EngineConfig {
            governance,
            ..EngineConfig::new(StoreOptions::new(dir.join("airlock.sqlite")))
        },
        clock,
        Arc::new(ToolHosts::new().with(tools)),
        Some(Arc::new(
            ScriptedModel::load(&demo().join("models")).unwrap(),
        )),
    )
    .await
    .unwrap()
}

fn inputs(order: &str, cents: i64, reason: &str) -> serde_json::Map<String, Value> {
    json!({ "order_id": order, "amount_cents": cents, "reason": reason })
        .as_object()
        .cloned()
        .unwrap()
}

async fn history(engine: &Engine, filter: HistoryFilter) -> Vec<HistoryRow> {
    engine
        .store()
        .call_history(&filter, &HistoryRange::default(), 0, 1000)
        .await
        .unwrap()
}

fn refunds(rows: &[HistoryRow]) -> Vec<&HistoryRow> {
    rows.iter()
        .filter(|r| r.call.tool == "support.issue_refund")
        .collect()
}

#[tokio::test]
async fn refused_refunds_are_in_the_history_with_what_refused_them() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let first = engine(dir.path(), clock.clone()).await;
        let start = |order: &'static str, cents: i64, reason: &'static str| {
            let first = first.clone();
            async move {
                first
                    .start_task(&workflow(), inputs(order, cents, reason), "ada", None)
                    .await
                    .unwrap()
            }
        };

        // Allowed outright; denied by a rule; held and rejected; held and left to expire.
        let allowed = start("ORD-5001", 1500, "customer request").await;
        let denied = start("ORD-5002", 1500, "goodwill").await;
        let rejected = start("ORD-5003", 3000, "customer request").await;
        let expired = start("ORD-5004", 3000, "customer request").await;
        first.run_until_idle().await.unwrap();
        let status = |id: &str| {
            let first = first.clone();
            let id = id.to_owned();
            async move { first.find_task(&id).await.unwrap().projection.status }
        };
        assert_eq!(status(&allowed).await, TaskStatus::Succeeded);
        assert_eq!(status(&denied).await, TaskStatus::Failed);
        assert_eq!(status(&rejected).await, TaskStatus::WaitingApproval);
        assert_eq!(status(&expired).await, TaskStatus::WaitingApproval);

        let held = first.store().pending_approvals().await.unwrap();
        let to_reject = held.iter().find(|a| a.task_id == rejected).unwrap();
        first
            .decide_approval(&to_reject.id, false, "carol", Some("wrong order".into()))
            .await
            .unwrap();
        first.run_until_idle().await.unwrap();
        assert_eq!(status(&rejected).await, TaskStatus::Failed);
        clock.advance(Duration::from_secs(2 * 3600));
        first.run_until_idle().await.unwrap();
        assert_eq!(status(&expired).await, TaskStatus::Failed);

        // Every refund proposal is in the history: one made, three refused.
        let all = history(&first, HistoryFilter::default()).await;
        let made = refunds(&all);
        assert_eq!(made.len(), 4, "{made:#?}");
        let of = |task: &str| {
            made.iter()
                .find(|r| r.call.task_id == task)
                .map(|r| r.call.clone())
                .unwrap()
        };
        assert_eq!(of(&allowed).outcome, Some(ToolCallOutcome::Succeeded));
        assert!(of(&allowed).refusal.is_none());

        let denied_call = of(&denied);
        assert_eq!(denied_call.outcome, Some(ToolCallOutcome::Refused));
        assert_eq!(
            denied_call.refusal,
            Some(CallRefusal::Policy {
                rule: Some("no goodwill refunds".into()),
                approval_id: None,
            })
        );
        assert!(denied_call.allowed.is_none());
        assert_eq!(denied_call.args["reason"], "goodwill");
        assert!(
            denied_call
                .error
                .as_deref()
                .unwrap()
                .contains("goodwill refunds go through the account team"),
            "{:?}",
            denied_call.error
        );

        let rejected_call = of(&rejected);
        assert_eq!(rejected_call.outcome, Some(ToolCallOutcome::Refused));
        assert_eq!(
            rejected_call.refusal,
            Some(CallRefusal::Person {
                approval_id: to_reject.id.clone(),
                rejected_by: "carol".into(),
                rule: Some("refunds above 20.00 need a controller".into()),
            })
        );
        assert!(
            rejected_call
                .error
                .as_deref()
                .unwrap()
                .contains("carol rejected this call: wrong order")
        );

        let expired_call = of(&expired);
        assert_eq!(expired_call.outcome, Some(ToolCallOutcome::Refused));
        assert!(
            matches!(
                &expired_call.refusal,
                Some(CallRefusal::Expiry { rule: Some(rule), .. })
                    if rule == "refunds above 20.00 need a controller"
            ),
            "{:?}",
            expired_call.refusal
        );

        // Filterable by what refused them, and by the outcome.
        for (by, task) in [
            (RefusedBy::Policy, &denied),
            (RefusedBy::Person, &rejected),
            (RefusedBy::Expiry, &expired),
        ] {
            let rows = history(
                &first,
                HistoryFilter {
                    refused_by: Some(by),
                    ..HistoryFilter::default()
                },
            )
            .await;
            let tasks: Vec<_> = rows.iter().map(|r| r.call.task_id.as_str()).collect();
            assert_eq!(tasks, [task.as_str()], "{by:?}");
        }
        let refused = history(
            &first,
            HistoryFilter {
                outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Refused)),
                ..HistoryFilter::default()
            },
        )
        .await;
        assert_eq!(refused.len(), 3);
        let count = first
            .store()
            .count_call_history(
                &HistoryFilter {
                    outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Refused)),
                    tool: Some("support.issue_refund".into()),
                    ..HistoryFilter::default()
                },
                &HistoryRange::default(),
            )
            .await
            .unwrap();
        assert_eq!(count, 3);
        // And by who rejected them, a choice the filter offers.
        for (person, expected) in [("carol", vec![rejected.as_str()]), ("dave", vec![])] {
            let rows = history(
                &first,
                HistoryFilter {
                    rejected_by: Some(person.into()),
                    ..HistoryFilter::default()
                },
            )
            .await;
            let tasks: Vec<_> = rows.iter().map(|r| r.call.task_id.as_str()).collect();
            assert_eq!(tasks, expected, "{person}");
        }
        let choices = first.store().history_choices().await.unwrap();
        assert_eq!(choices.rejecters, ["carol"]);
        // A filter on what let calls through never shows a refused one.
        let by_policy = history(
            &first,
            HistoryFilter {
                allowed_by: Some(AllowedBy::Policy),
                ..HistoryFilter::default()
            },
        )
        .await;
        assert!(by_policy.iter().all(|r| r.call.refusal.is_none()));
        assert!(!by_policy.is_empty());

        // The CSV export names the rule and who rejected.
        let mut csv = Vec::new();
        export_history_csv(
            first.store(),
            &HistoryFilter {
                outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Refused)),
                ..HistoryFilter::default()
            },
            &mut csv,
        )
        .await
        .unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        let rejected_line = lines
            .iter()
            .find(|l| l.contains(&rejected_call.id))
            .unwrap();
        assert!(
            rejected_line
                .contains(",refused,,person,refunds above 20.00 need a controller,,carol,"),
            "{rejected_line}"
        );
        let denied_line = lines.iter().find(|l| l.contains(&denied_call.id)).unwrap();
        assert!(
            denied_line.contains(",refused,,policy,no goodwill refunds,,,,"),
            "{denied_line}"
        );

        // A refused call is not a tool call in the metrics: they count the calls made.
        let figures = first
            .store()
            .metrics(&MetricsFilter::default())
            .await
            .unwrap();
        let made_calls = all
            .iter()
            .filter(|r| r.call.outcome != Some(ToolCallOutcome::Refused))
            .count();
        assert_eq!(figures.total.tool_calls, i64::try_from(made_calls).unwrap());
        first.close().await.unwrap();

        // After a restart nothing is in doubt and the refused rows are as they were.
        let second = engine(dir.path(), clock.clone()).await;
        second.run_until_idle().await.unwrap();
        for task in [&denied, &rejected, &expired] {
            let t = second.find_task(task).await.unwrap();
            assert_eq!(t.projection.status, TaskStatus::Failed, "{task}");
        }
        let in_doubt = second
            .store()
            .all_tool_calls(Some(ToolCallOutcome::InDoubt), 100)
            .await
            .unwrap();
        assert!(in_doubt.is_empty(), "{in_doubt:#?}");
        let pending = history(
            &second,
            HistoryFilter {
                outcome: Some(OutcomeFilter::Pending),
                ..HistoryFilter::default()
            },
        )
        .await;
        assert!(pending.is_empty(), "{pending:#?}");
        let again = history(
            &second,
            HistoryFilter {
                outcome: Some(OutcomeFilter::Is(ToolCallOutcome::Refused)),
                ..HistoryFilter::default()
            },
        )
        .await;
        let ids = |rows: &[HistoryRow]| rows.iter().map(|r| r.call.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&again), ids(&refused));
        second.close().await.unwrap();
    })
    .await
    .expect("the test did not finish in time");
}
