//! Handler tests on alarm fixtures: metric, metric math, composite, missing data.

use chrono::{TimeZone, Utc};
use connwatch::adapters::memory::{ManualClock, MemoryStore, RecordingMetrics, RecordingNotifier};
use connwatch::domain::alert::Alert;
use connwatch::domain::connection::{ConnectionArn, ProviderType};
use connwatch::domain::health::ConnectionState;

use super::*;

type World = Deps<MemoryStore, RecordingNotifier, RecordingMetrics, ManualClock>;

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/alarms/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn world() -> World {
    Deps {
        store: MemoryStore::default(),
        notifier: RecordingNotifier::default(),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()),
        policy: RouterPolicy::default(),
        lifecycle: LifecyclePolicy::default(),
    }
}

fn sent(w: &World) -> Vec<Alert> {
    w.notifier.take().iter().map(|p| serde_json::from_str(&p.rendered.message).unwrap()).collect()
}

#[tokio::test]
async fn alarm_fires_and_ok_resolves_the_same_alert() {
    let w = world();
    handle(&fixture("heartbeat-alarm.json"), &w).await.unwrap();
    handle(&fixture("heartbeat-ok.json"), &w).await.unwrap();
    let alerts = sent(&w);
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        (alerts[0].kind, alerts[0].status, alerts[0].severity),
        (AlertKind::Alarm, AlertStatus::Firing, Severity::Critical)
    );
    assert_eq!(alerts[1].status, AlertStatus::Resolved);
    assert_eq!(alerts[0].dedup_key, alerts[1].dedup_key);
    assert_eq!(alerts[0].dedup_key.as_str(), "alarm/123456789012/eu-west-1/connwatch-prod-heartbeat");
    assert!(alerts[0].summary.contains("Threshold: 1."), "{}", alerts[0].summary);
    assert!(alerts[0].summary.contains("less than the threshold"));
    assert_eq!(alerts[0].resources.alarm_name.as_deref(), Some("connwatch-prod-heartbeat"));
}

#[tokio::test]
async fn missing_data_warns_only_for_the_heartbeat() {
    let w = world();
    handle(&fixture("heartbeat-insufficient-data.json"), &w).await.unwrap();
    let alerts = sent(&w);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::Warning);
    assert!(alerts[0].title.contains("stopped reporting"));
    let report = handle(&fixture("errors-first-insufficient-data.json"), &w).await.unwrap();
    assert!(report.skipped.is_some());
    assert!(sent(&w).is_empty());
}

#[tokio::test]
async fn connection_health_alarms_list_the_unhealthy_connections() {
    let w = world();
    let now = w.clock.now();
    for (id, name, status) in [
        ("0f5b706a-1a1d-46c5-86b6-f177321bcfb2", "bitbucket-prod", ConnectionStatus::Error),
        ("1f5b706a-1a1d-46c5-86b6-f177321bcfb2", "github-tools", ConnectionStatus::Pending),
        ("2f5b706a-1a1d-46c5-86b6-f177321bcfb2", "gitlab-ok", ConnectionStatus::Available),
    ] {
        w.store
            .save_connection_state(&ConnectionState {
                arn: ConnectionArn::parse(&format!("arn:aws:codeconnections:eu-west-1:123456789012:connection/{id}"))
                    .unwrap(),
                name: name.to_owned(),
                provider: ProviderType::Bitbucket,
                status,
                status_since: now,
                first_seen_at: now,
                last_became_available_at: None,
                open_problems: Default::default(),
                deleted_at: None,
            })
            .await
            .unwrap();
    }
    handle(&fixture("unhealthy-connections-metric-math-alarm.json"), &w).await.unwrap();
    let alert = &sent(&w)[0];
    assert_eq!(alert.severity, Severity::Critical);
    assert!(
        alert.summary.contains("Connections not AVAILABLE now: bitbucket-prod (ERROR), github-tools (PENDING)."),
        "{}",
        alert.summary
    );
}

#[tokio::test]
async fn composite_alarms_are_routed_and_foreign_alarms_ignored() {
    let w = world();
    handle(&fixture("composite-alarm.json"), &w).await.unwrap();
    let alerts = sent(&w);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::Warning);
    assert!(alerts[0].summary.starts_with("Events are failing."));
    let report = handle(&fixture("foreign-alarm.json"), &w).await.unwrap();
    assert!(report.skipped.unwrap().contains("not one of this stack's"));
    assert!(sent(&w).is_empty());
}

#[tokio::test]
async fn other_events_are_skipped_and_garbage_is_invalid() {
    let w = world();
    assert!(handle(&serde_json::json!({"detail-type": "Scheduled Event"}), &w).await.unwrap().skipped.is_some());
    let mut broken = fixture("heartbeat-alarm.json");
    broken["detail"]["alarmName"] = Value::Null;
    let error = handle(&broken, &w).await.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(error).error_type, "InvalidEvent");
}
