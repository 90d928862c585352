//! The canonical alert (`connwatch.alert/v1`, DESIGN §4.1) and its closed vocabularies.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::connection::ConnectionArn;

/// The schema tag every alert carries.
pub const SCHEMA: &str = "connwatch.alert/v1";

/// Whether the problem is ongoing or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The problem is ongoing.
    Firing,
    /// The problem is over.
    Resolved,
}

impl AlertStatus {
    /// The stable string of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// Who must hear about it: each severity has its own SNS topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Page a human now.
    Critical,
    /// Chat or email, acted on in working hours.
    Warning,
    /// Audit feed.
    Info,
}

impl Severity {
    /// Every severity, most urgent first.
    pub const ALL: [Self; 3] = [Self::Critical, Self::Warning, Self::Info];

    /// The stable string of the severity (also the topic name in `simulate` output).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares the closed catalog of alert kinds with their stable strings and runbook anchors.
macro_rules! kinds {
    ($($(#[$meta:meta])* $variant:ident => $text:literal, $anchor:literal;)+) => {
        /// What kind of problem an alert reports. A closed, documented catalog (docs/alerts.md).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum AlertKind {
            $($(#[$meta])* #[serde(rename = $text)] $variant,)+
        }

        impl AlertKind {
            /// Every kind in the catalog.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stable string of the kind, e.g. `connection.unhealthy`.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            /// Whether alerts of this kind are one-off notices (API calls, a deletion) that
            /// never resolve; their lifecycle records expire after the retention period.
            pub fn is_notice(self) -> bool {
                self.as_str().starts_with("api.") || self == Self::ConnectionDeleted
            }

            /// The anchor of the kind's runbook section in docs/alerts.md.
            pub fn runbook_anchor(self) -> &'static str {
                match self { $(Self::$variant => $anchor,)+ }
            }
        }
    };
}

kinds! {
    /// A connection is in ERROR.
    ConnectionUnhealthy => "connection.unhealthy", "connection-unhealthy";
    /// A connection has stayed PENDING past the grace period.
    ConnectionPending => "connection.pending", "connection-pending";
    /// A known connection vanished from the listing.
    ConnectionDeleted => "connection.deleted", "connection-deleted";
    /// A pipeline's source action failed.
    PipelineSourceFailed => "pipeline.source_failed", "pipeline-source-failed";
    /// A pipeline failed outside its source stage.
    PipelineFailed => "pipeline.failed", "pipeline-failed";
    /// Someone called DeleteConnection.
    ApiConnectionDeleted => "api.connection_deleted", "api-connection-deleted";
    /// Someone changed the provider app installation or a host.
    ApiInstallationChanged => "api.installation_changed", "api-installation-changed";
    /// A connections API call was denied.
    ApiAccessDenied => "api.access_denied", "api-access-denied";
    /// A role used by a pipeline was changed.
    ApiIamChanged => "api.iam_changed", "api-iam-changed";
    /// Someone created a connection.
    ApiConnectionCreated => "api.connection_created", "api-connection-created";
    /// Someone updated or deleted a pipeline with a connection source.
    ApiPipelineChanged => "api.pipeline_changed", "api-pipeline-changed";
    /// One of the stack's CloudWatch alarms changed state.
    Alarm => "alarm", "alarm";
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a source action failed (DESIGN §4.1); also set on connection alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The connection is not AVAILABLE.
    ConnectionUnavailable,
    /// The role may not use the connection.
    PermissionDenied,
    /// The role grants `UseConnection` under the other ARN prefix.
    ConnectionPrefixMismatch,
    /// The repository does not exist or the connection cannot see it.
    RepositoryNotFound,
    /// The branch does not exist.
    BranchNotFound,
    /// The git provider is failing.
    ProviderUnavailable,
    /// The pipeline or connection is misconfigured.
    ConfigurationError,
    /// None of the known signals matched.
    Unknown,
}

impl Cause {
    /// The stable string of the cause (also the `Cause` metric dimension).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionUnavailable => "connection_unavailable",
            Self::PermissionDenied => "permission_denied",
            Self::ConnectionPrefixMismatch => "connection_prefix_mismatch",
            Self::RepositoryNotFound => "repository_not_found",
            Self::BranchNotFound => "branch_not_found",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ConfigurationError => "configuration_error",
            Self::Unknown => "unknown",
        }
    }
}

/// The resources an alert is about. Every field is always serialized, `null` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// The connection ARN.
    pub connection_arn: Option<String>,
    /// The connection name.
    pub connection_name: Option<String>,
    /// The git provider.
    pub provider: Option<String>,
    /// The pipeline name.
    pub pipeline: Option<String>,
    /// The pipeline execution id.
    pub execution_id: Option<String>,
    /// The repository (`FullRepositoryId`).
    pub repository: Option<String>,
    /// The branch.
    pub branch: Option<String>,
    /// The principal that made an API call.
    pub principal: Option<String>,
    /// The CloudWatch alarm name.
    pub alarm_name: Option<String>,
}

