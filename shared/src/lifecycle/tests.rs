use std::sync::atomic::{AtomicBool, Ordering};

use chrono::TimeZone;

use super::*;
use crate::adapters::memory::{ManualClock, MemoryStore, RecordingNotifier};
use crate::domain::alert::{AlertKind, Resources};
use crate::domain::silence::Matcher;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn minutes(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::minutes(n)
}

fn draft(status: AlertStatus, severity: Severity) -> AlertDraft {
    AlertDraft {
        dedup_key: DedupKey::from_stored("connection/123456789012/eu-west-1/abc/unhealthy".to_owned()),
        status,
        severity,
        kind: AlertKind::ConnectionUnhealthy,
        title: "Connection bitbucket-prod is ERROR".to_owned(),
        summary: "s".to_owned(),
        cause: None,
        account: "123456789012".to_owned(),
        region: "eu-west-1".to_owned(),
        resources: Resources::default(),
        affected_pipelines: vec![],
        occurred_at: t0(),
        source_event_id: None,
        links: vec![],
    }
}

fn record(status: AlertStatus, notified: Option<AlertStatus>, last_notified_minute: Option<i64>) -> AlertRecord {
    AlertRecord {
        dedup_key: draft(status, Severity::Critical).dedup_key,
        kind: AlertKind::ConnectionUnhealthy,
        severity: Severity::Critical,
        status,
        first_seen_at: t0(),
        last_seen_at: t0(),
        notified_status: notified,
        notified_severity: notified.map(|_| Severity::Critical),
        last_notified_at: last_notified_minute.map(minutes),
        notification_count: u32::from(notified.is_some()),
        suppressed_count: 0,
        resources: Resources::default(),
        affected_pipelines: vec![],
        version: 7,
        expires_at: None,
    }
}

/// The state machine, one row per situation: (name, stored record, report, now, expected).
#[test]
fn state_machine_table() {
    use AlertStatus::{Firing, Resolved};
    enum Want {
        Notify { count: u32 },
        Suppress(SuppressReason),
    }
    type Row = (&'static str, Option<AlertRecord>, AlertDraft, DateTime<Utc>, Want);
    let policy = LifecyclePolicy::default(); // repeat after 4h
    let rows: Vec<Row> = vec![
        ("first firing", None, draft(Firing, Severity::Critical), t0(), Want::Notify { count: 1 }),
        (
            "duplicate",
            Some(record(Firing, Some(Firing), Some(0))),
            draft(Firing, Severity::Critical),
            minutes(1),
            Want::Suppress(SuppressReason::Duplicate),
        ),
        (
            "repeat not due",
            Some(record(Firing, Some(Firing), Some(0))),
            draft(Firing, Severity::Critical),
            minutes(239),
            Want::Suppress(SuppressReason::Duplicate),
        ),
        (
            "repeat due",
            Some(record(Firing, Some(Firing), Some(0))),
            draft(Firing, Severity::Critical),
            minutes(240),
            Want::Notify { count: 2 },
        ),
        (
            "escalated severity",
            Some(AlertRecord { notified_severity: Some(Severity::Warning), ..record(Firing, Some(Firing), Some(0)) }),
            draft(Firing, Severity::Critical),
            minutes(1),
            Want::Notify { count: 2 },
        ),
        (
            "lower severity is a duplicate",
            Some(record(Firing, Some(Firing), Some(0))),
            draft(Firing, Severity::Warning),
            minutes(1),
            Want::Suppress(SuppressReason::Duplicate),
        ),
        (
            "firing again after resolution starts a new episode",
            Some(record(Resolved, Some(Resolved), Some(0))),
            draft(Firing, Severity::Critical),
            minutes(5),
            Want::Notify { count: 1 },
        ),
        (
            "resolved after a page",
            Some(record(Firing, Some(Firing), Some(0))),
            draft(Resolved, Severity::Critical),
            minutes(5),
            Want::Notify { count: 2 },
        ),
        (
            "resolved without a prior page",
            Some(record(Firing, None, None)),
            draft(Resolved, Severity::Critical),
            minutes(5),
            Want::Suppress(SuppressReason::NotNotified),
        ),
        (
            "resolved with nothing firing",
            None,
            draft(Resolved, Severity::Critical),
            minutes(5),
            Want::Suppress(SuppressReason::NotFiring),
        ),
        (
            "resolved twice",
            Some(record(Resolved, Some(Resolved), Some(0))),
            draft(Resolved, Severity::Critical),
            minutes(5),
            Want::Suppress(SuppressReason::NotFiring),
        ),
    ];
    for (name, stored, report, now, want) in rows {
        let decision = decide(stored.as_ref(), &report, now, &policy);
        match (decision, want) {
            (Decision::Notify { record }, Want::Notify { count }) => {
                assert_eq!(record.notification_count, count, "{name}");
                assert_eq!(record.notified_status, Some(report.status), "{name}");
                assert_eq!(record.last_notified_at, Some(now), "{name}");
                assert_eq!(record.version, stored.map_or(1, |r| r.version + 1), "{name}");
            }
            (Decision::Suppress { reason, .. }, Want::Suppress(expected)) => assert_eq!(reason, expected, "{name}"),
            (decision, _) => panic!("{name}: unexpected {decision:?}"),
        }
    }
}

#[test]
fn a_new_episode_keeps_its_first_seen_time_across_repeats() {
    let policy = LifecyclePolicy::default();
    let Decision::Notify { record: first } =
        decide(None, &draft(AlertStatus::Firing, Severity::Critical), t0(), &policy)
    else {
        panic!("first firing must notify");
    };
    let Decision::Notify { record: repeat } =
        decide(Some(&first), &draft(AlertStatus::Firing, Severity::Critical), minutes(300), &policy)
    else {
        panic!("repeat must notify");
    };
    assert_eq!(repeat.first_seen_at, t0());
    assert_eq!(repeat.notification_count, 2);
}

fn lifecycle<'a>(
    store: &'a MemoryStore,
    notifier: &'a RecordingNotifier,
    clock: &'a ManualClock,
) -> Lifecycle<&'a MemoryStore, &'a RecordingNotifier, &'a ManualClock> {
    Lifecycle::new(store, notifier, clock, LifecyclePolicy::default())
}

