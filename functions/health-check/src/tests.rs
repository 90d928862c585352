//! Handler tests: listing → `handle` → what was published, stored and emitted, on the
//! in-memory adapters.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use connwatch::adapters::memory::{
    ManualClock, MemoryDirectory, MemoryPipelines, MemoryStore, RecordingMetrics, RecordingNotifier,
};
use connwatch::domain::alert::{Alert, AlertStatus};
use connwatch::domain::connection::{Connection, ConnectionArn, ConnectionStatus, ProviderType};
use connwatch::domain::health::HealthPolicy;
use connwatch::domain::inventory::{PipelineInfo, SourceAction};
use connwatch::domain::metric::MetricName;
use connwatch::lifecycle::LifecyclePolicy;
use connwatch::ports::DirectoryError;
use serde_json::json;

use super::*;

type World = Deps<MemoryDirectory, MemoryPipelines, MemoryStore, RecordingNotifier, RecordingMetrics, ManualClock>;

const BITBUCKET: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";
const GITHUB: &str = "1a2b3c4d-1a1d-46c5-86b6-f177321bcfb2";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn world() -> World {
    Deps {
        directory: MemoryDirectory::default(),
        pipelines: MemoryPipelines::default(),
        store: MemoryStore::default(),
        notifier: RecordingNotifier::default(),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(t0()),
        health: HealthPolicy { pending_grace: Duration::from_secs(3600), detailed_metrics: false },
        lifecycle: LifecyclePolicy::default(),
        inventory: InventoryPolicy::default(),
    }
}

fn connection(id: &str, name: &str, provider: ProviderType, status: ConnectionStatus) -> Connection {
    Connection {
        arn: ConnectionArn::parse(&format!("arn:aws:codeconnections:eu-west-1:123456789012:connection/{id}")).unwrap(),
        name: name.to_owned(),
        provider,
        status,
        owner_account_id: Some("acme".to_owned()),
        host_arn: None,
    }
}

fn bitbucket(status: ConnectionStatus) -> Connection {
    connection(BITBUCKET, "bitbucket-prod", ProviderType::Bitbucket, status)
}

/// Advances the clock by a minute and runs one check.
async fn tick(w: &World) -> Result<RunReport, HealthCheckError> {
    let report = handle(&json!({"scheduled_time": "2026-12-04T10:00:00Z"}), w).await;
    w.clock.advance(Duration::from_secs(60));
    report
}

fn alerts(w: &World) -> Vec<Alert> {
    w.notifier.take().iter().map(|p| serde_json::from_str(&p.rendered.message).unwrap()).collect()
}

fn metric_sum(w: &World, name: MetricName) -> f64 {
    w.metrics.datums().iter().filter(|d| d.name == name).map(|d| d.value).sum()
}

#[tokio::test]
async fn error_pages_once_and_recovery_resolves_with_the_same_key() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    tick(&w).await.unwrap();
    assert!(alerts(&w).is_empty());

    w.directory.upsert(bitbucket(ConnectionStatus::Error));
    let report = tick(&w).await.unwrap();
    assert_eq!(report.notified, 1);
    let fired = alerts(&w);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].kind.as_str(), "connection.unhealthy");
    assert_eq!(fired[0].severity.as_str(), "critical");
    assert_eq!(fired[0].status, AlertStatus::Firing);
    assert_eq!(fired[0].resources.connection_name.as_deref(), Some("bitbucket-prod"));
    assert_eq!(fired[0].resources.provider.as_deref(), Some("Bitbucket"));

    for _ in 0..5 {
        let report = tick(&w).await.unwrap();
        assert_eq!((report.notified, report.suppressed), (0, 1));
    }
    assert!(alerts(&w).is_empty(), "the same status on consecutive runs never notifies twice");

    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    tick(&w).await.unwrap();
    let resolved = alerts(&w);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].status, AlertStatus::Resolved);
    assert_eq!(resolved[0].dedup_key, fired[0].dedup_key);
    assert_eq!(resolved[0].notification_count, 2);
    assert_eq!(metric_sum(&w, MetricName::NotificationsSuppressed), 5.0);
}

#[tokio::test]
async fn a_lasting_error_is_re_sent_after_the_repeat_interval() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Error));
    tick(&w).await.unwrap();
    assert_eq!(alerts(&w).len(), 1);
    w.clock.advance(Duration::from_secs(4 * 3600));
    tick(&w).await.unwrap();
    let repeat = alerts(&w);
    assert_eq!(repeat.len(), 1);
    assert_eq!(repeat[0].notification_count, 2);
    assert_eq!(repeat[0].first_seen_at, t0());
}

#[tokio::test]
async fn pending_warns_after_the_grace_period_and_resolves_when_available() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Pending));
    for _ in 0..60 {
        tick(&w).await.unwrap();
    }
    assert!(alerts(&w).is_empty(), "still within the 1h grace");
    tick(&w).await.unwrap();
    let fired = alerts(&w);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].kind.as_str(), "connection.pending");
    assert_eq!(fired[0].severity.as_str(), "warning");
    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    tick(&w).await.unwrap();
    let resolved = alerts(&w);
    assert_eq!(resolved.len(), 1);
    assert_eq!((resolved[0].kind.as_str(), resolved[0].status), ("connection.pending", AlertStatus::Resolved));
}

