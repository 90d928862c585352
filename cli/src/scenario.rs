//! Scenario files for `connwatch simulate`: a human-editable TOML timeline (see
//! `scenarios/default.toml` for the format, documented in its header).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use connwatch::domain::connection::{
    ArnPrefix, Connection, ConnectionArn, ConnectionId, ConnectionStatus, ProviderType,
};
use serde::Deserialize;

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
    steps: Vec<RawStep>,
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
}

/// A parsed, validated scenario.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) settings: Settings,
    pub(crate) initial: Vec<Connection>,
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
            let changes = place.changes(&step, number, &mut known)?;
            steps.push(Step { at, note: step.note, changes, fail_listing: step.fail_listing });
        }
        Ok(Self { name: raw.name, description: raw.description, start: raw.start, settings, initial, steps })
    }
}

fn setting(name: &'static str, value: Option<&str>, default: Duration) -> Result<Duration, ScenarioError> {
    value.map_or(Ok(default), |v| {
        humantime::parse_duration(v).map_err(|_| ScenarioError::BadSetting { name, value: v.to_owned() })
    })
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
