//! `pipeline-events`: CodePipeline state changes → diagnosed, de-noised alerts.
//!
//! - **Trigger**: EventBridge rule on `source: aws.codepipeline` for the three detail types
//!   (pipeline, stage and action execution state change), with a DLQ on the target.
//! - **Effect**: a failed Source action is diagnosed (`cause` and first step, see
//!   `connwatch::domain::diagnosis`) and raised as `pipeline.source_failed` (warning; critical
//!   after `CONNWATCH_SOURCE_FAILURE_ESCALATION` consecutive failures), resolved by the
//!   pipeline's next successful source action. While the pipeline's connection has a firing
//!   `connection.*` alert, the failure is folded into that alert (`inhibited`) instead of
//!   paging. Failures outside the source stage raise `pipeline.failed` only when
//!   `CONNWATCH_NOTIFY_PIPELINE_FAILURES=true`. Executions are recorded (commit, trigger; 7 days)
//!   and `PipelineExecutions`/`SourceActionFailures` emitted as EMF. Redelivered events (same
//!   id) are recognised; the CodeStar Notifications shape and foreign events are skipped with a
//!   log line; malformed events return an `InvalidEvent` error so they end in the DLQ.
//! - **Env**: `CONNWATCH_TABLE_NAME` (required), `CONNWATCH_{CRITICAL,WARNING,INFO}_TOPIC_ARN`,
//!   `CONNWATCH_SOURCE_FAILURE_ESCALATION` (3), `CONNWATCH_NOTIFY_PIPELINE_FAILURES` (false),
//!   `CONNWATCH_INVENTORY_MAX_AGE` (1h), `CONNWATCH_REPEAT_INTERVAL`, `CONNWATCH_RETENTION`,
//!   `CONNWATCH_METRIC_NAMESPACE`, `CONNWATCH_DETAILED_METRICS`, `CONNWATCH_RUNBOOK_BASE_URL`,
//!   `CONNWATCH_SDK_TIMEOUT`.
//! - **IAM**: `codepipeline:GetPipeline` (on-demand inventory); `dynamodb:GetItem`, `PutItem`,
//!   `DeleteItem`, `Query` on the state table; `sns:Publish` on the topics (and KMS for them).

use connwatch::domain::alert::{AlertDraft, AlertKind, AlertStatus, DedupKey, Link, Resources, Severity};
use connwatch::domain::connection::ConnectionArn;
use connwatch::domain::diagnosis::{self, Diagnosis, Signals};
use connwatch::domain::inventory::{ExecutionRecord, InventoryEntry, SourceAction};
use connwatch::domain::metric::{Datum, MetricName};
use connwatch::domain::pipeline::{self, ExecutionResult, ExecutionState, Parsed, PipelineEvent, Scope};
use connwatch::domain::text::{NAME_CAP, clean};
use connwatch::inventory::{InventoryPolicy, entry_for};
use connwatch::lifecycle::{Lifecycle, LifecycleError, LifecyclePolicy, Outcome, SuppressReason, outcome_metrics};
use connwatch::ports::{
    AlertStore, Clock, ConnectionStateStore, MetricSink, Notifier, PipelineDirectory, PipelineInventoryStore,
    SilenceStore, StoreError,
};

/// How long execution records are kept.
const EXECUTION_RETENTION_DAYS: i64 = 7;

/// Settings of the pipeline rules.
#[derive(Debug, Clone)]
pub struct PipelinePolicy {
    /// Consecutive source failures before the alert turns critical.
    pub escalate_after: u32,
    /// Whether `pipeline.failed` is notified.
    pub notify_pipeline_failures: bool,
    /// Per-pipeline metric dimensions.
    pub detailed_metrics: bool,
    /// Inventory freshness.
    pub inventory: InventoryPolicy,
}

impl Default for PipelinePolicy {
    fn default() -> Self {
        Self {
            escalate_after: 3,
            notify_pipeline_failures: false,
            detailed_metrics: false,
            inventory: InventoryPolicy::default(),
        }
    }
}

