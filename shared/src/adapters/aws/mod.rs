//! The AWS adapters: one file per service, each behind its own cargo feature so a function
//! compiles only the SDK crates it uses.
//!
//! | Module | Port | AWS API | IAM actions |
//! |---|---|---|---|
//! | [`connections`] | [`ConnectionDirectory`](crate::ports::ConnectionDirectory) | CodeConnections `ListConnections` (both namespaces) | `codeconnections:ListConnections`, `codestar-connections:ListConnections` |
//! | [`codepipeline`] | [`PipelineDirectory`](crate::ports::PipelineDirectory) | CodePipeline `ListPipelines`, `GetPipeline` | `codepipeline:ListPipelines`, `codepipeline:GetPipeline` |
//! | [`dynamodb`] | [`ConnectionStateStore`](crate::ports::ConnectionStateStore), [`AlertStore`](crate::ports::AlertStore), [`PipelineInventoryStore`](crate::ports::PipelineInventoryStore) | DynamoDB `Query`, `GetItem`, `PutItem`, `DeleteItem` | `dynamodb:Query`, `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:DeleteItem` on the state table |
//! | [`sns`] | [`Notifier`](crate::ports::Notifier) | SNS `Publish` | `sns:Publish` on the severity topics |
//! | [`cloudwatch`] | [`MetricSink`](crate::ports::MetricSink) | CloudWatch `PutMetricData` | `cloudwatch:PutMetricData` |
//!
//! Every adapter turns SDK errors into the port's error type and keeps the SDK error as the
//! `#[source]` (boxed, never stringified), so `{:?}` and [`crate::error_chain`] show the
//! request id and the service's message.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "codepipeline")]
pub mod codepipeline;
#[cfg(feature = "connections")]
pub mod connections;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "sns")]
pub mod sns;

/// The longest a TCP/TLS connect may take. Connects to AWS endpoints take milliseconds; a
/// connect that hangs longer is better retried than waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Loads the SDK configuration from the environment (region, credentials chain) with timeouts.
///
/// Without this the SDK waits forever on a stalled response (it only has a connect timeout by
/// default, DESIGN §6), and a Lambda would burn its whole timeout on one hung call. `timeout`
/// bounds one operation, retries and back-off included; each attempt gets about a third of it
/// so the standard retry strategy (3 attempts) still has room to retry.
///
/// Credentials are resolved lazily, on the first call, so this makes no call to AWS itself
/// (when no region is set in the environment or profile, the region chain may still ask IMDS).
/// Call it once per cold start and share the result: clients built from it are cheap.
pub async fn load_sdk_config(timeout: Duration) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeout_config(timeout)).load().await
}

/// The timeouts [`load_sdk_config`] applies, separate so they can be checked without loading.
fn timeout_config(timeout: Duration) -> TimeoutConfig {
    let attempt = timeout / 3;
    TimeoutConfig::builder()
        .operation_timeout(timeout)
        .operation_attempt_timeout(attempt)
        // Never let the connect timeout outlast the attempt it belongs to.
        .connect_timeout(CONNECT_TIMEOUT.min(attempt))
        .build()
}

/// AWS error codes that mean the caller was throttled (after the SDK's own retries).
///
/// The codes the services this crate calls are documented to return for rate limiting, plus
/// the SDK's other spellings of the same thing. `LimitExceededException` is deliberately not
/// here: the connections API uses it for quotas (too many connections), not for call rates.
pub const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
];

/// AWS error codes that mean the caller's role may not make the call.
///
/// Only denials: `UnrecognizedClientException` or `ExpiredTokenException` are credential
/// problems, not permission problems, and stay [`ErrorClass::Other`]. `AuthorizationError` is
/// how SNS (awsQuery) spells a denied `sns:Publish`.
pub const ACCESS_DENIED_CODES: &[&str] =
    &["AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "AuthorizationError"];

/// What kind of failure an SDK error is, judged by its AWS error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service throttled the call ([`THROTTLING_CODES`]).
    Throttled,
    /// The role may not make the call ([`ACCESS_DENIED_CODES`]).
    AccessDenied,
    /// Anything else: 5xx, timeouts, network failures, other service errors.
    Other,
}

/// Classifies an SDK error (`SdkError<E>` or an operation error) by its AWS error code.
///
/// Errors without a code (timeouts, dispatch failures, unparsable responses) are
/// [`ErrorClass::Other`].
pub fn classify(error: &impl ProvideErrorMetadata) -> ErrorClass {
    classify_code(error.code())
}

/// Classifies an AWS error code, as [`classify`] does.
pub fn classify_code(code: Option<&str>) -> ErrorClass {
    match code {
        Some(code) if THROTTLING_CODES.contains(&code) => ErrorClass::Throttled,
        Some(code) if ACCESS_DENIED_CODES.contains(&code) => ErrorClass::AccessDenied,
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    #[test]
    fn throttling_and_denial_codes_are_told_apart_from_other_errors() {
        for code in THROTTLING_CODES {
            assert_eq!(classify_code(Some(code)), ErrorClass::Throttled, "{code}");
        }
        for code in ACCESS_DENIED_CODES {
            assert_eq!(classify_code(Some(code)), ErrorClass::AccessDenied, "{code}");
        }
        for code in [Some("InternalServerException"), Some("UnrecognizedClientException"), Some(""), None] {
            assert_eq!(classify_code(code), ErrorClass::Other, "{code:?}");
        }
    }

    #[test]
    fn errors_are_classified_by_their_metadata_code() {
        let denied = ErrorMetadata::builder().code("AccessDeniedException").message("no").build();
        assert_eq!(classify(&denied), ErrorClass::AccessDenied);
        assert_eq!(classify(&ErrorMetadata::builder().build()), ErrorClass::Other);
    }

    #[test]
    fn every_attempt_gets_a_third_of_the_operation_timeout() {
        let config = timeout_config(Duration::from_secs(9));
        assert_eq!(config.operation_timeout(), Some(Duration::from_secs(9)));
        assert_eq!(config.operation_attempt_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(config.connect_timeout(), Some(Duration::from_secs(3)));
        let short = timeout_config(Duration::from_secs(3));
        assert_eq!(short.connect_timeout(), Some(Duration::from_secs(1)), "connect fits in the attempt");
    }
}
