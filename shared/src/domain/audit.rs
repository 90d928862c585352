//! CloudTrail "AWS API Call via CloudTrail" events of the calls that break connections, and
//! the audit rules, as data, that turn the few that matter into notices.
//!
//! Own types rather than `aws_lambda_events::cloudwatch_events::cloudtrail::AWSAPICall`: that
//! struct has no `errorCode`/`errorMessage` (they land in a catch-all map only with the
//! `catch-all-fields` feature, untyped) and requires `userAgent`, `sourceIPAddress` and
//! `requestID`, which some records omit (reference/aws-facts.md §3.2). A denied call is the
//! whole point of one rule, so the error fields must be first-class.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::alert::{AlertKind, Severity};
use super::connection::ConnectionArn;
use super::text::clean;

/// The detail type of CloudTrail API call events.
pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// The longest principal, user agent or error text kept.
pub const FIELD_CAP: usize = 200;

/// The services audited, by CloudTrail `eventSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `codestar-connections.amazonaws.com` (source `aws.codestar-connections`).
    CodestarConnections,
    /// `codeconnections.amazonaws.com` (source `aws.codeconnections`).
    Codeconnections,
    /// `iam.amazonaws.com` (delivered in us-east-1 only).
    Iam,
    /// `codepipeline.amazonaws.com`.
    CodePipeline,
}

impl Service {
    fn from_event_source(source: &str) -> Option<Self> {
        match source {
            "codestar-connections.amazonaws.com" => Some(Self::CodestarConnections),
            "codeconnections.amazonaws.com" => Some(Self::Codeconnections),
            "iam.amazonaws.com" => Some(Self::Iam),
            "codepipeline.amazonaws.com" => Some(Self::CodePipeline),
            _ => None,
        }
    }

    /// Whether this is one of the two connection namespaces.
    pub fn is_connections(self) -> bool {
        matches!(self, Self::CodestarConnections | Self::Codeconnections)
    }
}

/// How the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No error code.
    Success,
    /// An access-denied error code.
    Denied,
    /// Any other error code.
    Error,
}

impl Outcome {
    /// The `Outcome` dimension value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// Error codes that mean "not allowed" across services.
const DENIED_CODES: &[&str] =
    &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation"];

/// Who made the call, ready for a human.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// `IAMUser`, `AssumedRole`, `Root`, `AWSService`, …
    pub identity_type: String,
    /// The caller's ARN, when there is one.
    pub arn: Option<String>,
    /// The role session name (the part after the role in an assumed-role ARN).
    pub session_name: Option<String>,
    /// The source IP (or the AWS service that called).
    pub source_ip: Option<String>,
    /// The user agent, capped.
    pub user_agent: Option<String>,
    /// Whether the session was MFA-authenticated, when CloudTrail says.
    pub mfa: Option<bool>,
}

impl Principal {
    /// The shortest useful name: the session of an assumed role, else the ARN, else the type.
    pub fn display(&self) -> String {
        match (&self.arn, &self.session_name) {
            (Some(arn), Some(session)) => {
                let role = arn.rsplit('/').nth(1).unwrap_or("role");
                format!("{session} (role {role})")
            }
            (Some(arn), None) => arn.clone(),
            _ => self.identity_type.clone(),
        }
    }
}

/// One audited API call.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The EventBridge id.
    pub id: String,
    /// CloudTrail's own event id (stable for the call; the dedup key uses it).
    pub event_id: String,
    /// The account.
    pub account: String,
    /// The region the call was made in.
    pub region: String,
    /// When it was made.
    pub time: DateTime<Utc>,
    /// The service.
    pub service: Service,
    /// The API name (`DeleteConnection`, `PutRolePolicy`, …).
    pub event_name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The error code, if any.
    pub error_code: Option<String>,
    /// The error message, capped.
    pub error_message: Option<String>,
    /// Who made it.
    pub principal: Principal,
    /// `requestParameters` (often null on denials).
    pub request: Value,
    /// `responseElements`.
    pub response: Value,
}

impl ApiCall {
    /// A string request parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.request.get(name).and_then(Value::as_str)
    }

    /// The connection the call is about: `connectionArn` in the request or the response.
    pub fn connection(&self) -> Option<ConnectionArn> {
        [&self.request, &self.response]
            .into_iter()
            .filter_map(|v| v.get("connectionArn").and_then(Value::as_str))
            .find_map(|raw| ConnectionArn::parse(raw).ok())
    }

    /// The CloudTrail console page of the event.
    pub fn console_url(&self) -> String {
        let region = &self.region;
        format!("https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{}", self.event_id)
    }
}

