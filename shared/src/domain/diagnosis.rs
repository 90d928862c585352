//! Why did a source action fail? A table of rules over the signals a failed action event
//! carries (`error-code`, the summary text), the stored status of its connection, and the
//! connection ARN's prefix. AWS documents no catalogue of these texts; the patterns come from
//! the known messages in reference/aws-facts.md §1.5 and are matched case-insensitively.

use super::alert::Cause;
use super::connection::{ArnPrefix, ConnectionArn, ConnectionStatus};

/// What the classifier looks at.
#[derive(Debug, Clone, Default)]
pub struct Signals<'a> {
    /// `execution-result.error-code` (`JobFailed`, `PermissionError`, …).
    pub error_code: Option<&'a str>,
    /// `execution-result.external-execution-summary`.
    pub summary: Option<&'a str>,
    /// The stored status of the action's connection, when known.
    pub connection_status: Option<&'a ConnectionStatus>,
    /// The action's connection ARN, when known (inventory or the message itself).
    pub connection_arn: Option<&'a ConnectionArn>,
}

/// The classifier's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The cause.
    pub cause: Cause,
    /// The rule that decided, for logs and `replay`.
    pub rule: &'static str,
    /// What to do first, for the alert summary.
    pub first_step: String,
}

/// Classifies a failed source action. The first matching rule wins; the order puts the most
/// specific evidence first.
pub fn classify(signals: &Signals<'_>) -> Diagnosis {
    let text = signals.summary.unwrap_or_default().to_ascii_lowercase();
    let code = signals.error_code.unwrap_or_default();
    if let Some(status) = signals.connection_status.filter(|s| **s != ConnectionStatus::Available) {
        return verdict(
            Cause::ConnectionUnavailable,
            "connection_status",
            format!("The connection is {status}: fix the connection first (its own alert has the runbook)."),
        );
    }
    if let Some(denied) = denied_prefix(&text) {
        return prefix_verdict(denied, signals.connection_arn);
    }
    if text.contains("unable to use connection") || text.contains("sufficient permissions") || code == "PermissionError"
    {
        let prefix = signals.connection_arn.map_or("codestar-connections or codeconnections", |a| a.prefix().as_str());
        return verdict(
            Cause::PermissionDenied,
            "use_connection_denied",
            format!(
                "Grant the pipeline role {prefix}:UseConnection on the connection ARN (the IAM action prefix must match the ARN's prefix)."
            ),
        );
    }
    if mentions_missing(&text, &["repository", "repo "]) {
        return verdict(
            Cause::RepositoryNotFound,
            "repository_missing",
            "Check FullRepositoryId in the source action: the repository may be renamed, moved or outside the workspace the connection was authorised for.".to_owned(),
        );
    }
    if mentions_missing(&text, &["branch", "reference", "ref "]) {
        return verdict(
            Cause::BranchNotFound,
            "branch_missing",
            "Check BranchName in the source action: the branch may be renamed or deleted.".to_owned(),
        );
    }
    if ["failed to authenticate", "connection is not available", "pending", "token", "revoked", "uninstalled"]
        .iter()
        .any(|p| text.contains(p))
    {
        return verdict(
            Cause::ConnectionUnavailable,
            "connection_text",
            "Open the connection in the console; reinstall or re-authorise the provider app (\"Update pending connection\").".to_owned(),
        );
    }
    if code == "SystemUnavailable"
        || [
            "service unavailable",
            "timed out",
            "timeout",
            "rate limit",
            "too many requests",
            "503",
            "502",
            "internal error",
        ]
        .iter()
        .any(|p| text.contains(p))
    {
        return verdict(
            Cause::ProviderUnavailable,
            "provider_unavailable",
            "Check the provider's status page; retry the execution when it recovers.".to_owned(),
        );
    }
    if code == "ConfigurationError" || text.contains("invalid action configuration") {
        return verdict(
            Cause::ConfigurationError,
            "configuration_error",
            "Check the source action's configuration (ConnectionArn, FullRepositoryId, BranchName, OutputArtifactFormat).".to_owned(),
        );
    }
    verdict(
        Cause::Unknown,
        "unknown",
        "Open the execution in the console and read the action's error details.".to_owned(),
    )
}

fn verdict(cause: Cause, rule: &'static str, first_step: String) -> Diagnosis {
    Diagnosis { cause, rule, first_step }
}