#[tokio::test]
async fn deleted_connection_warns_once_and_resolves_its_open_alerts() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Error));
    w.directory.upsert(connection(GITHUB, "github-tools", ProviderType::GitHub, ConnectionStatus::Available));
    tick(&w).await.unwrap();
    assert_eq!(alerts(&w).len(), 1);

    w.directory.remove(bitbucket(ConnectionStatus::Error).id());
    tick(&w).await.unwrap();
    let sent = alerts(&w);
    let summary: Vec<_> = sent.iter().map(|a| (a.kind.as_str(), a.status)).collect();
    assert_eq!(summary, [("connection.deleted", AlertStatus::Firing), ("connection.unhealthy", AlertStatus::Resolved)]);
    assert_eq!(sent[0].severity.as_str(), "warning");
    for _ in 0..3 {
        tick(&w).await.unwrap();
    }
    assert!(alerts(&w).is_empty(), "a deletion is announced once");
}

#[tokio::test]
async fn failed_listing_changes_nothing_counts_an_error_and_asks_for_a_retry() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    tick(&w).await.unwrap();
    w.directory.fail_next(DirectoryError::Throttled { api: "codeconnections", source: "Rate exceeded".into() });
    let error = tick(&w).await.unwrap_err();
    assert!(matches!(error, HealthCheckError::Listing(DirectoryError::Throttled { .. })));
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "HealthCheck.throttled");
    assert!(alerts(&w).is_empty(), "nothing is concluded from a failed listing");
    assert_eq!(w.store.connection_states().len(), 1);
    let errors: Vec<_> = w.metrics.datums().into_iter().filter(|d| d.name == MetricName::HealthCheckErrors).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].dimensions["Reason"], "throttled");
    assert_eq!(metric_sum(&w, MetricName::HealthCheckRuns), 1.0, "no heartbeat for the failed run");
}

#[tokio::test]
async fn access_denied_listing_marks_nothing_as_deleted() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    tick(&w).await.unwrap();
    w.directory.fail_next(DirectoryError::AccessDenied { api: "codestar-connections", source: "denied".into() });
    assert!(tick(&w).await.is_err());
    tick(&w).await.unwrap();
    assert!(alerts(&w).is_empty());
    assert!(w.store.connection_states().values().all(|s| s.deleted_at.is_none()));
}

#[tokio::test]
async fn failed_publish_leaves_the_state_so_the_next_run_pages() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    tick(&w).await.unwrap();
    w.directory.upsert(bitbucket(ConnectionStatus::Error));
    w.notifier.fail_next(1);
    let error = tick(&w).await.unwrap_err();
    assert!(matches!(error, HealthCheckError::Alerts { failed: 1, total: 1, .. }));
    assert_eq!(w.store.connection_states().values().next().unwrap().status, ConnectionStatus::Available);
    tick(&w).await.unwrap();
    let fired = alerts(&w);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].kind.as_str(), "connection.unhealthy");
}

#[tokio::test]
async fn store_write_failure_is_an_error() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    w.store.fail_next_writes(1);
    let error = tick(&w).await.unwrap_err();
    assert!(matches!(error, HealthCheckError::Store(_)));
    assert_eq!(lambda_runtime::Diagnostic::from(error).error_type, "HealthCheck.store_error");
}

#[tokio::test]
async fn every_successful_run_emits_the_heartbeat_and_connection_counts() {
    let w = world();
    w.directory.upsert(bitbucket(ConnectionStatus::Available));
    w.directory.upsert(connection(GITHUB, "github-tools", ProviderType::GitHub, ConnectionStatus::Pending));
    for _ in 0..3 {
        tick(&w).await.unwrap();
    }
    assert_eq!(metric_sum(&w, MetricName::HealthCheckRuns), 3.0);
    let datums = w.metrics.datums();
    let pending = datums
        .iter()
        .find(|d| {
            d.name == MetricName::Connections && d.dimensions.get("Status").map(String::as_str) == Some("PENDING")
        })
        .unwrap();
    assert_eq!(pending.dimensions["Provider"], "GitHub");
    assert_eq!(pending.value, 1.0);
}

#[tokio::test]
async fn any_json_input_is_accepted() {
    let w = world();
    for input in [json!({}), json!(null), json!("text"), json!([1, 2]), json!({"detail-type": "Scheduled Event"})] {
        handle(&input, &w).await.unwrap();
    }
}

#[tokio::test]
async fn connection_alerts_name_the_pipelines_that_use_the_connection() {
    let w = world();
    for (name, connection) in [("web-prod", BITBUCKET), ("api-prod", BITBUCKET), ("tools", GITHUB)] {
        w.pipelines.upsert(PipelineInfo {
            name: name.to_owned(),
            role_arn: None,
            sources: vec![SourceAction {
                stage: "Source".to_owned(),
                action: "Source".to_owned(),
                // The inventory may hold the other ARN prefix: matching is by connection id.
                connection_arn: Some(format!(
                    "arn:aws:codestar-connections:eu-west-1:123456789012:connection/{connection}"
                )),
                repository: Some(format!("acme/{name}")),
                branch: Some("main".to_owned()),
            }],
        });
    }
    w.directory.upsert(bitbucket(ConnectionStatus::Error));
    tick(&w).await.unwrap();
    let fired = alerts(&w);
    assert_eq!(fired[0].affected_pipelines, ["api-prod", "web-prod"]);
}
