//! Scenario files for `connwatch simulate`: a human-editable TOML timeline (see
//! `scenarios/default.toml` for the format, documented in its header).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use connwatch::domain::connection::{
    ArnPrefix, Connection, ConnectionArn, ConnectionId, ConnectionStatus, ProviderType,
};
use connwatch::domain::inventory::{PipelineInfo, SourceAction};
use connwatch::domain::silence::{Matcher, Silence};
use serde::Deserialize;
use serde_json::json;

/// The scenario embedded in the binary.
pub(crate) const DEFAULT: &str = include_str!("../../scenarios/default.toml");

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScenarioError {
    #[error("scenario is not valid TOML for a connwatch scenario")]
    Syntax(#[source] Box<toml::de::Error>),
    #[error("step {step}: `at` = {at:?} is not a duration (examples: 0m, 10m, 1h 5m)")]
    BadOffset { step: usize, at: String },
    #[error("step {step} at {at:?} comes before the previous step")]
    OutOfOrder { step: usize, at: String },
    #[error("setting {name} = {value:?} is not a duration")]
    BadSetting { name: &'static str, value: String },
    #[error("{context}: {reason}")]
    BadConnection { context: String, reason: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    start: DateTime<Utc>,
    account: String,
    region: String,
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    connections: Vec<RawConnection>,
    #[serde(default)]
    pipelines: Vec<RawPipeline>,
    #[serde(default)]
    silences: Vec<RawSilence>,
    #[serde(default)]
    steps: Vec<RawStep>,
}

/// A silence in force during part of the scenario (offsets from `start`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSilence {
    matchers: Vec<String>,
    from: String,
    until: String,
    #[serde(default = "scenario_author")]
    author: String,
    comment: String,
}

fn scenario_author() -> String {
    "scenario".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    connection: String,
    repository: String,
    #[serde(default = "default_branch")]
    branch: String,
    role: Option<String>,
}

fn default_branch() -> String {
    "main".to_owned()
}

/// A CodePipeline event, described compactly; turned into the EventBridge JSON AWS sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    pipeline: Option<String>,
    kind: EventKind,
    /// `api_call`: the API name (`DeleteConnection`, …).
    event_name: Option<String>,
    /// `api_call`: the connection (by scenario name) the call is about.
    connection: Option<String>,
    /// `api_call`: the caller's role session and role (`mary`, `Admin`).
    principal: Option<String>,
    role: Option<String>,
    state: Option<String>,
    stage: Option<String>,
    action: Option<String>,
    summary: Option<String>,
    error_code: Option<String>,
    commit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    /// The `CodeStarSourceConnection` source action failed.
    SourceFailed,
    /// The source action succeeded.
    SourceSucceeded,
    /// A pipeline execution state change (`state` required).
    Pipeline,
    /// Another action's state change (`stage`, `action`, `state` required).
    Action,
    /// A CloudTrail API call on a connection (`event_name`, `connection` required;
    /// `error_code` makes it a denied or failed call).
    ApiCall,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    pending_grace: Option<String>,
    repeat_interval: Option<String>,
    #[serde(default)]
    detailed_metrics: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    name: String,
    provider: String,
    status: String,
    owner: Option<String>,
    id: Option<String>,
    prefix: Option<ArnPrefix>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    at: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    create: Vec<RawConnection>,
    #[serde(default)]
    delete: Vec<String>,
    fail_listing: Option<ListingFailure>,
    #[serde(default)]
    events: Vec<RawEvent>,
}

/// A failure to inject into one run's listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ListingFailure {
    Throttled,
    AccessDenied,
    ServiceError,
}

/// Settings a scenario may override.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) pending_grace: Duration,
    pub(crate) repeat_interval: Duration,
    pub(crate) detailed_metrics: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pending_grace: Duration::from_secs(3600),
            repeat_interval: Duration::from_secs(4 * 3600),
            detailed_metrics: false,
        }
    }
}

/// A change to the listing.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Upsert(Connection),
    Delete(String),
}

/// One step of the timeline, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) at: DateTime<Utc>,
    pub(crate) note: String,
    pub(crate) changes: Vec<Change>,
    pub(crate) fail_listing: Option<ListingFailure>,
    /// EventBridge events delivered after the step's health check.
    pub(crate) events: Vec<serde_json::Value>,
}

/// A parsed, validated scenario.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) settings: Settings,
    pub(crate) initial: Vec<Connection>,
    pub(crate) pipelines: Vec<PipelineInfo>,
    pub(crate) silences: Vec<Silence>,
    pub(crate) steps: Vec<Step>,
}

