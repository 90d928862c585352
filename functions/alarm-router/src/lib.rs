//! `alarm-router`: this stack's CloudWatch alarms reach people as connwatch alerts.
//!
//! - **Trigger**: EventBridge rule on `source: aws.cloudwatch`, detail-type "CloudWatch Alarm
//!   State Change", for alarms named with `CONNWATCH_ALARM_PREFIX` (default `connwatch-`), with
//!   a DLQ. Metric, metric-math and composite alarms.
//! - **Effect**: `ALARM` → a firing `alarm` alert, `OK` → resolved (same dedup key
//!   `alarm/<account>/<region>/<alarm name>`), `INSUFFICIENT_DATA` → a warning only for the
//!   heartbeat alarm (the checker stopped reporting), otherwise ignored. The summary names the
//!   alarm, its reason and threshold; alarms about connection health list the connections that
//!   are currently unhealthy (from the state table). Severity: critical for the heartbeat and
//!   connection-health alarms, warning for the others.
//! - **Env**: `CONNWATCH_TABLE_NAME` (required), `CONNWATCH_{CRITICAL,WARNING,INFO}_TOPIC_ARN`,
//!   `CONNWATCH_ALARM_PREFIX`, `CONNWATCH_REPEAT_INTERVAL`, `CONNWATCH_RETENTION`,
//!   `CONNWATCH_METRIC_NAMESPACE`, `CONNWATCH_RUNBOOK_BASE_URL`, `CONNWATCH_SDK_TIMEOUT`.
//! - **IAM**: `dynamodb:GetItem`, `PutItem`, `DeleteItem`, `Query` on the state table;
//!   `sns:Publish` on the topics (and KMS for them).

use aws_lambda_events::cloudwatch_alarms::{CloudWatchAlarmData, CloudWatchAlarmStateValue};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use connwatch::domain::alert::{AlertDraft, AlertKind, AlertStatus, DedupKey, Link, Resources, Severity};
use connwatch::domain::connection::ConnectionStatus;
use connwatch::domain::text::{NAME_CAP, clean};
use connwatch::lifecycle::{Lifecycle, LifecycleError, LifecyclePolicy, Outcome, outcome_metrics};
use connwatch::ports::{AlertStore, Clock, ConnectionStateStore, MetricSink, Notifier, SilenceStore, StoreError};
use serde_json::Value;

/// The detail type of alarm state changes.
pub const DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct RouterPolicy {
    /// Only alarms whose name starts with this are routed.
    pub alarm_prefix: String,
}

impl Default for RouterPolicy {
    fn default() -> Self {
        Self { alarm_prefix: "connwatch-".to_owned() }
    }
}