/// What the handler needs.
#[derive(Debug)]
pub struct Deps<P, S, N, M, C> {
    /// Reads pipeline definitions on demand.
    pub pipelines: P,
    /// The state table.
    pub store: S,
    /// Publishes notifications.
    pub notifier: N,
    /// Receives metrics.
    pub metrics: M,
    /// The time.
    pub clock: C,
    /// Pipeline rule settings.
    pub policy: PipelinePolicy,
    /// Lifecycle settings.
    pub lifecycle: LifecyclePolicy,
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The event is malformed; retrying will not help, but the DLQ keeps it.
    #[error("invalid CodePipeline event")]
    InvalidEvent(#[source] pipeline::EventError),
    /// The state table failed; worth a retry.
    #[error("state table failed")]
    Store(#[source] StoreError),
    /// An alert could not be processed; worth a retry.
    #[error("alert could not be processed")]
    Lifecycle(#[source] LifecycleError),
}

impl From<PipelineError> for lambda_runtime::Diagnostic {
    fn from(error: PipelineError) -> Self {
        let kind = match error {
            PipelineError::InvalidEvent(_) => "InvalidEvent",
            PipelineError::Store(_) | PipelineError::Lifecycle(_) => "Retryable",
        };
        Self { error_type: kind.to_owned(), error_message: connwatch::error_chain(&error) }
    }
}

/// What the handler did with one event (the Lambda result; also printed by `replay`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventReport {
    /// The EventBridge id, when the event had one.
    pub event_id: Option<String>,
    /// Set when the event was not taken, with the reason.
    pub skipped: Option<String>,
    /// What the lifecycle did.
    pub outcomes: Vec<Outcome>,
    /// The diagnosis of a failed source action.
    pub diagnosis: Option<Diagnosis>,
    /// One line on what was decided.
    pub decision: String,
    /// The metrics emitted.
    pub metrics: Vec<Datum>,
}

/// Handles one EventBridge event.
pub async fn handle<P, S, N, M, C>(
    event: &serde_json::Value,
    deps: &Deps<P, S, N, M, C>,
) -> Result<EventReport, PipelineError>
where
    P: PipelineDirectory,
    S: AlertStore + PipelineInventoryStore + ConnectionStateStore + SilenceStore,
    N: Notifier,
    M: MetricSink,
    C: Clock,
{
    let event_id = event.get("id").and_then(serde_json::Value::as_str).map(str::to_owned);
    let parsed = pipeline::parse(event).map_err(|e| {
        tracing::error!(error = %e, event_id = ?event_id, "invalid CodePipeline event");
        PipelineError::InvalidEvent(e)
    })?;
    let event = match parsed {
        Parsed::Event(event) => event,
        Parsed::Skipped(reason) => {
            tracing::info!(%reason, event_id = ?event_id, "event skipped");
            return Ok(EventReport {
                event_id,
                skipped: Some(reason.clone()),
                outcomes: vec![],
                diagnosis: None,
                decision: format!("skipped: {reason}"),
                metrics: vec![],
            });
        }
    };
    let span =
        tracing::info_span!("pipeline_event", event_id = %event.id, pipeline = %event.pipeline, state = %event.state);
    let _entered = span.enter();
    let lifecycle = Lifecycle::new(&deps.store, &deps.notifier, &deps.clock, deps.lifecycle.clone());
    let mut report = EventReport {
        event_id: Some(event.id.clone()),
        skipped: None,
        outcomes: vec![],
        diagnosis: None,
        decision: String::new(),
        metrics: vec![],
    };
    if lifecycle.is_redelivery(&event.id).await.map_err(PipelineError::Store)? {
        report.decision = "redelivered event: already handled".to_owned();
        report.metrics = vec![
            Datum::new(MetricName::NotificationsSuppressed, 1.0, deps.clock.now())
                .with("Reason", SuppressReason::Redelivered.as_str()),
        ];
        deps.metrics.emit_best_effort(&report.metrics).await;
        return Ok(report);
    }
    decide(&event, deps, &lifecycle, &mut report).await?;
    report.metrics.extend(outcome_metrics(&report.outcomes, deps.clock.now()));
    lifecycle.mark_processed(&event.id).await.map_err(PipelineError::Store)?;
    deps.metrics.emit_best_effort(&report.metrics).await;
    tracing::info!(decision = %report.decision, "event handled");
    Ok(report)
}

/// Routes the event to the rule for its scope and state.
async fn decide<P, S, N, M, C>(
    event: &PipelineEvent,
    deps: &Deps<P, S, N, M, C>,
    lifecycle: &Lifecycle<&S, &N, &C>,
    report: &mut EventReport,
) -> Result<(), PipelineError>
where
    P: PipelineDirectory,
    S: AlertStore + PipelineInventoryStore + ConnectionStateStore + SilenceStore,
    N: Notifier,
    C: Clock,
{
    let detailed = deps.policy.detailed_metrics;
    match &event.scope {
        Scope::Pipeline { .. } => {
            let mut datum =
                Datum::new(MetricName::PipelineExecutions, 1.0, event.time).with("State", event.state.as_str());
            if detailed {
                datum = datum.with("Pipeline", clean(&event.pipeline, NAME_CAP));
            }
            report.metrics.push(datum);
            record_execution(event, None, deps).await?;
            report.decision = format!("pipeline {}: execution recorded", event.state);
            if deps.policy.notify_pipeline_failures && event.state == ExecutionState::Succeeded {
                let draft = pipeline_failed_draft(event, None, AlertStatus::Resolved);
                report.outcomes.push(lifecycle.process(draft).await.map_err(PipelineError::Lifecycle)?);
            }
        }
        Scope::Stage { stage } => report.decision = format!("stage {stage} {}: no rule", event.state),
        Scope::Action { .. } if event.is_source_action() => match event.state {
            ExecutionState::Failed => source_failed(event, deps, lifecycle, report).await?,
            ExecutionState::Succeeded => source_succeeded(event, deps, lifecycle, report).await?,
            _ => report.decision = format!("source action {}: no rule", event.state),
        },
        Scope::Action { stage, action, result, .. } => {
            if event.state == ExecutionState::Failed && deps.policy.notify_pipeline_failures {
                let draft = pipeline_failed_draft(event, Some((stage, action, result.as_ref())), AlertStatus::Firing);
                report.outcomes.push(lifecycle.process(draft).await.map_err(PipelineError::Lifecycle)?);
                report.decision = format!("action {stage}/{action} failed: pipeline.failed");
            } else {
                report.decision = format!("action {stage}/{action} {}: no notification", event.state);
            }
        }
    }
    Ok(())
}

/// A failed source action: diagnose, count, then fold into the connection's alert or page.
async fn source_failed<P, S, N, M, C>(
    event: &PipelineEvent,
    deps: &Deps<P, S, N, M, C>,
    lifecycle: &Lifecycle<&S, &N, &C>,
    report: &mut EventReport,
) -> Result<(), PipelineError>
where
    P: PipelineDirectory,
    S: AlertStore + PipelineInventoryStore + ConnectionStateStore + SilenceStore,
    N: Notifier,
    C: Clock,
{
    let Scope::Action { action, result, .. } = &event.scope else { return Ok(()) };
    let entry = inventory_entry(event, deps).await;
    let source = entry.as_ref().and_then(|e| e.info.source(action)).cloned();
    let summary = result.as_ref().and_then(|r| r.external_execution_summary.as_deref());
    let connection =
        source.as_ref().and_then(SourceAction::connection).or_else(|| summary.and_then(ConnectionArn::find_in));
    let states = deps.store.load_connection_states().await.map_err(PipelineError::Store)?;
    let state = connection.as_ref().and_then(|arn| states.iter().find(|s| s.id() == arn.id()));
    let diagnosis = diagnosis::classify(&Signals {
        error_code: result.as_ref().and_then(|r| r.error_code.as_deref()),
        summary,
        connection_status: state.map(|s| &s.status),
        connection_arn: connection.as_ref(),
    });
    let mut metric =
        Datum::new(MetricName::SourceActionFailures, 1.0, event.time).with("Cause", diagnosis.cause.as_str());
    if deps.policy.detailed_metrics {
        metric = metric.with("Pipeline", clean(&event.pipeline, NAME_CAP));
    }
    report.metrics.push(metric);
    let streak = bump_streak(entry, deps, true).await?;

    let severity = if streak >= deps.policy.escalate_after { Severity::Critical } else { Severity::Warning };
    let draft = source_failed_draft(
        event,
        source.as_ref(),
        connection.as_ref(),
        state.map(|s| s.name.as_str()),
        &diagnosis,
        severity,
        streak,
    );
    // While the connection has a firing alert, the lifecycle folds this failure into it.
    let outcome = lifecycle.process(draft).await.map_err(PipelineError::Lifecycle)?;
    report.decision = match &outcome {
        Outcome::Suppressed { reason: SuppressReason::Inhibited, .. } => {
            format!("source failed ({}): folded into the connection's alert", diagnosis.cause.as_str())
        }
        _ => {
            format!("source failed ({}, streak {streak}): pipeline.source_failed {severity}", diagnosis.cause.as_str())
        }
    };
    report.outcomes.push(outcome);
    report.diagnosis = Some(diagnosis);
    Ok(())
}

/// A successful source action: the streak ends and any source alert resolves.
async fn source_succeeded<P, S, N, M, C>(
    event: &PipelineEvent,
    deps: &Deps<P, S, N, M, C>,
    lifecycle: &Lifecycle<&S, &N, &C>,
    report: &mut EventReport,
) -> Result<(), PipelineError>
where
    P: PipelineDirectory,
    S: AlertStore + PipelineInventoryStore + ConnectionStateStore + SilenceStore,
    N: Notifier,
    C: Clock,
{
    let Scope::Action { result, .. } = &event.scope else { return Ok(()) };
    let commit = result.as_ref().and_then(|r| r.external_execution_id.clone());
    record_execution(event, commit, deps).await?;
    let entry = deps.store.get_inventory_entry(&event.pipeline).await.map_err(PipelineError::Store)?;
    if entry.as_ref().is_some_and(|e| e.source_failure_streak > 0) {
        bump_streak(entry, deps, false).await?;
    }
    let draft = source_resolved_draft(event);
    report.outcomes.push(lifecycle.process(draft).await.map_err(PipelineError::Lifecycle)?);
    report.decision = "source succeeded: execution recorded, source alert resolved if open".to_owned();
    Ok(())
}

/// The pipeline's inventory entry, read on demand; a failure only loses the enrichment.
async fn inventory_entry<P, S, N, M, C>(event: &PipelineEvent, deps: &Deps<P, S, N, M, C>) -> Option<InventoryEntry>
where
    P: PipelineDirectory,
    S: PipelineInventoryStore,
    C: Clock,
{
    match entry_for(&deps.pipelines, &deps.store, &event.pipeline, deps.clock.now(), &deps.policy.inventory).await {
        Ok(entry) => entry,
        Err(error) => {
            tracing::warn!(error = %connwatch::error_chain(&error), "pipeline definition unavailable; diagnosing without it");
            None
        }
    }
}

/// Counts a failure (or resets the count on success); returns the new streak.
async fn bump_streak<P, S: PipelineInventoryStore, N, M, C>(
    entry: Option<InventoryEntry>,
    deps: &Deps<P, S, N, M, C>,
    failed: bool,
) -> Result<u32, PipelineError> {
    let Some(mut entry) = entry else { return Ok(u32::from(failed)) };
    entry.source_failure_streak = if failed { entry.source_failure_streak.saturating_add(1) } else { 0 };
    deps.store.save_inventory_entry(&entry).await.map_err(PipelineError::Store)?;
    Ok(entry.source_failure_streak)
}

async fn record_execution<P, S: PipelineInventoryStore, N, M, C: Clock>(
    event: &PipelineEvent,
    commit: Option<String>,
    deps: &Deps<P, S, N, M, C>,
) -> Result<(), PipelineError> {
    let trigger = match &event.scope {
        Scope::Pipeline { trigger } => trigger.as_ref(),
        _ => None,
    };
    let record = ExecutionRecord {
        pipeline: event.pipeline.clone(),
        execution_id: event.execution_id.clone(),
        state: event.state.to_string(),
        commit_id: commit.or_else(|| trigger.and_then(|t| t.commit_id.clone())),
        trigger: trigger.and_then(|t| t.trigger_type.clone().or_else(|| t.provider_type.clone())),
        repository: trigger.and_then(|t| t.full_repository_name.clone()),
        branch: trigger.and_then(|t| t.branch_name.clone()),
        updated_at: event.time,
        expires_at: deps.clock.now() + chrono::Duration::days(EXECUTION_RETENTION_DAYS),
    };
    deps.store.record_execution(&record).await.map_err(PipelineError::Store)
}

fn source_failed_key(event: &PipelineEvent) -> DedupKey {
    DedupKey::from_stored(format!("pipeline/{}/{}/{}/source_failed", event.account, event.region, event.pipeline))
}

fn execution_link(event: &PipelineEvent) -> Link {
    let region = &event.region;
    Link {
        title: "Execution in the console".to_owned(),
        url: format!(
            "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/executions/{}/timeline?region={region}",
            event.pipeline, event.execution_id
        ),
    }
}

#[allow(clippy::too_many_arguments, reason = "one draft, many facts; each argument is a distinct fact")]
fn source_failed_draft(
    event: &PipelineEvent,
    source: Option<&SourceAction>,
    connection: Option<&ConnectionArn>,
    connection_name: Option<&str>,
    diagnosis: &Diagnosis,
    severity: Severity,
    streak: u32,
) -> AlertDraft {
    let pipeline = clean(&event.pipeline, NAME_CAP);
    let cause = diagnosis.cause.as_str().replace('_', " ");
    let detail = match &event.scope {
        Scope::Action { result: Some(ExecutionResult { external_execution_summary: Some(s), .. }), .. } => {
            s.trim_end_matches('.').to_owned()
        }
        _ => "no error text in the event".to_owned(),
    };
    let mut links = vec![execution_link(event)];
    if let Some(connection) = connection {
        links.push(connwatch::domain::health::console_link(connection));
    }
    AlertDraft {
        dedup_key: source_failed_key(event),
        status: AlertStatus::Firing,
        severity,
        kind: AlertKind::PipelineSourceFailed,
        title: format!("Pipeline {pipeline} cannot fetch its source: {cause}"),
        summary: format!(
            "The source action of pipeline {pipeline} failed at {} (execution {}, {streak} failure(s) in a row): {detail}. \
             Nothing after Source runs until this is fixed. First step: {}",
            event.time.format("%Y-%m-%d %H:%M UTC"),
            event.execution_id,
            diagnosis.first_step
        ),
        cause: Some(diagnosis.cause),
        account: event.account.clone(),
        region: event.region.clone(),
        resources: Resources {
            connection_arn: connection.map(ToString::to_string),
            connection_name: connection_name.map(|n| clean(n, NAME_CAP)),
            pipeline: Some(pipeline.clone()),
            execution_id: Some(event.execution_id.clone()),
            repository: source.and_then(|s| s.repository.clone()),
            branch: source.and_then(|s| s.branch.clone()),
            ..Resources::default()
        },
        affected_pipelines: vec![pipeline],
        occurred_at: event.time,
        source_event_id: Some(event.id.clone()),
        links,
    }
}

/// The resolution of `pipeline.source_failed`: the pipeline fetched its source again.
fn source_resolved_draft(event: &PipelineEvent) -> AlertDraft {
    let pipeline = clean(&event.pipeline, NAME_CAP);
    AlertDraft {
        dedup_key: source_failed_key(event),
        status: AlertStatus::Resolved,
        severity: Severity::Warning,
        kind: AlertKind::PipelineSourceFailed,
        title: format!("Pipeline {pipeline} fetches its source again"),
        summary: format!(
            "The source action of pipeline {pipeline} succeeded at {} (execution {}).",
            event.time.format("%Y-%m-%d %H:%M UTC"),
            event.execution_id
        ),
        cause: None,
        account: event.account.clone(),
        region: event.region.clone(),
        resources: Resources {
            pipeline: Some(pipeline.clone()),
            execution_id: Some(event.execution_id.clone()),
            ..Resources::default()
        },
        affected_pipelines: vec![pipeline],
        occurred_at: event.time,
        source_event_id: Some(event.id.clone()),
        links: vec![execution_link(event)],
    }
}

fn pipeline_failed_draft(
    event: &PipelineEvent,
    failed: Option<(&String, &String, Option<&ExecutionResult>)>,
    status: AlertStatus,
) -> AlertDraft {
    let pipeline = clean(&event.pipeline, NAME_CAP);
    let (title, summary) = match failed {
        Some((stage, action, result)) => (
            format!("Pipeline {pipeline} failed at {stage}/{action}"),
            format!(
                "Action {action} in stage {stage} of pipeline {pipeline} failed (execution {}): {}. First step: open the execution and the action's logs.",
                event.execution_id,
                result.and_then(|r| r.external_execution_summary.clone()).unwrap_or_else(|| "no error text".to_owned())
            ),
        ),
        None => (
            format!("Pipeline {pipeline} succeeded again"),
            format!("Execution {} of pipeline {pipeline} succeeded.", event.execution_id),
        ),
    };
    AlertDraft {
        dedup_key: DedupKey::from_stored(format!(
            "pipeline/{}/{}/{}/failed",
            event.account, event.region, event.pipeline
        )),
        status,
        severity: Severity::Warning,
        kind: AlertKind::PipelineFailed,
        title,
        summary,
        cause: None,
        account: event.account.clone(),
        region: event.region.clone(),
        resources: Resources {
            pipeline: Some(pipeline.clone()),
            execution_id: Some(event.execution_id.clone()),
            ..Resources::default()
        },
        affected_pipelines: vec![pipeline],
        occurred_at: event.time,
        source_event_id: Some(event.id.clone()),
        links: vec![execution_link(event)],
    }
}

#[cfg(test)]
mod tests;
