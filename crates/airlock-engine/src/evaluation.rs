//! How the automations are doing: ratings people give finished tasks, the metrics (the
//! store's figures with model cost added by the caller's prices), and the review of a
//! period with policy changes a person may want to make.
//!
//! Pricing is the caller's: the engine does not know model prices (they live with the
//! model providers), so [`Engine::metrics`] takes a pricing function, or none and leaves
//! the cost as tokens.

use std::collections::BTreeMap;

use airlock_store::{
    AuditEntryWrite, ExceptionRecord, FailureMode, Figures, HeldCallDecision, LessonRecord,
    LessonSource, LessonStatus, Metrics, MetricsFilter, Millis, ModelTokens, OverrideRecord,
    RatingRecord,
};
use serde::Serialize;
use serde_json::json;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::model::ModelUsage;

/// A rule whose held calls were approved unchanged this many times in a row, most
/// recently, is suggested for relaxing.
pub const RELAX_AFTER: u32 = 20;
/// A rule is suggested for a tighter condition when at least this many of its approvals
/// in the period were edited...
pub const TIGHTEN_MIN_EDITS: u32 = 3;
/// ... and they are at least this share of its approvals in the period.
pub const TIGHTEN_EDIT_SHARE: f64 = 0.25;

/// A rating from 1 (bad) to 5 (good); there is no other kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rating(u8);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a rating is a whole number from 1 to 5, not {0}")]
pub struct BadRating(pub i64);

impl Rating {
    pub fn new(value: i64) -> Result<Rating, BadRating> {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=5).contains(v))
            .map(Rating)
            .ok_or(BadRating(value))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Rating {
    type Error = BadRating;

    fn try_from(value: i64) -> Result<Rating, BadRating> {
        Rating::new(value)
    }
}

/// Prices a model's tokens in US dollars by its name; `None` when its price is unknown.
pub type Pricing<'a> = &'a (dyn Fn(&str, &ModelUsage) -> Option<f64> + Sync);

/// One model's tokens priced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCost {
    pub model: String,
    pub usd: Option<f64>,
}

/// What a set of tasks' model turns cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    /// The sum over the models whose price is known; `None` when no prices were given.
    pub usd: Option<f64>,
    /// Models whose price is unknown: their tokens are not in `usd`.
    pub unpriced_models: Vec<String>,
    pub by_model: Vec<ModelCost>,
}

/// The store's figures of a set of tasks, with their cost.
#[derive(Clone, Debug, Serialize)]
pub struct PricedFigures {
    #[serde(flatten)]
    pub figures: Figures,
    pub cost: Cost,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkflowMetrics {
    pub workflow: String,
    #[serde(flatten)]
    pub figures: PricedFigures,
}

#[derive(Clone, Debug, Serialize)]
pub struct BucketMetrics {
    /// The bucket's first millisecond (UTC midnight; a Monday for weeks).
    pub start: Millis,
    #[serde(flatten)]
    pub figures: PricedFigures,
}

/// The figures of a filter's tasks: in total, per workflow and per bucket.
#[derive(Clone, Debug, Serialize)]
pub struct MetricsReport {
    pub filter: MetricsFilter,
    pub total: PricedFigures,
    pub workflows: Vec<WorkflowMetrics>,
    pub buckets: Vec<BucketMetrics>,
}

/// What a suggestion proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// People keep approving the rule's held calls as they are.
    Relax,
    /// People keep changing the rule's held calls before approving them.
    Tighten,
}

/// A policy change a person may want to make. Airlock never applies one itself.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicySuggestion {
    pub rule: String,
    pub kind: SuggestionKind,
    /// The tools the rule held.
    pub tools: Vec<String>,
    /// Its most recent held calls approved unchanged, one after another.
    pub approved_unchanged_in_a_row: u32,
    /// Its decisions in the period, and how many of them were edited approvals.
    pub approved_in_period: u32,
    pub edited_in_period: u32,
    pub rejected_in_period: u32,
    /// The suggestion in words, for the person who decides.
    pub text: String,
}