/// Why an event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// Not an EventBridge event.
    #[error("not an EventBridge event: {0}")]
    NotAnEvent(String),
    /// A required field is missing.
    #[error("CloudTrail event {id} has no `{field}`")]
    MissingField {
        /// The event id.
        id: String,
        /// The field.
        field: &'static str,
    },
}

/// What reading gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// An audited API call.
    Call(Box<ApiCall>),
    /// Not an audited call, with the reason.
    Skipped(String),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    id: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    account: Option<String>,
    region: Option<String>,
    time: Option<DateTime<Utc>>,
    #[serde(default)]
    detail: RawDetail,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDetail {
    event_source: Option<String>,
    event_name: Option<String>,
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    aws_region: Option<String>,
    event_time: Option<DateTime<Utc>>,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: Option<String>,
    user_agent: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    #[serde(default)]
    user_identity: Value,
    #[serde(default)]
    request_parameters: Value,
    #[serde(default)]
    response_elements: Value,
}

/// Reads one EventBridge event; events that are not API calls of an audited service are
/// skipped with a reason.
pub fn parse(value: &Value) -> Result<Parsed, AuditError> {
    if !value.is_object() {
        return Err(AuditError::NotAnEvent("expected a JSON object".to_owned()));
    }
    let envelope: Envelope =
        serde_json::from_value(value.clone()).map_err(|e| AuditError::NotAnEvent(clean(&e.to_string(), FIELD_CAP)))?;
    let id = envelope.id.unwrap_or_default();
    if envelope.detail_type.as_deref() != Some(DETAIL_TYPE) {
        return Ok(Parsed::Skipped(format!(
            "detail-type {:?} is not {DETAIL_TYPE}",
            envelope.detail_type.unwrap_or_default()
        )));
    }
    let detail = envelope.detail;
    let missing = |field: &'static str| AuditError::MissingField { id: id.clone(), field };
    let event_source = detail.event_source.ok_or_else(|| missing("eventSource"))?;
    let Some(service) = Service::from_event_source(&event_source) else {
        return Ok(Parsed::Skipped(format!("eventSource {event_source:?} is not audited")));
    };
    let outcome = match detail.error_code.as_deref() {
        None | Some("") => Outcome::Success,
        Some(code) if DENIED_CODES.contains(&code) || code.starts_with("AccessDenied") => Outcome::Denied,
        Some(_) => Outcome::Error,
    };
    Ok(Parsed::Call(Box::new(ApiCall {
        event_id: detail.event_id.unwrap_or_else(|| id.clone()),
        account: envelope.account.ok_or_else(|| missing("account"))?,
        region: detail.aws_region.or(envelope.region).ok_or_else(|| missing("awsRegion"))?,
        time: detail.event_time.or(envelope.time).ok_or_else(|| missing("eventTime"))?,
        service,
        event_name: detail.event_name.ok_or_else(|| missing("eventName"))?,
        outcome,
        error_code: detail.error_code.map(|c| clean(&c, FIELD_CAP)),
        error_message: detail.error_message.map(|m| clean(&m, FIELD_CAP * 2)),
        principal: principal(&detail.user_identity, detail.source_ip_address, detail.user_agent),
        request: detail.request_parameters,
        response: detail.response_elements,
        id,
    })))
}

fn principal(identity: &Value, source_ip: Option<String>, user_agent: Option<String>) -> Principal {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| clean(s, FIELD_CAP));
    let identity_type = text(identity.get("type")).unwrap_or_else(|| "Unknown".to_owned());
    let arn = text(identity.get("arn"));
    let session_name = match (&identity_type[..], &arn) {
        ("AssumedRole", Some(arn)) => arn.rsplit('/').next().map(str::to_owned),
        _ => None,
    };
    let mfa = identity
        .pointer("/sessionContext/attributes/mfaAuthenticated")
        .and_then(Value::as_str)
        .map(|v| v.eq_ignore_ascii_case("true"));
    Principal {
        identity_type,
        arn,
        session_name,
        source_ip: source_ip.map(|s| clean(&s, FIELD_CAP)),
        user_agent: user_agent.map(|s| clean(&s, FIELD_CAP)),
        mfa,
    }
}