#[tokio::test]
async fn consecutive_identical_reports_notify_once() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let lifecycle = lifecycle(&store, &notifier, &clock);
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(lifecycle.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap());
        clock.advance(std::time::Duration::from_secs(60));
    }
    assert_eq!(notifier.published().len(), 1);
    assert!(matches!(&outcomes[0], Outcome::Notified(alert) if alert.notification_count == 1));
    assert!(outcomes[1..].iter().all(|o| matches!(o, Outcome::Suppressed { reason: SuppressReason::Duplicate, .. })));
    let stored = store.alerts().into_values().next().unwrap();
    assert_eq!(stored.suppressed_count, 4);
}

#[tokio::test]
async fn notified_alert_carries_runbook_first_seen_and_a_fresh_id() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let lifecycle = lifecycle(&store, &notifier, &clock);
    let Outcome::Notified(first) = lifecycle.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap()
    else {
        panic!("must notify");
    };
    clock.set(minutes(30));
    let Outcome::Notified(resolved) =
        lifecycle.process(draft(AlertStatus::Resolved, Severity::Critical)).await.unwrap()
    else {
        panic!("must notify the resolution");
    };
    assert_eq!(first.runbook, "docs/alerts.md#connection-unhealthy");
    assert_eq!(resolved.first_seen_at, t0());
    assert_eq!(resolved.notification_count, 2);
    assert_eq!(resolved.dedup_key, first.dedup_key);
    assert_ne!(resolved.id, first.id);
    assert!(store.alerts().values().all(|r| r.expires_at.is_some()), "resolved records expire");
}

#[tokio::test]
async fn failed_publish_is_rolled_back_so_the_retry_notifies() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let lifecycle = lifecycle(&store, &notifier, &clock);
    notifier.fail_next(1);
    let error = lifecycle.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap_err();
    assert!(matches!(error, LifecycleError::Notify(_)));
    assert!(store.alerts().is_empty(), "the claim was rolled back");
    let retry = lifecycle.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap();
    assert!(matches!(retry, Outcome::Notified(_)));
    assert_eq!(notifier.published().len(), 1);
}

#[tokio::test]
async fn failed_resolution_publish_restores_the_firing_record() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let lifecycle = lifecycle(&store, &notifier, &clock);
    lifecycle.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap();
    notifier.fail_next(1);
    assert!(lifecycle.process(draft(AlertStatus::Resolved, Severity::Critical)).await.is_err());
    let stored = store.alerts().into_values().next().unwrap();
    assert_eq!(stored.status, AlertStatus::Firing);
    assert!(matches!(
        lifecycle.process(draft(AlertStatus::Resolved, Severity::Critical)).await.unwrap(),
        Outcome::Notified(_)
    ));
}

/// A store that lets another "invocation" write between our read and our write, once.
struct RacingStore<'a> {
    inner: &'a MemoryStore,
    other: &'a Lifecycle<&'a MemoryStore, &'a RecordingNotifier, &'a ManualClock>,
    raced: AtomicBool,
}