impl Scenario {
    /// Parses and validates a scenario.
    pub(crate) fn parse(text: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax(Box::new(e)))?;
        let settings = Settings {
            pending_grace: setting("pending_grace", raw.settings.pending_grace.as_deref(), Duration::from_secs(3600))?,
            repeat_interval: setting(
                "repeat_interval",
                raw.settings.repeat_interval.as_deref(),
                Duration::from_secs(4 * 3600),
            )?,
            detailed_metrics: raw.settings.detailed_metrics,
        };
        let place = Place { account: &raw.account, region: &raw.region };
        let initial =
            raw.connections.iter().map(|c| place.connection(c, "connections")).collect::<Result<Vec<_>, _>>()?;
        let mut known: BTreeMap<String, Connection> = initial.iter().map(|c| (c.name.clone(), c.clone())).collect();
        let pipelines =
            raw.pipelines.iter().map(|p| place.pipeline(p, &raw.steps, &known)).collect::<Result<Vec<_>, _>>()?;
        let silences =
            raw.silences.iter().enumerate().map(|(n, s)| silence(s, n, raw.start)).collect::<Result<Vec<_>, _>>()?;
        let mut steps = Vec::with_capacity(raw.steps.len());
        let mut previous = raw.start;
        for (index, step) in raw.steps.into_iter().enumerate() {
            let number = index + 1;
            let offset = humantime::parse_duration(&step.at)
                .map_err(|_| ScenarioError::BadOffset { step: number, at: step.at.clone() })?;
            let at = raw.start + chrono::Duration::from_std(offset).unwrap_or(chrono::Duration::MAX);
            if at < previous {
                return Err(ScenarioError::OutOfOrder { step: number, at: step.at });
            }
            previous = at;
            // Events may name a connection this step creates or deletes.
            let mut names = known.clone();
            let changes = place.changes(&step, number, &mut known)?;
            names.extend(known.iter().map(|(k, v)| (k.clone(), v.clone())));
            let events = step
                .events
                .iter()
                .enumerate()
                .map(|(index, e)| {
                    place.event(e, &Slot { scenario: &raw.name, step: number, index, at }, &pipelines, &names)
                })
                .collect::<Result<Vec<_>, _>>()?;
            steps.push(Step { at, note: step.note, changes, fail_listing: step.fail_listing, events });
        }
        Ok(Self {
            name: raw.name,
            description: raw.description,
            start: raw.start,
            settings,
            initial,
            pipelines,
            silences,
            steps,
        })
    }
}

fn silence(raw: &RawSilence, index: usize, start: DateTime<Utc>) -> Result<Silence, ScenarioError> {
    let bad = |reason: String| ScenarioError::BadConnection { context: format!("silences[{index}]"), reason };
    let offset = |at: &str| {
        humantime::parse_duration(at)
            .map(|d| start + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
            .map_err(|_| bad(format!("{at:?} is not a duration")))
    };
    let matchers = raw.matchers.iter().map(|m| Matcher::parse(m).map_err(&bad)).collect::<Result<Vec<_>, _>>()?;
    let (starts_at, ends_at) = (offset(&raw.from)?, offset(&raw.until)?);
    Ok(Silence {
        id: format!("scenario-silence-{}", index + 1),
        matchers,
        starts_at,
        ends_at,
        author: raw.author.clone(),
        comment: raw.comment.clone(),
    })
}

fn setting(name: &'static str, value: Option<&str>, default: Duration) -> Result<Duration, ScenarioError> {
    value.map_or(Ok(default), |v| {
        humantime::parse_duration(v).map_err(|_| ScenarioError::BadSetting { name, value: v.to_owned() })
    })
}

/// Where an event sits in a scenario: its ids are derived from this, so runs are reproducible.
#[derive(Debug, Clone, Copy)]
struct Slot<'a> {
    scenario: &'a str,
    step: usize,
    index: usize,
    at: DateTime<Utc>,
}

/// The account and region connections of a scenario live in.
struct Place<'a> {
    account: &'a str,
    region: &'a str,
}

