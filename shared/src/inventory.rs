//! Keeping the pipeline inventory (`PIPE` items) fresh: in bounded batches from the health
//! check, and on demand when an event names a pipeline the inventory does not know.
//!
//! The inventory is enrichment (which pipelines use a connection, which connection a source
//! action reads). A failure to refresh it is logged and reported, never fatal to the caller.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::inventory::InventoryEntry;
use crate::ports::{DirectoryError, PipelineDirectory, PipelineInventoryStore, StoreError};

/// How fresh the inventory is kept.
#[derive(Debug, Clone)]
pub struct InventoryPolicy {
    /// Re-read a pipeline's definition after this long.
    pub max_age: Duration,
    /// Read at most this many definitions per health check run (`GetPipeline` calls).
    pub batch: usize,
}

impl Default for InventoryPolicy {
    fn default() -> Self {
        Self { max_age: Duration::from_secs(3600), batch: 20 }
    }
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// CodePipeline could not be read.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The state table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a batch refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Definitions read.
    pub refreshed: usize,
    /// Entries of pipelines that no longer exist, removed.
    pub removed: usize,
    /// Entries still older than the max age after this batch.
    pub stale: usize,
}

fn is_stale(entry: &InventoryEntry, now: DateTime<Utc>, max_age: Duration) -> bool {
    now.signed_duration_since(entry.refreshed_at)
        >= chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX)
}

/// Lists the pipelines, drops entries of deleted ones, and re-reads at most `batch` of the
/// missing or stale definitions, oldest first. Returns the inventory as it now stands.
pub async fn refresh_batch<P: PipelineDirectory, S: PipelineInventoryStore>(
    pipelines: &P,
    store: &S,
    now: DateTime<Utc>,
    policy: &InventoryPolicy,
) -> Result<(Vec<InventoryEntry>, RefreshReport), InventoryError> {
    let names = pipelines.list_pipeline_names().await?;
    let mut inventory = store.load_inventory().await?;
    let mut report = RefreshReport::default();
    for gone in inventory.iter().filter(|e| !names.contains(&e.info.name)) {
        store.delete_inventory_entry(&gone.info.name).await?;
        report.removed += 1;
    }
    inventory.retain(|e| names.contains(&e.info.name));
    // Missing pipelines first (epoch), then the stalest.
    let mut due: Vec<(DateTime<Utc>, String)> = names
        .iter()
        .filter_map(|name| match inventory.iter().find(|e| &e.info.name == name) {
            None => Some((DateTime::<Utc>::UNIX_EPOCH, name.clone())),
            Some(e) if is_stale(e, now, policy.max_age) => Some((e.refreshed_at, name.clone())),
            Some(_) => None,
        })
        .collect();
    due.sort();
    for (_, name) in due.iter().take(policy.batch) {
        if let Some(entry) = read_definition(pipelines, store, name, now).await? {
            inventory.retain(|e| e.info.name != entry.info.name);
            inventory.push(entry);
            report.refreshed += 1;
        }
    }
    report.stale = due.len().saturating_sub(policy.batch);
    inventory.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    Ok((inventory, report))
}

/// The entry of one pipeline, read from CodePipeline when it is missing or stale. `None` when
/// the pipeline does not exist.
pub async fn entry_for<P: PipelineDirectory, S: PipelineInventoryStore>(
    pipelines: &P,
    store: &S,
    pipeline: &str,
    now: DateTime<Utc>,
    policy: &InventoryPolicy,
) -> Result<Option<InventoryEntry>, InventoryError> {
    match store.get_inventory_entry(pipeline).await? {
        Some(entry) if !is_stale(&entry, now, policy.max_age) => Ok(Some(entry)),
        _ => read_definition(pipelines, store, pipeline, now).await,
    }
}

/// Reads one definition and saves it, keeping the failure streak already recorded.
async fn read_definition<P: PipelineDirectory, S: PipelineInventoryStore>(
    pipelines: &P,
    store: &S,
    pipeline: &str,
    now: DateTime<Utc>,
) -> Result<Option<InventoryEntry>, InventoryError> {
    let Some(info) = pipelines.get_pipeline(pipeline).await? else {
        store.delete_inventory_entry(pipeline).await?;
        return Ok(None);
    };
    let streak = store.get_inventory_entry(pipeline).await?.map_or(0, |e| e.source_failure_streak);
    let entry = InventoryEntry { info, refreshed_at: now, source_failure_streak: streak };
    store.save_inventory_entry(&entry).await?;
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::adapters::memory::{MemoryPipelines, MemoryStore};
    use crate::domain::inventory::{PipelineInfo, SourceAction};

    fn pipeline(name: &str) -> PipelineInfo {
        PipelineInfo {
            name: name.to_owned(),
            role_arn: Some("arn:aws:iam::123456789012:role/pipeline".to_owned()),
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
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    #[tokio::test]
    async fn batches_are_bounded_and_catch_up_run_by_run() {
        let (directory, store) = (MemoryPipelines::default(), MemoryStore::default());
        for n in 0..5 {
            directory.upsert(pipeline(&format!("p{n}")));
        }
        let policy = InventoryPolicy { max_age: Duration::from_secs(3600), batch: 2 };
        let (inventory, report) = refresh_batch(&directory, &store, at(0), &policy).await.unwrap();
        assert_eq!((inventory.len(), report.refreshed, report.stale), (2, 2, 3));
        refresh_batch(&directory, &store, at(1), &policy).await.unwrap();
        let (inventory, report) = refresh_batch(&directory, &store, at(2), &policy).await.unwrap();
        assert_eq!((inventory.len(), report.stale), (5, 0));
        assert_eq!(directory.gets(), 5);
        let (_, report) = refresh_batch(&directory, &store, at(10), &policy).await.unwrap();
        assert_eq!(report.refreshed, 0, "fresh entries are not re-read");
    }

    #[tokio::test]
    async fn deleted_pipelines_leave_the_inventory_and_streaks_survive_a_refresh() {
        let (directory, store) = (MemoryPipelines::default(), MemoryStore::default());
        directory.upsert(pipeline("web"));
        directory.upsert(pipeline("api"));
        let policy = InventoryPolicy::default();
        refresh_batch(&directory, &store, at(0), &policy).await.unwrap();
        let mut entry = store.get_inventory_entry("web").await.unwrap().unwrap();
        entry.source_failure_streak = 2;
        store.save_inventory_entry(&entry).await.unwrap();
        directory.remove("api");
        let (inventory, report) = refresh_batch(&directory, &store, at(120), &policy).await.unwrap();
        assert_eq!(report.removed, 1);
        assert_eq!(inventory.len(), 1);
        assert_eq!(inventory[0].source_failure_streak, 2);
    }

    #[tokio::test]
    async fn unknown_pipelines_are_read_on_demand() {
        let (directory, store) = (MemoryPipelines::default(), MemoryStore::default());
        directory.upsert(pipeline("web"));
        let policy = InventoryPolicy::default();
        let entry = entry_for(&directory, &store, "web", at(0), &policy).await.unwrap().unwrap();
        assert_eq!(entry.info.sources[0].repository.as_deref(), Some("acme/web"));
        entry_for(&directory, &store, "web", at(1), &policy).await.unwrap();
        assert_eq!(directory.gets(), 1, "a fresh entry is served from the table");
        assert_eq!(entry_for(&directory, &store, "ghost", at(1), &policy).await.unwrap(), None);
    }
}
