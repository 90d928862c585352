//! System tests: `connwatch replay` on the documented CodePipeline events.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/codepipeline")
}

fn replay(args: &[&str]) -> (i32, String, String) {
    let output =
        Command::new(env!("CARGO_BIN_EXE_connwatch")).arg("replay").args(args).output().expect("run connwatch");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("utf-8"),
        String::from_utf8(output.stderr).expect("utf-8"),
    )
}

fn fixture(name: &str) -> String {
    fixtures().join(name).to_str().expect("utf-8 path").to_owned()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[test]
fn every_documented_event_gets_one_decision_and_none_fails() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .map(|e| e.expect("entry").path().to_str().expect("utf-8").to_owned())
        .filter(|p| p.ends_with(".json") && !p.ends_with("action-missing-stage.json"))
        .collect();
    files.sort();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = replay(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().filter(|l| !l.starts_with(' ')).count(), files.len(), "{stdout}");
    assert!(!stdout.contains("error:"), "{stdout}");
}

#[test]
fn a_failure_then_a_success_in_one_world_pages_and_resolves() {
    let (code, stdout, _) = replay(&[
        "--format",
        "json",
        &fixture("action-connection-source-failed-permission.json"),
        &fixture("action-connection-source-succeeded.json"),
    ]);
    assert_eq!(code, 0);
    let lines = json_lines(&stdout);
    let notifications: Vec<_> = lines.iter().filter(|l| l["type"] == "notification").collect();
    assert_eq!(notifications.len(), 2);
    assert_eq!(notifications[0]["handler"], "pipeline-events");
    assert_eq!(notifications[0]["event_id"], "01234567-0000-4000-8000-000000000012");
    assert_eq!(notifications[0]["alert"]["cause"], "permission_denied");
    assert_eq!(notifications[1]["alert"]["status"], "resolved");
    assert!(lines.iter().any(|l| l["type"] == "metric" && l["name"] == "SourceActionFailures"));
}

#[test]
fn arrays_redeliveries_and_foreign_events_are_reported() {
    let dir = std::env::temp_dir().join(format!("connwatch-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let failure: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("action-connection-source-failed-permission.json")).expect("read"),
    )
    .expect("json");
    let foreign = serde_json::json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let batch = dir.join("batch.json");
    std::fs::write(&batch, Value::Array(vec![failure.clone(), failure, foreign]).to_string()).expect("write");
    let (code, stdout, _) = replay(&["--format", "json", batch.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    let lines = json_lines(&stdout);
    assert_eq!(lines.iter().filter(|l| l["type"] == "notification").count(), 1, "the redelivery pages nothing");
    let skipped: Vec<_> = lines.iter().filter(|l| l["type"] == "skipped").collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["event_id"], "s3-1");
    assert!(lines.iter().any(|l| l["name"] == "NotificationsSuppressed" && l["dimensions"]["Reason"] == "redelivered"));
}

#[test]
fn unreadable_or_non_json_files_exit_2_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("connwatch-replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let bad = dir.join("not-json.json");
    std::fs::write(&bad, "{ nope").expect("write");
    let (code, _, stderr) = replay(&[&fixture("pipeline-started.json"), bad.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not-json.json is not JSON"), "{stderr}");
    let (code, _, stderr) = replay(&[dir.join("missing.json").to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.json"), "{stderr}");
}

#[test]
fn state_from_a_scenario_lets_failures_fold_into_connection_alerts() {
    let dir = std::env::temp_dir().join(format!("connwatch-replay-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let state = dir.join("state.toml");
    std::fs::write(
        &state,
        r#"name = "state"
start = "2026-12-04T09:00:00Z"
account = "123456789012"
region = "eu-west-1"
connections = [{ name = "bitbucket-prod", provider = "Bitbucket", status = "ERROR", id = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2" }]
pipelines = [{ name = "web-prod", connection = "bitbucket-prod", repository = "acme/web" }]
"#,
    )
    .expect("write");
    let (code, stdout, stderr) = replay(&[
        "--format",
        "json",
        "--state",
        state.to_str().expect("utf-8"),
        &fixture("action-connection-source-failed-permission.json"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    assert!(lines.iter().all(|l| l["type"] != "notification"), "{stdout}");
    let suppressed: Vec<_> = lines.iter().filter(|l| l["type"] == "suppressed").collect();
    assert_eq!(suppressed[0]["reason"], "inhibited");
}

#[test]
fn cloudtrail_fixtures_show_the_rule_that_matched_or_that_none_did() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cloudtrail");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path().to_str().expect("utf-8").to_owned())
        .collect();
    files.sort();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = replay(&args);
    assert_eq!(code, 0, "{stderr}");
    for (file, line) in files.iter().zip(stdout.lines().filter(|l| !l.starts_with(' '))) {
        if file.contains("/unrelated-") {
            assert!(
                line.contains("no rule matched") || line.contains("is not audited") || line.contains("no handler"),
                "{file}: {line}"
            );
        } else if !file.contains("iam-") && !file.contains("codepipeline-") {
            // IAM and pipeline rules need the inventory (see --state); the rest match alone.
            assert!(line.contains("→ rule "), "{file}: {line}");
        }
    }
}

#[test]
fn alarm_state_changes_are_routed_to_the_alarm_router() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/alarms");
    let alarm = dir.join("heartbeat-alarm.json");
    let ok = dir.join("heartbeat-ok.json");
    let (code, stdout, stderr) =
        replay(&["--format", "json", alarm.to_str().expect("utf-8"), ok.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    let notifications: Vec<_> = lines.iter().filter(|l| l["type"] == "notification").collect();
    assert_eq!(notifications.len(), 2);
    assert_eq!(notifications[0]["handler"], "alarm-router");
    assert_eq!(notifications[0]["alert"]["kind"], "alarm");
    assert_eq!(notifications[1]["alert"]["status"], "resolved");
}

#[test]
fn dead_letter_records_from_lambda_destinations_are_unwrapped() {
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("action-connection-source-failed-permission.json")).expect("read"),
    )
    .expect("json");
    let record = serde_json::json!({
        "version": "1.0",
        "timestamp": "2026-12-04T10:05:03.000Z",
        "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:f", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
    });
    let path = std::env::temp_dir().join(format!("connwatch-dlq-{}.json", std::process::id()));
    std::fs::write(&path, record.to_string()).expect("write");
    let (code, stdout, _) = replay(&["--format", "json", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert!(json_lines(&stdout).iter().any(|l| l["type"] == "notification" && l["handler"] == "pipeline-events"));
}
