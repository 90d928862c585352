//! Notification bodies. For now one canonical body per alert: the `connwatch.alert/v1` JSON
//! and a subject line. Per-protocol bodies (`MessageStructure=json`: email, https, …) plug in
//! here without touching the notifier adapters.

use crate::domain::alert::{Alert, AlertStatus};
use crate::domain::text::clean;

/// SNS subjects must be under 100 characters, without line breaks.
pub const SUBJECT_MAX_CHARS: usize = 99;

/// A rendered notification, as handed to SNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The SNS `Subject`.
    pub subject: String,
    /// The SNS `Message`.
    pub message: String,
}

/// Renders an alert: a capped subject and the canonical JSON body.
pub fn render(alert: &Alert) -> Rendered {
    Rendered { subject: subject(alert), message: canonical_json(alert) }
}

/// `[FIRING critical] Connection bitbucket-prod is ERROR`, capped at 99 characters.
pub fn subject(alert: &Alert) -> String {
    let status = match alert.status {
        AlertStatus::Firing => "FIRING",
        AlertStatus::Resolved => "RESOLVED",
    };
    clean(&format!("[{status} {}] {}", alert.severity, alert.title), SUBJECT_MAX_CHARS)
}

/// The canonical JSON of an alert.
pub fn canonical_json(alert: &Alert) -> String {
    // Serializing a struct of strings, numbers and options cannot fail; the fallback keeps
    // the publish alive (with the essentials) rather than dropping a page.
    serde_json::to_string(alert).unwrap_or_else(|error| {
        serde_json::json!({
            "schema": alert.schema,
            "dedup_key": alert.dedup_key,
            "status": alert.status,
            "severity": alert.severity,
            "title": alert.title,
            "render_error": error.to_string(),
        })
        .to_string()
    })
}
