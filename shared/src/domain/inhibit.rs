//! Inhibition rules: an alert is not paged while an alert about its cause is firing; it is
//! folded into that alert instead (its pipelines join the cause's `affected_pipelines`).
//!
//! | inhibited (target) | while firing (source) | matched on |
//! |---|---|---|
//! | `pipeline.source_failed`, `pipeline.failed` | `connection.unhealthy`, `connection.pending`, `connection.deleted` | the connection id in `resources.connection_arn` |
//! | `connection.unhealthy`, `connection.pending` | `connection.deleted` | the connection id |
//!
//! Sources are found by key, so a rule only needs the target's resources to name its cause.

use super::alert::{AlertDraft, AlertKind, DedupKey};
use super::connection::ConnectionArn;
use super::health::ConnectionProblem;

/// The keys of the alerts whose firing inhibits this one, most specific first.
pub fn inhibitors(draft: &AlertDraft) -> Vec<DedupKey> {
    let Some(arn) = draft.resources.connection_arn.as_deref().and_then(|a| ConnectionArn::parse(a).ok()) else {
        return Vec::new();
    };
    let problems: &[ConnectionProblem] = match draft.kind {
        AlertKind::PipelineSourceFailed | AlertKind::PipelineFailed => {
            &[ConnectionProblem::Unhealthy, ConnectionProblem::Pending, ConnectionProblem::Deleted]
        }
        AlertKind::ConnectionUnhealthy | AlertKind::ConnectionPending => &[ConnectionProblem::Deleted],
        _ => &[],
    };
    problems.iter().map(|p| p.dedup_key(&arn)).filter(|key| *key != draft.dedup_key).collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::alert::{AlertStatus, Resources, Severity};

    fn draft(kind: AlertKind, connection: Option<&str>) -> AlertDraft {
        AlertDraft {
            dedup_key: DedupKey::from_stored("k".to_owned()),
            status: AlertStatus::Firing,
            severity: Severity::Warning,
            kind,
            title: String::new(),
            summary: String::new(),
            cause: None,
            account: String::new(),
            region: String::new(),
            resources: Resources { connection_arn: connection.map(str::to_owned), ..Resources::default() },
            affected_pipelines: vec![],
            occurred_at: Utc::now(),
            source_event_id: None,
            links: vec![],
        }
    }

    const ARN: &str =
        "arn:aws:codestar-connections:eu-west-1:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2";

    #[test]
    fn source_failures_are_inhibited_by_any_problem_of_their_connection_in_either_namespace() {
        let keys = inhibitors(&draft(AlertKind::PipelineSourceFailed, Some(ARN)));
        let suffixes: Vec<_> = keys.iter().map(|k| k.as_str().rsplit('/').next().unwrap().to_owned()).collect();
        assert_eq!(suffixes, ["unhealthy", "pending", "deleted"]);
        assert!(keys[0].as_str().starts_with("connection/123456789012/eu-west-1/0f5b706a-"));
    }

    #[test]
    fn connection_problems_are_inhibited_by_the_deletion_and_others_by_nothing() {
        assert_eq!(inhibitors(&draft(AlertKind::ConnectionUnhealthy, Some(ARN))).len(), 1);
        assert!(inhibitors(&draft(AlertKind::ConnectionDeleted, Some(ARN))).is_empty());
        assert!(inhibitors(&draft(AlertKind::ApiConnectionDeleted, Some(ARN))).is_empty());
        assert!(inhibitors(&draft(AlertKind::PipelineSourceFailed, None)).is_empty());
    }
}
