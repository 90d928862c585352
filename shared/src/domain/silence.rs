//! Silences (DESIGN §4.2): during maintenance, matching alerts are not sent. A silence has
//! matchers (all must match), a start, an end, an author and a comment, like Alertmanager's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::AlertDraft;

/// What a matcher looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchField {
    /// The alert kind (`connection.unhealthy`).
    Kind,
    /// The severity (`critical`).
    Severity,
    /// The start of the dedup key (`connection/123456789012/eu-west-1/`).
    DedupKeyPrefix,
    /// `resources.connection_name`.
    ConnectionName,
    /// `resources.connection_arn`.
    ConnectionArn,
    /// `resources.pipeline`.
    Pipeline,
    /// `resources.repository`.
    Repository,
}

/// One condition; `value` may use `*` as a wildcard (except for the key prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// The field.
    pub field: MatchField,
    /// The expected value.
    pub value: String,
}

impl Matcher {
    /// Parses `field=value` (e.g. `kind=connection.*`, `dedup_key_prefix=connection/`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (field, value) = raw.split_once('=').ok_or_else(|| format!("matcher {raw:?} is not field=value"))?;
        let field = serde_json::from_value(serde_json::Value::String(field.trim().to_owned())).map_err(|_| {
            format!(
                "unknown matcher field {:?} (kind, severity, dedup_key_prefix, connection_name, connection_arn, pipeline, repository)",
                field.trim()
            )
        })?;
        Ok(Self { field, value: value.trim().to_owned() })
    }

    fn matches(&self, alert: &AlertDraft) -> bool {
        let r = &alert.resources;
        let actual = match self.field {
            MatchField::DedupKeyPrefix => return alert.dedup_key.as_str().starts_with(&self.value),
            MatchField::Kind => Some(alert.kind.as_str()),
            MatchField::Severity => Some(alert.severity.as_str()),
            MatchField::ConnectionName => r.connection_name.as_deref(),
            MatchField::ConnectionArn => r.connection_arn.as_deref(),
            MatchField::Pipeline => r.pipeline.as_deref(),
            MatchField::Repository => r.repository.as_deref(),
        };
        actual.is_some_and(|actual| super::audit::glob(&self.value, actual))
    }
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// From when.
    pub starts_at: DateTime<Utc>,
    /// Until when (exclusive).
    pub ends_at: DateTime<Utc>,
    /// Who created it.
    pub author: String,
    /// Why.
    pub comment: String,
}

impl Silence {
    /// Whether the silence is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether the silence is in force and every matcher matches the alert. A silence without
    /// matchers matches nothing (a typo must not silence everything).
    pub fn silences(&self, alert: &AlertDraft, now: DateTime<Utc>) -> bool {
        self.is_active(now) && !self.matchers.is_empty() && self.matchers.iter().all(|m| m.matches(alert))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::alert::{AlertKind, AlertStatus, DedupKey, Resources, Severity};

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn draft(kind: AlertKind, connection: &str) -> AlertDraft {
        AlertDraft {
            dedup_key: DedupKey::from_stored(format!("connection/123456789012/eu-west-1/{connection}/x")),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            kind,
            title: String::new(),
            summary: String::new(),
            cause: None,
            account: "123456789012".to_owned(),
            region: "eu-west-1".to_owned(),
            resources: Resources { connection_name: Some(connection.to_owned()), ..Resources::default() },
            affected_pipelines: vec![],
            occurred_at: at(0),
            source_event_id: None,
            links: vec![],
        }
    }

    fn silence(matchers: &[&str]) -> Silence {
        Silence {
            id: "s1".to_owned(),
            matchers: matchers.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            starts_at: at(0),
            ends_at: at(60),
            author: "mary".to_owned(),
            comment: "maintenance".to_owned(),
        }
    }

    #[test]
    fn matches_only_what_every_matcher_matches_while_active() {
        let s = silence(&["kind=connection.*", "connection_name=bitbucket-*"]);
        assert!(s.silences(&draft(AlertKind::ConnectionUnhealthy, "bitbucket-prod"), at(10)));
        assert!(!s.silences(&draft(AlertKind::ConnectionUnhealthy, "github-tools"), at(10)));
        assert!(!s.silences(&draft(AlertKind::PipelineSourceFailed, "bitbucket-prod"), at(10)));
        assert!(!s.silences(&draft(AlertKind::ConnectionUnhealthy, "bitbucket-prod"), at(60)), "expired");
        assert!(!s.silences(&draft(AlertKind::ConnectionUnhealthy, "bitbucket-prod"), at(-1)), "not started");
        assert!(!silence(&[]).silences(&draft(AlertKind::ConnectionUnhealthy, "bitbucket-prod"), at(10)));
        let by_key = silence(&["dedup_key_prefix=connection/123456789012/eu-west-1/bitbucket"]);
        assert!(by_key.silences(&draft(AlertKind::ConnectionPending, "bitbucket-prod"), at(10)));
    }

    #[test]
    fn bad_matchers_are_named() {
        assert!(Matcher::parse("colour=red").unwrap_err().contains("colour"));
        assert!(Matcher::parse("kind").unwrap_err().contains("field=value"));
    }
}