impl Place<'_> {
    fn connection(&self, raw: &RawConnection, context: &str) -> Result<Connection, ScenarioError> {
        let bad = |reason: String| ScenarioError::BadConnection { context: format!("{context}: {}", raw.name), reason };
        let id = match &raw.id {
            Some(id) => ConnectionId::parse(id).map_err(|e| bad(e.to_string()))?,
            None => derived_id(self.account, self.region, &raw.name),
        };
        let prefix = raw.prefix.unwrap_or(ArnPrefix::Codeconnections);
        // Round-trip through the parser so a bad account or region in the file is reported.
        let arn = ConnectionArn::parse(&ConnectionArn::new(prefix, self.region, self.account, id).to_string())
            .map_err(|e| bad(e.to_string()))?;
        Ok(Connection {
            arn,
            name: raw.name.clone(),
            provider: ProviderType::parse(&raw.provider),
            status: ConnectionStatus::parse(&raw.status),
            owner_account_id: raw.owner.clone(),
            host_arn: None,
        })
    }

    /// A scenario pipeline with one connection source. The connection may be one created in a
    /// later step, so every connection the scenario ever names is searched.
    fn pipeline(
        &self,
        raw: &RawPipeline,
        steps: &[RawStep],
        initial: &BTreeMap<String, Connection>,
    ) -> Result<PipelineInfo, ScenarioError> {
        let created = steps.iter().flat_map(|s| &s.create).find(|c| c.name == raw.connection);
        let arn = match (initial.get(&raw.connection), created) {
            (Some(connection), _) => connection.arn.to_string(),
            (None, Some(created)) => self.connection(created, "pipelines")?.arn.to_string(),
            (None, None) => {
                return Err(ScenarioError::BadConnection {
                    context: format!("pipelines: {}", raw.name),
                    reason: format!("unknown connection {}", raw.connection),
                });
            }
        };
        Ok(PipelineInfo {
            name: raw.name.clone(),
            role_arn: Some(
                raw.role
                    .clone()
                    .unwrap_or_else(|| format!("arn:aws:iam::{}:role/{}-pipeline-role", self.account, raw.name)),
            ),
            sources: vec![SourceAction {
                stage: "Source".to_owned(),
                action: "Source".to_owned(),
                connection_arn: Some(arn),
                repository: Some(raw.repository.clone()),
                branch: Some(raw.branch.clone()),
            }],
        })
    }

    /// The EventBridge JSON of a compact event, in the shape AWS documents.
    fn event(
        &self,
        raw: &RawEvent,
        slot: &Slot<'_>,
        pipelines: &[PipelineInfo],
        known: &BTreeMap<String, Connection>,
    ) -> Result<serde_json::Value, ScenarioError> {
        let Slot { scenario, step, index, at } = *slot;
        let bad = |reason: &str| ScenarioError::BadConnection {
            context: format!("step {step} event {}", index + 1),
            reason: reason.to_owned(),
        };
        let seed = format!("connwatch:{scenario}:{step}:{index}");
        if raw.kind == EventKind::ApiCall {
            return self.api_call(raw, &seed, at, known).map_err(|reason| bad(&reason));
        }
        let pipeline_name = raw.pipeline.as_deref().unwrap_or_default();
        let Some(pipeline) = pipelines.iter().find(|p| p.name == pipeline_name) else {
            return Err(bad(&format!("unknown pipeline {pipeline_name:?}")));
        };
        // `{connection_arn}` in a summary stands for the pipeline's connection, as AWS quotes it.
        let connection_arn = pipeline.sources.first().and_then(|s| s.connection_arn.clone()).unwrap_or_default();
        let summary = raw.summary.as_ref().map(|s| s.replace("{connection_arn}", &connection_arn));
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string();
        let execution = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("{seed}:execution").as_bytes());
        let (detail_type, mut detail) = match raw.kind {
            EventKind::Pipeline => {
                let state = raw.state.as_deref().ok_or_else(|| bad("kind = \"pipeline\" needs a state"))?;
                ("CodePipeline Pipeline Execution State Change", json!({"state": state}))
            }
            EventKind::SourceFailed | EventKind::SourceSucceeded => {
                let failed = raw.kind == EventKind::SourceFailed;
                let mut result = json!({});
                if let Some(summary) = &summary {
                    result["external-execution-summary"] = json!(summary);
                }
                if let Some(code) = raw.error_code.as_deref().or(failed.then_some("JobFailed")) {
                    result["error-code"] = json!(code);
                }
                if let Some(commit) = &raw.commit {
                    result["external-execution-id"] = json!(commit);
                }
                let detail = json!({
                    "stage": "Source", "action": "Source",
                    "state": if failed { "FAILED" } else { "SUCCEEDED" },
                    "execution-result": result,
                    "type": {"owner": "AWS", "provider": "CodeStarSourceConnection", "category": "Source", "version": "1"},
                });
                ("CodePipeline Action Execution State Change", detail)
            }
            EventKind::ApiCall => return Err(bad("unreachable: handled above")),
            EventKind::Action => {
                let (Some(stage), Some(action), Some(state)) = (&raw.stage, &raw.action, &raw.state) else {
                    return Err(bad("kind = \"action\" needs stage, action and state"));
                };
                let detail = json!({
                    "stage": stage, "action": action, "state": state,
                    "execution-result": {"external-execution-summary": summary, "error-code": raw.error_code},
                    "type": {"owner": "AWS", "provider": "CodeBuild", "category": "Build", "version": "1"},
                });
                ("CodePipeline Action Execution State Change", detail)
            }
        };
        detail["pipeline"] = json!(pipeline_name);
        detail["execution-id"] = json!(execution.to_string());
        detail["version"] = json!(1.0);
        detail["pipeline-execution-attempt"] = json!(1.0);
        Ok(json!({
            "version": "0", "id": id, "detail-type": detail_type, "source": "aws.codepipeline",
            "account": self.account, "time": at, "region": self.region,
            "resources": [format!("arn:aws:codepipeline:{}:{}:{}", self.region, self.account, pipeline_name)],
            "detail": detail,
        }))
    }

    /// A CloudTrail "AWS API Call via CloudTrail" event on a scenario connection, in the
    /// namespace of the connection's ARN.
    fn api_call(
        &self,
        raw: &RawEvent,
        seed: &str,
        at: DateTime<Utc>,
        known: &BTreeMap<String, Connection>,
    ) -> Result<serde_json::Value, String> {
        let event_name = raw.event_name.as_deref().ok_or("kind = \"api_call\" needs event_name")?;
        let name = raw.connection.as_deref().ok_or("kind = \"api_call\" needs connection")?;
        let connection = known.get(name).ok_or_else(|| format!("unknown connection {name}"))?;
        let prefix = connection.arn.prefix().as_str();
        let (session, role) = (raw.principal.as_deref().unwrap_or("someone"), raw.role.as_deref().unwrap_or("Admin"));
        let mut detail = json!({
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", self.account),
                "accountId": self.account,
                "sessionContext": {"attributes": {"mfaAuthenticated": "true"}},
            },
            "eventTime": at, "eventSource": format!("{prefix}.amazonaws.com"), "eventName": event_name,
            "awsRegion": self.region, "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.13.30",
            "requestParameters": {"connectionArn": connection.arn.to_string()}, "responseElements": null,
            "eventID": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("{seed}:cloudtrail").as_bytes()).to_string(),
            "eventType": "AwsApiCall",
        });
        if let Some(code) = &raw.error_code {
            detail["errorCode"] = json!(code);
            detail["errorMessage"] = json!(format!(
                "User: arn:aws:sts::{}:assumed-role/{role}/{session} is not authorized to perform: {prefix}:{event_name} on resource: {}",
                self.account, connection.arn
            ));
            detail["requestParameters"] = json!(null);
        }
        Ok(json!({
            "version": "0",
            "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string(),
            "detail-type": "AWS API Call via CloudTrail", "source": format!("aws.{prefix}"),
            "account": self.account, "time": at, "region": self.region, "resources": [], "detail": detail,
        }))
    }

    fn changes(
        &self,
        step: &RawStep,
        number: usize,
        known: &mut BTreeMap<String, Connection>,
    ) -> Result<Vec<Change>, ScenarioError> {
        let context = format!("step {number}");
        let mut changes = Vec::new();
        for raw in &step.create {
            let connection = self.connection(raw, &context)?;
            known.insert(connection.name.clone(), connection.clone());
            changes.push(Change::Upsert(connection));
        }
        for (name, status) in &step.set {
            let connection = known.get_mut(name).ok_or_else(|| ScenarioError::BadConnection {
                context: context.clone(),
                reason: format!("`set` names unknown connection {name}"),
            })?;
            connection.status = ConnectionStatus::parse(status);
            changes.push(Change::Upsert(connection.clone()));
        }
        for name in &step.delete {
            if known.remove(name).is_none() {
                return Err(ScenarioError::BadConnection {
                    context,
                    reason: format!("`delete` names unknown connection {name}"),
                });
            }
            changes.push(Change::Delete(name.clone()));
        }
        Ok(changes)
    }
}

/// A stable id for a scenario connection without one, so runs are reproducible.
fn derived_id(account: &str, region: &str, name: &str) -> ConnectionId {
    let seed = format!("connwatch:{account}:{region}:{name}");
    ConnectionId::from_uuid(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_parses() {
        let scenario = Scenario::parse(DEFAULT).unwrap();
        assert_eq!(scenario.name, "default");
        assert_eq!(scenario.initial.len(), 2);
        assert!(scenario.steps.len() >= 8);
    }

    #[test]
    fn errors_name_the_step() {
        let base = "name='x'\nstart='2026-12-04T09:00:00Z'\naccount='123456789012'\nregion='eu-west-1'\n";
        let cases = [
            ("[[steps]]\nat='soon'\n", "step 1: `at`"),
            ("[[steps]]\nat='10m'\n[[steps]]\nat='5m'\n", "step 2 at"),
            ("[[steps]]\nat='1m'\nset={ghost='ERROR'}\n", "unknown connection ghost"),
            ("[[steps]]\nat='1m'\ncolour='red'\n", "not valid TOML"),
        ];
        for (steps, expected) in cases {
            let error = Scenario::parse(&format!("{base}{steps}")).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