/// A period's review: its figures, what went wrong, what people changed, and policy
/// changes to consider.
#[derive(Clone, Debug, Serialize)]
pub struct Review {
    pub generated_at: Millis,
    pub metrics: MetricsReport,
    pub failure_modes: Vec<FailureMode>,
    pub overrides: Vec<OverrideRecord>,
    pub exceptions: Vec<ExceptionRecord>,
    pub lessons: LessonActivity,
    pub suggestions: Vec<PolicySuggestion>,
}

/// What happened to lessons in a period. A lesson proposed and reviewed in the same
/// period is in both of its lists.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LessonActivity {
    /// Proposed in the period, whatever has become of them since; oldest first.
    pub proposed: Vec<LessonRecord>,
    /// Accepted in the period (given to the workflow's agents from then on).
    pub accepted: Vec<LessonRecord>,
    /// Dismissed in the period.
    pub dismissed: Vec<LessonRecord>,
}

impl LessonActivity {
    /// Sorts lessons by what happened to them within `[since, until)`.
    pub fn of_period(
        lessons: Vec<LessonRecord>,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> LessonActivity {
        let within = |at: Millis| since.is_none_or(|s| at >= s) && until.is_none_or(|u| at < u);
        let mut activity = LessonActivity::default();
        for lesson in lessons {
            if within(lesson.created_at) {
                activity.proposed.push(lesson.clone());
            }
            match &lesson.status {
                LessonStatus::Accepted { at, .. } if within(*at) => activity.accepted.push(lesson),
                LessonStatus::Dismissed { at, .. } if within(*at) => {
                    activity.dismissed.push(lesson)
                }
                _ => {}
            }
        }
        activity.proposed.sort_by_key(|l| l.created_at);
        activity
    }
}

fn usage(t: &ModelTokens) -> ModelUsage {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    ModelUsage {
        input_tokens: n(t.input_tokens),
        output_tokens: n(t.output_tokens),
        cache_creation_input_tokens: n(t.cache_creation_input_tokens),
        cache_read_input_tokens: n(t.cache_read_input_tokens),
    }
}

fn priced(figures: Figures, price: Option<Pricing<'_>>) -> PricedFigures {
    let mut cost = Cost::default();
    if let Some(price) = price {
        let mut usd = 0.0;
        for t in &figures.tokens {
            let model_usd = price(&t.model, &usage(t));
            match model_usd {
                Some(v) => usd += v,
                None => cost.unpriced_models.push(t.model.clone()),
            }
            cost.by_model.push(ModelCost {
                model: t.model.clone(),
                usd: model_usd,
            });
        }
        cost.usd = Some(usd);
    }
    PricedFigures { figures, cost }
}

fn price_metrics(m: Metrics, price: Option<Pricing<'_>>) -> MetricsReport {
    MetricsReport {
        filter: m.filter,
        total: priced(m.total, price),
        workflows: m
            .workflows
            .into_iter()
            .map(|w| WorkflowMetrics {
                workflow: w.workflow,
                figures: priced(w.figures, price),
            })
            .collect(),
        buckets: m
            .buckets
            .into_iter()
            .map(|b| BucketMetrics {
                start: b.start,
                figures: priced(b.figures, price),
            })
            .collect(),
    }
}

/// Policy changes to consider, from every held call's decision (in order of decision per
/// rule): relax a rule whose latest [`RELAX_AFTER`] or more were approved unchanged;
/// tighten one whose approvals in the period (decided at or after `since`) were often
/// edited.
pub fn suggest_policy_changes(
    decisions: &[HeldCallDecision],
    since: Option<Millis>,
) -> Vec<PolicySuggestion> {
    let mut by_rule: BTreeMap<&str, Vec<&HeldCallDecision>> = BTreeMap::new();
    for d in decisions {
        by_rule.entry(&d.rule).or_default().push(d);
    }
    let mut out = Vec::new();
    for (rule, mut ds) in by_rule {
        ds.sort_by_key(|d| d.decided_at);
        let mut tools: Vec<String> = ds.iter().filter_map(|d| d.tool.clone()).collect();
        tools.sort();
        tools.dedup();
        // An edit, a rejection or an expiry ends a run of unchanged approvals.
        let streak = ds
            .iter()
            .rev()
            .take_while(|d| d.status == "approved" && !d.edited)
            .count();
        let streak = u32::try_from(streak).unwrap_or(u32::MAX);
        let in_period: Vec<_> = ds
            .iter()
            .filter(|d| since.is_none_or(|s| d.decided_at >= s))
            .collect();
        let count = |f: &dyn Fn(&HeldCallDecision) -> bool| {
            u32::try_from(in_period.iter().filter(|d| f(d)).count()).unwrap_or(u32::MAX)
        };
        let approved = count(&|d| d.status == "approved");
        let edited = count(&|d| d.status == "approved" && d.edited);
        let rejected = count(&|d| d.status == "rejected");
        let tool_list = if tools.is_empty() {
            "its calls".to_owned()
        } else {
            tools.join(", ")
        };
        let mut suggest = |kind, text: String| {
            out.push(PolicySuggestion {
                rule: rule.to_owned(),
                kind,
                tools: tools.clone(),
                approved_unchanged_in_a_row: streak,
                approved_in_period: approved,
                edited_in_period: edited,
                rejected_in_period: rejected,
                text,
            });
        };
        if streak >= RELAX_AFTER {
            suggest(
                SuggestionKind::Relax,
                format!(
                    "Consider relaxing rule \"{rule}\": its last {streak} held calls ({tool_list}) \
                     were all approved as proposed. A person could narrow its `when` condition \
                     to the cases that still need a look, or give a scoped grant \
                     (`airlock grants add`). Nothing changes until someone edits the policy."
                ),
            );
        }
        if edited >= TIGHTEN_MIN_EDITS
            && f64::from(edited) >= TIGHTEN_EDIT_SHARE * f64::from(approved)
        {
            suggest(
                SuggestionKind::Tighten,
                format!(
                    "Consider a tighter condition for rule \"{rule}\": {edited} of its {approved} \
                     approvals in this period changed the arguments first ({tool_list}). The \
                     overrides below show what people changed; a condition that matches those \
                     cases (or a deny for them) would catch them before they reach an approver. \
                     Nothing changes until someone edits the policy."
                ),
            );
        }
    }
    out
}

impl Engine {
    /// Records a person's 1–5 rating (and comment) of a finished task, and audits it. A
    /// task may be rated again; the store keeps every rating and the newest one counts.
    #[tracing::instrument(skip(self, comment))]
    pub async fn rate_task(
        &self,
        task: &str,
        rating: Rating,
        comment: Option<&str>,
        by: &str,
    ) -> Result<RatingRecord, EngineError> {
        let t = self.find_task(task).await?;
        let wrong_status = |status| EngineError::WrongStatus {
            task: t.id.clone(),
            status,
            action: "rated until it has ended",
        };
        if !t.projection.status.is_terminal() {
            return Err(wrong_status(t.projection.status));
        }
        let now = self.clock().now();
        let record = self
            .store()
            .add_rating(&t.id, rating.get(), comment, by, now)
            .await?
            // An ended task never changes, so only a vanished task gets here.
            .ok_or_else(|| EngineError::NoTask(t.id.clone()))?;
        // The same entry `Inner::audit` writes for actions outside a task's history.
        self.store()
            .append_audit(AuditEntryWrite {
                at: now,
                kind: "task_rated".to_owned(),
                actor: by.to_owned(),
                task_id: Some(t.id.clone()),
                body: json!({ "rating": rating.get(), "comment": comment, "rating_id": record.id }),
            })
            .await?;
        // A low rating that says why is a correction worth learning from.
        if rating.get() <= 2
            && let Some(why) = comment.map(str::trim).filter(|c| !c.is_empty())
        {
            self.inner
                .propose_lesson(
                    &t.workflow_name,
                    LessonSource::LowRating,
                    &format!("{}", record.id),
                    Some(&t.id),
                    &format!("{by} rated a finished task {}/5: {why}", rating.get()),
                )
                .await;
        }
        Ok(record)
    }

