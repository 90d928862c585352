//! [`Notifier`] over SNS `Publish`: one topic per severity (DESIGN §4.3).
//!
//! The bodies come from [`crate::render::render`]; this adapter only picks the topic and sends
//! them with `MessageStructure=json`, so each protocol (email, https, sqs, lambda) receives the
//! body made for it.
//! Each message carries the String message attributes `kind`, `severity` and `status`, so a
//! subscription can filter with an SNS filter policy (e.g. only `connection.*` kinds, or only
//! `firing`) without parsing the body.
//!
//! IAM: `sns:Publish` on the configured topics (plus `kms:GenerateDataKey*`/`kms:Decrypt` on
//! the topic's key when the topics are encrypted with a customer managed key).

use aws_sdk_sns::types::MessageAttributeValue;

use crate::config::Topics;
use crate::domain::alert::{Alert, Severity};
use crate::ports::{BoxError, Delivery, Notifier, NotifyError};
use crate::render::render;

/// Publishes alerts to the SNS topic of their severity.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topics: Topics,
}

impl SnsNotifier {
    /// A notifier publishing to `topics` (a severity without a topic is not published).
    pub fn new(client: aws_sdk_sns::Client, topics: Topics) -> Self {
        Self { client, topics }
    }

    /// The topic of a severity; an empty ARN counts as none (CloudFormation passes `""`).
    fn topic(&self, severity: Severity) -> Option<&str> {
        let topic = match severity {
            Severity::Critical => &self.topics.critical,
            Severity::Warning => &self.topics.warning,
            Severity::Info => &self.topics.info,
        };
        topic.as_deref().filter(|arn| !arn.is_empty())
    }
}

impl Notifier for SnsNotifier {
    async fn publish(&self, alert: &Alert) -> Result<Delivery, NotifyError> {
        let Some(topic) = self.topic(alert.severity) else {
            return Ok(Delivery::NoTopic);
        };
        let failed =
            |source: BoxError| NotifyError { dedup_key: alert.dedup_key.to_string(), severity: alert.severity, source };
        let rendered = render(alert);
        let mut request = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(&rendered.subject)
            .message(rendered.sns_message())
            .message_structure("json");
        for (name, value) in
            [("kind", alert.kind.as_str()), ("severity", alert.severity.as_str()), ("status", alert.status.as_str())]
        {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| failed(Box::new(e)))?;
            request = request.message_attributes(name, attribute);
        }
        let output = request.send().await.map_err(|e| failed(Box::new(e)))?;
        // SNS always returns a MessageId on success; an empty one only loses a log field.
        let message_id = output.message_id().unwrap_or_default().to_owned();
        tracing::debug!(topic, message_id, dedup_key = %alert.dedup_key, "published alert");
        Ok(Delivery::Published { message_id })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::Client;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_smithy_mocks::{mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use chrono::TimeZone;

    use super::*;
    use crate::domain::alert::{AlertKind, AlertStatus, DedupKey, Resources, SCHEMA};

    const CRITICAL: &str = "arn:aws:sns:eu-west-1:123456789012:connwatch-critical";
    const WARNING: &str = "arn:aws:sns:eu-west-1:123456789012:connwatch-warning";

    fn alert(severity: Severity) -> Alert {
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        Alert {
            schema: SCHEMA.to_owned(),
            id: "3f1c2a9e-0000-4000-8000-000000000001".to_owned(),
            dedup_key: DedupKey::from_stored("connection/123456789012/eu-west-1/abc/unhealthy".to_owned()),
            status: AlertStatus::Firing,
            severity,
            kind: AlertKind::ConnectionUnhealthy,
            title: "Connection bitbucket-prod is ERROR".to_owned(),
            summary: "The connection is broken.".to_owned(),
            cause: None,
            runbook: "docs/alerts.md#connection-unhealthy".to_owned(),
            account: "123456789012".to_owned(),
            region: "eu-west-1".to_owned(),
            resources: Resources::default(),
            affected_pipelines: vec![],
            occurred_at: at,
            first_seen_at: at,
            notification_count: 1,
            source_event_id: None,
            links: vec![],
        }
    }

    fn topics() -> Topics {
        Topics { critical: Some(CRITICAL.to_owned()), warning: Some(WARNING.to_owned()), info: None }
    }

    #[tokio::test]
    async fn an_alert_is_published_to_its_severity_topic_with_a_body_per_protocol() {
        let expected = render(&alert(Severity::Critical));
        let rule = mock!(Client::publish)
            .match_requests(move |r| {
                let attribute = |name: &str| {
                    r.message_attributes().and_then(|a| a.get(name)).and_then(|v| v.string_value()).map(str::to_owned)
                };
                r.topic_arn() == Some(CRITICAL)
                    && r.subject() == Some(expected.subject.as_str())
                    && r.message() == Some(expected.sns_message().as_str())
                    && r.message_structure() == Some("json")
                    && attribute("kind").as_deref() == Some("connection.unhealthy")
                    && attribute("severity").as_deref() == Some("critical")
                    && attribute("status").as_deref() == Some("firing")
            })
            .then_output(|| PublishOutput::builder().message_id("msg-1").build());
        let notifier = SnsNotifier::new(mock_client!(aws_sdk_sns, [&rule]), topics());

        let delivery = notifier.publish(&alert(Severity::Critical)).await.unwrap();

        assert_eq!(delivery, Delivery::Published { message_id: "msg-1".to_owned() });
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_severity_without_a_topic_is_not_published() {
        let rule = mock!(Client::publish).then_output(|| PublishOutput::builder().message_id("never").build());
        let notifier = SnsNotifier::new(mock_client!(aws_sdk_sns, [&rule]), topics());

        let delivery = notifier.publish(&alert(Severity::Info)).await.unwrap();

        assert_eq!(delivery, Delivery::NoTopic);
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_empty_topic_arn_counts_as_no_topic() {
        let rule = mock!(Client::publish).then_output(|| PublishOutput::builder().message_id("never").build());
        let topics = Topics { warning: Some(String::new()), ..topics() };
        let notifier = SnsNotifier::new(mock_client!(aws_sdk_sns, [&rule]), topics);

        assert_eq!(notifier.publish(&alert(Severity::Warning)).await.unwrap(), Delivery::NoTopic);
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_failed_publish_is_a_notify_error_that_keeps_the_sdk_error() {
        let rule = mock!(Client::publish).then_error(|| {
            PublishError::generic(
                ErrorMetadata::builder().code("AuthorizationError").message("not authorized to publish").build(),
            )
        });
        let notifier = SnsNotifier::new(mock_client!(aws_sdk_sns, [&rule]), topics());

        let error = notifier.publish(&alert(Severity::Warning)).await.unwrap_err();

        assert_eq!(error.severity, Severity::Warning);
        assert_eq!(error.dedup_key, "connection/123456789012/eu-west-1/abc/unhealthy");
        assert!(crate::error_chain(&error).contains("not authorized to publish"), "{}", crate::error_chain(&error));
    }
}