/// The prefix named in "not authorized to perform: <prefix>:UseConnection".
fn denied_prefix(text: &str) -> Option<ArnPrefix> {
    let rest = &text[text.find("not authorized to perform:")? + "not authorized to perform:".len()..];
    let action = rest.split_whitespace().next()?;
    match action {
        "codestar-connections:useconnection" => Some(ArnPrefix::CodestarConnections),
        "codeconnections:useconnection" => Some(ArnPrefix::Codeconnections),
        _ => None,
    }
}

fn prefix_verdict(denied: ArnPrefix, arn: Option<&ConnectionArn>) -> Diagnosis {
    match arn {
        Some(arn) if arn.prefix() != denied => verdict(
            Cause::ConnectionPrefixMismatch,
            "prefix_mismatch",
            format!(
                "The role was checked for {}:UseConnection but the connection ARN uses {}: grant both prefixes (or the one matching the ARN).",
                denied.as_str(),
                arn.prefix().as_str()
            ),
        ),
        _ => verdict(
            Cause::PermissionDenied,
            "use_connection_not_authorized",
            format!("Grant the pipeline role {}:UseConnection on the connection ARN.", denied.as_str()),
        ),
    }
}

fn mentions_missing(text: &str, subjects: &[&str]) -> bool {
    subjects.iter().any(|s| text.contains(s))
        && ["not found", "does not exist", "could not be found", "doesn't exist", "no such"]
            .iter()
            .any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";

    fn arn(prefix: &str) -> ConnectionArn {
        ConnectionArn::parse(&format!("arn:aws:{prefix}:us-east-1:123456789012:connection/{ID}")).unwrap()
    }

    /// The classifier's table: (summary, error code, connection status, ARN prefix) → cause.
    #[test]
    fn classifier_table() {
        let error = ConnectionStatus::Error;
        let available = ConnectionStatus::Available;
        let codestar = arn("codestar-connections");
        let codeconnections = arn("codeconnections");
        let unable =
            format!("Unable to use Connection: {codestar}. The provided role does not have sufficient permissions.");
        type Row<'a> = (&'a str, Option<&'a str>, Option<&'a ConnectionStatus>, Option<&'a ConnectionArn>, Cause);
        let rows: Vec<Row<'_>> = vec![
            ("anything", Some("JobFailed"), Some(&error), Some(&codestar), Cause::ConnectionUnavailable),
            (&unable, Some("JobFailed"), Some(&available), Some(&codestar), Cause::PermissionDenied),
            (
                "User: arn:aws:sts::1:assumed-role/p/x is not authorized to perform: codestar-connections:UseConnection on resource: x",
                None,
                None,
                Some(&codeconnections),
                Cause::ConnectionPrefixMismatch,
            ),
            (
                "is not authorized to perform: codeconnections:UseConnection on resource",
                None,
                None,
                Some(&codeconnections),
                Cause::PermissionDenied,
            ),
            ("is not authorized to perform: codeconnections:UseConnection", None, None, None, Cause::PermissionDenied),
            ("", Some("PermissionError"), None, None, Cause::PermissionDenied),
            ("The repository acme/web was not found", None, None, None, Cause::RepositoryNotFound),
            ("Repository does not exist or is not accessible", None, None, None, Cause::RepositoryNotFound),
            ("The branch main does not exist", None, None, None, Cause::BranchNotFound),
            ("You have failed to authenticate your account.", None, None, None, Cause::ConnectionUnavailable),
            ("Bitbucket returned 503 Service Unavailable", None, None, None, Cause::ProviderUnavailable),
            ("", Some("SystemUnavailable"), None, None, Cause::ProviderUnavailable),
            ("Invalid action configuration", Some("ConfigurationError"), None, None, Cause::ConfigurationError),
            ("Something odd happened", Some("JobFailed"), Some(&available), None, Cause::Unknown),
            ("", None, None, None, Cause::Unknown),
        ];
        for (summary, code, status, arn, expected) in rows {
            let signals =
                Signals { error_code: code, summary: Some(summary), connection_status: status, connection_arn: arn };
            assert_eq!(classify(&signals).cause, expected, "{summary:?} / {code:?}");
        }
    }

    #[test]
    fn prefix_mismatch_names_both_prefixes() {
        let arn = arn("codeconnections");
        let d = classify(&Signals {
            summary: Some("not authorized to perform: codestar-connections:UseConnection"),
            connection_arn: Some(&arn),
            ..Signals::default()
        });
        assert!(
            d.first_step.contains("codestar-connections:UseConnection") && d.first_step.contains("codeconnections")
        );
    }
}