/// What a rule needs to know besides the call: the inventory and the watched roles.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    /// The name of the connection the call is about, from the stored connection states.
    pub connection_name: Option<String>,
    /// Pipelines using the connection the call is about (from the inventory).
    pub pipelines_using_connection: Vec<String>,
    /// Pipelines whose service role is the role the call is about.
    pub pipelines_using_role: Vec<String>,
    /// Whether the role matches `CONNWATCH_WATCHED_ROLES`.
    pub role_is_watched: bool,
    /// Whether the pipeline the call is about has (or, in the request, will have) a
    /// connection source action.
    pub pipeline_has_connection_source: bool,
}

/// One audit rule: a match, a kind, a severity and a title template.
#[derive(Debug, Clone, Copy)]
pub struct AuditRule {
    /// Stable id, shown by `replay` and in docs/alerts.md.
    pub id: &'static str,
    /// What it matches, for the docs.
    pub description: &'static str,
    /// The alert kind.
    pub kind: AlertKind,
    /// The severity.
    pub severity: Severity,
    /// Title template: `{principal}`, `{subject}` (connection, role or pipeline), `{event}`.
    pub title: &'static str,
    matches: fn(&ApiCall, &AuditContext) -> bool,
}

impl AuditRule {
    /// Whether the rule matches the call.
    pub fn matches(&self, call: &ApiCall, context: &AuditContext) -> bool {
        (self.matches)(call, context)
    }
}

/// IAM calls that change what a role may do.
pub const IAM_ROLE_CHANGES: &[&str] = &[
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "UpdateAssumeRolePolicy",
    "DeleteRole",
    "PutRolePermissionsBoundary",
];

/// The rules, in order; the first match wins. Denials come first: a denied delete is not a
/// deletion.
pub const RULES: &[AuditRule] = &[
    AuditRule {
        id: "connection-call-denied",
        description: "any call to either connections API denied (AccessDenied*, UnauthorizedOperation)",
        kind: AlertKind::ApiAccessDenied,
        severity: Severity::Warning,
        title: "{principal} was denied {event} on connections",
        matches: |call, _| call.service.is_connections() && call.outcome == Outcome::Denied,
    },
    AuditRule {
        id: "connection-deleted",
        description: "DeleteConnection succeeded",
        kind: AlertKind::ApiConnectionDeleted,
        severity: Severity::Critical,
        title: "{principal} deleted connection {subject}",
        matches: |call, _| {
            call.service.is_connections() && call.outcome == Outcome::Success && call.event_name == "DeleteConnection"
        },
    },
    AuditRule {
        id: "installation-changed",
        description: "UpdateConnectionInstallation, UpdateHost or DeleteHost succeeded",
        kind: AlertKind::ApiInstallationChanged,
        severity: Severity::Warning,
        title: "{principal} called {event}: the provider app installation changed",
        matches: |call, _| {
            call.service.is_connections()
                && call.outcome == Outcome::Success
                && ["UpdateConnectionInstallation", "UpdateHost", "DeleteHost"].contains(&call.event_name.as_str())
        },
    },
    AuditRule {
        id: "connection-created",
        description: "CreateConnection succeeded (the connection starts PENDING; the health check's grace period takes over)",
        kind: AlertKind::ApiConnectionCreated,
        severity: Severity::Info,
        title: "{principal} created connection {subject}",
        matches: |call, _| {
            call.service.is_connections() && call.outcome == Outcome::Success && call.event_name == "CreateConnection"
        },
    },
    AuditRule {
        id: "pipeline-role-changed",
        description: "an IAM change (PutRolePolicy, DeleteRolePolicy, AttachRolePolicy, DetachRolePolicy, UpdateAssumeRolePolicy, DeleteRole, PutRolePermissionsBoundary) to a role a pipeline uses or CONNWATCH_WATCHED_ROLES names",
        kind: AlertKind::ApiIamChanged,
        severity: Severity::Warning,
        title: "{principal} called {event} on role {subject}",
        matches: |call, context| {
            call.service == Service::Iam
                && call.outcome == Outcome::Success
                && IAM_ROLE_CHANGES.contains(&call.event_name.as_str())
                && (!context.pipelines_using_role.is_empty() || context.role_is_watched)
        },
    },
    AuditRule {
        id: "pipeline-source-changed",
        description: "UpdatePipeline or DeletePipeline of a pipeline with a connection source action",
        kind: AlertKind::ApiPipelineChanged,
        severity: Severity::Info,
        title: "{principal} called {event} on pipeline {subject}",
        matches: |call, context| {
            call.service == Service::CodePipeline
                && call.outcome == Outcome::Success
                && ["UpdatePipeline", "DeletePipeline"].contains(&call.event_name.as_str())
                && context.pipeline_has_connection_source
        },
    },
];

