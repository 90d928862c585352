//! The pipeline inventory: which pipelines read from which connection, and the execution
//! records that later let pushes be matched with executions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::connection::{ConnectionArn, ConnectionId};

/// The action provider of connection-based source actions.
pub const CONNECTION_SOURCE_PROVIDER: &str = "CodeStarSourceConnection";

/// A `CodeStarSourceConnection` source action of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceAction {
    /// The stage holding the action.
    pub stage: String,
    /// The action name.
    pub action: String,
    /// `ConnectionArn` from the action configuration, as written (either prefix).
    pub connection_arn: Option<String>,
    /// `FullRepositoryId` (`owner/repo`).
    pub repository: Option<String>,
    /// `BranchName`.
    pub branch: Option<String>,
}

impl SourceAction {
    /// The parsed connection ARN, when the configuration holds a valid one.
    pub fn connection(&self) -> Option<ConnectionArn> {
        self.connection_arn.as_deref().and_then(|raw| ConnectionArn::parse(raw).ok())
    }
}

/// What connwatch needs to know of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineInfo {
    /// The pipeline name.
    pub name: String,
    /// The pipeline's service role.
    pub role_arn: Option<String>,
    /// Its connection-based source actions (empty for pipelines on other sources).
    pub sources: Vec<SourceAction>,
}

impl PipelineInfo {
    /// Whether any source action reads through the connection (matched by id, so either
    /// ARN prefix matches).
    pub fn uses_connection(&self, id: &ConnectionId) -> bool {
        self.sources.iter().any(|s| s.connection().is_some_and(|arn| arn.id() == id))
    }

    /// The source action with this name, if it is a connection source.
    pub fn source(&self, action: &str) -> Option<&SourceAction> {
        self.sources.iter().find(|s| s.action == action)
    }
}

/// One inventory entry (`PIPE` items): the pipeline plus what connwatch tracks about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEntry {
    /// The pipeline.
    pub info: PipelineInfo,
    /// When `GetPipeline` was last read.
    pub refreshed_at: DateTime<Utc>,
    /// Consecutive failed source actions (reset by a successful one).
    pub source_failure_streak: u32,
}

/// The names of the pipelines that use a connection, sorted.
pub fn pipelines_using(inventory: &[InventoryEntry], id: &ConnectionId) -> Vec<String> {
    let mut names: Vec<String> =
        inventory.iter().filter(|e| e.info.uses_connection(id)).map(|e| e.info.name.clone()).collect();
    names.sort();
    names
}

/// One pipeline execution as seen in events (`EXEC` items, kept 7 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The pipeline.
    pub pipeline: String,
    /// The execution id.
    pub execution_id: String,
    /// The last state seen.
    pub state: String,
    /// The commit, when known (from the trigger or the source action's result).
    pub commit_id: Option<String>,
    /// `Webhook`, `StartPipelineExecution`, … or the provider for connection triggers.
    pub trigger: Option<String>,
    /// The repository, when known.
    pub repository: Option<String>,
    /// The branch, when known.
    pub branch: Option<String>,
    /// When the last event was seen.
    pub updated_at: DateTime<Utc>,
    /// TTL.
    pub expires_at: DateTime<Utc>,
}