/// What the handler needs.
#[derive(Debug)]
pub struct Deps<S, N, M, C> {
    /// The state table.
    pub store: S,
    /// Publishes alerts.
    pub notifier: N,
    /// Receives metrics.
    pub metrics: M,
    /// The time.
    pub clock: C,
    /// Router settings.
    pub policy: RouterPolicy,
    /// Lifecycle settings.
    pub lifecycle: LifecyclePolicy,
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// Not an alarm state change; the DLQ keeps it.
    #[error("invalid alarm state change event")]
    InvalidEvent(#[source] serde_json::Error),
    /// The state table failed; worth a retry.
    #[error("state table failed")]
    Store(#[source] StoreError),
    /// The alert could not be processed; worth a retry.
    #[error("alert could not be processed")]
    Lifecycle(#[source] LifecycleError),
}

impl From<RouterError> for lambda_runtime::Diagnostic {
    fn from(error: RouterError) -> Self {
        let kind = match error {
            RouterError::InvalidEvent(_) => "InvalidEvent",
            RouterError::Store(_) | RouterError::Lifecycle(_) => "Retryable",
        };
        Self { error_type: kind.to_owned(), error_message: connwatch::error_chain(&error) }
    }
}

/// What the router did with one event.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterReport {
    /// Set when the event was ignored, with the reason.
    pub skipped: Option<String>,
    /// What the lifecycle did.
    pub outcomes: Vec<Outcome>,
    /// One line on the decision.
    pub decision: String,
}

type AlarmEvent = EventBridgeEvent<CloudWatchAlarmData<Value, Value>>;

/// Handles one alarm state change.
pub async fn handle<S, N, M, C>(event: &Value, deps: &Deps<S, N, M, C>) -> Result<RouterReport, RouterError>
where
    S: AlertStore + ConnectionStateStore + SilenceStore,
    N: Notifier,
    M: MetricSink,
    C: Clock,
{
    let skip = |reason: String| {
        tracing::info!(%reason, "alarm event skipped");
        Ok(RouterReport { skipped: Some(reason.clone()), outcomes: vec![], decision: format!("skipped: {reason}") })
    };
    if event.get("detail-type").and_then(Value::as_str) != Some(DETAIL_TYPE) {
        return skip(format!("detail-type is not {DETAIL_TYPE}"));
    }
    let alarm: AlarmEvent = serde_json::from_value(event.clone()).map_err(|e| {
        tracing::error!(error = %e, "invalid alarm state change");
        RouterError::InvalidEvent(e)
    })?;
    let name = clean(&alarm.detail.alarm_name, NAME_CAP);
    if !name.starts_with(&deps.policy.alarm_prefix) {
        return skip(format!("alarm {name} is not one of this stack's ({}*)", deps.policy.alarm_prefix));
    }
    let Some(state) = &alarm.detail.state else { return skip(format!("alarm {name} has no state")) };
    let heartbeat = is_heartbeat(&name);
    let status = match state.value {
        CloudWatchAlarmStateValue::Alarm => AlertStatus::Firing,
        CloudWatchAlarmStateValue::Ok => AlertStatus::Resolved,
        CloudWatchAlarmStateValue::InsufficientData if heartbeat => AlertStatus::Firing,
        _ => return skip(format!("alarm {name}: INSUFFICIENT_DATA is only routed for the heartbeat")),
    };
    let unhealthy = if about_connections(&name, &alarm.detail.configuration) {
        unhealthy_connections(&deps.store).await?
    } else {
        Vec::new()
    };
    let draft = draft(&alarm, &name, status, heartbeat, &unhealthy);
    let lifecycle = Lifecycle::new(&deps.store, &deps.notifier, &deps.clock, deps.lifecycle.clone());
    let outcome = lifecycle.process(draft).await.map_err(RouterError::Lifecycle)?;
    let metrics = outcome_metrics(std::slice::from_ref(&outcome), deps.clock.now());
    deps.metrics.emit_best_effort(&metrics).await;
    let decision = format!("alarm {name} → {}", status.as_str());
    tracing::info!(%decision, "alarm state change handled");
    Ok(RouterReport { skipped: None, decision, outcomes: vec![outcome] })
}

/// The heartbeat alarm: missing data there means the checker stopped.
fn is_heartbeat(name: &str) -> bool {
    name.ends_with("-heartbeat")
}

/// Whether the alarm watches connection health (by name or by the metric it reads).
fn about_connections(name: &str, configuration: &Value) -> bool {
    name.contains("connection") || configuration.to_string().contains("UnhealthyConnections")
}

/// Names of the connections currently ERROR or PENDING, with their status.
async fn unhealthy_connections<S: ConnectionStateStore>(store: &S) -> Result<Vec<String>, RouterError> {
    let states = store.load_connection_states().await.map_err(RouterError::Store)?;
    let mut names: Vec<String> = states
        .iter()
        .filter(|s| s.deleted_at.is_none() && s.status != ConnectionStatus::Available)
        .map(|s| format!("{} ({})", clean(&s.name, NAME_CAP), s.status))
        .collect();
    names.sort();
    Ok(names)
}

fn draft(alarm: &AlarmEvent, name: &str, status: AlertStatus, heartbeat: bool, unhealthy: &[String]) -> AlertDraft {
    let account = alarm.account.clone().unwrap_or_default();
    let region = alarm.region.clone().unwrap_or_default();
    let state = alarm.detail.state.as_ref();
    let reason = state.map(|s| clean(&s.reason, 1_000)).unwrap_or_default();
    let threshold = state
        .and_then(|s| s.reason_data.as_ref())
        .and_then(|data| match data {
            Value::String(text) => serde_json::from_str::<Value>(text).ok(),
            other => Some(other.clone()),
        })
        .and_then(|data| data.get("threshold").and_then(Value::as_f64));
    let description = alarm.detail.configuration.get("description").and_then(Value::as_str).map(|d| clean(d, 500));
    let missing_data = state.is_some_and(|s| s.value == CloudWatchAlarmStateValue::InsufficientData);
    let severity = if heartbeat || about_connections(name, &alarm.detail.configuration) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let severity = if missing_data { Severity::Warning } else { severity };
    let title = match (status, missing_data) {
        (AlertStatus::Resolved, _) => format!("Alarm {name} is OK again"),
        (_, true) => format!("Alarm {name} has no data: the health check stopped reporting"),
        _ => format!("Alarm {name} is in ALARM"),
    };
    let mut summary = format!("{}{}", description.map(|d| format!("{d}. ")).unwrap_or_default(), reason);
    if let Some(threshold) = threshold {
        summary.push_str(&format!(" Threshold: {threshold}."));
    }
    if !unhealthy.is_empty() && status == AlertStatus::Firing {
        summary.push_str(&format!(" Connections not AVAILABLE now: {}.", unhealthy.join(", ")));
    }
    if heartbeat && status == AlertStatus::Firing {
        summary.push_str(" First step: check the health-check function's errors and logs and its schedule; until it reports again, connection outages go unnoticed.");
    }
    AlertDraft {
        dedup_key: DedupKey::from_stored(format!("alarm/{account}/{region}/{name}")),
        status,
        severity,
        kind: AlertKind::Alarm,
        title,
        summary,
        cause: None,
        account,
        region: region.clone(),
        resources: Resources { alarm_name: Some(name.to_owned()), ..Resources::default() },
        affected_pipelines: vec![],
        occurred_at: state.map_or_else(Utc::now, |s| s.timestamp),
        source_event_id: alarm.id.clone(),
        links: vec![Link {
            title: "Alarm in the console".to_owned(),
            url: format!(
                "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
                name.replace(' ', "+")
            ),
        }],
    }
}

#[cfg(test)]
mod tests;
