//! `connwatch`: the core library of the connwatch alerting pipeline for AWS CodeConnections.
//!
//! Data walks one way: event → parse ([`domain`] types) → decide (pure rules) →
//! [`lifecycle`] (new? duplicate? due for repeat?) → [`render`] → publish ([`ports::Notifier`])
//! and emit metrics ([`ports::MetricSink`]). Everything before the publish is deterministic
//! and testable without AWS.
//!
//! - [`domain`]: pure types and rules, no I/O and no SDK.
//! - [`ports`]: the capabilities handlers need, as traits.
//! - [`adapters`]: AWS implementations (features `connections`, `dynamodb`, `sns`,
//!   `cloudwatch`), EMF on stdout, and in-memory twins.
//! - [`config`]: typed `CONNWATCH_*` configuration.
//! - [`inventory`]: keeping the pipeline inventory fresh.
#![warn(missing_docs)]

pub mod adapters;
pub mod config;
pub mod domain;
pub mod inventory;
pub mod lifecycle;
pub mod ports;
pub mod render;

/// An error and its sources on one line (`outer: inner: innermost`), for logs and messages.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
