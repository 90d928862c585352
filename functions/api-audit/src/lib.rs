//! `api-audit`: the CloudTrail API calls that break connections, as notices that say who did
//! what and what it breaks.
//!
//! - **Trigger**: EventBridge rules on "AWS API Call via CloudTrail" from
//!   `aws.codestar-connections`, `aws.codeconnections`, `aws.codepipeline`, and `aws.iam`
//!   (IAM events exist only in us-east-1; a small forwarding stack sends them to this region's
//!   bus). Each rule has a DLQ.
//! - **Effect**: evaluates the audit rules (`connwatch::domain::audit::RULES`, first match
//!   wins) and publishes one notice per matching call — `api.access_denied`,
//!   `api.connection_deleted` (with the pipelines that used the connection),
//!   `api.installation_changed`, `api.connection_created`, `api.iam_changed` (roles the
//!   pipeline inventory names, or `CONNWATCH_WATCHED_ROLES`), `api.pipeline_changed` — naming
//!   the principal and linking the CloudTrail event. Every call counts in `ApiCalls`
//!   (`EventName`, `Outcome`). Redelivered events are recognised; other events are skipped with
//!   a log line; malformed ones return an `InvalidEvent` error so they end in the DLQ.
//! - **Env**: `CONNWATCH_TABLE_NAME` (required), `CONNWATCH_{CRITICAL,WARNING,INFO}_TOPIC_ARN`,
//!   `CONNWATCH_WATCHED_ROLES`, `CONNWATCH_RETENTION`, `CONNWATCH_METRIC_NAMESPACE`,
//!   `CONNWATCH_DETAILED_METRICS`, `CONNWATCH_RUNBOOK_BASE_URL`, `CONNWATCH_SDK_TIMEOUT`.
//! - **IAM**: `dynamodb:GetItem`, `PutItem`, `DeleteItem`, `Query` on the state table (the
//!   inventory and connection names are read, never refreshed here); `sns:Publish` on the topics (and KMS for them).

use connwatch::domain::alert::{AlertDraft, AlertStatus, DedupKey, Link, Resources};
use connwatch::domain::audit::{
    self, ApiCall, AuditContext, AuditError, AuditRule, Parsed, Service, pipeline_name, role_matches, role_name,
};
use connwatch::domain::connection::ConnectionArn;
use connwatch::domain::health::ConnectionState;
use connwatch::domain::health::console_link;
use connwatch::domain::inventory::{InventoryEntry, pipelines_using};
use connwatch::domain::metric::{Datum, MetricName};
use connwatch::domain::text::{NAME_CAP, clean};
use connwatch::lifecycle::{Lifecycle, LifecycleError, LifecyclePolicy, Outcome, SuppressReason, outcome_metrics};
use connwatch::ports::{
    AlertStore, Clock, ConnectionStateStore, MetricSink, Notifier, PipelineInventoryStore, SilenceStore, StoreError,
};

/// Settings of the audit rules.
#[derive(Debug, Clone, Default)]
pub struct AuditPolicy {
    /// `CONNWATCH_WATCHED_ROLES` patterns.
    pub watched_roles: Vec<String>,
}

