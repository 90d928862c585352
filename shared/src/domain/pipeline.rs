//! CodePipeline EventBridge events: the three state-change detail types, parsed tolerantly.
//!
//! `aws_lambda_events`' CodePipeline types are not used: they declare `detail.version` and
//! `type.version` as integers while AWS sends `4.0` (a float) and `"1"` (a string), which
//! fails deserialization of the events AWS documents today, and they have no fields for
//! `execution-result`, `execution-trigger`, `start-time` or `action-execution-id`
//! (reference/aws-facts.md §0.1). These own types accept numbers or strings for every
//! version-like field, keep unknown states, and make every optional field optional.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::text::clean;

/// The EventBridge source of CodePipeline events.
pub const SOURCE: &str = "aws.codepipeline";
/// Detail type of pipeline execution changes.
pub const PIPELINE_DETAIL_TYPE: &str = "CodePipeline Pipeline Execution State Change";
/// Detail type of stage execution changes.
pub const STAGE_DETAIL_TYPE: &str = "CodePipeline Stage Execution State Change";
/// Detail type of action execution changes.
pub const ACTION_DETAIL_TYPE: &str = "CodePipeline Action Execution State Change";

/// The longest free text (summaries, commit messages) kept from an event.
pub const TEXT_CAP: usize = 500;

/// A number or a string in the event (`4.0`, `4`, `"1"`), kept as the text AWS meant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flexible(pub String);

impl<'de> Deserialize<'de> for Flexible {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(Self(s)),
            Value::Number(n) => Ok(Self(
                // `4.0` means version 4: print integral floats without the fraction.
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                    .map_or_else(|| n.to_string(), |f| format!("{f:.0}")),
            )),
            other => Err(serde::de::Error::custom(format!("expected a number or a string, got {other}"))),
        }
    }
}

impl Serialize for Flexible {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The state of an execution; unknown states are kept, not rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExecutionState {
    /// STARTED.
    Started,
    /// SUCCEEDED.
    Succeeded,
    /// FAILED.
    Failed,
    /// CANCELED.
    Canceled,
    /// RESUMED.
    Resumed,
    /// STOPPED.
    Stopped,
    /// STOPPING.
    Stopping,
    /// SUPERSEDED.
    Superseded,
    /// ABANDONED.
    Abandoned,
    /// Anything else, as sent.
    Unknown(String),
}

impl ExecutionState {
    /// The state as AWS spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Started => "STARTED",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Resumed => "RESUMED",
            Self::Stopped => "STOPPED",
            Self::Stopping => "STOPPING",
            Self::Superseded => "SUPERSEDED",
            Self::Abandoned => "ABANDONED",
            Self::Unknown(raw) => raw,
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "STARTED" => Self::Started,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "CANCELED" => Self::Canceled,
            "RESUMED" => Self::Resumed,
            "STOPPED" => Self::Stopped,
            "STOPPING" => Self::Stopping,
            "SUPERSEDED" => Self::Superseded,
            "ABANDONED" => Self::Abandoned,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ExecutionState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

impl Serialize for ExecutionState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What started a pipeline execution (`detail.execution-trigger`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecutionTrigger {
    /// `StartPipelineExecution`, `Webhook`, `CloudWatchEvent`, …
    pub trigger_type: Option<String>,
    /// The principal or resource behind the trigger.
    pub trigger_detail: Option<String>,
    /// The connection, for connection-triggered executions.
    pub connection_arn: Option<String>,
    /// `owner/repo`.
    pub full_repository_name: Option<String>,
    /// `Bitbucket`, `GitHub`, `GitLab`, …
    pub provider_type: Option<String>,
    /// The branch pushed.
    pub branch_name: Option<String>,
    /// The tag pushed.
    pub tag_name: Option<String>,
    /// The commit.
    pub commit_id: Option<String>,
    /// The commit message (capped).
    pub commit_message: Option<String>,
    /// The commit author.
    pub author_display_name: Option<String>,
}

/// The outcome details of an action (`detail.execution-result`); every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecutionResult {
    /// Link to the external execution.
    pub external_execution_url: Option<String>,
    /// The summary (for failures, the error text; capped).
    pub external_execution_summary: Option<String>,
    /// For source actions, the commit id.
    pub external_execution_id: Option<String>,
    /// `JobFailed`, `ConfigurationError`, `PermissionError`, …
    pub error_code: Option<String>,
}

/// The action type (`detail.type`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionType {
    /// `AWS`, `ThirdParty`, `Custom`.
    pub owner: Option<String>,
    /// `CodeStarSourceConnection`, `CodeBuild`, …
    pub provider: Option<String>,
    /// `Source`, `Build`, `Deploy`, …
    pub category: Option<String>,
    /// The action type version (`"1"`, or a number).
    pub version: Option<Flexible>,
}

/// The raw `detail` of all three detail types; fields absent from a type are `None`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawDetail {
    pipeline: Option<String>,
    execution_id: Option<String>,
    state: Option<ExecutionState>,
    version: Option<Flexible>,
    pipeline_execution_attempt: Option<Flexible>,
    execution_trigger: Option<ExecutionTrigger>,
    stage: Option<String>,
    action: Option<String>,
    action_execution_id: Option<String>,
    execution_result: Option<ExecutionResult>,
    region: Option<String>,
    #[serde(rename = "type")]
    action_type: Option<ActionType>,
}

