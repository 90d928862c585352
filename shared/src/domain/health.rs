//! The health rules: compare one complete listing of connections with the stored state and
//! decide which connection alerts fire or resolve. Pure: the caller does the I/O.
//!
//! The rules are level-triggered: while a problem lasts, every run reports it firing and the
//! lifecycle suppresses the duplicates (and re-sends after the repeat interval). A failed
//! notification therefore heals on the next run, and no transition can be missed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::{AlertDraft, AlertKind, AlertStatus, Cause, DedupKey, Link, Resources, Severity};
use super::connection::{Connection, ConnectionArn, ConnectionId, ConnectionStatus, ProviderType};
use super::metric::{Datum, MetricName};
use super::text::{NAME_CAP, clean};

/// A problem a connection can have; each is one alert kind with its own dedup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionProblem {
    /// ERROR (and not AVAILABLE since).
    Unhealthy,
    /// PENDING past the grace period (and not AVAILABLE since).
    Pending,
    /// Gone from a complete listing.
    Deleted,
}

impl ConnectionProblem {
    /// The alert kind of the problem.
    pub fn kind(self) -> AlertKind {
        match self {
            Self::Unhealthy => AlertKind::ConnectionUnhealthy,
            Self::Pending => AlertKind::ConnectionPending,
            Self::Deleted => AlertKind::ConnectionDeleted,
        }
    }

    /// The severity of the problem.
    pub fn severity(self) -> Severity {
        match self {
            Self::Unhealthy => Severity::Critical,
            Self::Pending | Self::Deleted => Severity::Warning,
        }
    }

    /// The last segment of the dedup key.
    fn key_suffix(self) -> &'static str {
        match self {
            Self::Unhealthy => "unhealthy",
            Self::Pending => "pending",
            Self::Deleted => "deleted",
        }
    }

    /// The dedup key of this problem on a connection.
    pub fn dedup_key(self, arn: &ConnectionArn) -> DedupKey {
        DedupKey::for_connection(arn, self.key_suffix())
    }
}

/// What the state table remembers of a connection (`CONN` items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionState {
    /// The ARN as last listed.
    pub arn: ConnectionArn,
    /// The name as last listed.
    pub name: String,
    /// The provider.
    pub provider: ProviderType,
    /// The status as last listed.
    pub status: ConnectionStatus,
    /// When the current status was first observed.
    pub status_since: DateTime<Utc>,
    /// When connwatch first saw the connection.
    pub first_seen_at: DateTime<Utc>,
    /// When it last became AVAILABLE. Not refreshed on every run: a write per connection per
    /// minute would cost more than the field is worth.
    pub last_became_available_at: Option<DateTime<Utc>>,
    /// Problems reported firing and not yet resolved.
    pub open_problems: BTreeSet<ConnectionProblem>,
    /// Set once the connection vanished from a complete listing (a tombstone).
    pub deleted_at: Option<DateTime<Utc>>,
}

impl ConnectionState {
    /// The connection id.
    pub fn id(&self) -> &ConnectionId {
        self.arn.id()
    }
}

/// Settings of the health rules.
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    /// How long a connection may stay PENDING before `connection.pending` fires.
    pub pending_grace: Duration,
    /// Emit per-connection metrics (billed per connection).
    pub detailed_metrics: bool,
}

/// What one run decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// States that changed and must be written.
    pub changed_states: Vec<ConnectionState>,
    /// Alerts to hand to the lifecycle, in a stable order.
    pub alerts: Vec<AlertDraft>,
    /// Health metrics of this run.
    pub metrics: Vec<Datum>,
    /// Connections with an unknown status, left as they were.
    pub unknown_statuses: Vec<(ConnectionId, String)>,
}

/// Compares a complete listing with the stored states and decides what fires and resolves.
pub fn evaluate(
    previous: &[ConnectionState],
    listing: &[Connection],
    now: DateTime<Utc>,
    policy: &HealthPolicy,
) -> Evaluation {
    let previous: BTreeMap<&ConnectionId, &ConnectionState> = previous.iter().map(|s| (s.id(), s)).collect();
    let mut eval = Evaluation::default();
    let mut listed = BTreeSet::new();
    for connection in listing {
        listed.insert(connection.id());
        let prior = previous.get(connection.id()).copied().filter(|s| s.deleted_at.is_none());
        let next = observe(prior, connection, now, policy, &mut eval);
        if prior != Some(&next) {
            eval.changed_states.push(next);
        }
    }
    for state in previous.values().filter(|s| s.deleted_at.is_none() && !listed.contains(s.id())) {
        let tombstone = mark_deleted(state, now, &mut eval);
        eval.changed_states.push(tombstone);
    }
    eval.metrics = health_metrics(listing, &eval, now, policy);
    eval
}

