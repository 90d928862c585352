//! The alert lifecycle (DESIGN §4.2): Alertmanager semantics over the [`AlertStore`] port.
//!
//! - first firing → notify; the same key firing again → suppressed as `duplicate`;
//! - still firing after the repeat interval → notify again with `notification_count` + 1;
//! - a firing alert whose severity rises → notify again (escalation);
//! - resolved → notify once, and only if a firing notification went out (`not_notified`
//!   otherwise; `not_firing` when nothing is open);
//! - a redelivered EventBridge event (same id) → `redelivered`;
//! - a firing report whose cause is firing (`domain::inhibit`) → `inhibited`: folded into the
//!   cause's alert, its pipelines added to the cause's `affected_pipelines`;
//! - a firing report matched by an active silence → `silenced`; the record is kept, so when
//!   the silence ends and the problem still fires, it is notified then. Resolutions are not
//!   silenced: whoever got the page also learns that it ended.
//!
//! Every write is conditional on the record's version, and the write that claims a
//! notification happens *before* the publish, so two concurrent invocations cannot both
//! notify: the loser re-reads and finds a duplicate. If the publish then fails, the claim is
//! rolled back so that Lambda's retry (or the next scheduled run) notifies.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::alert::{Alert, AlertDraft, AlertStatus, DedupKey, Severity};
use crate::domain::inhibit::inhibitors;
use crate::domain::metric::{Datum, MetricName};
use crate::domain::silence::Silence;
use crate::ports::{AlertRecord, AlertStore, Clock, Delivery, Notifier, NotifyError, SilenceStore, StoreError};

/// How many times a decision is retried after losing a conditional write.
const MAX_ATTEMPTS: usize = 3;

/// Settings of the lifecycle.
#[derive(Debug, Clone)]
pub struct LifecyclePolicy {
    /// Re-send a firing alert after this long.
    pub repeat_interval: Duration,
    /// Keep resolved records (and processed event ids) this long before TTL deletes them.
    pub retention: Duration,
    /// Where runbooks live: a path or URL to which `#<anchor>` is appended.
    pub runbook_base: String,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            repeat_interval: Duration::from_secs(4 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            runbook_base: "docs/alerts.md".to_owned(),
        }
    }
}

/// Why a report did not become a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SuppressReason {
    /// Already notified and the repeat interval has not passed.
    Duplicate,
    /// Resolved, but no firing notification had gone out.
    NotNotified,
    /// Resolved, but nothing was firing.
    NotFiring,
    /// The EventBridge event was already processed.
    Redelivered,
    /// No topic is configured for the severity.
    NoTopic,
    /// Folded into a firing alert of the cause (a pipeline failing because its connection is
    /// down).
    Inhibited,
    /// An active silence matches it.
    Silenced,
}

impl SuppressReason {
    /// The stable string used in metrics, logs and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::NotNotified => "not_notified",
            Self::NotFiring => "not_firing",
            Self::Redelivered => "redelivered",
            Self::NoTopic => "no_topic",
            Self::Inhibited => "inhibited",
            Self::Silenced => "silenced",
        }
    }
}

/// What the lifecycle did with one report.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A notification went out.
    Notified(Box<Alert>),
    /// Nothing went out, for a reason.
    Suppressed {
        /// The problem.
        dedup_key: DedupKey,
        /// Its severity.
        severity: Severity,
        /// Why.
        reason: SuppressReason,
    },
}

/// Why the lifecycle could not process a report. All of these are worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The state table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The publish failed (the claim was rolled back).
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// Every attempt lost a conditional write against concurrent writers.
    #[error("gave up on {0} after {MAX_ATTEMPTS} conflicting concurrent writes")]
    Contended(DedupKey),
}

/// The lifecycle over a store, a notifier and a clock.
#[derive(Debug)]
pub struct Lifecycle<S, N, C> {
    store: S,
    notifier: N,
    clock: C,
    policy: LifecyclePolicy,
    /// Silences, read once per invocation on the first firing report.
    silences: std::sync::Mutex<Option<Vec<Silence>>>,
}

