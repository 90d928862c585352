//! The real SDK over HTTP against moto: the DynamoDB state store and SNS notifications
//! (observed through SQS queues subscribed to the topics). moto has no CodeConnections API, so
//! the listing comes from the in-memory directory.
#![allow(clippy::unwrap_used, reason = "test code: a failed call should fail the test loudly")]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use connwatch::adapters::aws::dynamodb::DynamoStore;
use connwatch::adapters::aws::sns::SnsNotifier;
use connwatch::adapters::memory::{ManualClock, MemoryDirectory, MemoryPipelines, RecordingMetrics};
use connwatch::config::Topics;
use connwatch::domain::alert::{Alert, AlertKind, AlertStatus, DedupKey, Resources, Severity};
use connwatch::domain::connection::{Connection, ConnectionArn, ConnectionStatus, ProviderType};
use connwatch::domain::health::HealthPolicy;
use connwatch::domain::inventory::{PipelineInfo, SourceAction};
use connwatch::inventory::InventoryPolicy;
use connwatch::lifecycle::LifecyclePolicy;
use connwatch::ports::{AlertRecord, AlertStore, ConnectionStateStore, PipelineInventoryStore, StoreError};
use health_check::{Deps, handle};
use integration_tests::{Emulator, create_state_table, drain, subscribed_queue, unique};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn bitbucket(status: ConnectionStatus) -> Connection {
    Connection {
        arn: ConnectionArn::parse(
            "arn:aws:codestar-connections:us-east-1:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2",
        )
        .unwrap(),
        name: "bitbucket-prod".to_owned(),
        provider: ProviderType::Bitbucket,
        status,
        owner_account_id: Some("acme".to_owned()),
        host_arn: None,
    }
}

fn record(version: u64) -> AlertRecord {
    AlertRecord {
        dedup_key: DedupKey::from_stored("connection/123456789012/us-east-1/abc/unhealthy".to_owned()),
        kind: AlertKind::ConnectionUnhealthy,
        severity: Severity::Critical,
        status: AlertStatus::Firing,
        first_seen_at: t0(),
        last_seen_at: t0(),
        notified_status: Some(AlertStatus::Firing),
        notified_severity: Some(Severity::Critical),
        last_notified_at: Some(t0()),
        notification_count: 1,
        suppressed_count: 0,
        resources: Resources { connection_name: Some("bitbucket-prod".to_owned()), ..Resources::default() },
        affected_pipelines: vec!["web-prod".to_owned()],
        version,
        expires_at: Some(t0() + chrono::Duration::days(7)),
    }
}

#[tokio::test]
async fn dynamodb_store_enforces_conditional_writes() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("connwatch-state");
    create_state_table(&dynamodb, &table).await;
    let store = DynamoStore::new(dynamodb, table);

    store.put_alert(&record(1), None).await.unwrap();
    assert!(matches!(store.put_alert(&record(1), None).await, Err(StoreError::Conflict { .. })), "must not exist");
    assert!(matches!(store.put_alert(&record(3), Some(2)).await, Err(StoreError::Conflict { .. })), "stale version");
    store.put_alert(&record(2), Some(1)).await.unwrap();
    let stored = store.get_alert(&record(2).dedup_key).await.unwrap().unwrap();
    assert_eq!(stored, record(2), "the record round-trips, expires_at included");
    assert!(matches!(store.delete_alert(&stored.dedup_key, 1).await, Err(StoreError::Conflict { .. })));
    store.delete_alert(&stored.dedup_key, 2).await.unwrap();
    assert_eq!(store.get_alert(&stored.dedup_key).await.unwrap(), None);

    assert!(!store.is_event_processed("event-1").await.unwrap());
    store.mark_event_processed("event-1", Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    assert!(store.is_event_processed("event-1").await.unwrap());
    store.mark_event_processed("event-old", Utc::now() - chrono::Duration::hours(1)).await.unwrap();
    assert!(!store.is_event_processed("event-old").await.unwrap(), "expired ids awaiting TTL deletion don't count");
}