/// A link for the reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// What the link shows.
    pub title: String,
    /// Where it points.
    pub url: String,
}

/// The deterministic identity of a logical problem; firing and resolved share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DedupKey(String);

impl DedupKey {
    /// The key of a problem with a connection:
    /// `connection/<account>/<region>/<connection id>/<problem>`.
    pub fn for_connection(arn: &ConnectionArn, problem: &str) -> Self {
        Self(format!("{}/{problem}", Self::connection_prefix(arn)))
    }

    /// The prefix shared by every key about one connection, whatever the ARN namespace.
    pub fn connection_prefix(arn: &ConnectionArn) -> String {
        format!("connection/{}/{}/{}", arn.account(), arn.region(), arn.id())
    }

    /// Wraps a key read back from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DedupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One notification, in the canonical `connwatch.alert/v1` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The id of this notification (a fresh UUID per notification).
    pub id: String,
    /// The deterministic key of the problem.
    pub dedup_key: DedupKey,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Critical, warning or info.
    pub severity: Severity,
    /// The kind from the catalog.
    pub kind: AlertKind,
    /// One line for a subject or a chat message.
    pub title: String,
    /// What happened, what it breaks, what to do first.
    pub summary: String,
    /// The diagnosed cause, when there is one.
    pub cause: Option<Cause>,
    /// Where the runbook for this kind lives.
    pub runbook: String,
    /// The AWS account of the resource.
    pub account: String,
    /// The AWS region of the resource.
    pub region: String,
    /// The resources involved.
    pub resources: Resources,
    /// Pipelines this problem breaks.
    pub affected_pipelines: Vec<String>,
    /// When the observation was made.
    pub occurred_at: DateTime<Utc>,
    /// When the problem was first seen firing.
    pub first_seen_at: DateTime<Utc>,
    /// How many notifications were sent for this problem, this one included.
    pub notification_count: u32,
    /// The EventBridge event id behind this alert, when there is one.
    pub source_event_id: Option<String>,
    /// Links for the reader.
    pub links: Vec<Link>,
}

/// What a rule decided, before the lifecycle gives it an id, a count and a first-seen time.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDraft {
    /// The key of the problem.
    pub dedup_key: DedupKey,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Severity.
    pub severity: Severity,
    /// Kind.
    pub kind: AlertKind,
    /// Title.
    pub title: String,
    /// Summary paragraph.
    pub summary: String,
    /// Cause, if diagnosed.
    pub cause: Option<Cause>,
    /// Account.
    pub account: String,
    /// Region.
    pub region: String,
    /// Resources.
    pub resources: Resources,
    /// Affected pipelines.
    pub affected_pipelines: Vec<String>,
    /// When the observation was made.
    pub occurred_at: DateTime<Utc>,
    /// The EventBridge event id, if any.
    pub source_event_id: Option<String>,
    /// Links.
    pub links: Vec<Link>,
}

