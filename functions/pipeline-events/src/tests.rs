//! Handler tests: event fixture → `handle` → what was published, stored and emitted.

use chrono::{TimeZone, Utc};
use connwatch::adapters::memory::{ManualClock, MemoryPipelines, MemoryStore, RecordingMetrics, RecordingNotifier};
use connwatch::domain::alert::{Alert, Cause};
use connwatch::domain::connection::{ConnectionArn, ConnectionStatus, ProviderType};
use connwatch::domain::health::{ConnectionProblem, ConnectionState};
use connwatch::domain::inventory::PipelineInfo;
use serde_json::Value;

use super::*;

type World = Deps<MemoryPipelines, MemoryStore, RecordingNotifier, RecordingMetrics, ManualClock>;

const CONNECTION: &str =
    "arn:aws:codeconnections:eu-west-1:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2";

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/codepipeline/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn world() -> World {
    let w = Deps {
        pipelines: MemoryPipelines::default(),
        store: MemoryStore::default(),
        notifier: RecordingNotifier::default(),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()),
        policy: PipelinePolicy::default(),
        lifecycle: LifecyclePolicy::default(),
    };
    w.pipelines.upsert(PipelineInfo {
        name: "web-prod".to_owned(),
        role_arn: Some("arn:aws:iam::123456789012:role/web-prod-pipeline".to_owned()),
        sources: vec![SourceAction {
            stage: "Source".to_owned(),
            action: "Source".to_owned(),
            connection_arn: Some(CONNECTION.to_owned()),
            repository: Some("acme/web".to_owned()),
            branch: Some("main".to_owned()),
        }],
    });
    w
}

async fn save_connection(w: &World, status: ConnectionStatus) {
    w.store
        .save_connection_state(&ConnectionState {
            arn: ConnectionArn::parse(CONNECTION).unwrap(),
            name: "bitbucket-prod".to_owned(),
            provider: ProviderType::Bitbucket,
            status,
            status_since: w.clock.now(),
            first_seen_at: w.clock.now(),
            last_became_available_at: None,
            open_problems: Default::default(),
            deleted_at: None,
        })
        .await
        .unwrap();
}

/// The failure fixture with a fresh event id (each delivery of a new failure has its own).
fn failure(n: u32) -> Value {
    let mut event = fixture("action-connection-source-failed-permission.json");
    event["id"] = Value::String(format!("failure-{n}"));
    event
}

fn sent(w: &World) -> Vec<Alert> {
    w.notifier.take().iter().map(|p| serde_json::from_str(&p.rendered.message).unwrap()).collect()
}

#[tokio::test]
async fn a_permission_failure_is_paged_with_its_cause_and_context() {
    let w = world();
    save_connection(&w, ConnectionStatus::Available).await;
    let report = handle(&failure(1), &w).await.unwrap();
    assert_eq!(report.diagnosis.as_ref().map(|d| d.cause), Some(Cause::PermissionDenied));
    let alerts = sent(&w);
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert.kind.as_str(), "pipeline.source_failed");
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.cause, Some(Cause::PermissionDenied));
    assert_eq!(alert.resources.pipeline.as_deref(), Some("web-prod"));
    assert_eq!(alert.resources.repository.as_deref(), Some("acme/web"));
    assert_eq!(alert.resources.branch.as_deref(), Some("main"));
    assert_eq!(alert.resources.connection_arn.as_deref(), Some(CONNECTION));
    assert_eq!(alert.resources.connection_name.as_deref(), Some("bitbucket-prod"));
    assert_eq!(alert.dedup_key.as_str(), "pipeline/123456789012/eu-west-1/web-prod/source_failed");
    assert!(alert.summary.contains("codeconnections:UseConnection"), "{}", alert.summary);
    assert_eq!(alert.source_event_id.as_deref(), Some("failure-1"));
    assert_eq!(w.pipelines.gets(), 1, "the unknown pipeline was read on demand");
    let failures: Vec<_> =
        w.metrics.datums().into_iter().filter(|d| d.name == MetricName::SourceActionFailures).collect();
    assert_eq!(failures[0].dimensions["Cause"], "permission_denied");
}

#[tokio::test]
async fn repeated_failures_escalate_to_critical_and_a_success_resolves() {
    let w = world();
    save_connection(&w, ConnectionStatus::Available).await;
    for n in 1..=4 {
        handle(&failure(n), &w).await.unwrap();
    }
    let alerts = sent(&w);
    let severities: Vec<_> = alerts.iter().map(|a| a.severity).collect();
    assert_eq!(severities, [Severity::Warning, Severity::Critical], "2nd is a duplicate, 3rd escalates, 4th duplicate");
    assert_eq!(alerts[1].notification_count, 2);

    handle(&fixture("action-connection-source-succeeded.json"), &w).await.unwrap();
    let resolved = sent(&w);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].status, AlertStatus::Resolved);
    assert_eq!(resolved[0].dedup_key, alerts[0].dedup_key);
    assert_eq!(w.store.get_inventory_entry("web-prod").await.unwrap().unwrap().source_failure_streak, 0);
    let executions = w.store.executions();
    let commit = executions.values().find_map(|e| e.commit_id.clone());
    assert_eq!(commit.as_deref(), Some("5fe88c29cc81b6c25d82f2b772a6ec77c8b91505"));
}