/// Which level of the pipeline changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole execution.
    Pipeline {
        /// What started it, when the event says.
        trigger: Option<ExecutionTrigger>,
    },
    /// A stage.
    Stage {
        /// The stage name.
        stage: String,
    },
    /// An action.
    Action {
        /// The stage name.
        stage: String,
        /// The action name.
        action: String,
        /// The action execution id.
        action_execution_id: Option<String>,
        /// The action type.
        action_type: ActionType,
        /// The outcome details.
        result: Option<ExecutionResult>,
        /// The action's region (differs from the pipeline's for cross-region actions).
        action_region: Option<String>,
    },
}

/// One CodePipeline state-change event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineEvent {
    /// The EventBridge event id.
    pub id: String,
    /// The account.
    pub account: String,
    /// The pipeline's region.
    pub region: String,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// The pipeline name (from `detail.pipeline`; ARN formats differ between docs).
    pub pipeline: String,
    /// The pipeline execution id.
    pub execution_id: String,
    /// The new state.
    pub state: ExecutionState,
    /// The pipeline structure version.
    pub pipeline_version: Option<String>,
    /// The retry attempt.
    pub attempt: Option<String>,
    /// Pipeline, stage or action.
    pub scope: Scope,
}

impl PipelineEvent {
    /// Whether this is a failed action in the Source category.
    pub fn is_source_action(&self) -> bool {
        matches!(&self.scope, Scope::Action { action_type, .. } if action_type.category.as_deref() == Some("Source"))
    }
}

/// Why an event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The JSON is not an object with the EventBridge envelope fields.
    #[error("not an EventBridge event: {0}")]
    NotAnEvent(String),
    /// A field the detail type requires is absent.
    #[error("{detail_type} event {id} has no `{field}`")]
    MissingField {
        /// The detail type.
        detail_type: String,
        /// The event id.
        id: String,
        /// The missing field.
        field: &'static str,
    },
    /// A field has the wrong type.
    #[error("event {id}: {reason}")]
    Malformed {
        /// The event id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// What reading an event gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A CodePipeline state change.
    Event(Box<PipelineEvent>),
    /// An event this parser does not take, with the reason.
    Skipped(String),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    id: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    source: Option<String>,
    account: Option<String>,
    region: Option<String>,
    time: Option<DateTime<Utc>>,
    #[serde(default)]
    detail: Value,
}

