//! Rendering tests: every body for every kind, the CloudWatch alarm shape, and the caps.

use aws_lambda_events::sns::CloudWatchAlarmPayload;
use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::alert::{AlertDraft, AlertKind, Cause, DedupKey, Link, Resources, Severity};

fn alert(kind: AlertKind, status: AlertStatus) -> Alert {
    let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 10, 0).unwrap();
    AlertDraft {
        dedup_key: DedupKey::from_stored(format!("test/123456789012/eu-west-1/{}", kind.as_str())),
        status,
        severity: Severity::Critical,
        kind,
        title: format!("Something about {kind}"),
        summary: "What happened. What it breaks. First step: do the thing.".to_owned(),
        cause: Some(Cause::ConnectionUnavailable),
        account: "123456789012".to_owned(),
        region: "eu-west-1".to_owned(),
        resources: Resources {
            connection_name: Some("bitbucket-prod".to_owned()),
            provider: Some("Bitbucket".to_owned()),
            ..Resources::default()
        },
        affected_pipelines: vec!["api-prod".to_owned(), "web-prod".to_owned()],
        occurred_at: at,
        source_event_id: None,
        links: vec![Link { title: "Connection in the console".to_owned(), url: "https://example.com/c".to_owned() }],
    }
    .into_alert("id-1".to_owned(), format!("docs/alerts.md#{}", kind.runbook_anchor()), at, 1)
}

#[test]
fn every_kind_renders_every_body() {
    for kind in AlertKind::ALL {
        for status in [AlertStatus::Firing, AlertStatus::Resolved] {
            let a = alert(*kind, status);
            let r = render(&a);
            let back: Alert = serde_json::from_str(&r.message).unwrap();
            assert_eq!(back, a, "{kind}: canonical body round-trips");
            assert!(r.email.starts_with(&format!("[{}] Something about {kind}", status.as_str().to_uppercase())));
            for needle in [
                "Affected pipelines: api-prod, web-prod",
                "Runbook: docs/alerts.md#",
                "Problem key: test/",
                "Cause: connection_unavailable",
            ] {
                assert!(r.email.contains(needle), "{kind}: email lacks {needle}:\n{}", r.email);
            }
            let sns: serde_json::Value = serde_json::from_str(&r.sns_message()).unwrap();
            for protocol in ["default", "sqs", "lambda", "email", "https", "http"] {
                assert_eq!(sns[protocol].as_str().unwrap(), r.body_for(protocol), "{protocol}");
            }
        }
    }
}

#[test]
fn https_body_parses_as_a_cloudwatch_alarm_notification() {
    for (status, new, old) in [(AlertStatus::Firing, "ALARM", "OK"), (AlertStatus::Resolved, "OK", "ALARM")] {
        let a = alert(AlertKind::ConnectionUnhealthy, status);
        let r = render(&a);
        let payload: CloudWatchAlarmPayload = serde_json::from_str(&r.https).unwrap();
        assert_eq!(payload.alarm_name, a.dedup_key.as_str());
        assert_eq!((payload.new_state_value.as_str(), payload.old_state_value.as_str()), (new, old));
        assert_eq!(payload.aws_account_id, "123456789012");
        assert_eq!(payload.state_change_time, "2026-12-04T09:10:00.000+0000");
        assert_eq!(payload.new_state_reason, a.summary);
        let raw: serde_json::Value = serde_json::from_str(&r.https).unwrap();
        assert_eq!(raw["connwatch"]["kind"], "connection.unhealthy");
    }
}

#[test]
fn subjects_are_capped_and_on_one_line() {
    let mut a = alert(AlertKind::ConnectionUnhealthy, AlertStatus::Firing);
    a.title = format!("line one\nline two {}", "x".repeat(300));
    let s = subject(&a);
    assert!(s.chars().count() <= SUBJECT_MAX_CHARS);
    assert!(!s.contains('\n') && !s.contains('\r'));
    assert!(s.starts_with("[FIRING critical] line one line two"));
}

#[test]
fn huge_lists_are_cut_with_a_note_and_the_message_fits_sns() {
    let mut a = alert(AlertKind::ConnectionUnhealthy, AlertStatus::Firing);
    a.affected_pipelines = (0..20_000).map(|n| format!("pipeline-with-a-long-name-{n:05}")).collect();
    let r = render(&a);
    assert!(r.sns_message().len() <= MESSAGE_MAX_BYTES, "{} bytes", r.sns_message().len());
    let back: Alert = serde_json::from_str(&r.message).unwrap();
    assert!(back.affected_pipelines.len() < 20_000 && !back.affected_pipelines.is_empty());
    assert!(back.summary.contains("of 20000 affected pipelines are listed"), "{}", back.summary);
    assert!(r.email.contains("of 20000 affected pipelines are listed"));
}

#[test]
fn a_huge_summary_is_cut_too() {
    let mut a = alert(AlertKind::PipelineSourceFailed, AlertStatus::Firing);
    a.summary = "y".repeat(300_000);
    let r = render(&a);
    assert!(r.sns_message().len() <= MESSAGE_MAX_BYTES);
}

/// Snapshot tests: every body of every kind, firing and resolved, compared with the files in
/// tests/fixtures/snapshots/. Run with `UPDATE_SNAPSHOTS=1` to rewrite them after an intended
/// change, then review the diff.
#[test]
fn bodies_match_their_snapshots() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut mismatches = Vec::new();
    for kind in AlertKind::ALL {
        for status in [AlertStatus::Firing, AlertStatus::Resolved] {
            let r = render(&alert(*kind, status));
            let https: serde_json::Value = serde_json::from_str(&r.https).unwrap();
            let text = format!(
                "subject: {}\n\n--- email ---\n{}\n\n--- https ---\n{}\n\n--- default/sqs/lambda ---\n{}\n",
                r.subject,
                r.email,
                serde_json::to_string_pretty(&sorted(&https)).unwrap(),
                r.message
            );
            let path = dir.join(format!("{}.{}.txt", kind.as_str(), status.as_str()));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                mismatches.push(path.display().to_string());
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "bodies differ from their snapshots (UPDATE_SNAPSHOTS=1 to accept): {mismatches:#?}"
    );
}

/// The value with object keys in sorted order, whatever map serde_json was built with, so the
/// snapshots do not depend on which crates enable `preserve_order`.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}
