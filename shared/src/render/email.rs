//! The `email` body: plain text a human reads in ten seconds — what, impact and first step
//! (the summary), what it touches, where to read more.

use crate::domain::alert::{Alert, AlertStatus};

/// Renders the email body.
pub fn body(alert: &Alert) -> String {
    let status = match alert.status {
        AlertStatus::Firing => "FIRING",
        AlertStatus::Resolved => "RESOLVED",
    };
    let mut lines = vec![
        format!("[{status}] {}", alert.title),
        format!(
            "Severity: {}   Kind: {}   Account: {}   Region: {}",
            alert.severity, alert.kind, alert.account, alert.region
        ),
        format!(
            "Since: {}   Notification {} for this problem",
            alert.first_seen_at.format("%Y-%m-%d %H:%M UTC"),
            alert.notification_count
        ),
        String::new(),
        alert.summary.clone(),
        String::new(),
    ];
    lines.extend(alert.cause.map(|cause| format!("Cause: {}", cause.as_str())));
    if !alert.affected_pipelines.is_empty() {
        lines.push(format!("Affected pipelines: {}", alert.affected_pipelines.join(", ")));
    }
    lines.extend(resource_lines(alert));
    lines.push(String::new());
    lines.push(format!("Runbook: {}", alert.runbook));
    lines.extend(alert.links.iter().map(|link| format!("{}: {}", link.title, link.url)));
    lines.push(String::new());
    lines.push(format!("Problem key: {}", alert.dedup_key));
    if alert.status == AlertStatus::Firing {
        lines.push(format!(
            "Silence it during maintenance: connwatch silence add --table <state table> --matcher dedup_key_prefix={} --duration 2h --comment \"why\"",
            alert.dedup_key
        ));
    }
    lines.push("-- connwatch".to_owned());
    lines.join("\n")
}

fn resource_lines(alert: &Alert) -> impl Iterator<Item = String> + '_ {
    let r = &alert.resources;
    [
        ("Connection", r.connection_name.as_deref().or(r.connection_arn.as_deref())),
        ("Provider", r.provider.as_deref()),
        ("Pipeline", r.pipeline.as_deref()),
        ("Execution", r.execution_id.as_deref()),
        ("Repository", r.repository.as_deref()),
        ("Branch", r.branch.as_deref()),
        ("Principal", r.principal.as_deref()),
        ("Alarm", r.alarm_name.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|v| format!("{label}: {v}")))
}
