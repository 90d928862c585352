//! The `http`/`https` body: the JSON a CloudWatch alarm sends through SNS, so the paging and
//! chat tools that already consume CloudWatch alarms (PagerDuty, Opsgenie, Amazon Q Developer
//! in chat, …) work unchanged. The alarm name is the dedup key, so such tools open an incident
//! on `ALARM` and close the same one on `OK`. The canonical alert rides along under
//! `connwatch`.

use serde_json::json;

use crate::domain::alert::{Alert, AlertStatus};
use crate::domain::metric::DEFAULT_NAMESPACE;

/// Renders the https body.
pub fn body(alert: &Alert) -> String {
    let (new_state, old_state) = match alert.status {
        AlertStatus::Firing => ("ALARM", "OK"),
        AlertStatus::Resolved => ("OK", "ALARM"),
    };
    let canonical = serde_json::to_value(alert).unwrap_or_default();
    json!({
        "AlarmName": alert.dedup_key,
        "AlarmDescription": alert.title,
        "AWSAccountId": alert.account,
        "AlarmConfigurationUpdatedTimestamp": alert.first_seen_at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "NewStateValue": new_state,
        "NewStateReason": alert.summary,
        "StateChangeTime": alert.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "Region": alert.region,
        "AlarmArn": format!("arn:aws:cloudwatch:{}:{}:alarm:{}", alert.region, alert.account, alert.dedup_key),
        "OldStateValue": old_state,
        "OKActions": [],
        "AlarmActions": [],
        "InsufficientDataActions": [],
        // Not a metric alarm: a synthetic trigger on the alert itself keeps strict parsers happy.
        "Trigger": {
            "MetricName": "Alert",
            "Namespace": DEFAULT_NAMESPACE,
            "StatisticType": "Statistic",
            "Statistic": "MAXIMUM",
            "Unit": null,
            "Dimensions": [
                {"value": alert.kind.as_str(), "name": "Kind"},
                {"value": alert.severity.as_str(), "name": "Severity"},
            ],
            "Period": 60,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1.0,
            "TreatMissingData": "notBreaching",
            "EvaluateLowSampleCountPercentile": "",
        },
        "connwatch": canonical,
    })
    .to_string()
}
