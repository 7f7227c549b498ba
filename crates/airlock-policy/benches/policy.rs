//! Policy evaluation speed: a realistic 1,000-rule policy, one decision at a time.
//!
//! `cargo bench -p airlock-policy --bench policy` prints one line per scenario, e.g.
//! `policy: 1,000 rules, median 4.1 µs per decision (p99 9.0 µs), 240,000 decisions/s`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use airlock_policy::{CallFacts, Policy, Risk};
use serde_json::{Value, json};

const SERVERS: usize = 40;
const TOOLS_PER_SERVER: usize = 25;
const RULES: usize = 1_000;
const DECISIONS: usize = 20_000;
const WARMUP: usize = 2_000;

/// 1,000 rules in the shapes a real policy has: per-tool and per-server rules for 40
/// servers, role and workflow scoping, risk bands, and about one in five with a
/// condition over the arguments, inputs, state or principal.
fn policy_source() -> String {
    let mut toml = String::from("version = \"bench\"\n");
    let efx = ["allow", "require_approval", "deny"];
    for i in 0..RULES {
        let server = i % SERVERS;
        let tool = (i / SERVERS) % TOOLS_PER_SERVER;
        let _ = writeln!(toml, "\n[[rules]]\nname = \"rule {i}\"");
        match i % 5 {
            0 => {
                let _ = writeln!(toml, "tools = [\"srv{server}.tool{tool}\"]");
            }
            1 => {
                let _ = writeln!(toml, "servers = [\"srv{server}\"]\nrisk = [\"high\"]");
            }
            2 => {
                let _ = writeln!(
                    toml,
                    "tools = [\"srv{server}.tool{tool}\", \"srv{server}.get_*\"]\nroles = [\"team{}-*\"]",
                    i % 7
                );
            }
            3 => {
                let _ = writeln!(
                    toml,
                    "workflows = [\"flow{}-*\"]\ntools = [\"srv{server}.*\"]",
                    i % 11
                );
            }
            _ => {
                let _ = writeln!(
                    toml,
                    "tools = [\"*.tool{tool}\"]\nrisk = [\"medium\", \"high\"]"
                );
            }
        }
        if i % 5 == 0 || i % 9 == 0 {
            let condition = match i % 4 {
                0 => "args.amount > 100".to_owned(),
                1 => format!("inputs.region == 'eu-{}'", i % 3),
                2 => "has(state.lookup) && state.lookup.found".to_owned(),
                _ => "'controller' in principal.roles || args.amount < 10".to_owned(),
            };
            let _ = writeln!(toml, "when = \"{condition}\"");
        }
        let effect = efx[i % 3];
        let _ = writeln!(toml, "effect = \"{effect}\"");
        if effect == "require_approval" {
            let _ = writeln!(
                toml,
                "approvers = [\"controller\"]\napprovals = {}",
                1 + i % 2
            );
        }
    }
    toml
}

struct Scenario {
    name: &'static str,
    tool: &'static str,
    workflow: &'static str,
    risk: Risk,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench -p airlock-policy --bench policy`");
        return;
    }
    let source = policy_source();
    let policy = Policy::parse(Path::new("bench-policy.toml"), &source).unwrap_or_else(|d| {
        eprintln!("{d}");
        std::process::exit(1)
    });
    assert_eq!(policy.rules().len(), RULES);

    let roles = vec!["team3-support".to_owned(), "operator".to_owned()];
    let args = json!({"amount": 75, "order": "A-1234", "reason": "damaged", "lines": [1, 2, 3]});
    let inputs = json!({"order": "A-1234", "customer": "c-77", "region": "eu-1"});
    // A task some way in: a dozen completed states with modest outputs.
    let state = Value::Object(
        (0..12)
            .map(|i| {
                (
                    format!("step{i}"),
                    json!({"ok": true, "id": format!("x-{i}"), "items": [i, i + 1, i + 2]}),
                )
            })
            .chain([("lookup".to_owned(), json!({"found": true}))])
            .collect(),
    );
    let task = json!({"id": "t-1", "requester": "ana", "workflow": "flow3-refund"});

    let scenarios = [
        Scenario {
            name: "a call several rules match, some with conditions",
            tool: "srv3.tool0",
            workflow: "flow3-refund",
            risk: Risk::High,
        },
        Scenario {
            name: "a call whose rules read the task's state",
            tool: "srv10.tool0",
            workflow: "flow3-refund",
            risk: Risk::High,
        },
        Scenario {
            name: "a call no rule matches (default deny)",
            tool: "mail.send",
            workflow: "other",
            risk: Risk::Low,
        },
    ];
    for scenario in &scenarios {
        // Owned, as the engine's are: where a name lives can change string comparisons.
        let tool = scenario.tool.to_owned();
        let workflow = scenario.workflow.to_owned();
        let facts = CallFacts {
            principal: "ana",
            roles: &roles,
            workflow: &workflow,
            tool: &tool,
            risk: scenario.risk,
            args: &args,
            inputs: &inputs,
            state: &state,
            task: &task,
        };
        let sample = policy.evaluate(&facts);
        for _ in 0..WARMUP {
            std::hint::black_box(policy.evaluate(std::hint::black_box(&facts)));
        }
        let mut times: Vec<Duration> = Vec::with_capacity(DECISIONS);
        let started = Instant::now();
        for _ in 0..DECISIONS {
            let t = Instant::now();
            std::hint::black_box(policy.evaluate(std::hint::black_box(&facts)));
            times.push(t.elapsed());
        }
        let total = started.elapsed();
        times.sort();
        let median = times[times.len() / 2];
        let p99 = times[times.len() * 99 / 100];
        let per_second = DECISIONS as f64 / total.as_secs_f64();
        println!(
            "policy: {} rules, median {:.1} µs per decision (p99 {:.1} µs), {} decisions/s  [{}: {} matched, {} by {}]",
            thousands(RULES as u64),
            micros(median),
            micros(p99),
            thousands(per_second.round() as u64),
            scenario.name,
            sample.matched.len(),
            sample.effect.name(),
            sample.rule.as_deref().unwrap_or("default deny"),
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
