//! Notification bodies, one per audience (DESIGN §4.3). SNS receives them with
//! `MessageStructure=json`, so each protocol gets a body made for it:
//!
//! - `default`, `sqs`, `lambda`: the canonical `connwatch.alert/v1` JSON;
//! - `email`: plain text a human reads in ten seconds ([`email`]);
//! - `http`/`https`: the CloudWatch alarm notification shape with the canonical alert under
//!   `connwatch` ([`https`]), so tools that consume CloudWatch alarms over SNS work unchanged.
//!
//! The subject stays under 100 characters without line breaks, and the whole message under
//! SNS's 256 KiB: long lists are cut, with a note saying so, rather than failing the publish.

pub mod email;
pub mod https;

use serde_json::json;

use crate::domain::alert::{Alert, AlertStatus};
use crate::domain::text::clean;

/// SNS subjects must be under 100 characters, without line breaks.
pub const SUBJECT_MAX_CHARS: usize = 99;
/// SNS accepts 262,144 bytes per message; a margin is kept for the subject and attributes.
pub const MESSAGE_MAX_BYTES: usize = 256 * 1024 - 4 * 1024;
/// The longest summary kept when a message has to be cut.
const CUT_SUMMARY_CHARS: usize = 4_000;

/// A rendered notification, as handed to SNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The SNS `Subject`.
    pub subject: String,
    /// The canonical JSON (`default`, `sqs`, `lambda`).
    pub message: String,
    /// The `email` body.
    pub email: String,
    /// The `http`/`https` body.
    pub https: String,
}

impl Rendered {
    /// The SNS `Message` for `MessageStructure=json`: one body per protocol.
    pub fn sns_message(&self) -> String {
        json!({
            "default": self.message,
            "sqs": self.message,
            "lambda": self.message,
            "email": self.email,
            "email-json": self.message,
            "http": self.https,
            "https": self.https,
        })
        .to_string()
    }

    /// The body a subscriber of `protocol` receives (`default`, `sqs`, `lambda`, `email`,
    /// `https`, …), exactly as SNS delivers it.
    pub fn body_for(&self, protocol: &str) -> &str {
        match protocol {
            "email" => &self.email,
            "http" | "https" => &self.https,
            _ => &self.message,
        }
    }
}

/// Renders an alert for every audience, cutting long lists if the message would exceed SNS's
/// size limit.
pub fn render(alert: &Alert) -> Rendered {
    let mut rendered = render_all(alert);
    // Sizing builds the whole SNS message; do it once per candidate, not once per check.
    let mut size = rendered.sns_message().len();
    let mut keep = alert.affected_pipelines.len();
    while size > MESSAGE_MAX_BYTES && keep > 0 {
        keep /= 2;
        rendered = render_all(&cut(alert, keep));
        size = rendered.sns_message().len();
    }
    if size > MESSAGE_MAX_BYTES {
        // Even without lists it is too big: the summary itself is huge. Cut it too.
        let mut cut = cut(alert, 0);
        cut.summary = clean(&cut.summary, CUT_SUMMARY_CHARS);
        cut.links.truncate(5);
        rendered = render_all(&cut);
    }
    rendered
}

fn render_all(alert: &Alert) -> Rendered {
    Rendered {
        subject: subject(alert),
        message: canonical_json(alert),
        email: email::body(alert),
        https: https::body(alert),
    }
}

/// The alert with only the first `keep` affected pipelines, saying how many were left out.
fn cut(alert: &Alert, keep: usize) -> Alert {
    let mut cut = alert.clone();
    let total = alert.affected_pipelines.len();
    cut.affected_pipelines.truncate(keep);
    cut.summary = format!(
        "{} [The message was cut to fit SNS's size limit: {keep} of {total} affected pipelines are listed.]",
        clean(&alert.summary, CUT_SUMMARY_CHARS)
    );
    cut
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
        json!({
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

#[cfg(test)]
mod tests;
