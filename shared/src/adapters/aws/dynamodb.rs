//! [`ConnectionStateStore`], [`AlertStore`], [`PipelineInventoryStore`] and [`SilenceStore`] over one DynamoDB
//! table (DESIGN §4.5).
//!
//! # Table
//!
//! Keys `pk` (S, partition) and `sk` (S, sort); TTL attribute `expires_at` (N, epoch
//! seconds); on-demand billing. Items are converted with `serde_dynamo`, so every field of the
//! stored type is a top-level attribute next to the keys.
//!
//! | Family | `pk` | `sk` | Attributes | `expires_at` |
//! |---|---|---|---|---|
//! | connection state | `CONN` | connection id (UUID) | a [`ConnectionState`] | none: tombstones are kept |
//! | alert lifecycle | `ALERT` | dedup key | an [`AlertRecord`]; `version` (N) guards conditional writes | set once resolved |
//! | processed event | `EVENT#<EventBridge event id>` | `EVENT` | none | always |
//! | pipeline inventory | `PIPE` | pipeline name | an [`InventoryEntry`] (the pipeline's connection sources nested under `info`) | none: entries are deleted when the pipeline is |
//! | pipeline execution | `EXEC#<pipeline name>` | execution id | an [`ExecutionRecord`] | always |
//! | silence | `SILENCE` | silence id | a [`Silence`] | a week after it ends |
//!
//! All connection states share one partition so the health check reads them with a single
//! `Query` (there are tens of connections per account, far from a partition's limits); so do
//! all inventory entries (tens to hundreds of pipelines). Every read is strongly consistent:
//! the health check and the event handlers run a read, decide, conditional-write cycle, and an
//! eventually consistent read would lose against the write that just preceded it.
//!
//! `expires_at` is a number because DynamoDB TTL ignores any other type. It is kept to the
//! second; sub-second precision of [`AlertRecord::expires_at`] and
//! [`ExecutionRecord::expires_at`] is dropped on write. TTL deletes up to 48 hours late, so
//! readers compare `expires_at` with the clock themselves.
//!
//! IAM: `dynamodb:Query`, `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:DeleteItem` on
//! the state table.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};

use crate::domain::alert::DedupKey;
use crate::domain::health::ConnectionState;
use crate::domain::inventory::{ExecutionRecord, InventoryEntry};
use crate::domain::silence::Silence;
use crate::ports::{
    AlertRecord, AlertStore, BoxError, ConnectionStateStore, PipelineInventoryStore, SilenceStore, StoreError,
};

/// One DynamoDB item.
type Item = HashMap<String, AttributeValue>;

/// The partition key attribute.
const PK: &str = "pk";
/// The sort key attribute.
const SK: &str = "sk";
/// The TTL attribute (N, epoch seconds).
const EXPIRES_AT: &str = "expires_at";
/// The partition of connection states.
const CONN: &str = "CONN";
/// The partition of alert records.
const ALERT: &str = "ALERT";
/// The sort key of processed-event items.
const EVENT: &str = "EVENT";
/// The partition of pipeline inventory entries.
const PIPE: &str = "PIPE";
/// The partition of silences.
const SILENCE: &str = "SILENCE";
/// How long an ended silence is kept (for `connwatch silence list --all`) before TTL.
const SILENCE_KEPT_DAYS: i64 = 7;

/// The connwatch state table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    /// A store over the table named `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Every item of the partition `pk` (all pages, strongly consistent), decoded.
    async fn query_partition<T: DeserializeOwned>(&self, pk: &str) -> Result<Vec<T>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut decoded = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| unavailable("Query", e))?;
            tracing::debug!(table = %self.table, partition = pk, items = page.items().len(), "read a page of items");
            for item in page.items() {
                let sk = item.get(SK).and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
                decoded.push(from_item(item.clone()).map_err(|e| malformed(item_key(pk, sk), e))?);
            }
        }
        Ok(decoded)
    }

    /// The item under `pk`/`sk`, read strongly consistent.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        Ok(output.item)
    }

    /// Writes an item unconditionally (last writer wins).
    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }
}

impl ConnectionStateStore for DynamoStore {
    async fn load_connection_states(&self) -> Result<Vec<ConnectionState>, StoreError> {
        self.query_partition(CONN).await
    }

