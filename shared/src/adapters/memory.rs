//! In-memory twins of every adapter, used by `connwatch simulate`, `replay` and the tests.
//! They keep the semantics of the real ones: the store enforces conditional writes exactly
//! like the DynamoDB adapter, and failures can be injected where the real service can fail.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::alert::{Alert, DedupKey, Severity};
use crate::domain::connection::{Connection, ConnectionId};
use crate::domain::health::ConnectionState;
use crate::domain::inventory::{ExecutionRecord, InventoryEntry, PipelineInfo};
use crate::domain::metric::Datum;
use crate::domain::silence::Silence;
use crate::ports::{
    AlertRecord, AlertStore, Clock, ConnectionDirectory, ConnectionStateStore, Delivery, DirectoryError, MetricError,
    MetricSink, Notifier, NotifyError, PipelineDirectory, PipelineInventoryStore, SilenceStore, StoreError,
};
use crate::render::{Rendered, render};

/// Locks a mutex, recovering the data if a panicking test poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A settable listing of connections, with injectable failures.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    connections: Mutex<BTreeMap<ConnectionId, Connection>>,
    failures: Mutex<VecDeque<DirectoryError>>,
}

impl MemoryDirectory {
    /// Adds or replaces a connection.
    pub fn upsert(&self, connection: Connection) {
        lock(&self.connections).insert(connection.id().clone(), connection);
    }

    /// Removes a connection (as if deleted).
    pub fn remove(&self, id: &ConnectionId) -> Option<Connection> {
        lock(&self.connections).remove(id)
    }

    /// A copy of the current listing.
    pub fn connections(&self) -> Vec<Connection> {
        lock(&self.connections).values().cloned().collect()
    }

    /// Makes the next listing fail with `error`.
    pub fn fail_next(&self, error: DirectoryError) {
        lock(&self.failures).push_back(error);
    }
}

impl ConnectionDirectory for MemoryDirectory {
    async fn list_connections(&self) -> Result<Vec<Connection>, DirectoryError> {
        if let Some(error) = lock(&self.failures).pop_front() {
            return Err(error);
        }
        Ok(self.connections())
    }
}

/// Settable pipeline definitions, counting the `GetPipeline` calls made.
#[derive(Debug, Default)]
pub struct MemoryPipelines {
    pipelines: Mutex<BTreeMap<String, PipelineInfo>>,
    gets: Mutex<u32>,
}

impl MemoryPipelines {
    /// Adds or replaces a pipeline.
    pub fn upsert(&self, pipeline: PipelineInfo) {
        lock(&self.pipelines).insert(pipeline.name.clone(), pipeline);
    }

    /// Removes a pipeline.
    pub fn remove(&self, name: &str) {
        lock(&self.pipelines).remove(name);
    }

    /// How many `get_pipeline` calls were made.
    pub fn gets(&self) -> u32 {
        *lock(&self.gets)
    }
}

impl PipelineDirectory for MemoryPipelines {
    async fn list_pipeline_names(&self) -> Result<Vec<String>, DirectoryError> {
        Ok(lock(&self.pipelines).keys().cloned().collect())
    }

    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineInfo>, DirectoryError> {
        *lock(&self.gets) += 1;
        Ok(lock(&self.pipelines).get(name).cloned())
    }
}

/// The state table in memory, with DynamoDB's conditional-write semantics.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inventory: Mutex<BTreeMap<String, InventoryEntry>>,
    silences: Mutex<BTreeMap<String, Silence>>,
    executions: Mutex<BTreeMap<(String, String), ExecutionRecord>>,
    connections: Mutex<BTreeMap<ConnectionId, ConnectionState>>,
    alerts: Mutex<BTreeMap<DedupKey, AlertRecord>>,
    events: Mutex<BTreeMap<String, DateTime<Utc>>>,
    fail_writes: Mutex<u32>,
}

impl MemoryStore {
    /// Every alert record, by key.
    pub fn alerts(&self) -> BTreeMap<DedupKey, AlertRecord> {
        lock(&self.alerts).clone()
    }

    /// Every connection state, by id.
    pub fn connection_states(&self) -> BTreeMap<ConnectionId, ConnectionState> {
        lock(&self.connections).clone()
    }

    /// Makes the next `n` writes fail as if the table were unavailable.
    pub fn fail_next_writes(&self, n: u32) {
        *lock(&self.fail_writes) = n;
    }

    fn injected_failure(&self, operation: &'static str) -> Result<(), StoreError> {
        let mut remaining = lock(&self.fail_writes);
        if *remaining > 0 {
            *remaining -= 1;
            return Err(StoreError::Unavailable { operation, source: "injected failure".into() });
        }
        Ok(())
    }
}

impl ConnectionStateStore for MemoryStore {
    async fn load_connection_states(&self) -> Result<Vec<ConnectionState>, StoreError> {
        Ok(lock(&self.connections).values().cloned().collect())
    }

    async fn save_connection_state(&self, state: &ConnectionState) -> Result<(), StoreError> {
        self.injected_failure("PutItem")?;
        lock(&self.connections).insert(state.id().clone(), state.clone());
        Ok(())
    }
}

impl MemoryStore {
    /// Every execution record, by (pipeline, execution id).
    pub fn executions(&self) -> BTreeMap<(String, String), ExecutionRecord> {
        lock(&self.executions).clone()
    }
}