/// What the pure decision step chose.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Notify { record: AlertRecord },
    Suppress { reason: SuppressReason, record: Option<AlertRecord> },
}

impl<S: AlertStore + SilenceStore, N: Notifier, C: Clock> Lifecycle<S, N, C> {
    /// Builds a lifecycle.
    pub fn new(store: S, notifier: N, clock: C, policy: LifecyclePolicy) -> Self {
        Self { store, notifier, clock, policy, silences: std::sync::Mutex::new(None) }
    }

    /// Whether an active silence matches a firing report.
    async fn is_silenced(&self, draft: &AlertDraft, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if draft.status != AlertStatus::Firing {
            return Ok(false);
        }
        let cached = self.silences.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let silences = match cached {
            Some(silences) => silences,
            None => {
                let loaded = self.store.list_silences().await?;
                *self.silences.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(loaded.clone());
                loaded
            }
        };
        Ok(silences.iter().any(|s| s.silences(draft, now)))
    }

    /// The store, for handlers that need it for their own records.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Decides, records and (when due) publishes one report.
    #[tracing::instrument(skip_all, fields(dedup_key = %draft.dedup_key, status = draft.status.as_str()))]
    pub async fn process(&self, draft: AlertDraft) -> Result<Outcome, LifecycleError> {
        if draft.status == AlertStatus::Firing
            && self.fold_into_firing(&inhibitors(&draft), &draft.affected_pipelines).await?.is_some()
        {
            tracing::info!(reason = SuppressReason::Inhibited.as_str(), "notification suppressed");
            return Ok(suppressed(&draft, SuppressReason::Inhibited));
        }
        let silenced = self.is_silenced(&draft, self.clock.now()).await?;
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now();
            let current = self.store.get_alert(&draft.dedup_key).await?;
            let expected = current.as_ref().map(|r| r.version);
            let decision = if silenced {
                silence(current.as_ref(), &draft, now, &self.policy)
            } else {
                decide(current.as_ref(), &draft, now, &self.policy)
            };
            match decision {
                Decision::Suppress { reason, record } => {
                    if let Some(record) = record {
                        match self.store.put_alert(&record, expected).await {
                            Err(StoreError::Conflict { .. }) => continue,
                            other => other?,
                        }
                    }
                    tracing::info!(reason = reason.as_str(), "notification suppressed");
                    return Ok(suppressed(&draft, reason));
                }
                Decision::Notify { record } => {
                    match self.store.put_alert(&record, expected).await {
                        Err(StoreError::Conflict { .. }) => continue,
                        other => other?,
                    }
                    return self.publish(draft, record, current).await;
                }
            }
        }
        Err(LifecycleError::Contended(draft.dedup_key))
    }

    /// Publishes a claimed notification; rolls the claim back if the publish fails.
    async fn publish(
        &self,
        draft: AlertDraft,
        claimed: AlertRecord,
        previous: Option<AlertRecord>,
    ) -> Result<Outcome, LifecycleError> {
        let runbook = format!("{}#{}", self.policy.runbook_base, draft.kind.runbook_anchor());
        let mut alert = draft.into_alert(
            uuid::Uuid::new_v4().to_string(),
            runbook,
            claimed.first_seen_at,
            claimed.notification_count,
        );
        // The record holds pipelines folded in since the episode began, not just this report's.
        alert.affected_pipelines.clone_from(&claimed.affected_pipelines);
        match self.notifier.publish(&alert).await {
            Ok(Delivery::Published { message_id }) => {
                tracing::info!(%message_id, severity = alert.severity.as_str(), "notification published");
                Ok(Outcome::Notified(Box::new(alert)))
            }
            Ok(Delivery::NoTopic) => {
                tracing::warn!(severity = alert.severity.as_str(), "no topic configured for this severity");
                Ok(Outcome::Suppressed {
                    dedup_key: alert.dedup_key,
                    severity: alert.severity,
                    reason: SuppressReason::NoTopic,
                })
            }
            Err(error) => {
                self.roll_back(&claimed, previous).await;
                Err(error.into())
            }
        }
    }

    /// Restores the record as it was before a claim whose publish failed.
    async fn roll_back(&self, claimed: &AlertRecord, previous: Option<AlertRecord>) {
        let result = match previous {
            None => self.store.delete_alert(&claimed.dedup_key, claimed.version).await,
            Some(mut previous) => {
                previous.version = claimed.version + 1;
                self.store.put_alert(&previous, Some(claimed.version)).await
            }
        };
        if let Err(error) = result {
            // The retry will then see a duplicate: the page may be lost, so say so loudly.
            tracing::error!(dedup_key = %claimed.dedup_key, error = %error, "could not roll back a failed notification");
        }
    }

    /// Folds pipelines into the first of `keys` that is firing (inhibition): they are added
    /// to that alert's `affected_pipelines` instead of being paged on their own. Returns the
    /// key they were folded into, or `None` when none of them is firing.
    pub async fn fold_into_firing(
        &self,
        keys: &[DedupKey],
        pipelines: &[String],
    ) -> Result<Option<DedupKey>, LifecycleError> {
        for key in keys {
            for _ in 0..MAX_ATTEMPTS {
                let Some(record) = self.store.get_alert(key).await? else { break };
                if record.status != AlertStatus::Firing {
                    break;
                }
                if pipelines.iter().all(|p| record.affected_pipelines.contains(p)) {
                    return Ok(Some(key.clone()));
                }
                let mut next = record.clone();
                next.affected_pipelines
                    .extend(pipelines.iter().filter(|p| !record.affected_pipelines.contains(p)).cloned());
                next.affected_pipelines.sort();
                next.suppressed_count += 1;
                next.version = record.version + 1;
                match self.store.put_alert(&next, Some(record.version)).await {
                    Ok(()) => return Ok(Some(key.clone())),
                    Err(StoreError::Conflict { .. }) => {}
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(None)
    }

    /// Whether an EventBridge event was already handled.
    pub async fn is_redelivery(&self, event_id: &str) -> Result<bool, StoreError> {
        self.store.is_event_processed(event_id).await
    }

    /// Remembers that an event was handled, for the retention period.
    pub async fn mark_processed(&self, event_id: &str) -> Result<(), StoreError> {
        let expires_at = self.clock.now() + to_chrono(self.policy.retention);
        self.store.mark_event_processed(event_id, expires_at).await
    }
}

fn suppressed(draft: &AlertDraft, reason: SuppressReason) -> Outcome {
    Outcome::Suppressed { dedup_key: draft.dedup_key.clone(), severity: draft.severity, reason }
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The pure state machine: what to do with a report given the stored record.
fn decide(current: Option<&AlertRecord>, draft: &AlertDraft, now: DateTime<Utc>, policy: &LifecyclePolicy) -> Decision {
    match (draft.status, current) {
        (AlertStatus::Firing, Some(record)) if record.status == AlertStatus::Firing => {
            decide_refiring(record, draft, now, policy)
        }
        (AlertStatus::Firing, _) => Decision::Notify { record: new_episode(current, draft, now, policy) },
        (AlertStatus::Resolved, Some(record)) if record.status == AlertStatus::Firing => {
            let mut next = updated(record, draft, now);
            next.status = AlertStatus::Resolved;
            next.expires_at = Some(now + to_chrono(policy.retention));
            if record.notified_status == Some(AlertStatus::Firing) {
                mark_notified(&mut next, AlertStatus::Resolved, now);
                Decision::Notify { record: next }
            } else {
                Decision::Suppress { reason: SuppressReason::NotNotified, record: Some(next) }
            }
        }
        (AlertStatus::Resolved, _) => Decision::Suppress { reason: SuppressReason::NotFiring, record: None },
    }
}

/// A silenced firing report: the problem is recorded (so it is notified when the silence
/// ends), but nothing is sent.
fn silence(
    current: Option<&AlertRecord>,
    draft: &AlertDraft,
    now: DateTime<Utc>,
    policy: &LifecyclePolicy,
) -> Decision {
    let record = match current {
        Some(record) if record.status == AlertStatus::Firing => updated(record, draft, now),
        _ => {
            let mut fresh = new_episode(current, draft, now, policy);
            fresh.notified_status = None;
            fresh.notified_severity = None;
            fresh.last_notified_at = None;
            fresh.notification_count = 0;
            fresh
        }
    };
    let mut record = record;
    record.suppressed_count += 1;
    Decision::Suppress { reason: SuppressReason::Silenced, record: Some(record) }
}

/// A firing report for a problem that is already firing: duplicate, repeat or escalation.
fn decide_refiring(record: &AlertRecord, draft: &AlertDraft, now: DateTime<Utc>, policy: &LifecyclePolicy) -> Decision {
    let mut next = updated(record, draft, now);
    let repeat_due =
        record.last_notified_at.is_none_or(|last| now.signed_duration_since(last) >= to_chrono(policy.repeat_interval));
    // `Severity` orders most urgent first, so "rose" is "compares less".
    let escalated = record.notified_severity.is_some_and(|told| draft.severity < told);
    if record.notified_status != Some(AlertStatus::Firing) || repeat_due || escalated {
        mark_notified(&mut next, AlertStatus::Firing, now);
        Decision::Notify { record: next }
    } else {
        next.suppressed_count += 1;
        Decision::Suppress { reason: SuppressReason::Duplicate, record: Some(next) }
    }
}

/// The record of a problem that starts firing (again).
fn new_episode(
    previous: Option<&AlertRecord>,
    draft: &AlertDraft,
    now: DateTime<Utc>,
    policy: &LifecyclePolicy,
) -> AlertRecord {
    let mut record = AlertRecord {
        dedup_key: draft.dedup_key.clone(),
        kind: draft.kind,
        severity: draft.severity,
        status: AlertStatus::Firing,
        first_seen_at: now,
        last_seen_at: now,
        notified_status: None,
        notified_severity: None,
        last_notified_at: None,
        notification_count: 0,
        suppressed_count: 0,
        resources: draft.resources.clone(),
        affected_pipelines: draft.affected_pipelines.clone(),
        version: previous.map_or(1, |r| r.version + 1),
        // Notices never resolve; without an expiry their records would stay forever.
        expires_at: draft.kind.is_notice().then(|| now + to_chrono(policy.retention)),
    };
    mark_notified(&mut record, AlertStatus::Firing, now);
    record
}

/// The record with the latest report's facts and the next version.
fn updated(record: &AlertRecord, draft: &AlertDraft, now: DateTime<Utc>) -> AlertRecord {
    let mut next = record.clone();
    next.severity = draft.severity;
    next.last_seen_at = now;
    next.resources = draft.resources.clone();
    // Union: pipelines folded in by inhibition stay listed when the rule reports again.
    for pipeline in &draft.affected_pipelines {
        if !next.affected_pipelines.contains(pipeline) {
            next.affected_pipelines.push(pipeline.clone());
        }
    }
    next.affected_pipelines.sort();
    next.version = record.version + 1;
    next
}

fn mark_notified(record: &mut AlertRecord, status: AlertStatus, now: DateTime<Utc>) {
    record.notified_status = Some(status);
    record.notified_severity = Some(record.severity);
    record.last_notified_at = Some(now);
    record.notification_count += 1;
}

/// The notification metrics of a batch of outcomes.
pub fn outcome_metrics(outcomes: &[Outcome], now: DateTime<Utc>) -> Vec<Datum> {
    let mut published = std::collections::BTreeMap::new();
    let mut suppressed = std::collections::BTreeMap::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Notified(alert) => *published.entry(alert.severity).or_insert(0u32) += 1,
            Outcome::Suppressed { reason, .. } => *suppressed.entry(*reason).or_insert(0u32) += 1,
        }
    }
    let published = published.into_iter().map(|(severity, n)| {
        Datum::new(MetricName::NotificationsPublished, f64::from(n), now).with("Severity", severity.as_str())
    });
    let suppressed = suppressed.into_iter().map(|(reason, n)| {
        Datum::new(MetricName::NotificationsSuppressed, f64::from(n), now).with("Reason", reason.as_str())
    });
    published.chain(suppressed).collect()
}

#[cfg(test)]
mod tests;