    async fn save_connection_state(&self, state: &ConnectionState) -> Result<(), StoreError> {
        let id = state.id().as_str();
        let mut item: Item = to_item(state).map_err(|e| malformed(item_key(CONN, id), e))?;
        item.extend(key_of(CONN, id));
        // Last writer wins: the health check is the only writer of these items.
        self.put(item).await
    }
}

impl AlertStore for DynamoStore {
    async fn get_alert(&self, key: &DedupKey) -> Result<Option<AlertRecord>, StoreError> {
        self.get(ALERT, key.as_str())
            .await?
            .map(|item| alert_from_item(item).map_err(|e| malformed(item_key(ALERT, key.as_str()), e)))
            .transpose()
    }

    async fn put_alert(&self, record: &AlertRecord, expected_version: Option<u64>) -> Result<(), StoreError> {
        let key = record.dedup_key.as_str();
        let item = alert_item(record).map_err(|e| malformed(item_key(ALERT, key), e))?;
        let request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let request = match expected_version {
            // Only the first writer of a problem may create its record.
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(version.into())),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(PutItemError::is_conditional_check_failed_exception) => {
                Err(StoreError::Conflict { key: key.to_owned() })
            }
            Err(e) => Err(unavailable("PutItem", e)),
        }
    }

    async fn delete_alert(&self, key: &DedupKey, expected_version: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(ALERT, key.as_str())))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected_version.into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(DeleteItemError::is_conditional_check_failed_exception) => {
                Err(StoreError::Conflict { key: key.to_string() })
            }
            Err(e) => Err(unavailable("DeleteItem", e)),
        }
    }

    async fn is_event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        let pk = event_pk(event_id);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(&pk, EVENT)))
            .projection_expression("#expires_at")
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(false);
        };
        // TTL deletes up to 48 h late: an expired item still in the table no longer counts.
        // An item without `expires_at` never expires, as for DynamoDB TTL itself.
        match item.get(EXPIRES_AT).map(epoch_seconds).transpose() {
            Ok(expires_at) => Ok(expires_at.flatten().is_none_or(|at| at > Utc::now())),
            Err(e) => Err(malformed(item_key(&pk, EVENT), e)),
        }
    }

    async fn mark_event_processed(&self, event_id: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key_of(&event_pk(event_id), EVENT);
        set_expiry(&mut item, Some(expires_at));
        self.put(item).await
    }
}

impl PipelineInventoryStore for DynamoStore {
    async fn load_inventory(&self) -> Result<Vec<InventoryEntry>, StoreError> {
        self.query_partition(PIPE).await
    }

    async fn get_inventory_entry(&self, pipeline: &str) -> Result<Option<InventoryEntry>, StoreError> {
        self.get(PIPE, pipeline)
            .await?
            .map(|item| from_item(item).map_err(|e| malformed(item_key(PIPE, pipeline), e)))
            .transpose()
    }

    async fn save_inventory_entry(&self, entry: &InventoryEntry) -> Result<(), StoreError> {
        let name = entry.info.name.as_str();
        let mut item: Item = to_item(entry).map_err(|e| malformed(item_key(PIPE, name), e))?;
        item.extend(key_of(PIPE, name));
        // Last writer wins: an entry is a cache of `GetPipeline`, and any writer's copy will do.
        self.put(item).await
    }

    async fn delete_inventory_entry(&self, pipeline: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(PIPE, pipeline)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", e))?;
        Ok(())
    }

    async fn record_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        let pk = exec_pk(&record.pipeline);
        let mut item: Item = to_item(record).map_err(|e| malformed(item_key(&pk, &record.execution_id), e))?;
        set_expiry(&mut item, Some(record.expires_at));
        item.extend(key_of(&pk, &record.execution_id));
        // Last writer wins: the record of an execution is its latest event's view.
        self.put(item).await
    }
}

impl SilenceStore for DynamoStore {
    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.query_partition(SILENCE).await
    }

    async fn put_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        let mut item: Item = to_item(silence).map_err(|e| malformed(item_key(SILENCE, &silence.id), e))?;
        set_expiry(&mut item, Some(silence.ends_at + chrono::Duration::days(SILENCE_KEPT_DAYS)));
        item.extend(key_of(SILENCE, &silence.id));
        self.put(item).await
    }
}