/// Reads one EventBridge event. Events of other sources, other detail types and the
/// CodeStar Notifications "processed" shape are skipped with a reason, never an error.
pub fn parse(value: &Value) -> Result<Parsed, EventError> {
    if !value.is_object() {
        return Err(EventError::NotAnEvent("expected a JSON object".to_owned()));
    }
    if value.get("detailType").is_some() || value.get("notificationRuleArn").is_some() {
        return Ok(Parsed::Skipped(
            "CodeStar Notifications (processed) shape: subscribe connwatch to the EventBridge event instead".to_owned(),
        ));
    }
    let envelope: Envelope =
        serde_json::from_value(value.clone()).map_err(|e| EventError::NotAnEvent(clean(&e.to_string(), 200)))?;
    let id = envelope.id.clone().unwrap_or_default();
    if envelope.source.as_deref() != Some(SOURCE) {
        return Ok(Parsed::Skipped(format!("source {:?} is not {SOURCE}", envelope.source.unwrap_or_default())));
    }
    let detail_type = envelope.detail_type.clone().unwrap_or_default();
    if ![PIPELINE_DETAIL_TYPE, STAGE_DETAIL_TYPE, ACTION_DETAIL_TYPE].contains(&detail_type.as_str()) {
        return Ok(Parsed::Skipped(format!("detail-type {detail_type:?} is not a CodePipeline state change")));
    }
    let detail: RawDetail = serde_json::from_value(envelope.detail.clone())
        .map_err(|e| EventError::Malformed { id: id.clone(), reason: clean(&e.to_string(), 200) })?;
    let missing =
        |field: &'static str| EventError::MissingField { detail_type: detail_type.clone(), id: id.clone(), field };
    let scope = match detail_type.as_str() {
        PIPELINE_DETAIL_TYPE => Scope::Pipeline { trigger: detail.execution_trigger.map(cap_trigger) },
        STAGE_DETAIL_TYPE => Scope::Stage { stage: detail.stage.ok_or_else(|| missing("stage"))? },
        _ => Scope::Action {
            stage: detail.stage.ok_or_else(|| missing("stage"))?,
            action: detail.action.ok_or_else(|| missing("action"))?,
            action_execution_id: detail.action_execution_id,
            action_type: detail.action_type.unwrap_or_default(),
            result: detail.execution_result.map(cap_result),
            action_region: detail.region,
        },
    };
    Ok(Parsed::Event(Box::new(PipelineEvent {
        id: if id.is_empty() { return Err(missing("id")) } else { id.clone() },
        account: envelope.account.ok_or_else(|| missing("account"))?,
        region: envelope.region.ok_or_else(|| missing("region"))?,
        time: envelope.time.ok_or_else(|| missing("time"))?,
        pipeline: detail.pipeline.ok_or_else(|| missing("pipeline"))?,
        execution_id: detail.execution_id.ok_or_else(|| missing("execution-id"))?,
        state: detail.state.ok_or_else(|| missing("state"))?,
        pipeline_version: detail.version.map(|v| v.0),
        attempt: detail.pipeline_execution_attempt.map(|v| v.0),
        scope,
    })))
}

fn cap_trigger(mut trigger: ExecutionTrigger) -> ExecutionTrigger {
    trigger.commit_message = trigger.commit_message.map(|m| clean(&m, TEXT_CAP));
    trigger
}