impl AlertStore for RacingStore<'_> {
    async fn get_alert(&self, key: &DedupKey) -> Result<Option<AlertRecord>, StoreError> {
        let seen = self.inner.get_alert(key).await;
        if !self.raced.swap(true, Ordering::SeqCst) {
            // The concurrent invocation completes its whole decision after our read.
            Box::pin(self.other.process(draft(AlertStatus::Firing, Severity::Critical))).await.unwrap();
        }
        seen
    }
    async fn put_alert(&self, record: &AlertRecord, expected_version: Option<u64>) -> Result<(), StoreError> {
        self.inner.put_alert(record, expected_version).await
    }
    async fn delete_alert(&self, key: &DedupKey, expected_version: u64) -> Result<(), StoreError> {
        self.inner.delete_alert(key, expected_version).await
    }
    async fn is_event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.inner.is_event_processed(event_id).await
    }
    async fn mark_event_processed(&self, event_id: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.mark_event_processed(event_id, expires_at).await
    }
}

impl SilenceStore for RacingStore<'_> {
    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.inner.list_silences().await
    }
    async fn put_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        self.inner.put_silence(silence).await
    }
}

#[tokio::test]
async fn two_concurrent_runs_cannot_both_notify() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let other = lifecycle(&store, &notifier, &clock);
    let racing = RacingStore { inner: &store, other: &other, raced: AtomicBool::new(false) };
    let ours = Lifecycle::new(&racing, &notifier, &clock, LifecyclePolicy::default());
    let outcome = ours.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap();
    assert!(matches!(outcome, Outcome::Suppressed { reason: SuppressReason::Duplicate, .. }), "{outcome:?}");
    assert_eq!(notifier.published().len(), 1, "only the winner published");
}

#[tokio::test]
async fn redelivered_events_are_recognised() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let lifecycle = lifecycle(&store, &notifier, &clock);
    assert!(!lifecycle.is_redelivery("event-1").await.unwrap());
    lifecycle.mark_processed("event-1").await.unwrap();
    assert!(lifecycle.is_redelivery("event-1").await.unwrap());
    assert!(!lifecycle.is_redelivery("event-2").await.unwrap());
}

#[tokio::test]
async fn unrouted_severity_is_counted_as_suppressed() {
    let (store, clock) = (MemoryStore::default(), ManualClock::new(t0()));
    let notifier = RecordingNotifier::without_topics(vec![Severity::Info]);
    let lifecycle = lifecycle(&store, &notifier, &clock);
    let outcome = lifecycle.process(draft(AlertStatus::Firing, Severity::Info)).await.unwrap();
    assert!(matches!(outcome, Outcome::Suppressed { reason: SuppressReason::NoTopic, .. }));
    let metrics = outcome_metrics(&[outcome], t0());
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].name, MetricName::NotificationsSuppressed);
    assert_eq!(metrics[0].dimensions["Reason"], "no_topic");
}

#[tokio::test]
async fn pipelines_fold_into_a_firing_alert_and_appear_in_its_next_notification() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let lifecycle = lifecycle(&store, &notifier, &clock);
    let key = draft(AlertStatus::Firing, Severity::Critical).dedup_key;
    let other = DedupKey::from_stored("connection/123456789012/eu-west-1/abc/pending".to_owned());
    assert_eq!(
        lifecycle.fold_into_firing(std::slice::from_ref(&key), &["web-prod".to_owned()]).await.unwrap(),
        None,
        "nothing firing yet"
    );

    lifecycle.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap();
    let folded = lifecycle.fold_into_firing(&[other, key.clone()], &["web-prod".to_owned()]).await.unwrap();
    assert_eq!(folded, Some(key.clone()));
    lifecycle.fold_into_firing(std::slice::from_ref(&key), &["api-prod".to_owned()]).await.unwrap();
    lifecycle.fold_into_firing(std::slice::from_ref(&key), &["web-prod".to_owned()]).await.unwrap();
    assert_eq!(store.alerts()[&key].affected_pipelines, ["api-prod", "web-prod"]);

    clock.set(minutes(30));
    let Outcome::Notified(resolved) =
        lifecycle.process(draft(AlertStatus::Resolved, Severity::Critical)).await.unwrap()
    else {
        panic!("resolution must notify");
    };
    assert_eq!(resolved.affected_pipelines, ["api-prod", "web-prod"]);
}