/// Applies one listed connection to its prior state.
fn observe(
    prior: Option<&ConnectionState>,
    connection: &Connection,
    now: DateTime<Utc>,
    policy: &HealthPolicy,
    eval: &mut Evaluation,
) -> ConnectionState {
    let status_since = match prior {
        Some(p) if p.status == connection.status => p.status_since,
        _ => now,
    };
    let open = prior.map(|p| p.open_problems.clone()).unwrap_or_default();
    let mut next = ConnectionState {
        arn: connection.arn.clone(),
        name: connection.name.clone(),
        provider: connection.provider.clone(),
        status: connection.status.clone(),
        status_since,
        first_seen_at: prior.map_or(now, |p| p.first_seen_at),
        last_became_available_at: match prior {
            Some(p) if p.status == ConnectionStatus::Available || connection.status != ConnectionStatus::Available => {
                p.last_became_available_at
            }
            _ if connection.status == ConnectionStatus::Available => Some(now),
            _ => None,
        },
        open_problems: BTreeSet::new(),
        deleted_at: None,
    };
    if let ConnectionStatus::Unknown(raw) = &connection.status {
        eval.unknown_statuses.push((connection.id().clone(), raw.clone()));
    }
    let firing = firing_problems(&next, &open, now, policy);
    for problem in &firing {
        eval.alerts.push(draft(&next, *problem, AlertStatus::Firing, now, policy));
    }
    for problem in open.difference(&firing) {
        eval.alerts.push(draft(&next, *problem, AlertStatus::Resolved, now, policy));
    }
    next.open_problems = firing;
    next
}

/// Which problems fire for a connection in its new state. A problem, once open, stays open
/// until the connection is AVAILABLE again (ERROR → PENDING is not a recovery).
fn firing_problems(
    state: &ConnectionState,
    open: &BTreeSet<ConnectionProblem>,
    now: DateTime<Utc>,
    policy: &HealthPolicy,
) -> BTreeSet<ConnectionProblem> {
    if state.status == ConnectionStatus::Available {
        return BTreeSet::new();
    }
    let mut firing: BTreeSet<ConnectionProblem> =
        open.iter().copied().filter(|p| *p != ConnectionProblem::Deleted).collect();
    match state.status {
        ConnectionStatus::Error => {
            firing.insert(ConnectionProblem::Unhealthy);
        }
        ConnectionStatus::Pending if pending_too_long(state, now, policy) => {
            firing.insert(ConnectionProblem::Pending);
        }
        _ => {}
    }
    firing
}

fn pending_too_long(state: &ConnectionState, now: DateTime<Utc>, policy: &HealthPolicy) -> bool {
    let grace = chrono::Duration::from_std(policy.pending_grace).unwrap_or(chrono::Duration::MAX);
    now.signed_duration_since(state.status_since) >= grace
}

/// Turns a state that vanished from the listing into a tombstone: `connection.deleted`
/// fires once, and the connection's other open problems resolve.
fn mark_deleted(state: &ConnectionState, now: DateTime<Utc>, eval: &mut Evaluation) -> ConnectionState {
    let mut tombstone = state.clone();
    tombstone.deleted_at = Some(now);
    let policy = HealthPolicy { pending_grace: Duration::ZERO, detailed_metrics: false };
    eval.alerts.push(draft(&tombstone, ConnectionProblem::Deleted, AlertStatus::Firing, now, &policy));
    for problem in &state.open_problems {
        eval.alerts.push(draft(&tombstone, *problem, AlertStatus::Resolved, now, &policy));
    }
    tombstone.open_problems = BTreeSet::from([ConnectionProblem::Deleted]);
    tombstone
}

