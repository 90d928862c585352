//! The metric catalog (DESIGN §4.4): every metric connwatch emits, in one place.
//!
//! Dimensions stay low-cardinality by default; per-connection dimensions are an opt-in
//! (`CONNWATCH_DETAILED_METRICS=true`) because each distinct dimension set is a billed custom
//! metric.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The default CloudWatch namespace.
pub const DEFAULT_NAMESPACE: &str = "Connwatch";

/// CloudWatch units connwatch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// A count.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// Declares the metric catalog: name, unit, dimension names and a description for the docs.
macro_rules! metrics {
    ($($(#[$meta:meta])* $variant:ident => $name:literal, $unit:ident, [$($dim:literal),*], $doc:literal;)+) => {
        /// A metric of the catalog.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum MetricName {
            $($(#[$meta])* #[serde(rename = $name)] $variant,)+
        }

        impl MetricName {
            /// Every metric in the catalog.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The CloudWatch metric name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)+ }
            }

            /// The unit the metric is emitted in.
            pub fn unit(self) -> Unit {
                match self { $(Self::$variant => Unit::$unit,)+ }
            }

            /// The dimension names of the default (aggregate) form.
            pub fn dimensions(self) -> &'static [&'static str] {
                match self { $(Self::$variant => &[$($dim),*],)+ }
            }

            /// What the metric counts, for docs and dashboards.
            pub fn description(self) -> &'static str {
                match self { $(Self::$variant => $doc,)+ }
            }
        }
    };
}

metrics! {
    /// Connections seen by a health check run.
    Connections => "Connections", Count, ["Status", "Provider"],
        "Connections listed by one health check run, by status and provider.";
    /// Connections that are ERROR, or PENDING past the grace period.
    UnhealthyConnections => "UnhealthyConnections", Count, [],
        "Connections in ERROR plus connections PENDING longer than CONNWATCH_PENDING_GRACE.";
    /// The heartbeat: 1 per successful health check run.
    HealthCheckRuns => "HealthCheckRuns", Count, [],
        "1 per successful health check run; the heartbeat alarm fires when it goes missing.";
    /// A failed or partial listing.
    HealthCheckErrors => "HealthCheckErrors", Count, ["Reason"],
        "1 per health check run that could not complete (throttled, access denied, service error, store error).";
    /// Pipeline executions by state.
    PipelineExecutions => "PipelineExecutions", Count, ["State"],
        "CodePipeline execution state changes, by state.";
    /// Source action failures by cause.
    SourceActionFailures => "SourceActionFailures", Count, ["Cause"],
        "Failed source actions, by diagnosed cause.";
    /// API calls seen by the audit function.
    ApiCalls => "ApiCalls", Count, ["EventName", "Outcome"],
        "Audited API calls, by event name and outcome (success, denied, error).";
    /// Notifications published, by severity.
    NotificationsPublished => "NotificationsPublished", Count, ["Severity"],
        "Notifications published to SNS, by severity.";
    /// Notifications suppressed, by reason.
    NotificationsSuppressed => "NotificationsSuppressed", Count, ["Reason"],
        "Notifications not sent, by reason (duplicate, not_notified, not_firing, redelivered, no_topic, inhibited, silenced).";
    /// Per-connection availability (detailed metrics only).
    ConnectionAvailable => "ConnectionAvailable", Count, ["ConnectionName"],
        "Detailed metrics only: 1 when the named connection is AVAILABLE, else 0.";
}

impl MetricName {
    /// Whether the metric is a level sampled each run (summing it over time means nothing)
    /// rather than a count of events.
    pub fn is_gauge(self) -> bool {
        matches!(self, Self::Connections | Self::UnhealthyConnections | Self::ConnectionAvailable)
    }
}

/// One value of one metric with its dimensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datum {
    /// The metric.
    pub name: MetricName,
    /// Dimension name → value. A `BTreeMap` so output is stable.
    pub dimensions: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
    /// When it was observed.
    pub timestamp: DateTime<Utc>,
}

impl Datum {
    /// A datum without dimensions.
    pub fn new(name: MetricName, value: f64, timestamp: DateTime<Utc>) -> Self {
        Self { name, dimensions: BTreeMap::new(), value, timestamp }
    }

    /// Adds a dimension.
    #[must_use]
    pub fn with(mut self, dimension: &str, value: impl Into<String>) -> Self {
        self.dimensions.insert(dimension.to_owned(), value.into());
        self
    }

    /// The unit of the metric.
    pub fn unit(&self) -> Unit {
        self.name.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_are_unique_and_described() {
        let mut names = std::collections::BTreeSet::new();
        for metric in MetricName::ALL {
            assert!(names.insert(metric.as_str()), "{}", metric.as_str());
            assert!(!metric.description().is_empty());
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::MetricName;

    #[test]
    fn the_metric_catalog_page_lists_every_metric_and_its_dimensions() {
        let page = include_str!("../../../docs/metrics.md");
        for metric in MetricName::ALL {
            let row = page
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", metric.as_str())))
                .unwrap_or_else(|| panic!("docs/metrics.md has no row for {}", metric.as_str()));
            for dimension in metric.dimensions() {
                assert!(row.contains(&format!("`{dimension}`")), "{} row lacks {dimension}", metric.as_str());
            }
        }
    }
}