#[test]
fn notices_expire_and_problems_do_not_until_resolved() {
    let policy = LifecyclePolicy::default();
    let Decision::Notify { record } = decide(None, &draft(AlertStatus::Firing, Severity::Critical), t0(), &policy)
    else {
        panic!("must notify");
    };
    assert_eq!(record.expires_at, None);
    let notice = AlertDraft { kind: AlertKind::ApiConnectionDeleted, ..draft(AlertStatus::Firing, Severity::Critical) };
    let Decision::Notify { record } = decide(None, &notice, t0(), &policy) else { panic!("must notify") };
    assert_eq!(record.expires_at, Some(t0() + chrono::Duration::days(7)));
}

fn maintenance(from: i64, to: i64, matchers: &[&str]) -> Silence {
    Silence {
        id: format!("s-{from}-{to}"),
        matchers: matchers.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
        starts_at: minutes(from),
        ends_at: minutes(to),
        author: "mary".to_owned(),
        comment: "Bitbucket workspace migration".to_owned(),
    }
}

/// The lifecycle end to end, one row per situation, on the in-memory store: (name, silences,
/// reports as (minute, status), expected outcome of the last report).
#[tokio::test]
async fn lifecycle_table() {
    use AlertStatus::{Firing, Resolved};
    #[derive(Debug, PartialEq)]
    enum Want {
        Notified(u32),
        Suppressed(SuppressReason),
    }
    let kind_silence = || maintenance(0, 60, &["kind=connection.unhealthy"]);
    type Row = (&'static str, Vec<Silence>, Vec<(i64, AlertStatus)>, Want);
    let rows: Vec<Row> = vec![
        ("firing", vec![], vec![(0, Firing)], Want::Notified(1)),
        ("duplicate", vec![], vec![(0, Firing), (1, Firing)], Want::Suppressed(SuppressReason::Duplicate)),
        ("repeat not due", vec![], vec![(0, Firing), (239, Firing)], Want::Suppressed(SuppressReason::Duplicate)),
        ("repeat due", vec![], vec![(0, Firing), (240, Firing)], Want::Notified(2)),
        ("resolved", vec![], vec![(0, Firing), (5, Resolved)], Want::Notified(2)),
        (
            "resolved without a prior page",
            vec![kind_silence()],
            vec![(0, Firing), (5, Resolved)],
            Want::Suppressed(SuppressReason::NotNotified),
        ),
        ("resolved with nothing firing", vec![], vec![(5, Resolved)], Want::Suppressed(SuppressReason::NotFiring)),
        ("silenced", vec![kind_silence()], vec![(0, Firing)], Want::Suppressed(SuppressReason::Silenced)),
        (
            "silenced repeat",
            vec![kind_silence()],
            vec![(0, Firing), (30, Firing)],
            Want::Suppressed(SuppressReason::Silenced),
        ),
        ("silence expired", vec![kind_silence()], vec![(0, Firing), (60, Firing)], Want::Notified(1)),
        (
            "silence not started",
            vec![maintenance(10, 60, &["kind=connection.*"])],
            vec![(0, Firing)],
            Want::Notified(1),
        ),
        ("other silence", vec![maintenance(0, 60, &["kind=pipeline.*"])], vec![(0, Firing)], Want::Notified(1)),
        (
            "silence by key prefix",
            vec![maintenance(0, 60, &["dedup_key_prefix=connection/123456789012/"])],
            vec![(0, Firing)],
            Want::Suppressed(SuppressReason::Silenced),
        ),
    ];
    for (name, silences, reports, want) in rows {
        let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
        for s in &silences {
            store.put_silence(s).await.unwrap();
        }
        let mut last = None;
        for (minute, status) in reports {
            clock.set(minutes(minute));
            // A fresh lifecycle per report, as each Lambda invocation has its own.
            let lifecycle = lifecycle(&store, &notifier, &clock);
            last = Some(lifecycle.process(draft(status, Severity::Critical)).await.unwrap());
        }
        let got = match last.unwrap() {
            Outcome::Notified(alert) => Want::Notified(alert.notification_count),
            Outcome::Suppressed { reason, .. } => Want::Suppressed(reason),
        };
        assert_eq!(got, want, "{name}");
    }
}

#[tokio::test]
async fn inhibited_reports_fold_into_their_cause() {
    let (store, notifier, clock) = (MemoryStore::default(), RecordingNotifier::default(), ManualClock::new(t0()));
    let lifecycle = lifecycle(&store, &notifier, &clock);
    lifecycle.process(draft(AlertStatus::Firing, Severity::Critical)).await.unwrap();
    let key = draft(AlertStatus::Firing, Severity::Critical).dedup_key;
    assert_eq!(
        lifecycle.fold_into_firing(std::slice::from_ref(&key), &["web-prod".to_owned()]).await.unwrap(),
        Some(key)
    );
    assert_eq!(notifier.published().len(), 1, "the folded report sends nothing");
}