#[tokio::test]
async fn health_check_pages_through_sns_and_keeps_state_in_dynamodb() {
    // GIVEN a state table, three topics and a queue subscribed to each topic
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    let (dynamodb, sns, sqs) =
        (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sns::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let table = unique("connwatch-state");
    create_state_table(&dynamodb, &table).await;
    let mut topics = Topics::default();
    for slot in [&mut topics.critical, &mut topics.warning, &mut topics.info] {
        *slot = Some(sns.create_topic().name(unique("connwatch")).send().await.unwrap().topic_arn.unwrap());
    }
    let critical = subscribed_queue(&sns, &sqs, topics.critical.as_deref().unwrap(), true).await;
    let critical_envelope = subscribed_queue(&sns, &sqs, topics.critical.as_deref().unwrap(), false).await;
    let warning = subscribed_queue(&sns, &sqs, topics.warning.as_deref().unwrap(), true).await;
    let deps = Deps {
        directory: MemoryDirectory::default(),
        pipelines: MemoryPipelines::default(),
        store: DynamoStore::new(dynamodb.clone(), table.clone()),
        notifier: SnsNotifier::new(sns.clone(), topics.clone()),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(t0()),
        health: HealthPolicy { pending_grace: Duration::from_secs(3600), detailed_metrics: false },
        lifecycle: LifecyclePolicy::default(),
        inventory: InventoryPolicy::default(),
    };
    let input = serde_json::json!({});
    let wait = Duration::from_millis(1500);

    // WHEN the connection is AVAILABLE, then ERROR
    deps.directory.upsert(bitbucket(ConnectionStatus::Available));
    handle(&input, &deps).await.unwrap();
    assert!(drain(&sqs, &critical, Duration::ZERO).await.is_empty());
    deps.clock.advance(Duration::from_secs(60));
    deps.directory.upsert(bitbucket(ConnectionStatus::Error));
    let report = handle(&input, &deps).await.unwrap();
    assert_eq!(report.notified, 1);

    // THEN one critical page arrives with the canonical body, and the state is in DynamoDB
    let bodies = drain(&sqs, &critical, wait).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let alert: Alert = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        (alert.kind, alert.status, alert.severity),
        (AlertKind::ConnectionUnhealthy, AlertStatus::Firing, Severity::Critical)
    );
    assert_eq!(
        alert.dedup_key.as_str(),
        "connection/123456789012/us-east-1/0f5b706a-1a1d-46c5-86b6-f177321bcfb2/unhealthy"
    );
    let envelope: serde_json::Value = serde_json::from_str(&drain(&sqs, &critical_envelope, wait).await[0]).unwrap();
    assert_eq!(envelope["Subject"], "[FIRING critical] Connection bitbucket-prod is ERROR");
    assert_eq!(envelope["MessageAttributes"]["kind"]["Value"], "connection.unhealthy");
    assert!(drain(&sqs, &warning, Duration::ZERO).await.is_empty(), "critical goes to the critical topic only");
    let states = deps.store.load_connection_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].status, ConnectionStatus::Error);

    // WHEN the same status is seen again THEN nothing is sent
    deps.clock.advance(Duration::from_secs(60));
    let report = handle(&input, &deps).await.unwrap();
    assert_eq!((report.notified, report.suppressed), (0, 1));
    assert!(drain(&sqs, &critical, wait).await.is_empty());

    // WHEN it recovers THEN the resolution arrives with the same key
    deps.clock.advance(Duration::from_secs(60));
    deps.directory.upsert(bitbucket(ConnectionStatus::Available));
    handle(&input, &deps).await.unwrap();
    let bodies = drain(&sqs, &critical, wait).await;
    assert_eq!(bodies.len(), 1);
    let resolved: Alert = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.dedup_key, alert.dedup_key);
    assert_eq!(resolved.notification_count, 2);
}