/// Builds the alert for one problem of one connection.
fn draft(
    state: &ConnectionState,
    problem: ConnectionProblem,
    status: AlertStatus,
    now: DateTime<Utc>,
    policy: &HealthPolicy,
) -> AlertDraft {
    let name = clean(&state.name, NAME_CAP);
    let (title, summary) = wording(state, &name, problem, status, policy);
    AlertDraft {
        dedup_key: problem.dedup_key(&state.arn),
        status,
        severity: problem.severity(),
        kind: problem.kind(),
        title,
        summary,
        cause: Some(Cause::ConnectionUnavailable),
        account: state.arn.account().to_owned(),
        region: state.arn.region().to_owned(),
        resources: Resources {
            connection_arn: Some(state.arn.to_string()),
            connection_name: Some(name),
            provider: Some(state.provider.to_string()),
            ..Resources::default()
        },
        affected_pipelines: Vec::new(),
        occurred_at: now,
        source_event_id: None,
        links: vec![console_link(&state.arn)],
    }
}

/// Title and summary of a connection alert: what happened, what it breaks, what to do first.
fn wording(
    state: &ConnectionState,
    name: &str,
    problem: ConnectionProblem,
    status: AlertStatus,
    policy: &HealthPolicy,
) -> (String, String) {
    let provider = &state.provider;
    let since = state.status_since.format("%Y-%m-%d %H:%M UTC");
    match (problem, status) {
        (ConnectionProblem::Unhealthy, AlertStatus::Firing) => (
            format!("Connection {name} is {}", state.status),
            format!(
                "The {provider} connection {name} has been {} since {since}. Pipelines whose source action \
                 uses it cannot fetch code, and pushes to {provider} start nothing. First step: open the \
                 connection in the console and check the AWS app installation in {provider} (uninstalled \
                 app, revoked token or changed permissions); reinstall or re-authorise it with \"Update \
                 pending connection\".",
                state.status
            ),
        ),
        (ConnectionProblem::Pending, AlertStatus::Firing) => (
            format!("Connection {name} is still PENDING after {}", humantime::format_duration(policy.pending_grace)),
            format!(
                "The {provider} connection {name} has been {} since {since} and its OAuth handshake was never \
                 completed. A pipeline on a PENDING connection is never triggered. First step: open the \
                 connection in the console, choose \"Update pending connection\" and finish the handshake \
                 with {provider}; delete the connection if nobody needs it.",
                state.status
            ),
        ),
        (ConnectionProblem::Deleted, AlertStatus::Firing) => (
            format!("Connection {name} was deleted"),
            format!(
                "The {provider} connection {name} ({}) is no longer listed by the connections API. Pipelines \
                 that name it fail at their Source stage. First step: find who deleted it (CloudTrail \
                 DeleteConnection), then recreate the connection, complete its handshake and point the \
                 pipelines' ConnectionArn at the new one.",
                state.arn
            ),
        ),
        (_, AlertStatus::Resolved) if state.deleted_at.is_some() => (
            format!("Connection {name} no longer {}: it was deleted", problem_phrase(problem)),
            format!(
                "The {provider} connection {name} was deleted, so its earlier {} alert is closed. The deletion \
                 has its own alert.",
                problem.kind()
            ),
        ),
        (_, AlertStatus::Resolved) => (
            format!("Connection {name} is AVAILABLE again"),
            format!(
                "The {provider} connection {name} is AVAILABLE again (since {since}). Pipelines that failed at \
                 Source while it was down do not restart by themselves: re-run them or push again."
            ),
        ),
    }
}

fn problem_phrase(problem: ConnectionProblem) -> &'static str {
    match problem {
        ConnectionProblem::Unhealthy => "unhealthy",
        ConnectionProblem::Pending => "pending",
        ConnectionProblem::Deleted => "deleted",
    }
}

/// The console page of a connection.
pub fn console_link(arn: &ConnectionArn) -> Link {
    let region = arn.region();
    Link {
        title: "Connection in the console".to_owned(),
        url: format!(
            "https://{region}.console.aws.amazon.com/codesuite/settings/{}/{region}/connections/{}?region={region}",
            arn.account(),
            arn.id()
        ),
    }
}