/// The item of an alert record: its fields, the keys, and `expires_at` as epoch seconds.
fn alert_item(record: &AlertRecord) -> Result<Item, serde_dynamo::Error> {
    let mut item: Item = to_item(record)?;
    set_expiry(&mut item, record.expires_at);
    item.extend(key_of(ALERT, record.dedup_key.as_str()));
    Ok(item)
}

/// The alert record of an item, `expires_at` read back from epoch seconds.
fn alert_from_item(mut item: Item) -> Result<AlertRecord, BoxError> {
    let expires_at = item.remove(EXPIRES_AT).as_ref().map(epoch_seconds).transpose()?.flatten();
    // With the attribute gone, serde reads the Option field as absent (None), then we set it.
    let mut record: AlertRecord = from_item(item)?;
    record.expires_at = expires_at;
    Ok(record)
}

/// Sets the TTL attribute of an item to `expires_at` as epoch seconds (N), replacing whatever
/// serde wrote for the field; `None` removes it.
fn set_expiry(item: &mut Item, expires_at: Option<DateTime<Utc>>) {
    match expires_at {
        Some(at) => item.insert(EXPIRES_AT.to_owned(), n(at.timestamp().into())),
        // No attribute rather than NULL: TTL skips items without it, and so do readers.
        None => item.remove(EXPIRES_AT),
    };
}

/// An `expires_at` value that is not epoch seconds.
#[derive(Debug, thiserror::Error)]
#[error("expires_at {0} is not a number of epoch seconds")]
struct BadExpiry(String);

/// Reads an epoch-seconds attribute; `NULL` reads as none.
fn epoch_seconds(value: &AttributeValue) -> Result<Option<DateTime<Utc>>, BadExpiry> {
    let raw = match value {
        AttributeValue::N(raw) => raw,
        AttributeValue::Null(_) => return Ok(None),
        other => return Err(BadExpiry(format!("{other:?}"))),
    };
    // Numbers written by other tools may carry a fraction ("1765000000.0").
    let seconds = raw
        .parse::<i64>()
        .ok()
        .or_else(|| raw.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f.trunc() as i64))
        .ok_or_else(|| BadExpiry(raw.clone()))?;
    DateTime::from_timestamp(seconds, 0).map(Some).ok_or_else(|| BadExpiry(raw.clone()))
}

/// The partition key of a processed event.
fn event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

/// The partition key of a pipeline's execution records.
fn exec_pk(pipeline: &str) -> String {
    format!("EXEC#{pipeline}")
}

