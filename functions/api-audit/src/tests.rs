//! Handler tests: every rule's fixture in both namespaces, and a corpus that must stay silent.

use chrono::{TimeZone, Utc};
use connwatch::adapters::memory::{ManualClock, MemoryStore, RecordingMetrics, RecordingNotifier};
use connwatch::domain::alert::{Alert, AlertKind, Severity};
use connwatch::domain::inventory::{PipelineInfo, SourceAction};
use serde_json::Value;

use super::*;

type World = Deps<MemoryStore, RecordingNotifier, RecordingMetrics, ManualClock>;

const CONNECTION_ID: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";

fn fixture_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cloudtrail")
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_dir().join(name)).unwrap()).unwrap()
}

async fn world() -> World {
    let w = Deps {
        store: MemoryStore::default(),
        notifier: RecordingNotifier::default(),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 4, 11, 0, 0).unwrap()),
        policy: AuditPolicy { watched_roles: vec!["codebuild-*".to_owned()] },
        lifecycle: LifecyclePolicy::default(),
    };
    // Two pipelines read through the connection, with the old ARN prefix in their definitions.
    for name in ["web-prod", "api-prod"] {
        w.store
            .save_inventory_entry(&InventoryEntry {
                info: PipelineInfo {
                    name: name.to_owned(),
                    role_arn: Some(format!("arn:aws:iam::123456789012:role/service-role/{name}-pipeline-role")),
                    sources: vec![SourceAction {
                        stage: "Source".to_owned(),
                        action: "Source".to_owned(),
                        connection_arn: Some(format!(
                            "arn:aws:codestar-connections:eu-west-1:123456789012:connection/{CONNECTION_ID}"
                        )),
                        repository: Some(format!("acme/{name}")),
                        branch: Some("main".to_owned()),
                    }],
                },
                refreshed_at: w.clock.now(),
                source_failure_streak: 0,
            })
            .await
            .unwrap();
    }
    w
}

fn sent(w: &World) -> Vec<Alert> {
    w.notifier.take().iter().map(|p| serde_json::from_str(&p.rendered.message).unwrap()).collect()
}

#[tokio::test]
async fn every_rule_fixture_maps_to_its_kind_and_severity_in_both_namespaces() {
    let cases: &[(&str, &str, AlertKind, Severity)] = &[
        ("create-connection", "connection-created", AlertKind::ApiConnectionCreated, Severity::Info),
        ("delete-connection", "connection-deleted", AlertKind::ApiConnectionDeleted, Severity::Critical),
        (
            "update-connection-installation",
            "installation-changed",
            AlertKind::ApiInstallationChanged,
            Severity::Warning,
        ),
        ("update-host", "installation-changed", AlertKind::ApiInstallationChanged, Severity::Warning),
        ("delete-host", "installation-changed", AlertKind::ApiInstallationChanged, Severity::Warning),
        ("delete-connection-denied", "connection-call-denied", AlertKind::ApiAccessDenied, Severity::Warning),
        (
            "update-connection-installation-denied",
            "connection-call-denied",
            AlertKind::ApiAccessDenied,
            Severity::Warning,
        ),
    ];
    for prefix in ["codestar-connections", "codeconnections"] {
        for (name, rule, kind, severity) in cases {
            let w = world().await;
            let report = handle(&fixture(&format!("{prefix}-{name}.json")), &w).await.unwrap();
            assert_eq!(report.rule, Some(*rule), "{prefix}-{name}");
            let alerts = sent(&w);
            assert_eq!(alerts.len(), 1, "{prefix}-{name}");
            assert_eq!((alerts[0].kind, alerts[0].severity), (*kind, *severity), "{prefix}-{name}");
        }
    }
}

#[tokio::test]
async fn a_deletion_names_the_principal_and_every_pipeline_that_used_the_connection() {
    let w = world().await;
    handle(&fixture("codeconnections-delete-connection.json"), &w).await.unwrap();
    let alert = &sent(&w)[0];
    assert_eq!(alert.affected_pipelines, ["api-prod", "web-prod"], "matched by id across prefixes");
    assert_eq!(alert.resources.principal.as_deref(), Some("arn:aws:sts::123456789012:assumed-role/Admin/mary"));
    assert!(
        alert.title.starts_with("mary (role Admin) deleted connection arn:aws:codeconnections:"),
        "{}",
        alert.title
    );
    for needle in ["203.0.113.10", "aws-cli/2.13.30", "MFA yes", "api-prod, web-prod"] {
        assert!(alert.summary.contains(needle), "{needle} missing from {}", alert.summary);
    }
    assert!(alert.links[0].url.contains("cloudtrailv2") && alert.links[0].url.contains("#/events/"));
    assert!(alert.dedup_key.as_str().starts_with("api/123456789012/eu-west-1/connection-deleted/"));
}