fn cap_result(mut result: ExecutionResult) -> ExecutionResult {
    result.external_execution_summary = result.external_execution_summary.map(|s| clean(&s, TEXT_CAP));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            serde_json::from_str::<Value>(include_str!(concat!("../../../tests/fixtures/codepipeline/", $name)))
                .unwrap()
        };
    }

    fn event(value: &Value) -> PipelineEvent {
        match parse(value).unwrap() {
            Parsed::Event(event) => *event,
            Parsed::Skipped(reason) => panic!("skipped: {reason}"),
        }
    }

    #[test]
    fn every_documented_shape_parses() {
        let all = [
            fixture!("pipeline-started.json"),
            fixture!("pipeline-succeeded-connection-trigger.json"),
            fixture!("pipeline-failed.json"),
            fixture!("pipeline-superseded-integer-version.json"),
            fixture!("pipeline-unknown-state.json"),
            fixture!("stage-resumed.json"),
            fixture!("stage-failed.json"),
            fixture!("action-source-succeeded.json"),
            fixture!("action-connection-source-succeeded.json"),
            fixture!("action-connection-source-failed-permission.json"),
            fixture!("action-deploy-failed.json"),
            fixture!("action-started.json"),
            fixture!("action-abandoned.json"),
        ];
        for value in &all {
            let parsed = event(value);
            assert!(!parsed.pipeline.is_empty() && !parsed.execution_id.is_empty());
        }
    }

    #[test]
    fn every_state_of_every_detail_type_parses_to_a_known_state() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/codepipeline");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !name.starts_with("state-") {
                continue;
            }
            let parsed = event(&serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
            assert!(!matches!(parsed.state, ExecutionState::Unknown(_)), "{name}");
            assert!(name.ends_with(&format!("-{}.json", parsed.state.as_str().to_lowercase())), "{name}");
            seen += 1;
        }
        assert_eq!(seen, 8 + 7 + 5, "every documented state of the three detail types");
    }

    #[test]
    fn float_and_string_versions_are_accepted() {
        let failed = event(&fixture!("pipeline-failed.json"));
        assert_eq!(failed.pipeline_version.as_deref(), Some("4"));
        assert_eq!(failed.attempt.as_deref(), Some("1"));
        let superseded = event(&fixture!("pipeline-superseded-integer-version.json"));
        assert_eq!(superseded.state, ExecutionState::Superseded);
        assert_eq!(superseded.pipeline, "myPipeline", "the pipeline comes from detail, not the ARN");
        let started = event(&fixture!("action-started.json"));
        let Scope::Action { action_type, result, .. } = &started.scope else { panic!("action") };
        assert_eq!(action_type.version, Some(Flexible("1".to_owned())));
        assert_eq!(result, &None);
    }

    #[test]
    fn unknown_states_are_kept() {
        assert_eq!(
            event(&fixture!("pipeline-unknown-state.json")).state,
            ExecutionState::Unknown("PAUSED_FOR_APPROVAL".to_owned())
        );
    }

    #[test]
    fn trigger_and_result_are_parsed() {
        let succeeded = event(&fixture!("pipeline-succeeded-connection-trigger.json"));
        let Scope::Pipeline { trigger: Some(trigger) } = &succeeded.scope else { panic!("trigger") };
        assert_eq!(trigger.provider_type.as_deref(), Some("GitLab"));
        assert_eq!(trigger.tag_name.as_deref(), Some("gitlab-v4.2.1"));
        assert!(trigger.connection_arn.as_deref().unwrap().starts_with("arn:aws:codestar-connections:"));
        let failed = event(&fixture!("action-connection-source-failed-permission.json"));
        assert!(failed.is_source_action());
        let Scope::Action { result: Some(result), action_type, .. } = &failed.scope else { panic!("result") };
        assert_eq!(result.error_code.as_deref(), Some("JobFailed"));
        assert_eq!(action_type.provider.as_deref(), Some("CodeStarSourceConnection"));
        assert!(!event(&fixture!("action-deploy-failed.json")).is_source_action());
    }

    #[test]
    fn processed_and_foreign_events_are_skipped_with_a_reason() {
        let Parsed::Skipped(reason) = parse(&fixture!("processed-notification.json")).unwrap() else { panic!() };
        assert!(reason.contains("processed"));
        let mut other = fixture!("pipeline-failed.json");
        other["source"] = Value::String("aws.s3".to_owned());
        assert!(matches!(parse(&other).unwrap(), Parsed::Skipped(_)));
        other["source"] = Value::String(SOURCE.to_owned());
        other["detail-type"] = Value::String("CodePipeline Something New".to_owned());
        assert!(matches!(parse(&other).unwrap(), Parsed::Skipped(_)));
    }

    #[test]
    fn missing_fields_and_garbage_are_typed_errors() {
        assert_eq!(
            parse(&fixture!("action-missing-stage.json")),
            Err(EventError::MissingField {
                detail_type: ACTION_DETAIL_TYPE.to_owned(),
                id: "01234567-0000-4000-8000-000000000016".to_owned(),
                field: "stage"
            })
        );
        assert!(matches!(parse(&Value::Null), Err(EventError::NotAnEvent(_))));
        let mut bad = fixture!("pipeline-failed.json");
        bad["detail"]["version"] = serde_json::json!({"nested": true});
        assert!(matches!(parse(&bad), Err(EventError::Malformed { .. })));
    }

    #[test]
    fn long_summaries_are_capped_and_cleaned() {
        let mut value = fixture!("action-deploy-failed.json");
        value["detail"]["execution-result"]["external-execution-summary"] =
            Value::String(format!("line1\nline2{}", "x".repeat(5000)));
        let Scope::Action { result: Some(result), .. } = event(&value).scope else { panic!() };
        let summary = result.external_execution_summary.unwrap();
        assert_eq!(summary.chars().count(), TEXT_CAP);
        assert!(!summary.contains('\n'));
    }
}