impl AlertDraft {
    /// Completes the draft into the canonical alert.
    pub fn into_alert(
        self,
        id: String,
        runbook: String,
        first_seen_at: DateTime<Utc>,
        notification_count: u32,
    ) -> Alert {
        Alert {
            schema: SCHEMA.to_owned(),
            id,
            dedup_key: self.dedup_key,
            status: self.status,
            severity: self.severity,
            kind: self.kind,
            title: self.title,
            summary: self.summary,
            cause: self.cause,
            runbook,
            account: self.account,
            region: self.region,
            resources: self.resources,
            affected_pipelines: self.affected_pipelines,
            occurred_at: self.occurred_at,
            first_seen_at,
            notification_count,
            source_event_id: self.source_event_id,
            links: self.links,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Alert {
        let arn = ConnectionArn::parse(
            "arn:aws:codeconnections:eu-west-1:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2",
        )
        .unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().with_timezone(&Utc);
        AlertDraft {
            dedup_key: DedupKey::for_connection(&arn, "unhealthy"),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            kind: AlertKind::ConnectionUnhealthy,
            title: "Connection bitbucket-prod is ERROR".to_owned(),
            summary: "s".to_owned(),
            cause: Some(Cause::ConnectionUnavailable),
            account: "123456789012".to_owned(),
            region: "eu-west-1".to_owned(),
            resources: Resources { connection_arn: Some(arn.to_string()), ..Resources::default() },
            affected_pipelines: vec![],
            occurred_at: at,
            source_event_id: None,
            links: vec![],
        }
        .into_alert("id-1".to_owned(), "docs/alerts.md#connection-unhealthy".to_owned(), at, 1)
    }

    #[test]
    fn alert_round_trips_and_serializes_unknowns_as_null() {
        let alert = sample();
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(json["schema"], "connwatch.alert/v1");
        assert_eq!(json["kind"], "connection.unhealthy");
        assert_eq!(json["cause"], "connection_unavailable");
        assert_eq!(json["occurred_at"], "2026-12-04T10:00:00Z");
        assert!(json["source_event_id"].is_null());
        for field in [
            "connection_name",
            "provider",
            "pipeline",
            "execution_id",
            "repository",
            "branch",
            "principal",
            "alarm_name",
        ] {
            assert!(json["resources"].get(field).is_some_and(serde_json::Value::is_null), "{field}");
        }
        let back: Alert = serde_json::from_value(json).unwrap();
        assert_eq!(back, alert);
    }

    #[test]
    fn cause_strings_match_their_serialization() {
        use Cause::*;
        for cause in [
            ConnectionUnavailable,
            PermissionDenied,
            ConnectionPrefixMismatch,
            RepositoryNotFound,
            BranchNotFound,
            ProviderUnavailable,
            ConfigurationError,
            Unknown,
        ] {
            assert_eq!(serde_json::to_value(cause).unwrap(), cause.as_str());
        }
    }

    #[test]
    fn dedup_key_ignores_the_arn_prefix() {
        let id = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";
        let a =
            ConnectionArn::parse(&format!("arn:aws:codeconnections:eu-west-1:123456789012:connection/{id}")).unwrap();
        let b = ConnectionArn::parse(&format!("arn:aws:codestar-connections:eu-west-1:123456789012:connection/{id}"))
            .unwrap();
        assert_eq!(DedupKey::for_connection(&a, "unhealthy"), DedupKey::for_connection(&b, "unhealthy"));
        assert_eq!(
            DedupKey::for_connection(&a, "unhealthy").as_str(),
            format!("connection/123456789012/eu-west-1/{id}/unhealthy")
        );
    }

    #[test]
    fn every_kind_has_a_distinct_string_that_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in AlertKind::ALL {
            assert!(seen.insert(kind.as_str()));
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<AlertKind>(&json).unwrap(), *kind);
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::AlertKind;

    /// Kinds the deployed functions emit today; each must have a runbook section.
    const EMITTED: &[AlertKind] = &[
        AlertKind::ConnectionUnhealthy,
        AlertKind::ConnectionPending,
        AlertKind::ConnectionDeleted,
        AlertKind::PipelineSourceFailed,
        AlertKind::PipelineFailed,
        AlertKind::ApiConnectionDeleted,
        AlertKind::ApiInstallationChanged,
        AlertKind::ApiAccessDenied,
        AlertKind::ApiIamChanged,
        AlertKind::ApiConnectionCreated,
        AlertKind::ApiPipelineChanged,
        AlertKind::Alarm,
    ];

    #[test]
    fn every_emitted_kind_has_a_runbook_section() {
        let page = include_str!("../../../docs/alerts.md");
        for kind in EMITTED {
            assert!(
                page.contains(&format!("<a id=\"{}\"></a>", kind.runbook_anchor())),
                "{kind} has no runbook anchor"
            );
        }
        for kind in AlertKind::ALL {
            assert!(page.contains(&format!("`{}`", kind.as_str())), "{kind} is not in the catalog table");
        }
        for cause in [
            "connection_unavailable",
            "connection_prefix_mismatch",
            "permission_denied",
            "repository_not_found",
            "branch_not_found",
            "provider_unavailable",
            "configuration_error",
            "unknown",
        ] {
            let anchor = format!("<a id=\"cause-{}\"></a>`{cause}`", cause.replace('_', "-"));
            assert!(page.contains(&anchor), "cause {cause} has no runbook row");
        }
    }
}