#[tokio::test]
async fn a_fresh_table_and_a_second_invocation_do_not_page_twice() {
    // Two Lambda containers share one table: the second sees the first's record.
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    let (dynamodb, sns, sqs) =
        (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sns::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let table = unique("connwatch-state");
    create_state_table(&dynamodb, &table).await;
    let topic = sns.create_topic().name(unique("connwatch")).send().await.unwrap().topic_arn.unwrap();
    let queue = subscribed_queue(&sns, &sqs, &topic, true).await;
    let topics = Topics { critical: Some(topic.clone()), warning: Some(topic.clone()), info: Some(topic) };
    let container = || Deps {
        directory: MemoryDirectory::default(),
        pipelines: MemoryPipelines::default(),
        store: DynamoStore::new(dynamodb.clone(), table.clone()),
        notifier: SnsNotifier::new(sns.clone(), topics.clone()),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(t0()),
        health: HealthPolicy { pending_grace: Duration::from_secs(3600), detailed_metrics: false },
        lifecycle: LifecyclePolicy::default(),
        inventory: InventoryPolicy::default(),
    };
    let (first, second) = (container(), container());
    first.directory.upsert(bitbucket(ConnectionStatus::Error));
    second.directory.upsert(bitbucket(ConnectionStatus::Error));
    handle(&serde_json::json!({}), &first).await.unwrap();
    handle(&serde_json::json!({}), &second).await.unwrap();
    assert_eq!(drain(&sqs, &queue, Duration::from_millis(1500)).await.len(), 1);
}

#[tokio::test]
async fn a_diagnosed_source_failure_arrives_in_sqs_and_its_success_resolves_it() {
    // moto serves DynamoDB, SNS and SQS; the pipeline definition comes from the in-memory
    // directory (the CodePipeline adapter is covered by aws-smithy-mocks tests).
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    let (dynamodb, sns, sqs) =
        (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sns::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let table = unique("connwatch-state");
    create_state_table(&dynamodb, &table).await;
    let topic = sns.create_topic().name(unique("connwatch")).send().await.unwrap().topic_arn.unwrap();
    let queue = subscribed_queue(&sns, &sqs, &topic, true).await;
    let topics = Topics { critical: Some(topic.clone()), warning: Some(topic.clone()), info: Some(topic) };
    let deps = pipeline_events::Deps {
        pipelines: MemoryPipelines::default(),
        store: DynamoStore::new(dynamodb.clone(), table.clone()),
        notifier: SnsNotifier::new(sns.clone(), topics),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(t0()),
        policy: pipeline_events::PipelinePolicy::default(),
        lifecycle: LifecyclePolicy::default(),
    };
    deps.pipelines.upsert(PipelineInfo {
        name: "web-prod".to_owned(),
        role_arn: Some("arn:aws:iam::123456789012:role/web-prod".to_owned()),
        sources: vec![SourceAction {
            stage: "Source".to_owned(),
            action: "Source".to_owned(),
            connection_arn: Some(
                "arn:aws:codeconnections:eu-west-1:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2"
                    .to_owned(),
            ),
            repository: Some("acme/web".to_owned()),
            branch: Some("main".to_owned()),
        }],
    });
    let fixture = |name: &str| -> serde_json::Value {
        let path = format!("{}/fixtures/codepipeline/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };

    let failure = fixture("action-connection-source-failed-permission.json");
    pipeline_events::handle(&failure, &deps).await.unwrap();
    pipeline_events::handle(&failure, &deps).await.unwrap(); // EventBridge redelivers
    let bodies = drain(&sqs, &queue, Duration::from_millis(1500)).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let alert: Alert = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(alert.kind, AlertKind::PipelineSourceFailed);
    assert_eq!(alert.cause, Some(connwatch::domain::alert::Cause::PermissionDenied));
    assert_eq!(alert.resources.repository.as_deref(), Some("acme/web"));
    let entry = deps.store.get_inventory_entry("web-prod").await.unwrap().unwrap();
    assert_eq!(entry.source_failure_streak, 1, "the inventory and the streak live in DynamoDB");

    pipeline_events::handle(&fixture("action-connection-source-succeeded.json"), &deps).await.unwrap();
    let bodies = drain(&sqs, &queue, Duration::from_millis(1500)).await;
    assert_eq!(bodies.len(), 1);
    let resolved: Alert = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!((resolved.status, resolved.dedup_key), (AlertStatus::Resolved, alert.dedup_key));
}

#[tokio::test]
async fn each_severity_reaches_its_own_topic_with_the_sqs_body() {
    use connwatch::ports::Notifier;
    let emulator = Emulator::start();
    let sdk = emulator.sdk_config().await;
    let (sns, sqs) = (aws_sdk_sns::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let mut topics = Topics::default();
    let mut queues = Vec::new();
    for (severity, slot) in [
        (Severity::Critical, &mut topics.critical),
        (Severity::Warning, &mut topics.warning),
        (Severity::Info, &mut topics.info),
    ] {
        let arn = sns.create_topic().name(unique(severity.as_str())).send().await.unwrap().topic_arn.unwrap();
        queues.push((severity, subscribed_queue(&sns, &sqs, &arn, false).await));
        *slot = Some(arn);
    }
    let notifier = SnsNotifier::new(sns.clone(), topics);
    let alerts: Vec<Alert> = [Severity::Critical, Severity::Warning, Severity::Info]
        .into_iter()
        .map(|severity| {
            let mut record = record(1);
            record.severity = severity;
            connwatch::domain::alert::AlertDraft {
                dedup_key: DedupKey::from_stored(format!("test/{}", severity.as_str())),
                status: AlertStatus::Firing,
                severity,
                kind: AlertKind::ConnectionUnhealthy,
                title: format!("A {severity} problem"),
                summary: "s".to_owned(),
                cause: None,
                account: "123456789012".to_owned(),
                region: "us-east-1".to_owned(),
                resources: record.resources,
                affected_pipelines: vec![],
                occurred_at: t0(),
                source_event_id: None,
                links: vec![],
            }
            .into_alert(format!("id-{severity}"), "docs/alerts.md#x".to_owned(), t0(), 1)
        })
        .collect();
    for alert in &alerts {
        notifier.publish(alert).await.unwrap();
    }
    for ((severity, queue), alert) in queues.iter().zip(&alerts) {
        let bodies = drain(&sqs, queue, Duration::from_millis(1500)).await;
        assert_eq!(bodies.len(), 1, "{severity}: {bodies:?}");
        let envelope: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        // With MessageStructure=json, an SQS subscriber gets the `sqs` body: the canonical alert.
        let delivered: Alert = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
        assert_eq!(&delivered, alert, "{severity}");
        assert_eq!(envelope["Subject"], format!("[FIRING {severity}] A {severity} problem"));
    }
}