/// The health metrics of one run: connections by status and provider, the unhealthy count,
/// and per-connection availability when detailed metrics are on.
fn health_metrics(listing: &[Connection], eval: &Evaluation, now: DateTime<Utc>, policy: &HealthPolicy) -> Vec<Datum> {
    let mut by_status: BTreeMap<(String, String), u32> = BTreeMap::new();
    for connection in listing {
        *by_status.entry((connection.status.to_string(), connection.provider.to_string())).or_default() += 1;
    }
    let mut metrics: Vec<Datum> = by_status
        .into_iter()
        .map(|((status, provider), n)| {
            Datum::new(MetricName::Connections, f64::from(n), now).with("Status", status).with("Provider", provider)
        })
        .collect();
    let unhealthy = eval
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing && a.kind != AlertKind::ConnectionDeleted)
        .filter_map(|a| a.resources.connection_arn.as_deref())
        .collect::<BTreeSet<_>>()
        .len();
    metrics.push(Datum::new(MetricName::UnhealthyConnections, unhealthy as f64, now));
    if policy.detailed_metrics {
        for connection in listing {
            let up = if connection.status == ConnectionStatus::Available { 1.0 } else { 0.0 };
            metrics.push(
                Datum::new(MetricName::ConnectionAvailable, up, now)
                    .with("ConnectionName", clean(&connection.name, NAME_CAP)),
            );
        }
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().with_timezone(&Utc)
            + chrono::Duration::minutes(minute)
    }

    fn policy() -> HealthPolicy {
        HealthPolicy { pending_grace: Duration::from_secs(3600), detailed_metrics: false }
    }

    fn conn(status: &str) -> Connection {
        Connection {
            arn: ConnectionArn::parse(&format!("arn:aws:codeconnections:eu-west-1:123456789012:connection/{ID}"))
                .unwrap(),
            name: "bitbucket-prod".to_owned(),
            provider: ProviderType::Bitbucket,
            status: ConnectionStatus::parse(status),
            owner_account_id: None,
            host_arn: None,
        }
    }

    /// Runs the rules over a sequence of listings, feeding each run's states into the next.
    fn run(steps: &[(i64, Vec<Connection>)]) -> Vec<Evaluation> {
        let mut states: BTreeMap<ConnectionId, ConnectionState> = BTreeMap::new();
        steps
            .iter()
            .map(|(minute, listing)| {
                let previous: Vec<_> = states.values().cloned().collect();
                let eval = evaluate(&previous, listing, at(*minute), &policy());
                for s in &eval.changed_states {
                    states.insert(s.id().clone(), s.clone());
                }
                eval
            })
            .collect()
    }

    fn decisions(eval: &Evaluation) -> Vec<(AlertKind, AlertStatus)> {
        eval.alerts.iter().map(|a| (a.kind, a.status)).collect()
    }

    #[test]
    fn available_to_error_fires_unhealthy_and_recovery_resolves_it() {
        let evals = run(&[(0, vec![conn("AVAILABLE")]), (1, vec![conn("ERROR")]), (2, vec![conn("AVAILABLE")])]);
        assert!(evals[0].alerts.is_empty());
        assert_eq!(decisions(&evals[1]), [(AlertKind::ConnectionUnhealthy, AlertStatus::Firing)]);
        assert_eq!(evals[1].alerts[0].severity, Severity::Critical);
        assert_eq!(evals[1].alerts[0].title, "Connection bitbucket-prod is ERROR");
        assert_eq!(decisions(&evals[2]), [(AlertKind::ConnectionUnhealthy, AlertStatus::Resolved)]);
        assert_eq!(evals[1].alerts[0].dedup_key, evals[2].alerts[0].dedup_key);
    }

    #[test]
    fn first_seen_in_error_fires_unhealthy() {
        let evals = run(&[(0, vec![conn("ERROR")])]);
        assert_eq!(decisions(&evals[0]), [(AlertKind::ConnectionUnhealthy, AlertStatus::Firing)]);
    }

    #[test]
    fn a_lasting_error_keeps_firing_without_rewriting_state() {
        let evals = run(&[(0, vec![conn("ERROR")]), (1, vec![conn("ERROR")])]);
        assert_eq!(decisions(&evals[1]), [(AlertKind::ConnectionUnhealthy, AlertStatus::Firing)]);
        assert!(evals[1].changed_states.is_empty());
    }

    #[test]
    fn steady_available_connection_writes_nothing() {
        let evals = run(&[(0, vec![conn("AVAILABLE")]), (1, vec![conn("AVAILABLE")])]);
        assert_eq!(evals[0].changed_states.len(), 1);
        assert!(evals[1].changed_states.is_empty());
        assert!(evals[1].alerts.is_empty());
    }

    #[test]
    fn pending_fires_only_after_the_grace_period_from_first_seen() {
        let evals = run(&[(0, vec![conn("PENDING")]), (59, vec![conn("PENDING")]), (60, vec![conn("PENDING")])]);
        assert!(evals[0].alerts.is_empty());
        assert!(evals[1].alerts.is_empty());
        assert_eq!(decisions(&evals[2]), [(AlertKind::ConnectionPending, AlertStatus::Firing)]);
        assert_eq!(evals[2].alerts[0].severity, Severity::Warning);
        assert_eq!(evals[2].alerts[0].title, "Connection bitbucket-prod is still PENDING after 1h");
    }

    #[test]
    fn pending_resolves_when_available() {
        let evals = run(&[(0, vec![conn("PENDING")]), (61, vec![conn("PENDING")]), (62, vec![conn("AVAILABLE")])]);
        assert_eq!(decisions(&evals[2]), [(AlertKind::ConnectionPending, AlertStatus::Resolved)]);
    }

    #[test]
    fn error_then_pending_is_not_a_recovery() {
        let evals = run(&[(0, vec![conn("ERROR")]), (1, vec![conn("PENDING")])]);
        assert_eq!(decisions(&evals[1]), [(AlertKind::ConnectionUnhealthy, AlertStatus::Firing)]);
    }

    #[test]
    fn vanished_connection_fires_deleted_once_and_resolves_its_other_alerts() {
        let evals = run(&[(0, vec![conn("ERROR")]), (1, vec![]), (2, vec![])]);
        assert_eq!(
            decisions(&evals[1]),
            [
                (AlertKind::ConnectionDeleted, AlertStatus::Firing),
                (AlertKind::ConnectionUnhealthy, AlertStatus::Resolved)
            ]
        );
        assert_eq!(evals[1].alerts[0].severity, Severity::Warning);
        assert!(evals[2].alerts.is_empty(), "a tombstone fires nothing more");
        assert!(evals[2].changed_states.is_empty());
    }

    #[test]
    fn unknown_status_changes_nothing_but_is_reported() {
        let evals = run(&[(0, vec![conn("AVAILABLE")]), (1, vec![conn("SUSPENDED")])]);
        assert!(evals[1].alerts.is_empty());
        assert_eq!(evals[1].unknown_statuses, [(conn("X").id().clone(), "SUSPENDED".to_owned())]);
    }

    #[test]
    fn both_arn_namespaces_are_the_same_connection() {
        let mut old = conn("ERROR");
        old.arn = ConnectionArn::parse(&format!("arn:aws:codestar-connections:eu-west-1:123456789012:connection/{ID}"))
            .unwrap();
        let evals = run(&[(0, vec![conn("ERROR")]), (1, vec![old])]);
        assert_eq!(decisions(&evals[1]), [(AlertKind::ConnectionUnhealthy, AlertStatus::Firing)]);
        assert_eq!(evals[0].alerts[0].dedup_key, evals[1].alerts[0].dedup_key);
    }

    #[test]
    fn metrics_count_by_status_and_provider() {
        let mut other = conn("ERROR");
        other.arn = ConnectionArn::parse(
            "arn:aws:codeconnections:eu-west-1:123456789012:connection/11111111-1a1d-46c5-86b6-f177321bcfb2",
        )
        .unwrap();
        let evals = run(&[(0, vec![conn("AVAILABLE"), other])]);
        let m = &evals[0].metrics;
        let find = |name: MetricName, status: Option<&str>| {
            m.iter()
                .find(|d| {
                    d.name == name && status.is_none_or(|s| d.dimensions.get("Status").map(String::as_str) == Some(s))
                })
                .map(|d| d.value)
        };
        assert_eq!(find(MetricName::Connections, Some("AVAILABLE")), Some(1.0));
        assert_eq!(find(MetricName::Connections, Some("ERROR")), Some(1.0));
        assert_eq!(find(MetricName::UnhealthyConnections, None), Some(1.0));
        assert!(m.iter().all(|d| d.name != MetricName::ConnectionAvailable), "detailed metrics are opt-in");
    }
}
