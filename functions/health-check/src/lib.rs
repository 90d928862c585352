//! `health-check`: the scheduled check of every CodeConnections connection.
//!
//! - **Trigger**: EventBridge Scheduler, every minute by default. The input may be any JSON
//!   (Scheduler sends the schedule's configured input, not an EventBridge envelope); it is
//!   only logged.
//! - **Effect**: lists every connection (both APIs, all pages, merged by id), compares the
//!   listing with the state table, and raises or resolves `connection.unhealthy` (critical),
//!   `connection.pending` (warning) and `connection.deleted` (warning) through the alert
//!   lifecycle, naming the pipelines that use the connection (the pipeline inventory, refreshed
//!   here in bounded batches of `GetPipeline` calls); emits `Connections`, `UnhealthyConnections`, `HealthCheckRuns` (heartbeat),
//!   `NotificationsPublished`/`NotificationsSuppressed` and, on failure, `HealthCheckErrors`
//!   as EMF on stdout. A failed or partial listing concludes nothing and returns an error so
//!   Lambda retries.
//! - **Env**: `CONNWATCH_TABLE_NAME` (required), `CONNWATCH_{CRITICAL,WARNING,INFO}_TOPIC_ARN`,
//!   `CONNWATCH_PENDING_GRACE` (1h), `CONNWATCH_REPEAT_INTERVAL` (4h), `CONNWATCH_RETENTION`
//!   (7d), `CONNWATCH_CONNECTION_APIS` (both), `CONNWATCH_METRIC_NAMESPACE` (Connwatch),
//!   `CONNWATCH_DETAILED_METRICS` (false), `CONNWATCH_RUNBOOK_BASE_URL`,
//!   `CONNWATCH_SDK_TIMEOUT` (10s), `CONNWATCH_INVENTORY_MAX_AGE` (1h),
//!   `CONNWATCH_INVENTORY_BATCH` (20). See `connwatch::config`.
//! - **IAM**: `codeconnections:ListConnections`, `codestar-connections:ListConnections`;
//!   `codepipeline:ListPipelines`, `codepipeline:GetPipeline`;
//!   `dynamodb:GetItem`, `PutItem`, `DeleteItem`, `Query` on the state table; `sns:Publish`
//!   on the three topics (and `kms:GenerateDataKey*`/`kms:Decrypt` on their key).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use connwatch::domain::alert::DedupKey;
use connwatch::domain::connection::{ConnectionArn, ConnectionStatus};
use connwatch::domain::health::{self, ConnectionState, HealthPolicy};
use connwatch::domain::inventory::{InventoryEntry, pipelines_using};
use connwatch::domain::metric::{Datum, MetricName};
use connwatch::inventory::{InventoryPolicy, refresh_batch};
use connwatch::lifecycle::{Lifecycle, LifecycleError, LifecyclePolicy, Outcome, outcome_metrics};
use connwatch::ports::{
    AlertStore, Clock, ConnectionDirectory, ConnectionStateStore, DirectoryError, MetricSink, Notifier,
    PipelineDirectory, PipelineInventoryStore, SilenceStore, StoreError,
};
use serde::Serialize;

/// What the health check needs. Generic so the same code runs on AWS, in `simulate` and in
/// tests.
#[derive(Debug)]
pub struct Deps<D, P, S, N, M, C> {
    /// Lists connections.
    pub directory: D,
    /// Reads pipeline definitions for the inventory.
    pub pipelines: P,
    /// The state table (connection states and alert lifecycle).
    pub store: S,
    /// Publishes notifications.
    pub notifier: N,
    /// Receives metrics.
    pub metrics: M,
    /// The time.
    pub clock: C,
    /// Health rule settings.
    pub health: HealthPolicy,
    /// Lifecycle settings.
    pub lifecycle: LifecyclePolicy,
    /// Pipeline inventory refresh.
    pub inventory: InventoryPolicy,
}

/// Why a run failed. Every variant is worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    /// The listing failed or was partial; nothing was concluded from it.
    #[error("connection listing failed; no state was changed")]
    Listing(#[source] DirectoryError),
    /// The state table could not be read or written.
    #[error("state table failed")]
    Store(#[source] StoreError),
    /// Some alerts could not be processed; their connections' states were left unchanged so
    /// the next run decides again.
    #[error("{failed} of {total} alerts could not be processed")]
    Alerts {
        /// How many failed.
        failed: usize,
        /// How many were attempted.
        total: usize,
        /// The first failure.
        #[source]
        first: LifecycleError,
    },
}

impl HealthCheckError {
    /// The low-cardinality reason for `HealthCheckErrors` and the Lambda error type.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Listing(e) => e.reason(),
            Self::Store(_) => "store_error",
            Self::Alerts { .. } => "alert_error",
        }
    }
}

impl From<HealthCheckError> for lambda_runtime::Diagnostic {
    fn from(error: HealthCheckError) -> Self {
        Self { error_type: format!("HealthCheck.{}", error.reason()), error_message: connwatch::error_chain(&error) }
    }
}

/// What one run did; returned as the Lambda result and printed by the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Connections listed.
    pub connections: usize,
    /// Connections not AVAILABLE.
    pub not_available: usize,
    /// Notifications published.
    pub notified: usize,
    /// Reports suppressed by the lifecycle.
    pub suppressed: usize,
    /// Connection states written.
    pub states_written: usize,
}