/// What the handler needs.
#[derive(Debug)]
pub struct Deps<S, N, M, C> {
    /// The state table (inventory, alert lifecycle, processed events).
    pub store: S,
    /// Publishes notices.
    pub notifier: N,
    /// Receives metrics.
    pub metrics: M,
    /// The time.
    pub clock: C,
    /// Rule settings.
    pub policy: AuditPolicy,
    /// Lifecycle settings.
    pub lifecycle: LifecyclePolicy,
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum AuditHandlerError {
    /// Malformed; the DLQ keeps it.
    #[error("invalid CloudTrail event")]
    InvalidEvent(#[source] AuditError),
    /// The state table failed; worth a retry.
    #[error("state table failed")]
    Store(#[source] StoreError),
    /// The notice could not be processed; worth a retry.
    #[error("notice could not be processed")]
    Lifecycle(#[source] LifecycleError),
}

impl From<AuditHandlerError> for lambda_runtime::Diagnostic {
    fn from(error: AuditHandlerError) -> Self {
        let kind = match error {
            AuditHandlerError::InvalidEvent(_) => "InvalidEvent",
            AuditHandlerError::Store(_) | AuditHandlerError::Lifecycle(_) => "Retryable",
        };
        Self { error_type: kind.to_owned(), error_message: connwatch::error_chain(&error) }
    }
}

/// What the handler did with one event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditReport {
    /// The EventBridge id.
    pub event_id: Option<String>,
    /// Set when the event was not an audited call.
    pub skipped: Option<String>,
    /// The rule that matched.
    pub rule: Option<&'static str>,
    /// What the lifecycle did.
    pub outcomes: Vec<Outcome>,
    /// One line on the decision.
    pub decision: String,
    /// Metrics emitted.
    pub metrics: Vec<Datum>,
}

/// Handles one EventBridge event.
pub async fn handle<S, N, M, C>(
    event: &serde_json::Value,
    deps: &Deps<S, N, M, C>,
) -> Result<AuditReport, AuditHandlerError>
where
    S: AlertStore + PipelineInventoryStore + ConnectionStateStore + SilenceStore,
    N: Notifier,
    M: MetricSink,
    C: Clock,
{
    let event_id = event.get("id").and_then(serde_json::Value::as_str).map(str::to_owned);
    let mut report = AuditReport {
        event_id: event_id.clone(),
        skipped: None,
        rule: None,
        outcomes: vec![],
        decision: String::new(),
        metrics: vec![],
    };
    let call = match audit::parse(event) {
        Ok(Parsed::Call(call)) => call,
        Ok(Parsed::Skipped(reason)) => {
            tracing::info!(%reason, event_id = ?event_id, "event skipped");
            report.decision = format!("skipped: {reason}");
            report.skipped = Some(reason);
            return Ok(report);
        }
        Err(error) => {
            tracing::error!(error = %error, event_id = ?event_id, "invalid CloudTrail event");
            return Err(AuditHandlerError::InvalidEvent(error));
        }
    };
    let lifecycle = Lifecycle::new(&deps.store, &deps.notifier, &deps.clock, deps.lifecycle.clone());
    let now = deps.clock.now();
    if lifecycle.is_redelivery(&call.id).await.map_err(AuditHandlerError::Store)? {
        report.decision = "redelivered event: already handled".to_owned();
        report.metrics = vec![
            Datum::new(MetricName::NotificationsSuppressed, 1.0, now)
                .with("Reason", SuppressReason::Redelivered.as_str()),
        ];
        deps.metrics.emit_best_effort(&report.metrics).await;
        return Ok(report);
    }
    report.metrics.push(
        Datum::new(MetricName::ApiCalls, 1.0, call.time)
            .with("EventName", clean(&call.event_name, NAME_CAP))
            .with("Outcome", call.outcome.as_str()),
    );
    let inventory = deps.store.load_inventory().await.map_err(AuditHandlerError::Store)?;
    let states = deps.store.load_connection_states().await.map_err(AuditHandlerError::Store)?;
    let context = context(&call, &inventory, &states, &deps.policy);
    match audit::first_match(&call, &context) {
        Some(rule) => {
            let outcome =
                lifecycle.process(notice(&call, rule, &context)).await.map_err(AuditHandlerError::Lifecycle)?;
            report.decision =
                format!("{} {} → rule {} ({})", call.event_name, call.outcome.as_str(), rule.id, rule.kind);
            report.rule = Some(rule.id);
            report.outcomes.push(outcome);
        }
        None => report.decision = format!("{} {}: no rule matched", call.event_name, call.outcome.as_str()),
    }
    report.metrics.extend(outcome_metrics(&report.outcomes, now));
    lifecycle.mark_processed(&call.id).await.map_err(AuditHandlerError::Store)?;
    deps.metrics.emit_best_effort(&report.metrics).await;
    tracing::info!(decision = %report.decision, principal = ?call.principal.arn, "event handled");
    Ok(report)
}

/// What the rules need from the inventory and the settings.
fn context(
    call: &ApiCall,
    inventory: &[InventoryEntry],
    states: &[ConnectionState],
    policy: &AuditPolicy,
) -> AuditContext {
    let connection = subject_connection(call);
    let connection_name = connection
        .as_ref()
        .and_then(|arn| states.iter().find(|s| s.id() == arn.id()))
        .map(|s| clean(&s.name, NAME_CAP));
    let role = role_name(call);
    let pipelines_using_role = role.map_or_else(Vec::new, |role| {
        let mut names: Vec<String> = inventory
            .iter()
            .filter(|e| e.info.role_arn.as_deref().is_some_and(|arn| arn.rsplit('/').next() == Some(role)))
            .map(|e| e.info.name.clone())
            .collect();
        names.sort();
        names
    });
    let pipeline = pipeline_name(call);
    AuditContext {
        connection_name,
        pipelines_using_connection: connection.map(|arn| pipelines_using(inventory, arn.id())).unwrap_or_default(),
        pipelines_using_role,
        role_is_watched: role.is_some_and(|role| policy.watched_roles.iter().any(|p| role_matches(p, role))),
        pipeline_has_connection_source: call.service == Service::CodePipeline
            && (audit::request_has_connection_source(call)
                || pipeline
                    .is_some_and(|name| inventory.iter().any(|e| e.info.name == name && !e.info.sources.is_empty()))),
    }
}

/// The connection a call is about: request/response `connectionArn`, or the ARN quoted in the
/// error message of a denied call (whose request parameters are often null).
fn subject_connection(call: &ApiCall) -> Option<ConnectionArn> {
    call.connection().or_else(|| call.error_message.as_deref().and_then(ConnectionArn::find_in))
}

/// The notice for a matched call.
fn notice(call: &ApiCall, rule: &AuditRule, context: &AuditContext) -> AlertDraft {
    let connection = subject_connection(call);
    let subject = subject(call, context.connection_name.as_deref(), connection.as_ref());
    let principal = call.principal.display();
    let title = rule
        .title
        .replace("{principal}", &principal)
        .replace("{subject}", &subject)
        .replace("{event}", &call.event_name);
    let affected = if context.pipelines_using_connection.is_empty() {
        context.pipelines_using_role.clone()
    } else {
        context.pipelines_using_connection.clone()
    };
    let mut links = vec![Link { title: "Event in CloudTrail".to_owned(), url: call.console_url() }];
    links.extend(connection.as_ref().map(console_link));
    AlertDraft {
        dedup_key: DedupKey::from_stored(format!("api/{}/{}/{}/{}", call.account, call.region, rule.id, call.event_id)),
        status: AlertStatus::Firing,
        severity: rule.severity,
        kind: rule.kind,
        title,
        summary: summary(call, rule, &subject, &affected),
        cause: None,
        account: call.account.clone(),
        region: call.region.clone(),
        resources: Resources {
            connection_arn: connection.map(|a| a.to_string()),
            connection_name: call
                .param("connectionName")
                .map(|n| clean(n, NAME_CAP))
                .or_else(|| context.connection_name.clone()),
            pipeline: pipeline_name(call).map(|n| clean(n, NAME_CAP)),
            principal: call.principal.arn.clone(),
            ..Resources::default()
        },
        affected_pipelines: affected,
        occurred_at: call.time,
        source_event_id: Some(call.id.clone()),
        links,
    }
}

/// What the call was about, for titles: a connection, host, role or pipeline.
fn subject(call: &ApiCall, known_name: Option<&str>, connection: Option<&ConnectionArn>) -> String {
    call.param("connectionName")
        .or(known_name)
        .map(str::to_owned)
        .or_else(|| connection.map(ToString::to_string))
        .or_else(|| call.param("hostArn").map(str::to_owned))
        .or_else(|| role_name(call).map(str::to_owned))
        .or_else(|| pipeline_name(call).map(str::to_owned))
        .map_or_else(|| "(not named in the event)".to_owned(), |s| clean(&s, NAME_CAP))
}

/// Who, what, when, from where, what it breaks, what to do first.
fn summary(call: &ApiCall, rule: &AuditRule, subject: &str, affected: &[String]) -> String {
    let p = &call.principal;
    let who = format!(
        "{} ({}{}) from {} using {}, MFA {}",
        p.display(),
        p.identity_type,
        p.arn.as_deref().map(|a| format!(", {a}")).unwrap_or_default(),
        p.source_ip.as_deref().unwrap_or("an unknown address"),
        p.user_agent.as_deref().unwrap_or("an unknown client"),
        match p.mfa {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
    );
    let pipelines = if affected.is_empty() { "no pipeline in the inventory".to_owned() } else { affected.join(", ") };
    let what = format!("{} on {subject} at {} by {who}.", call.event_name, call.time.format("%Y-%m-%d %H:%M:%S UTC"));
    let impact = match rule.id {
        "connection-call-denied" => format!(
            "The call was refused ({}: {}); nothing changed. Repeated denials from automation usually mean a missing grant under the other ARN prefix. First step: confirm the caller should be doing this.",
            call.error_code.as_deref().unwrap_or("denied"),
            call.error_message.as_deref().unwrap_or("no message")
        ),
        "connection-deleted" => format!(
            "Pipelines that read their source through it ({pipelines}) fail at Source from now on; a deleted connection cannot be restored. First step: if unintended, create a new connection, complete its handshake and point the pipelines' ConnectionArn and UseConnection grants at it."
        ),
        "installation-changed" => "The provider app installation or host behind connections changed; they may drop to ERROR. First step: run `connwatch check` and confirm the change with the caller.".to_owned(),
        "connection-created" => "The connection starts PENDING until someone completes its handshake in the console; connwatch warns if it stays PENDING past the grace period.".to_owned(),
        "pipeline-role-changed" => format!(
            "The role is used by {pipelines}; the change may have removed UseConnection or CodePipeline's trust. First step: check the role still allows <prefix>:UseConnection on the connection ARN (prefix matching the ARN)."
        ),
        _ => "The pipeline's source action reads through a connection. First step: confirm ConnectionArn, FullRepositoryId and BranchName are intended.".to_owned(),
    };
    format!("{what} {impact}")
}

#[cfg(test)]
mod tests;