#[tokio::test]
async fn a_denied_delete_is_not_a_deletion() {
    let w = world().await;
    handle(&fixture("codestar-connections-delete-connection-denied.json"), &w).await.unwrap();
    let alert = &sent(&w)[0];
    assert_eq!(alert.kind, AlertKind::ApiAccessDenied);
    assert!(alert.summary.contains("AccessDenied"), "{}", alert.summary);
    assert_eq!(alert.affected_pipelines, ["api-prod", "web-prod"], "the ARN is read from the error message");
    let calls: Vec<_> = w.metrics.datums().into_iter().filter(|d| d.name == MetricName::ApiCalls).collect();
    assert_eq!(
        (calls[0].dimensions["EventName"].as_str(), calls[0].dimensions["Outcome"].as_str()),
        ("DeleteConnection", "denied")
    );
}

#[tokio::test]
async fn iam_changes_to_pipeline_or_watched_roles_warn() {
    for api in [
        "put-role-policy",
        "delete-role-policy",
        "attach-role-policy",
        "detach-role-policy",
        "update-assume-role-policy",
        "delete-role",
        "put-role-permissions-boundary",
    ] {
        let w = world().await;
        let report = handle(&fixture(&format!("iam-{api}-pipeline-role.json")), &w).await.unwrap();
        assert_eq!(report.rule, Some("pipeline-role-changed"), "{api}");
        let alerts = sent(&w);
        assert_eq!((alerts[0].kind, alerts[0].severity), (AlertKind::ApiIamChanged, Severity::Warning));
        assert_eq!(alerts[0].affected_pipelines, ["web-prod"]);
    }
    let w = world().await;
    handle(&fixture("iam-put-role-policy-watched-role.json"), &w).await.unwrap();
    assert_eq!(sent(&w)[0].kind, AlertKind::ApiIamChanged, "codebuild-* is watched");
}

#[tokio::test]
async fn pipeline_changes_touching_a_connection_source_are_info() {
    for name in ["codepipeline-update-pipeline.json", "codepipeline-delete-pipeline.json"] {
        let w = world().await;
        let report = handle(&fixture(name), &w).await.unwrap();
        assert_eq!(report.rule, Some("pipeline-source-changed"), "{name}");
        let alerts = sent(&w);
        assert_eq!((alerts[0].kind, alerts[0].severity), (AlertKind::ApiPipelineChanged, Severity::Info));
        assert_eq!(alerts[0].resources.pipeline.as_deref(), Some("web-prod"));
    }
}

#[tokio::test]
async fn documented_records_parse_and_match() {
    let w = world().await;
    assert_eq!(
        handle(&fixture("documented-create-connection.json"), &w).await.unwrap().rule,
        Some("connection-created")
    );
    assert_eq!(
        handle(&fixture("documented-delete-connection.json"), &w).await.unwrap().rule,
        Some("connection-deleted")
    );
    let alerts = sent(&w);
    assert_eq!(alerts[0].resources.connection_name.as_deref(), Some("my-connection"));
    assert!(alerts[1].title.starts_with("Mary_Major (role Admin)"));
}

#[tokio::test]
async fn unrelated_calls_produce_no_notification() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_str().unwrap().starts_with("unrelated-") {
            continue;
        }
        let w = world().await;
        let report =
            handle(&serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap(), &w).await.unwrap();
        assert_eq!(report.rule, None, "{}", path.display());
        assert!(sent(&w).is_empty(), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 8, "the unrelated corpus is there ({checked})");
}

#[tokio::test]
async fn redelivered_calls_are_noticed_once() {
    let w = world().await;
    let event = fixture("codeconnections-delete-connection.json");
    handle(&event, &w).await.unwrap();
    let again = handle(&event, &w).await.unwrap();
    assert_eq!(sent(&w).len(), 1);
    assert!(again.decision.contains("redelivered"));
}

#[tokio::test]
async fn other_events_are_skipped_and_garbage_is_invalid() {
    let w = world().await;
    let scheduled =
        serde_json::json!({"id": "1", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    assert!(handle(&scheduled, &w).await.unwrap().skipped.is_some());
    let mut broken = fixture("codeconnections-delete-connection.json");
    broken["detail"].as_object_mut().unwrap().remove("eventName");
    let error = handle(&broken, &w).await.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(error).error_type, "InvalidEvent");
}