/// Runs one health check.
#[tracing::instrument(skip_all, fields(scheduled_time = scheduled_time(event)))]
pub async fn handle<D, P, S, N, M, C>(
    event: &serde_json::Value,
    deps: &Deps<D, P, S, N, M, C>,
) -> Result<RunReport, HealthCheckError>
where
    D: ConnectionDirectory,
    P: PipelineDirectory,
    S: ConnectionStateStore + AlertStore + PipelineInventoryStore + SilenceStore,
    N: Notifier,
    M: MetricSink,
    C: Clock,
{
    let now = deps.clock.now();
    let (result, mut datums) = match check(deps).await {
        Ok((report, datums)) => (Ok(report), datums),
        Err((error, datums)) => (Err(error), datums),
    };
    match &result {
        Ok(_) => datums.push(Datum::new(MetricName::HealthCheckRuns, 1.0, now)),
        Err(error) => {
            tracing::error!(error = ?error, reason = error.reason(), "health check failed");
            datums.push(Datum::new(MetricName::HealthCheckErrors, 1.0, now).with("Reason", error.reason()));
        }
    }
    deps.metrics.emit_best_effort(&datums).await;
    result
}

/// The check itself; returns the metrics gathered so far on both paths.
async fn check<D, P, S, N, M, C>(
    deps: &Deps<D, P, S, N, M, C>,
) -> Result<(RunReport, Vec<Datum>), (HealthCheckError, Vec<Datum>)>
where
    D: ConnectionDirectory,
    P: PipelineDirectory,
    S: ConnectionStateStore + AlertStore + PipelineInventoryStore + SilenceStore,
    N: Notifier,
    C: Clock,
{
    let now = deps.clock.now();
    let listing = deps.directory.list_connections().await.map_err(|e| (HealthCheckError::Listing(e), vec![]))?;
    let previous = deps.store.load_connection_states().await.map_err(|e| (HealthCheckError::Store(e), vec![]))?;
    let mut eval = health::evaluate(&previous, &listing, now, &deps.health);
    for (id, status) in &eval.unknown_statuses {
        tracing::warn!(connection_id = %id, status = %status, "unknown connection status; left as it was");
    }
    let inventory = current_inventory(deps, now).await;
    for draft in &mut eval.alerts {
        if let Some(arn) = draft.resources.connection_arn.as_deref().and_then(|a| ConnectionArn::parse(a).ok()) {
            draft.affected_pipelines = pipelines_using(&inventory, arn.id());
        }
    }

    let lifecycle = Lifecycle::new(&deps.store, &deps.notifier, &deps.clock, deps.lifecycle.clone());
    let total = eval.alerts.len();
    let mut outcomes = Vec::with_capacity(total);
    let mut failed_connections = BTreeSet::new();
    let mut failed = 0;
    let mut first_error = None;
    for draft in eval.alerts.iter().cloned() {
        let connection = connection_prefix(&draft.dedup_key);
        match lifecycle.process(draft).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => {
                tracing::error!(error = ?error, "alert could not be processed");
                failed_connections.insert(connection);
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
    }

    let mut datums = eval.metrics.clone();
    datums.extend(outcome_metrics(&outcomes, now));
    let to_write: Vec<&ConnectionState> = eval
        .changed_states
        .iter()
        .filter(|s| !failed_connections.contains(&DedupKey::connection_prefix(&s.arn)))
        .collect();
    for state in &to_write {
        if let Err(error) = deps.store.save_connection_state(state).await {
            return Err((HealthCheckError::Store(error), datums));
        }
    }
    if let Some(first) = first_error {
        return Err((HealthCheckError::Alerts { failed, total, first }, datums));
    }
    let notified = outcomes.iter().filter(|o| matches!(o, Outcome::Notified(_))).count();
    let report = RunReport {
        connections: listing.len(),
        not_available: listing.iter().filter(|c| c.status != ConnectionStatus::Available).count(),
        notified,
        suppressed: outcomes.len() - notified,
        states_written: to_write.len(),
    };
    tracing::info!(?report, "health check complete");
    Ok((report, datums))
}

/// The pipeline inventory after this run's bounded refresh. The inventory only enriches the
/// alerts: when CodePipeline cannot be read, the stored inventory is used and the run goes on.
async fn current_inventory<D, P, S, N, M, C>(deps: &Deps<D, P, S, N, M, C>, now: DateTime<Utc>) -> Vec<InventoryEntry>
where
    P: PipelineDirectory,
    S: PipelineInventoryStore,
{
    match refresh_batch(&deps.pipelines, &deps.store, now, &deps.inventory).await {
        Ok((inventory, report)) => {
            tracing::debug!(?report, "pipeline inventory refreshed");
            inventory
        }
        Err(error) => {
            tracing::warn!(error = %connwatch::error_chain(&error), "pipeline inventory not refreshed; using the stored one");
            deps.store.load_inventory().await.unwrap_or_default()
        }
    }
}

/// The connection part of a connection alert's key (`connection/<account>/<region>/<id>`).
fn connection_prefix(key: &DedupKey) -> String {
    key.as_str().rsplit_once('/').map_or_else(|| key.as_str().to_owned(), |(prefix, _)| prefix.to_owned())
}

/// The scheduled time, when the schedule's input carries one (for the log span).
fn scheduled_time(event: &serde_json::Value) -> &str {
    event.get("scheduled_time").and_then(serde_json::Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests;
