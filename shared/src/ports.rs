//! The capabilities the handlers need, named after what the domain needs rather than after the
//! AWS service that provides them. Each has an AWS adapter (`adapters::aws`) and an in-memory
//! twin (`adapters::memory`).
//!
//! The traits use native `async fn`: handlers are generic over them, and `lambda_runtime::run`
//! does not require `Send` futures, so neither `async-trait` nor `dyn` is needed.
#![allow(async_fn_in_trait)]

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::alert::{Alert, AlertKind, AlertStatus, DedupKey, Resources, Severity};
use crate::domain::connection::Connection;
use crate::domain::health::ConnectionState;
use crate::domain::inventory::{ExecutionRecord, InventoryEntry, PipelineInfo};
use crate::domain::metric::Datum;
use crate::domain::silence::Silence;

/// Why a listing of connections failed. Any of these means the listing is not complete, so
/// nothing may be concluded from what is missing in it.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The API throttled us beyond the SDK's retries.
    #[error("{api} throttled the listing")]
    Throttled {
        /// Which API (`codestar-connections` or `codeconnections`).
        api: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The role may not list connections.
    #[error("{api} denied the listing")]
    AccessDenied {
        /// Which API.
        api: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Any other failure: 5xx after retries, timeout, network, malformed response.
    #[error("{api} listing failed")]
    Service {
        /// Which API.
        api: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

impl DirectoryError {
    /// The low-cardinality reason used as the `HealthCheckErrors` dimension.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::AccessDenied { .. } => "access_denied",
            Self::Service { .. } => "service_error",
        }
    }
}

/// A boxed error from an adapter, kept as a source so `{:?}` shows the whole chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Lists every connection of the account and region.
pub trait ConnectionDirectory {
    /// Lists all connections (all pages, all enabled APIs, merged by connection id).
    /// Returns an error rather than a partial listing.
    async fn list_connections(&self) -> Result<Vec<Connection>, DirectoryError>;
}

/// Reads pipeline definitions (CodePipeline `ListPipelines`/`GetPipeline`).
pub trait PipelineDirectory {
    /// The names of every pipeline in the account and region (all pages).
    async fn list_pipeline_names(&self) -> Result<Vec<String>, DirectoryError>;
    /// One pipeline's connection sources and role; `None` when the pipeline does not exist.
    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineInfo>, DirectoryError>;
}

/// Why the state table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost against a concurrent writer.
    #[error("conditional write on {key} lost against a concurrent writer")]
    Conflict {
        /// The item key.
        key: String,
    },
    /// An item in the table could not be decoded.
    #[error("item {key} in the state table is malformed")]
    Malformed {
        /// The item key.
        key: String,
        /// The decoding error.
        #[source]
        source: BoxError,
    },
    /// The table could not be reached or refused the call.
    #[error("state table call {operation} failed")]
    Unavailable {
        /// The operation (`GetItem`, `PutItem`, …).
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

/// The last known state of every connection (`CONN` items).
pub trait ConnectionStateStore {
    /// Loads every stored connection state, tombstones included.
    async fn load_connection_states(&self) -> Result<Vec<ConnectionState>, StoreError>;
    /// Writes one connection state (last writer wins: the health check is the only writer).
    async fn save_connection_state(&self, state: &ConnectionState) -> Result<(), StoreError>;
}

/// The cached pipeline inventory (`PIPE` items) and execution records (`EXEC` items).
pub trait PipelineInventoryStore {
    /// Every inventory entry.
    async fn load_inventory(&self) -> Result<Vec<InventoryEntry>, StoreError>;
    /// One entry.
    async fn get_inventory_entry(&self, pipeline: &str) -> Result<Option<InventoryEntry>, StoreError>;
    /// Writes one entry (last writer wins).
    async fn save_inventory_entry(&self, entry: &InventoryEntry) -> Result<(), StoreError>;
    /// Removes a pipeline that no longer exists.
    async fn delete_inventory_entry(&self, pipeline: &str) -> Result<(), StoreError>;
    /// Writes an execution record (expires by TTL).
    async fn record_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError>;
}

/// The lifecycle record of one alert (`ALERT` items), keyed by dedup key.
///
/// Shaped for the whole Alertmanager-style lifecycle: `notified_status`/`last_notified_at`
/// serve the repeat interval, `kind`/`severity`/`resources` serve silence matchers and
/// inhibition, `version` serves conditional writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The key of the problem.
    pub dedup_key: DedupKey,
    /// Its kind.
    pub kind: AlertKind,
    /// Its current severity.
    pub severity: Severity,
    /// The logical status: is the problem ongoing?
    pub status: AlertStatus,
    /// When it started firing (this episode).
    pub first_seen_at: DateTime<Utc>,
    /// When a rule last reported it.
    pub last_seen_at: DateTime<Utc>,
    /// What subscribers were last told, if anything.
    pub notified_status: Option<AlertStatus>,
    /// The severity they were last told.
    pub notified_severity: Option<Severity>,
    /// When they were last told.
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Notifications sent this episode.
    pub notification_count: u32,
    /// Reports suppressed this episode.
    pub suppressed_count: u32,
    /// The resources, for matchers.
    pub resources: Resources,
    /// Pipelines affected.
    pub affected_pipelines: Vec<String>,
    /// Optimistic-concurrency version, incremented by every write.
    pub version: u64,
    /// When the record may be deleted by TTL (set once the problem is resolved).
    pub expires_at: Option<DateTime<Utc>>,
}

/// The alert lifecycle state and processed event ids.
pub trait AlertStore {
    /// Reads the record of a problem.
    async fn get_alert(&self, key: &DedupKey) -> Result<Option<AlertRecord>, StoreError>;
    /// Writes `record` if the stored version is `expected_version` (`None`: no record exists).
    /// Returns [`StoreError::Conflict`] otherwise.
    async fn put_alert(&self, record: &AlertRecord, expected_version: Option<u64>) -> Result<(), StoreError>;
    /// Deletes a record if the stored version is `expected_version`.
    async fn delete_alert(&self, key: &DedupKey, expected_version: u64) -> Result<(), StoreError>;
    /// Whether an EventBridge event id was already processed.
    async fn is_event_processed(&self, event_id: &str) -> Result<bool, StoreError>;
    /// Remembers a processed event id until `expires_at`.
    async fn mark_event_processed(&self, event_id: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Silences (`SILENCE` items).
pub trait SilenceStore {
    /// Every stored silence, expired ones included until TTL removes them.
    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError>;
    /// Creates or replaces a silence (expiring one early is a put with an earlier end).
    async fn put_silence(&self, silence: &Silence) -> Result<(), StoreError>;
}

/// What happened to a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// SNS accepted it.
    Published {
        /// The SNS message id.
        message_id: String,
    },
    /// No topic is configured for the alert's severity; nothing was sent.
    NoTopic,
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
#[error("publishing {dedup_key} to the {severity} topic failed")]
pub struct NotifyError {
    /// The alert's key.
    pub dedup_key: String,
    /// The alert's severity.
    pub severity: Severity,
    /// The SDK error.
    #[source]
    pub source: BoxError,
}

/// Sends a notification to the people and systems subscribed to its severity.
pub trait Notifier {
    /// Renders and publishes one alert.
    async fn publish(&self, alert: &Alert) -> Result<Delivery, NotifyError>;
}

/// Why metrics could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("emitting metrics failed")]
pub struct MetricError {
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// Receives metric datums.
pub trait MetricSink {
    /// Emits the datums (in Lambda as EMF on stdout; elsewhere `PutMetricData`).
    async fn emit(&self, datums: &[Datum]) -> Result<(), MetricError>;

    /// Emits the datums, logging a failure instead of returning it: metrics are a side
    /// channel, and losing them must not fail (and re-run) the work they describe.
    async fn emit_best_effort(&self, datums: &[Datum]) {
        if let Err(error) = self.emit(datums).await {
            tracing::warn!(error = ?error, "metrics could not be emitted");
        }
    }
}

/// The time, injected so rules and tests agree on "now".
pub trait Clock {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<T: ConnectionDirectory> ConnectionDirectory for &T {
    async fn list_connections(&self) -> Result<Vec<Connection>, DirectoryError> {
        (**self).list_connections().await
    }
}
impl<T: ConnectionStateStore> ConnectionStateStore for &T {
    async fn load_connection_states(&self) -> Result<Vec<ConnectionState>, StoreError> {
        (**self).load_connection_states().await
    }
    async fn save_connection_state(&self, state: &ConnectionState) -> Result<(), StoreError> {
        (**self).save_connection_state(state).await
    }
}
impl<T: AlertStore> AlertStore for &T {
    async fn get_alert(&self, key: &DedupKey) -> Result<Option<AlertRecord>, StoreError> {
        (**self).get_alert(key).await
    }
    async fn put_alert(&self, record: &AlertRecord, expected_version: Option<u64>) -> Result<(), StoreError> {
        (**self).put_alert(record, expected_version).await
    }
    async fn delete_alert(&self, key: &DedupKey, expected_version: u64) -> Result<(), StoreError> {
        (**self).delete_alert(key, expected_version).await
    }
    async fn is_event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        (**self).is_event_processed(event_id).await
    }
    async fn mark_event_processed(&self, event_id: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        (**self).mark_event_processed(event_id, expires_at).await
    }
}
impl<T: PipelineDirectory> PipelineDirectory for &T {
    async fn list_pipeline_names(&self) -> Result<Vec<String>, DirectoryError> {
        (**self).list_pipeline_names().await
    }
    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineInfo>, DirectoryError> {
        (**self).get_pipeline(name).await
    }
}
impl<T: PipelineInventoryStore> PipelineInventoryStore for &T {
    async fn load_inventory(&self) -> Result<Vec<InventoryEntry>, StoreError> {
        (**self).load_inventory().await
    }
    async fn get_inventory_entry(&self, pipeline: &str) -> Result<Option<InventoryEntry>, StoreError> {
        (**self).get_inventory_entry(pipeline).await
    }
    async fn save_inventory_entry(&self, entry: &InventoryEntry) -> Result<(), StoreError> {
        (**self).save_inventory_entry(entry).await
    }
    async fn delete_inventory_entry(&self, pipeline: &str) -> Result<(), StoreError> {
        (**self).delete_inventory_entry(pipeline).await
    }
    async fn record_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        (**self).record_execution(record).await
    }
}
impl<T: SilenceStore> SilenceStore for &T {
    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError> {
        (**self).list_silences().await
    }
    async fn put_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        (**self).put_silence(silence).await
    }
}
impl<T: Notifier> Notifier for &T {
    async fn publish(&self, alert: &Alert) -> Result<Delivery, NotifyError> {
        (**self).publish(alert).await
    }
}
impl<T: MetricSink> MetricSink for &T {
    async fn emit(&self, datums: &[Datum]) -> Result<(), MetricError> {
        (**self).emit(datums).await
    }
}
impl<T: Clock> Clock for &T {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}