impl PipelineInventoryStore for MemoryStore {
    async fn load_inventory(&self) -> Result<Vec<InventoryEntry>, StoreError> {
        Ok(lock(&self.inventory).values().cloned().collect())
    }

    async fn get_inventory_entry(&self, pipeline: &str) -> Result<Option<InventoryEntry>, StoreError> {
        Ok(lock(&self.inventory).get(pipeline).cloned())
    }

    async fn save_inventory_entry(&self, entry: &InventoryEntry) -> Result<(), StoreError> {
        self.injected_failure("PutItem")?;
        lock(&self.inventory).insert(entry.info.name.clone(), entry.clone());
        Ok(())
    }

    async fn delete_inventory_entry(&self, pipeline: &str) -> Result<(), StoreError> {
        self.injected_failure("DeleteItem")?;
        lock(&self.inventory).remove(pipeline);
        Ok(())
    }

    async fn record_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.injected_failure("PutItem")?;
        lock(&self.executions).insert((record.pipeline.clone(), record.execution_id.clone()), record.clone());
        Ok(())
    }
}

impl SilenceStore for MemoryStore {
    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError> {
        Ok(lock(&self.silences).values().cloned().collect())
    }

    async fn put_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        self.injected_failure("PutItem")?;
        lock(&self.silences).insert(silence.id.clone(), silence.clone());
        Ok(())
    }
}

impl AlertStore for MemoryStore {
    async fn get_alert(&self, key: &DedupKey) -> Result<Option<AlertRecord>, StoreError> {
        Ok(lock(&self.alerts).get(key).cloned())
    }

    async fn put_alert(&self, record: &AlertRecord, expected_version: Option<u64>) -> Result<(), StoreError> {
        self.injected_failure("PutItem")?;
        let mut alerts = lock(&self.alerts);
        if alerts.get(&record.dedup_key).map(|r| r.version) != expected_version {
            return Err(StoreError::Conflict { key: record.dedup_key.to_string() });
        }
        alerts.insert(record.dedup_key.clone(), record.clone());
        Ok(())
    }

    async fn delete_alert(&self, key: &DedupKey, expected_version: u64) -> Result<(), StoreError> {
        self.injected_failure("DeleteItem")?;
        let mut alerts = lock(&self.alerts);
        if alerts.get(key).map(|r| r.version) != Some(expected_version) {
            return Err(StoreError::Conflict { key: key.to_string() });
        }
        alerts.remove(key);
        Ok(())
    }

    async fn is_event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.events).contains_key(event_id))
    }

    async fn mark_event_processed(&self, event_id: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.injected_failure("PutItem")?;
        lock(&self.events).insert(event_id.to_owned(), expires_at);
        Ok(())
    }
}

/// One message as SNS would have received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The topic (by severity).
    pub topic: Severity,
    /// The rendered subject and body.
    pub rendered: Rendered,
}

/// Records what would have been published; severities listed in `unrouted` have no topic.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    published: Mutex<Vec<Published>>,
    failures: Mutex<u32>,
    unrouted: Vec<Severity>,
}

impl RecordingNotifier {
    /// A notifier with no topic for the given severities.
    pub fn without_topics(unrouted: Vec<Severity>) -> Self {
        Self { unrouted, ..Self::default() }
    }

    /// Everything published so far.
    pub fn published(&self) -> Vec<Published> {
        lock(&self.published).clone()
    }

    /// Removes and returns everything published so far.
    pub fn take(&self) -> Vec<Published> {
        std::mem::take(&mut *lock(&self.published))
    }

    /// Makes the next `n` publishes fail.
    pub fn fail_next(&self, n: u32) {
        *lock(&self.failures) = n;
    }
}

impl Notifier for RecordingNotifier {
    async fn publish(&self, alert: &Alert) -> Result<Delivery, NotifyError> {
        {
            let mut failures = lock(&self.failures);
            if *failures > 0 {
                *failures -= 1;
                return Err(NotifyError {
                    dedup_key: alert.dedup_key.to_string(),
                    severity: alert.severity,
                    source: "injected failure".into(),
                });
            }
        }
        if self.unrouted.contains(&alert.severity) {
            return Ok(Delivery::NoTopic);
        }
        let mut published = lock(&self.published);
        published.push(Published { topic: alert.severity, rendered: render(alert) });
        Ok(Delivery::Published { message_id: format!("memory-{}", published.len()) })
    }
}

/// Records emitted metric datums.
#[derive(Debug, Default)]
pub struct RecordingMetrics {
    datums: Mutex<Vec<Datum>>,
}

impl RecordingMetrics {
    /// Everything emitted so far.
    pub fn datums(&self) -> Vec<Datum> {
        lock(&self.datums).clone()
    }

    /// Removes and returns everything emitted so far.
    pub fn take(&self) -> Vec<Datum> {
        std::mem::take(&mut *lock(&self.datums))
    }
}

impl MetricSink for RecordingMetrics {
    async fn emit(&self, datums: &[Datum]) -> Result<(), MetricError> {
        lock(&self.datums).extend_from_slice(datums);
        Ok(())
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(now) }
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *lock(&self.now) = now;
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = lock(&self.now);
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.now)
    }
}