    /// The figures of `filter`'s tasks, with model cost priced by `price` (or left as
    /// tokens without it).
    pub async fn metrics(
        &self,
        filter: &MetricsFilter,
        price: Option<Pricing<'_>>,
    ) -> Result<MetricsReport, EngineError> {
        let metrics = self.store().metrics(filter).await?;
        Ok(price_metrics(metrics, price))
    }

    /// The review of `filter`'s period: figures, the `limit` most common failure modes,
    /// the latest overrides and exceptions, the lessons proposed, accepted and dismissed
    /// in it, and policy changes to consider.
    pub async fn review(
        &self,
        filter: &MetricsFilter,
        price: Option<Pricing<'_>>,
        limit: i64,
    ) -> Result<Review, EngineError> {
        let store = self.store();
        let (metrics, failure_modes, overrides, exceptions, decisions, lessons) = tokio::try_join!(
            store.metrics(filter),
            store.failure_modes(filter, limit),
            store.overrides(filter, limit),
            store.exceptions(filter, limit),
            store.held_call_decisions(filter.workflow.as_deref(), filter.until),
            store.lessons_in_period(filter.workflow.as_deref(), filter.since, filter.until),
        )?;
        Ok(Review {
            generated_at: self.clock().now(),
            metrics: price_metrics(metrics, price),
            failure_modes,
            overrides,
            exceptions,
            lessons: LessonActivity::of_period(lessons, filter.since, filter.until),
            suggestions: suggest_policy_changes(&decisions, filter.since),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(rule: &str, at: Millis, status: &str, edited: bool) -> HeldCallDecision {
        HeldCallDecision {
            rule: rule.into(),
            tool: Some("erp.refund".into()),
            workflow: "refund".into(),
            approval_id: format!("a{at}"),
            status: status.into(),
            edited,
            decided_at: at,
        }
    }

    #[test]
    fn ratings_are_one_to_five() {
        assert_eq!(Rating::new(1).map(Rating::get), Ok(1));
        assert_eq!(Rating::new(5).map(Rating::get), Ok(5));
        for bad in [0, 6, -1, 300] {
            assert_eq!(Rating::new(bad), Err(BadRating(bad)));
        }
        assert_eq!(
            BadRating(7).to_string(),
            "a rating is a whole number from 1 to 5, not 7"
        );
    }

    #[test]
    fn twenty_unchanged_approvals_in_a_row_suggest_relaxing_and_nineteen_do_not() {
        // A rejection, then 20 plain approvals.
        let mut ds = vec![decision("r", 0, "rejected", false)];
        ds.extend((1..=20).map(|i| decision("r", i, "approved", false)));
        let s = suggest_policy_changes(&ds, None);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, SuggestionKind::Relax);
        assert_eq!(s[0].approved_unchanged_in_a_row, 20);
        assert!(
            s[0].text.starts_with("Consider relaxing rule \"r\""),
            "{}",
            s[0].text
        );
        assert!(s[0].text.contains("erp.refund"));

        // The run is the latest one: an edit at the end breaks it.
        ds.push(decision("r", 21, "approved", true));
        assert!(
            suggest_policy_changes(&ds, None)
                .iter()
                .all(|s| s.kind != SuggestionKind::Relax)
        );
        let nineteen: Vec<_> = (1..=19)
            .map(|i| decision("r", i, "approved", false))
            .collect();
        assert!(suggest_policy_changes(&nineteen, None).is_empty());
    }

    #[test]
    fn often_edited_approvals_in_the_period_suggest_a_tighter_condition() {
        // In the period (from 10): 8 approvals, 3 edited; before it, many edits that
        // do not count.
        let mut ds: Vec<_> = (0..5).map(|i| decision("t", i, "approved", true)).collect();
        ds.extend((10..15).map(|i| decision("t", i, "approved", false)));
        ds.extend((15..18).map(|i| decision("t", i, "approved", true)));
        let s = suggest_policy_changes(&ds, Some(10));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, SuggestionKind::Tighten);
        assert_eq!((s[0].approved_in_period, s[0].edited_in_period), (8, 3));
        assert!(s[0].text.contains("3 of its 8 approvals"), "{}", s[0].text);

        // Two edits are not "often".
        ds.pop();
        assert!(suggest_policy_changes(&ds, Some(10)).is_empty());
        // Three edits among twenty approvals are under a quarter.
        let mut ds: Vec<_> = (0..17)
            .map(|i| decision("t", i, "approved", false))
            .collect();
        ds.extend((17..20).map(|i| decision("t", i, "approved", true)));
        assert!(suggest_policy_changes(&ds, None).is_empty());
    }

    fn lesson(id: &str, created_at: Millis, status: LessonStatus) -> LessonRecord {
        LessonRecord {
            id: id.into(),
            workflow: "refund".into(),
            source: LessonSource::Rejection,
            source_ref: id.into(),
            task_id: None,
            text: id.into(),
            created_at,
            status,
        }
    }

    #[test]
    fn a_periods_lessons_are_sorted_by_what_happened_to_them_within_it() {
        let by = |at| ("carol".to_owned(), at);
        let accepted = |at| {
            let (by, at) = by(at);
            LessonStatus::Accepted { by, at }
        };
        let dismissed = |at| {
            let (by, at) = by(at);
            LessonStatus::Dismissed { by, at }
        };
        let lessons = vec![
            // proposed before the period, accepted in it
            lesson("old-accepted", 5, accepted(15)),
            // proposed and dismissed in it
            lesson("new-dismissed", 12, dismissed(13)),
            // proposed in it, accepted after it
            lesson("new-later", 11, accepted(25)),
            // proposed in it, still waiting
            lesson("new-waiting", 19, LessonStatus::Proposed),
            // all before the period
            lesson("old", 1, dismissed(2)),
        ];
        let a = LessonActivity::of_period(lessons, Some(10), Some(20));
        let ids = |l: &[LessonRecord]| l.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&a.proposed),
            ["new-later", "new-dismissed", "new-waiting"]
        );
        assert_eq!(ids(&a.accepted), ["old-accepted"]);
        assert_eq!(ids(&a.dismissed), ["new-dismissed"]);
        let open = LessonActivity::of_period(vec![lesson("x", 1, accepted(2))], None, None);
        assert_eq!((open.proposed.len(), open.accepted.len()), (1, 1));
    }

    #[test]
    fn cost_is_priced_per_model_and_unknown_prices_are_named() {
        let tokens = |model: &str, input| ModelTokens {
            model: model.into(),
            turns: 1,
            counted_turns: 1,
            input_tokens: input,
            ..ModelTokens::default()
        };
        let figures = Figures {
            tokens: vec![tokens("known", 2_000_000), tokens("mystery", 5)],
            ..Figures::default()
        };
        let price = |model: &str, u: &ModelUsage| {
            (model == "known").then(|| u.input_tokens as f64 * 3.0 / 1_000_000.0)
        };
        let p = priced(figures.clone(), Some(&price));
        assert_eq!(p.cost.usd, Some(6.0));
        assert_eq!(p.cost.unpriced_models, ["mystery"]);
        assert_eq!(p.cost.by_model.len(), 2);
        let unpriced = priced(figures, None);
        assert_eq!(unpriced.cost, Cost::default(), "left as tokens");
    }
}
