//! [`MetricSink`] as CloudWatch Embedded Metric Format on stdout: in Lambda, CloudWatch Logs
//! turns each line into metrics, with no API call and no extra IAM (DESIGN §4.4).
//!
//! Written by hand rather than with `metrics_cloudwatch_embedded`: that crate plugs into the
//! global `metrics` facade recorder, whereas our datums are explicit values passed through a
//! port so the same list can also go to `PutMetricData` and to `simulate`. The format is one
//! small JSON object per line.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::domain::metric::Datum;
use crate::ports::{MetricError, MetricSink};

/// Writes EMF documents, one per datum, to a writer (stdout in Lambda).
pub struct EmfSink<W: Write + Send> {
    namespace: String,
    service: String,
    out: Mutex<W>,
}

impl<W: Write + Send> std::fmt::Debug for EmfSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmfSink").field("namespace", &self.namespace).field("service", &self.service).finish()
    }
}

impl EmfSink<std::io::Stdout> {
    /// An EMF sink on stdout.
    pub fn stdout(namespace: impl Into<String>, service: impl Into<String>) -> Self {
        Self::new(namespace, service, std::io::stdout())
    }
}

impl<W: Write + Send> EmfSink<W> {
    /// An EMF sink on any writer.
    pub fn new(namespace: impl Into<String>, service: impl Into<String>, out: W) -> Self {
        Self { namespace: namespace.into(), service: service.into(), out: Mutex::new(out) }
    }

    /// Gives the writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One EMF document for one datum.
pub fn document(namespace: &str, service: &str, datum: &Datum) -> Value {
    let dimension_names: Vec<&str> = datum.dimensions.keys().map(String::as_str).collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": datum.timestamp.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_names],
                "Metrics": [{"Name": datum.name.as_str(), "Unit": datum.unit().as_str()}],
            }],
        }),
    );
    for (name, value) in &datum.dimensions {
        doc.insert(name.clone(), Value::String(value.clone()));
    }
    // `service` is a property, not a dimension: searchable in Logs Insights, not billed.
    doc.insert("service".to_owned(), Value::String(service.to_owned()));
    doc.insert(datum.name.as_str().to_owned(), json!(datum.value));
    Value::Object(doc)
}

impl<W: Write + Send> MetricSink for EmfSink<W> {
    async fn emit(&self, datums: &[Datum]) -> Result<(), MetricError> {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for datum in datums {
            let line = document(&self.namespace, &self.service, datum).to_string();
            writeln!(out, "{line}").map_err(|e| MetricError { source: e.into() })?;
        }
        out.flush().map_err(|e| MetricError { source: e.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metric::MetricName;
    use chrono::{TimeZone, Utc};

    #[tokio::test]
    async fn each_datum_is_one_emf_line_with_its_dimensions() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let sink = EmfSink::new("Connwatch", "health-check", Vec::new());
        sink.emit(&[
            Datum::new(MetricName::Connections, 3.0, at).with("Status", "AVAILABLE").with("Provider", "Bitbucket"),
            Datum::new(MetricName::HealthCheckRuns, 1.0, at),
        ])
        .await
        .unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        assert_eq!(first["_aws"]["Timestamp"], at.timestamp_millis());
        assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Connwatch");
        assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Provider", "Status"]]));
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            json!({"Name": "Connections", "Unit": "Count"})
        );
        assert_eq!(first["Status"], "AVAILABLE");
        assert_eq!(first["Connections"], 3.0);
        assert_eq!(lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(lines[1]["HealthCheckRuns"], 1.0);
    }
}
