//! [`MetricSink`] over CloudWatch `PutMetricData`, for use outside Lambda
//! (`connwatch check --publish`). In Lambda, metrics go out as EMF on stdout instead
//! ([`crate::adapters::emf`]): no API call, no extra IAM (DESIGN §4.4).
//!
//! Datums are sent in batches of at most [`MAX_DATUMS_PER_REQUEST`], the API's limit per
//! request. Batches are sent one after the other; if one fails, the batches before it have
//! already been accepted (CloudWatch has no transactions), and the error says so only by
//! being returned.
//!
//! IAM: `cloudwatch:PutMetricData` (resource `*`; can be narrowed with the
//! `cloudwatch:namespace` condition key).

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::domain::metric::{Datum, Unit};
use crate::ports::{MetricError, MetricSink};

/// The most datums CloudWatch accepts in one `PutMetricData` request.
pub const MAX_DATUMS_PER_REQUEST: usize = 1000;

/// Sends metric datums to CloudWatch with `PutMetricData`.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
}

impl CloudWatchMetrics {
    /// A sink writing into `namespace` (by default `Connwatch`).
    pub fn new(client: aws_sdk_cloudwatch::Client, namespace: impl Into<String>) -> Self {
        Self { client, namespace: namespace.into() }
    }
}

impl MetricSink for CloudWatchMetrics {
    async fn emit(&self, datums: &[Datum]) -> Result<(), MetricError> {
        for batch in datums.chunks(MAX_DATUMS_PER_REQUEST) {
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(batch.iter().map(to_metric_datum).collect()))
                .send()
                .await
                .map_err(|e| MetricError { source: Box::new(e) })?;
            tracing::debug!(namespace = %self.namespace, datums = batch.len(), "put metric data");
        }
        Ok(())
    }
}

/// One domain datum as a CloudWatch datum.
fn to_metric_datum(datum: &Datum) -> MetricDatum {
    let dimensions =
        datum.dimensions.iter().map(|(name, value)| Dimension::builder().name(name).value(value).build()).collect();
    MetricDatum::builder()
        .metric_name(datum.name.as_str())
        .set_dimensions(Some(dimensions))
        .value(datum.value)
        .unit(standard_unit(datum.unit()))
        .timestamp(aws_smithy_types::DateTime::from_millis(datum.timestamp.timestamp_millis()))
        .build()
}

/// The CloudWatch unit of a domain unit.
fn standard_unit(unit: Unit) -> StandardUnit {
    match unit {
        Unit::Count => StandardUnit::Count,
        Unit::Milliseconds => StandardUnit::Milliseconds,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_cloudwatch::Client;
    use aws_sdk_cloudwatch::operation::put_metric_data::{PutMetricDataError, PutMetricDataOutput};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use chrono::TimeZone;

    use super::*;
    use crate::domain::metric::MetricName;

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn datums_are_sent_in_batches_of_at_most_a_thousand() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&batches);
        let rule = mock!(Client::put_metric_data)
            .match_requests(|r| r.namespace() == Some("Connwatch"))
            .then_compute_output(move |r| {
                seen.lock().unwrap().push(r.metric_data().len());
                PutMetricDataOutput::builder().build()
            });
        let sink = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]), "Connwatch");
        let datums: Vec<_> = (0..2500).map(|i| Datum::new(MetricName::HealthCheckRuns, f64::from(i), at())).collect();

        sink.emit(&datums).await.unwrap();

        assert_eq!(*batches.lock().unwrap(), [1000, 1000, 500]);
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn a_datum_keeps_its_name_dimensions_value_unit_and_timestamp() {
        let rule = mock!(Client::put_metric_data)
            .match_requests(|r| {
                let [datum] = r.metric_data() else { return false };
                let dimension = |name: &str| {
                    datum
                        .dimensions()
                        .iter()
                        .find(|d| d.name() == Some(name))
                        .and_then(|d| d.value())
                        .map(str::to_owned)
                };
                datum.metric_name() == Some("Connections")
                    && datum.value() == Some(3.0)
                    && datum.unit() == Some(&StandardUnit::Count)
                    && datum.timestamp() == Some(&aws_smithy_types::DateTime::from_secs(at().timestamp()))
                    && dimension("Status").as_deref() == Some("AVAILABLE")
                    && dimension("Provider").as_deref() == Some("Bitbucket")
            })
            .then_output(|| PutMetricDataOutput::builder().build());
        let sink = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, [&rule]), "Connwatch");
        let datum =
            Datum::new(MetricName::Connections, 3.0, at()).with("Status", "AVAILABLE").with("Provider", "Bitbucket");

        sink.emit(&[datum]).await.unwrap();

        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn no_datums_means_no_request() {
        let rule = mock!(Client::put_metric_data).then_output(|| PutMetricDataOutput::builder().build());
        let sink = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, [&rule]), "Connwatch");

        sink.emit(&[]).await.unwrap();

        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_rejected_request_is_a_metric_error() {
        let rule = mock!(Client::put_metric_data).then_error(|| {
            PutMetricDataError::generic(ErrorMetadata::builder().code("AccessDenied").message("denied").build())
        });
        let sink = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, [&rule]), "Connwatch");

        let error = sink.emit(&[Datum::new(MetricName::HealthCheckRuns, 1.0, at())]).await.unwrap_err();

        assert!(crate::error_chain(&error).contains("denied"), "{}", crate::error_chain(&error));
    }
}