/// The first rule that matches, if any.
pub fn first_match(call: &ApiCall, context: &AuditContext) -> Option<&'static AuditRule> {
    RULES.iter().find(|rule| rule.matches(call, context))
}

/// The role name a call is about (`roleName`).
pub fn role_name(call: &ApiCall) -> Option<&str> {
    call.param("roleName")
}

/// The pipeline name a CodePipeline call is about (`name`, or `pipeline.name`).
pub fn pipeline_name(call: &ApiCall) -> Option<&str> {
    call.param("name").or_else(|| call.request.pointer("/pipeline/name").and_then(Value::as_str))
}

/// Whether an `UpdatePipeline` request declares a connection source action.
pub fn request_has_connection_source(call: &ApiCall) -> bool {
    call.request
        .pointer("/pipeline/stages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|stage| stage.get("actions").and_then(Value::as_array))
        .flatten()
        .any(|action| {
            action.pointer("/actionTypeId/provider").and_then(Value::as_str)
                == Some(super::inventory::CONNECTION_SOURCE_PROVIDER)
        })
}

/// Whether a role name matches a `CONNWATCH_WATCHED_ROLES` pattern (`*` matches any run of
/// characters; patterns may be role names or role ARNs).
pub fn role_matches(pattern: &str, role_name: &str) -> bool {
    let name_only = pattern.rsplit('/').next().unwrap_or(pattern);
    glob(name_only, role_name)
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(tail) = text.strip_prefix(prefix) else { return false };
            (0..=tail.len()).filter(|i| tail.is_char_boundary(*i)).any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_role_patterns_match_names_arns_and_wildcards() {
        assert!(role_matches("codebuild-*", "codebuild-web"));
        assert!(role_matches("arn:aws:iam::123456789012:role/service-role/deploy", "deploy"));
        assert!(role_matches("*-pipeline-*", "web-pipeline-role"));
        assert!(!role_matches("codebuild-*", "analytics"));
        assert!(!role_matches("deploy", "deployer"));
    }

    #[test]
    fn principals_read_well() {
        let p = Principal {
            identity_type: "AssumedRole".to_owned(),
            arn: Some("arn:aws:sts::1:assumed-role/Admin/mary".to_owned()),
            session_name: Some("mary".to_owned()),
            ..Principal::default()
        };
        assert_eq!(p.display(), "mary (role Admin)");
        let root = Principal { identity_type: "Root".to_owned(), ..Principal::default() };
        assert_eq!(root.display(), "Root");
    }

    #[test]
    fn the_catalog_page_lists_every_rule() {
        let page = include_str!("../../../docs/alerts.md");
        for rule in RULES {
            assert!(page.contains(&format!("| `{}` |", rule.id)), "docs/alerts.md lacks rule {}", rule.id);
        }
    }

    #[test]
    fn denial_codes_are_recognised_and_other_errors_are_errors() {
        let event = |code: &str| {
            serde_json::json!({"id": "1", "detail-type": DETAIL_TYPE, "account": "123456789012", "region": "eu-west-1",
                "time": "2026-12-04T10:00:00Z", "detail": {"eventSource": "codeconnections.amazonaws.com",
                "eventName": "DeleteConnection", "errorCode": code, "userIdentity": {"type": "IAMUser"}}})
        };
        for (code, outcome) in [
            ("AccessDenied", Outcome::Denied),
            ("AccessDeniedException", Outcome::Denied),
            ("UnauthorizedOperation", Outcome::Denied),
            ("ResourceNotFoundException", Outcome::Error),
        ] {
            let Parsed::Call(call) = parse(&event(code)).unwrap() else { panic!("{code}") };
            assert_eq!(call.outcome, outcome, "{code}");
        }
    }
}