#[tokio::test]
async fn failures_during_a_connection_outage_fold_into_the_connection_alert() {
    let w = world();
    save_connection(&w, ConnectionStatus::Error).await;
    let lifecycle = Lifecycle::new(&w.store, &w.notifier, &w.clock, LifecyclePolicy::default());
    let arn = ConnectionArn::parse(CONNECTION).unwrap();
    let connection_alert = AlertDraft {
        dedup_key: ConnectionProblem::Unhealthy.dedup_key(&arn),
        status: AlertStatus::Firing,
        severity: Severity::Critical,
        kind: AlertKind::ConnectionUnhealthy,
        title: "Connection bitbucket-prod is ERROR".to_owned(),
        summary: String::new(),
        cause: None,
        account: "123456789012".to_owned(),
        region: "eu-west-1".to_owned(),
        resources: Resources::default(),
        affected_pipelines: vec![],
        occurred_at: w.clock.now(),
        source_event_id: None,
        links: vec![],
    };
    lifecycle.process(connection_alert).await.unwrap();
    sent(&w);

    let report = handle(&failure(1), &w).await.unwrap();
    assert!(sent(&w).is_empty(), "no separate page while the connection is down");
    assert!(matches!(report.outcomes[..], [Outcome::Suppressed { reason: SuppressReason::Inhibited, .. }]));
    assert_eq!(report.diagnosis.map(|d| d.cause), Some(Cause::ConnectionUnavailable));
    let record = w.store.alerts()[&ConnectionProblem::Unhealthy.dedup_key(&arn)].clone();
    assert_eq!(record.affected_pipelines, ["web-prod"]);
    let suppressed: Vec<_> =
        w.metrics.datums().into_iter().filter(|d| d.name == MetricName::NotificationsSuppressed).collect();
    assert_eq!(suppressed[0].dimensions["Reason"], "inhibited");
}

#[tokio::test]
async fn a_prefix_mismatch_is_named() {
    let w = world();
    let mut event = failure(1);
    event["detail"]["execution-result"]["external-execution-summary"] = Value::String(
        "User: arn:aws:sts::123456789012:assumed-role/web-prod-pipeline/x is not authorized to perform: codestar-connections:UseConnection on resource: x"
            .to_owned(),
    );
    handle(&event, &w).await.unwrap();
    assert_eq!(sent(&w)[0].cause, Some(Cause::ConnectionPrefixMismatch));
}

#[tokio::test]
async fn a_redelivered_event_is_handled_once() {
    let w = world();
    handle(&failure(1), &w).await.unwrap();
    let again = handle(&failure(1), &w).await.unwrap();
    assert_eq!(sent(&w).len(), 1);
    assert!(again.decision.contains("redelivered"));
    assert_eq!(
        w.store.get_inventory_entry("web-prod").await.unwrap().unwrap().source_failure_streak,
        1,
        "counted once"
    );
}

#[tokio::test]
async fn other_failures_notify_only_when_enabled() {
    let mut w = world();
    handle(&fixture("action-deploy-failed.json"), &w).await.unwrap();
    assert!(sent(&w).is_empty());
    w.policy.notify_pipeline_failures = true;
    let mut event = fixture("action-deploy-failed.json");
    event["id"] = Value::String("deploy-2".to_owned());
    handle(&event, &w).await.unwrap();
    let alerts = sent(&w);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind.as_str(), "pipeline.failed");
}

#[tokio::test]
async fn every_documented_event_is_handled_and_counted() {
    let w = world();
    for name in [
        "pipeline-started.json",
        "pipeline-succeeded-connection-trigger.json",
        "pipeline-failed.json",
        "pipeline-superseded-integer-version.json",
        "pipeline-unknown-state.json",
        "stage-resumed.json",
        "stage-failed.json",
        "action-source-succeeded.json",
        "action-started.json",
        "action-abandoned.json",
    ] {
        let report = handle(&fixture(name), &w).await.unwrap();
        assert!(report.skipped.is_none(), "{name}");
    }
    let states: Vec<_> = w
        .metrics
        .datums()
        .into_iter()
        .filter(|d| d.name == MetricName::PipelineExecutions)
        .map(|d| d.dimensions["State"].clone())
        .collect();
    assert_eq!(states, ["STARTED", "SUCCEEDED", "FAILED", "SUPERSEDED", "PAUSED_FOR_APPROVAL"]);
    assert_eq!(w.store.executions().len(), 4, "executions recorded by id");
}

#[tokio::test]
async fn processed_shapes_are_skipped_and_garbage_is_an_invalid_event() {
    let w = world();
    let report = handle(&fixture("processed-notification.json"), &w).await.unwrap();
    assert!(report.skipped.unwrap().contains("processed"));
    let error = handle(&fixture("action-missing-stage.json"), &w).await.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(error).error_type, "InvalidEvent");
    let error = handle(&serde_json::json!([1, 2]), &w).await.unwrap_err();
    assert!(matches!(error, PipelineError::InvalidEvent(_)));
}

#[tokio::test]
async fn a_store_failure_asks_for_a_retry() {
    let w = world();
    // The inventory is enrichment: its failures are logged. The failure count is state.
    connwatch::inventory::entry_for(&w.pipelines, &w.store, "web-prod", w.clock.now(), &w.policy.inventory)
        .await
        .unwrap();
    w.store.fail_next_writes(1);
    let error = handle(&failure(1), &w).await.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(error).error_type, "Retryable");
    assert!(sent(&w).is_empty());
    handle(&failure(1), &w).await.unwrap();
    assert_eq!(sent(&w).len(), 1, "the retry pages");
}