/// The primary key of an item.
fn key_of(pk: &str, sk: &str) -> Item {
    Item::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// How an item is named in errors and logs.
fn item_key(pk: &str, sk: &str) -> String {
    format!("{pk}/{sk}")
}

/// A string attribute.
fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// A number attribute; `i128` holds both the `u64` versions and the `i64` epoch seconds.
fn n(value: i128) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A call that failed (other than a lost condition), the SDK error kept as the source.
fn unavailable(operation: &'static str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable { operation, source: Box::new(error) }
}

/// An item that could not be converted to or from its type.
fn malformed(key: String, error: impl Into<BoxError>) -> StoreError {
    StoreError::Malformed { key, source: error.into() }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
    use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use chrono::TimeZone;

    use super::*;
    use crate::domain::alert::{AlertKind, AlertStatus, Resources, Severity};
    use crate::domain::connection::{ConnectionArn, ConnectionStatus, ProviderType};
    use crate::domain::health::ConnectionProblem;
    use crate::domain::inventory::{PipelineInfo, SourceAction};

    const TABLE: &str = "connwatch-state";
    const KEY: &str = "connection/123456789012/eu-west-1/0f5b706a-1a1d-46c5-86b6-f177321bcfb2/unhealthy";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
    }

    fn record(version: u64) -> AlertRecord {
        AlertRecord {
            dedup_key: DedupKey::from_stored(KEY.to_owned()),
            kind: AlertKind::ConnectionUnhealthy,
            severity: Severity::Critical,
            status: AlertStatus::Resolved,
            first_seen_at: t0(),
            last_seen_at: t0(),
            notified_status: Some(AlertStatus::Resolved),
            notified_severity: Some(Severity::Critical),
            last_notified_at: Some(t0()),
            notification_count: 2,
            suppressed_count: 5,
            resources: Resources { connection_name: Some("bitbucket-prod".to_owned()), ..Resources::default() },
            affected_pipelines: vec!["web-prod".to_owned()],
            version,
            expires_at: Some(t0() + chrono::Duration::days(7)),
        }
    }

    const CS_ARN: &str =
        "arn:aws:codestar-connections:eu-west-1:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2";

    fn entry(name: &str) -> InventoryEntry {
        InventoryEntry {
            info: PipelineInfo {
                name: name.to_owned(),
                role_arn: Some("arn:aws:iam::123456789012:role/pipeline-role".to_owned()),
                sources: vec![SourceAction {
                    stage: "Source".to_owned(),
                    action: "App".to_owned(),
                    connection_arn: Some(CS_ARN.to_owned()),
                    repository: Some("acme/web".to_owned()),
                    branch: Some("main".to_owned()),
                }],
            },
            refreshed_at: t0(),
            source_failure_streak: 1,
        }
    }

    fn entry_item(name: &str) -> Item {
        let mut item: Item = to_item(entry(name)).unwrap();
        item.extend(key_of(PIPE, name));
        item
    }

    fn execution() -> ExecutionRecord {
        ExecutionRecord {
            pipeline: "web-prod".to_owned(),
            execution_id: "47f821c5-a902-44b2-ae61-b878d31ecd21".to_owned(),
            state: "FAILED".to_owned(),
            commit_id: Some("9f3c2a1".to_owned()),
            trigger: Some("CodeStarSourceConnection".to_owned()),
            repository: Some("acme/web".to_owned()),
            branch: Some("main".to_owned()),
            updated_at: t0(),
            expires_at: t0() + chrono::Duration::days(7),
        }
    }

    fn state(id: &str) -> ConnectionState {
        ConnectionState {
            arn: ConnectionArn::parse(&format!("arn:aws:codeconnections:eu-west-1:123456789012:connection/{id}"))
                .unwrap(),
            name: format!("conn-{id}"),
            provider: ProviderType::Bitbucket,
            status: ConnectionStatus::Error,
            status_since: t0(),
            first_seen_at: t0(),
            last_became_available_at: None,
            open_problems: BTreeSet::from([ConnectionProblem::Unhealthy]),
            deleted_at: None,
        }
    }

    fn conflict() -> ConditionalCheckFailedException {
        ConditionalCheckFailedException::builder().message("The conditional request failed").build()
    }

    #[tokio::test]
    async fn an_alert_record_round_trips_with_expires_at_stored_as_epoch_seconds() {
        let stored: Arc<Mutex<Option<Item>>> = Arc::default();
        let written = Arc::clone(&stored);
        let put = mock!(Client::put_item)
            .match_requests(|r| {
                r.table_name() == Some(TABLE) && r.condition_expression() == Some("attribute_not_exists(pk)")
            })
            .then_compute_output(move |r| {
                *written.lock().unwrap() = r.item().cloned();
                PutItemOutput::builder().build()
            });
        let read = Arc::clone(&stored);
        let get = mock!(Client::get_item)
            .match_requests(|r| r.consistent_read() == Some(true) && r.key() == Some(&key_of(ALERT, KEY)))
            .then_compute_output(move |_| GetItemOutput::builder().set_item(read.lock().unwrap().clone()).build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&put, &get]), TABLE);

        store.put_alert(&record(1), None).await.unwrap();
        let item = stored.lock().unwrap().clone().unwrap();
        let read_back = store.get_alert(&record(1).dedup_key).await.unwrap();

        assert_eq!(item.get("pk"), Some(&s("ALERT")));
        assert_eq!(item.get("sk"), Some(&s(KEY)));
        let expires = (t0() + chrono::Duration::days(7)).timestamp().to_string();
        assert_eq!(item.get("expires_at"), Some(&AttributeValue::N(expires)));
        assert_eq!(item.get("version"), Some(&AttributeValue::N("1".to_owned())));
        assert_eq!(read_back, Some(record(1)));
    }

    #[tokio::test]
    async fn a_record_without_expiry_is_stored_without_the_ttl_attribute() {
        let rule = mock!(Client::put_item)
            .match_requests(|r| r.item().is_some_and(|item| !item.contains_key("expires_at")))
            .then_output(|| PutItemOutput::builder().build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        store.put_alert(&AlertRecord { expires_at: None, ..record(1) }, None).await.unwrap();

        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_update_is_conditioned_on_the_expected_version() {
        let rule = mock!(Client::put_item)
            .match_requests(|r| {
                r.condition_expression() == Some("#version = :expected")
                    && r.expression_attribute_names().and_then(|n| n.get("#version")).map(String::as_str)
                        == Some("version")
                    && r.expression_attribute_values().and_then(|v| v.get(":expected"))
                        == Some(&AttributeValue::N("1".to_owned()))
            })
            .then_output(|| PutItemOutput::builder().build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        store.put_alert(&record(2), Some(1)).await.unwrap();

        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_condition_on_put_is_a_conflict() {
        let rule = mock!(Client::put_item).then_error(|| PutItemError::ConditionalCheckFailedException(conflict()));
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        let error = store.put_alert(&record(2), Some(1)).await.unwrap_err();

        assert!(matches!(&error, StoreError::Conflict { key } if key == KEY), "{error:?}");
    }

    #[tokio::test]
    async fn a_failed_condition_on_delete_is_a_conflict_and_a_matching_version_deletes() {
        let stale =
            mock!(Client::delete_item).then_error(|| DeleteItemError::ConditionalCheckFailedException(conflict()));
        let current = mock!(Client::delete_item)
            .match_requests(|r| {
                r.key() == Some(&key_of(ALERT, KEY))
                    && r.expression_attribute_values().and_then(|v| v.get(":expected"))
                        == Some(&AttributeValue::N("2".to_owned()))
            })
            .then_output(|| DeleteItemOutput::builder().build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&stale, &current]), TABLE);
        let key = DedupKey::from_stored(KEY.to_owned());

        assert!(matches!(store.delete_alert(&key, 1).await, Err(StoreError::Conflict { .. })));
        store.delete_alert(&key, 2).await.unwrap();
    }

    #[tokio::test]
    async fn other_write_failures_are_unavailable_with_the_operation_named() {
        let rule = mock!(Client::put_item).then_error(|| {
            PutItemError::generic(
                ErrorMetadata::builder().code("ResourceNotFoundException").message("no table").build(),
            )
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        let error = store.put_alert(&record(1), None).await.unwrap_err();

        assert!(matches!(error, StoreError::Unavailable { operation: "PutItem", .. }), "{error:?}");
        assert!(crate::error_chain(&error).contains("no table"), "{}", crate::error_chain(&error));
    }

    #[tokio::test]
    async fn a_missing_alert_reads_as_none_and_an_undecodable_one_as_malformed() {
        let missing = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let garbage = mock!(Client::get_item).then_output(|| {
            GetItemOutput::builder().set_item(Some(Item::from([("pk".to_owned(), s("ALERT"))]))).build()
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&missing, &garbage]), TABLE);
        let key = DedupKey::from_stored(KEY.to_owned());

        assert_eq!(store.get_alert(&key).await.unwrap(), None);
        let error = store.get_alert(&key).await.unwrap_err();
        assert!(matches!(&error, StoreError::Malformed { key, .. } if key == &format!("ALERT/{KEY}")), "{error:?}");
    }

    #[tokio::test]
    async fn connection_states_are_read_from_every_page_of_the_query() {
        const ID_1: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";
        const ID_2: &str = "1a2b3c4d-0000-4000-8000-000000000002";
        const ID_3: &str = "1a2b3c4d-0000-4000-8000-000000000003";
        let item = |id: &str| {
            let mut item: Item = to_item(state(id)).unwrap();
            item.extend(key_of(CONN, id));
            item
        };
        let first = mock!(Client::query)
            .match_requests(|r| {
                r.exclusive_start_key().is_none()
                    && r.consistent_read() == Some(true)
                    && r.key_condition_expression() == Some("#pk = :pk")
                    && r.expression_attribute_values().and_then(|v| v.get(":pk")) == Some(&s("CONN"))
            })
            .then_output(move || {
                QueryOutput::builder()
                    .items(item(ID_1))
                    .items(item(ID_2))
                    .set_last_evaluated_key(Some(key_of(CONN, ID_2)))
                    .build()
            });
        let second = mock!(Client::query)
            .match_requests(|r| r.exclusive_start_key() == Some(&key_of(CONN, ID_2)))
            .then_output(move || QueryOutput::builder().items(item(ID_3)).build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]), TABLE);

        let states = store.load_connection_states().await.unwrap();

        assert_eq!(states, [state(ID_1), state(ID_2), state(ID_3)]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_connection_state_is_written_under_its_id() {
        const ID: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";
        let rule = mock!(Client::put_item)
            .match_requests(|r| {
                r.item().is_some_and(|item| {
                    item.get("pk") == Some(&s("CONN"))
                        && item.get("sk") == Some(&s(ID))
                        && item.get("status") == Some(&s("ERROR"))
                })
            })
            .then_output(|| PutItemOutput::builder().build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        store.save_connection_state(&state(ID)).await.unwrap();

        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_processed_event_counts_until_its_expiry_even_before_ttl_deletes_it() {
        let future = (Utc::now() + chrono::Duration::hours(1)).timestamp();
        let past = (Utc::now() - chrono::Duration::hours(1)).timestamp();
        let mark = mock!(Client::put_item)
            .match_requests(move |r| {
                r.item().is_some_and(|item| {
                    item.get("pk") == Some(&s("EVENT#ev-1"))
                        && item.get("sk") == Some(&s("EVENT"))
                        && item.get("expires_at") == Some(&AttributeValue::N(future.to_string()))
                })
            })
            .then_output(|| PutItemOutput::builder().build());
        let fresh = mock!(Client::get_item)
            .match_requests(|r| r.key() == Some(&key_of("EVENT#ev-1", EVENT)) && r.consistent_read() == Some(true))
            .then_output(move || {
                GetItemOutput::builder().item("expires_at", AttributeValue::N(future.to_string())).build()
            });
        let expired = mock!(Client::get_item).then_output(move || {
            GetItemOutput::builder().item("expires_at", AttributeValue::N(past.to_string())).build()
        });
        let unknown = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&mark, &fresh, &expired, &unknown]);
        let store = DynamoStore::new(client, TABLE);

        store.mark_event_processed("ev-1", DateTime::from_timestamp(future, 0).unwrap()).await.unwrap();
        assert!(store.is_event_processed("ev-1").await.unwrap(), "fresh");
        assert!(!store.is_event_processed("ev-1").await.unwrap(), "expired, awaiting TTL deletion");
        assert!(!store.is_event_processed("ev-2").await.unwrap(), "never seen");
    }

    #[tokio::test]
    async fn a_failed_read_is_unavailable() {
        let rule = mock!(Client::get_item).then_error(|| {
            GetItemError::generic(ErrorMetadata::builder().code("InternalServerError").message("boom").build())
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        let error = store.is_event_processed("ev-1").await.unwrap_err();

        assert!(matches!(error, StoreError::Unavailable { operation: "GetItem", .. }), "{error:?}");
    }

    #[tokio::test]
    async fn an_inventory_entry_is_written_under_the_pipeline_name_with_its_sources() {
        let stored: Arc<Mutex<Option<Item>>> = Arc::default();
        let written = Arc::clone(&stored);
        let put = mock!(Client::put_item)
            .match_requests(|r| r.table_name() == Some(TABLE) && r.condition_expression().is_none())
            .then_compute_output(move |r| {
                *written.lock().unwrap() = r.item().cloned();
                PutItemOutput::builder().build()
            });
        let read = Arc::clone(&stored);
        let get = mock!(Client::get_item)
            .match_requests(|r| r.consistent_read() == Some(true) && r.key() == Some(&key_of(PIPE, "web-prod")))
            .then_compute_output(move |_| GetItemOutput::builder().set_item(read.lock().unwrap().clone()).build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&put, &get]), TABLE);

        store.save_inventory_entry(&entry("web-prod")).await.unwrap();
        let item = stored.lock().unwrap().clone().unwrap();
        let read_back = store.get_inventory_entry("web-prod").await.unwrap();

        assert_eq!(item.get("pk"), Some(&s("PIPE")));
        assert_eq!(item.get("sk"), Some(&s("web-prod")));
        assert!(!item.contains_key("expires_at"), "inventory entries do not expire");
        let sources = item
            .get("info")
            .and_then(|info| info.as_m().ok())
            .and_then(|info| info.get("sources"))
            .and_then(|sources| sources.as_l().ok())
            .expect("the sources are stored under info");
        let source = sources[0].as_m().unwrap();
        assert_eq!(source.get("connection_arn"), Some(&s(CS_ARN)));
        assert_eq!(source.get("repository"), Some(&s("acme/web")));
        assert_eq!(source.get("branch"), Some(&s("main")));
        assert_eq!(read_back, Some(entry("web-prod")));
    }

    #[tokio::test]
    async fn the_inventory_is_read_from_every_page_of_the_query() {
        let first = mock!(Client::query)
            .match_requests(|r| {
                r.exclusive_start_key().is_none()
                    && r.consistent_read() == Some(true)
                    && r.expression_attribute_values().and_then(|v| v.get(":pk")) == Some(&s("PIPE"))
            })
            .then_output(|| {
                QueryOutput::builder()
                    .items(entry_item("api-prod"))
                    .items(entry_item("web-prod"))
                    .set_last_evaluated_key(Some(key_of(PIPE, "web-prod")))
                    .build()
            });
        let second = mock!(Client::query)
            .match_requests(|r| r.exclusive_start_key() == Some(&key_of(PIPE, "web-prod")))
            .then_output(|| QueryOutput::builder().items(entry_item("worker")).build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]), TABLE);

        let inventory = store.load_inventory().await.unwrap();

        assert_eq!(inventory, [entry("api-prod"), entry("web-prod"), entry("worker")]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_undecodable_inventory_entry_is_malformed_and_a_missing_one_none() {
        let page = mock!(Client::query)
            .then_output(|| QueryOutput::builder().items(entry_item("ok")).items(key_of(PIPE, "broken")).build());
        let missing = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&page, &missing]), TABLE);

        let error = store.load_inventory().await.unwrap_err();
        assert!(matches!(&error, StoreError::Malformed { key, .. } if key == "PIPE/broken"), "{error:?}");
        assert_eq!(store.get_inventory_entry("gone").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_execution_record_is_stored_with_expires_at_as_epoch_seconds() {
        let stored: Arc<Mutex<Option<Item>>> = Arc::default();
        let written = Arc::clone(&stored);
        let put = mock!(Client::put_item).then_compute_output(move |r| {
            *written.lock().unwrap() = r.item().cloned();
            PutItemOutput::builder().build()
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&put]), TABLE);

        store.record_execution(&execution()).await.unwrap();
        let item = stored.lock().unwrap().clone().unwrap();

        assert_eq!(item.get("pk"), Some(&s("EXEC#web-prod")));
        assert_eq!(item.get("sk"), Some(&s("47f821c5-a902-44b2-ae61-b878d31ecd21")));
        let expires = (t0() + chrono::Duration::days(7)).timestamp().to_string();
        assert_eq!(item.get("expires_at"), Some(&AttributeValue::N(expires)));
        assert_eq!(item.get("state"), Some(&s("FAILED")));
        assert_eq!(item.get("commit_id"), Some(&s("9f3c2a1")));
    }

    #[tokio::test]
    async fn deleting_an_inventory_entry_targets_its_key_unconditionally() {
        let rule = mock!(Client::delete_item)
            .match_requests(|r| {
                r.table_name() == Some(TABLE)
                    && r.key() == Some(&key_of(PIPE, "web-prod"))
                    && r.condition_expression().is_none()
            })
            .then_output(|| DeleteItemOutput::builder().build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        store.delete_inventory_entry("web-prod").await.unwrap();

        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_inventory_write_is_unavailable() {
        let rule = mock!(Client::put_item).then_error(|| {
            PutItemError::generic(ErrorMetadata::builder().code("InternalServerError").message("boom").build())
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        let error = store.record_execution(&execution()).await.unwrap_err();

        assert!(matches!(error, StoreError::Unavailable { operation: "PutItem", .. }), "{error:?}");
    }

    #[test]
    fn epoch_seconds_accept_integers_and_fractions_and_reject_other_types() {
        let at = |n: &str| epoch_seconds(&AttributeValue::N(n.to_owned())).unwrap();
        assert_eq!(at("1796378400"), Some(t0()));
        assert_eq!(at("1796378400.0"), Some(t0()));
        assert!(epoch_seconds(&s("2026-12-04T10:00:00Z")).is_err());
        assert!(epoch_seconds(&AttributeValue::N("soon".to_owned())).is_err());
        assert_eq!(epoch_seconds(&AttributeValue::Null(true)).unwrap(), None);
    }
}
