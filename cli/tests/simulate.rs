//! System tests: the `connwatch` binary on scenarios, asserting on its JSON output.

use std::process::Command;

use serde_json::Value;

fn connwatch(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_connwatch")).args(args).output().expect("run connwatch");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

fn notifications<'a>(lines: &'a [Value], kind: &str, status: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "notification" && l["alert"]["kind"] == kind && l["alert"]["status"] == status)
        .collect()
}

#[test]
fn default_scenario_pages_exactly_what_the_issue_promises() {
    let (code, stdout, stderr) = connwatch(&["simulate", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let lines = lines(&stdout);
    assert!(lines.iter().all(|l| l["type"] == "notification" || l["type"] == "metric"));

    let fired = notifications(&lines, "connection.unhealthy", "firing");
    let resolved = notifications(&lines, "connection.unhealthy", "resolved");
    assert_eq!((fired.len(), resolved.len()), (1, 1));
    assert_eq!(fired[0]["topic"], "critical");
    assert_eq!(fired[0]["alert"]["severity"], "critical");
    assert_eq!(fired[0]["alert"]["dedup_key"], resolved[0]["alert"]["dedup_key"]);
    assert_eq!(fired[0]["alert"]["resources"]["connection_name"], "bitbucket-prod");

    let pending: Vec<_> = lines.iter().filter(|l| l["alert"]["kind"] == "connection.pending").collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["alert"]["severity"], "warning");
    assert_eq!(pending[0]["topic"], "warning");
    assert_eq!(pending[0]["alert"]["resources"]["provider"], "GitHub");

    let deleted: Vec<_> = lines.iter().filter(|l| l["alert"]["kind"] == "connection.deleted").collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["alert"]["resources"]["connection_name"], "gitlab-legacy");

    let notification_count = lines.iter().filter(|l| l["type"] == "notification").count();
    assert_eq!(notification_count, 8, "nothing else is paged");

    // One heartbeat per step, except the step whose listing was throttled.
    let steps = 15;
    let heartbeats = lines.iter().filter(|l| l["type"] == "metric" && l["name"] == "HealthCheckRuns").count();
    let errors: Vec<_> = lines.iter().filter(|l| l["name"] == "HealthCheckErrors").collect();
    assert_eq!(heartbeats + errors.len(), steps);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["dimensions"]["Reason"], "throttled");
    let metric = lines.iter().find(|l| l["name"] == "Connections").unwrap();
    assert_eq!(metric["unit"], "Count");
    assert!(metric["dimensions"]["Status"].is_string() && metric["dimensions"]["Provider"].is_string());
}

#[test]
fn default_scenario_pages_once_per_cause_with_the_pipelines_named() {
    let (_, stdout, _) = connwatch(&["simulate", "--format", "json"]);
    let lines = lines(&stdout);
    // The outage page names the pipelines on the connection; their Source failures fold into it.
    let outage = notifications(&lines, "connection.unhealthy", "firing");
    assert_eq!(outage[0]["alert"]["affected_pipelines"], serde_json::json!(["api-prod", "web-prod"]));
    let source: Vec<_> = lines.iter().filter(|l| l["alert"]["kind"] == "pipeline.source_failed").collect();
    assert_eq!(source.len(), 2, "one page and its resolution, for docs-site only");
    assert_eq!(source[0]["alert"]["status"], "firing");
    assert_eq!(source[0]["alert"]["cause"], "permission_denied");
    assert_eq!(source[0]["alert"]["resources"]["pipeline"], "docs-site");
    assert_eq!(source[0]["alert"]["resources"]["repository"], "acme-old/docs");
    assert_eq!(source[1]["alert"]["status"], "resolved");
    let inhibited: f64 = lines
        .iter()
        .filter(|l| l["name"] == "NotificationsSuppressed" && l["dimensions"]["Reason"] == "inhibited")
        .map(|l| l["value"].as_f64().unwrap())
        .sum();
    assert_eq!(inhibited, 2.0, "web-prod and api-prod folded into the outage page");
    let causes: Vec<_> = lines
        .iter()
        .filter(|l| l["name"] == "SourceActionFailures")
        .map(|l| l["dimensions"]["Cause"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(causes, ["connection_unavailable", "connection_unavailable", "permission_denied"]);
}

#[test]
fn default_scenario_audits_the_deletion_and_the_refused_call() {
    let (_, stdout, _) = connwatch(&["simulate", "--format", "json"]);
    let lines = lines(&stdout);
    let deleted = notifications(&lines, "api.connection_deleted", "firing");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["topic"], "critical");
    assert_eq!(deleted[0]["alert"]["title"], "mary (role Admin) deleted connection gitlab-legacy");
    assert_eq!(deleted[0]["alert"]["affected_pipelines"], serde_json::json!(["docs-site", "handbook"]));
    assert_eq!(deleted[0]["alert"]["resources"]["principal"], "arn:aws:sts::123456789012:assumed-role/Admin/mary");
    let denied = notifications(&lines, "api.access_denied", "firing");
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["topic"], "warning");
    assert!(lines.iter().any(|l| l["name"] == "ApiCalls" && l["dimensions"]["Outcome"] == "denied"));
}

#[test]
fn every_alert_in_the_output_follows_schema_v1() {
    let (_, stdout, _) = connwatch(&["simulate", "--format", "json"]);
    for line in lines(&stdout).iter().filter(|l| l["type"] == "notification") {
        let alert = &line["alert"];
        assert_eq!(alert["schema"], "connwatch.alert/v1");
        for field in [
            "id",
            "dedup_key",
            "status",
            "severity",
            "kind",
            "title",
            "summary",
            "cause",
            "runbook",
            "account",
            "region",
            "resources",
            "affected_pipelines",
            "occurred_at",
            "first_seen_at",
            "notification_count",
            "source_event_id",
            "links",
        ] {
            assert!(alert.get(field).is_some(), "{field} missing in {alert}");
        }
        assert!(line["subject"].as_str().unwrap().chars().count() <= 99);
    }
}

#[test]
fn text_output_is_a_readable_timeline() {
    let (code, stdout, _) = connwatch(&["simulate"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("09:10     CRITICAL  FIRING    Connection bitbucket-prod is ERROR"), "{stdout}");
    assert!(stdout.contains("RESOLVED  Connection bitbucket-prod is AVAILABLE again"));
    assert!(stdout.contains("Notifications: 8 (critical 3, warning 5)"), "{stdout}");
    assert!(
        stdout.contains("web-prod: source failed (connection_unavailable): folded into the connection's alert"),
        "{stdout}"
    );
    assert!(stdout.contains("HealthCheckRuns"));
}

#[test]
fn a_custom_scenario_file_is_read_and_bad_ones_are_named() {
    let dir = std::env::temp_dir().join(format!("connwatch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        r#"name = "tiny"
start = "2026-12-04T09:00:00Z"
account = "123456789012"
region = "us-east-1"
connections = [{ name = "c1", provider = "AzureDevOps", status = "ERROR" }]
[[steps]]
at = "0m"
"#,
    )
    .unwrap();
    let (code, stdout, _) = connwatch(&["simulate", good.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(notifications(&lines(&stdout), "connection.unhealthy", "firing").len(), 1);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = 1").unwrap();
    let (code, _, stderr) = connwatch(&["simulate", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    let (code, _, stderr) = connwatch(&["simulate", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read scenario"), "{stderr}");
}

#[test]
fn bodies_show_exactly_what_each_protocol_receives() {
    let (code, stdout, _) = connwatch(&["simulate", "--format", "json", "--bodies"]);
    assert_eq!(code, 0);
    let lines = lines(&stdout);
    let page = &notifications(&lines, "connection.unhealthy", "firing")[0];
    let bodies = &page["bodies"];
    let canonical: Value = serde_json::from_str(bodies["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(canonical, page["alert"]);
    assert_eq!(bodies["default"], bodies["sqs"]);
    let email = bodies["email"].as_str().unwrap();
    assert!(email.starts_with("[FIRING] Connection bitbucket-prod is ERROR\n"), "{email}");
    assert!(email.contains("Affected pipelines: api-prod, web-prod"));
    let https: Value = serde_json::from_str(bodies["https"].as_str().unwrap()).unwrap();
    assert_eq!(https["NewStateValue"], "ALARM");
    assert_eq!(https["AlarmName"], page["alert"]["dedup_key"]);
    assert_eq!(https["connwatch"], page["alert"]);
    let resolved = &notifications(&lines, "connection.unhealthy", "resolved")[0];
    let https: Value = serde_json::from_str(resolved["bodies"]["https"].as_str().unwrap()).unwrap();
    assert_eq!((https["NewStateValue"].as_str(), https["OldStateValue"].as_str()), (Some("OK"), Some("ALARM")));
    let (_, plain, _) = connwatch(&["simulate", "--format", "json"]);
    assert!(!plain.contains("\"bodies\""), "bodies only on request");
}

#[test]
fn a_silence_suppresses_exactly_what_it_matches_and_repeats_come_once_per_interval() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/maintenance.toml");
    let (code, stdout, stderr) = connwatch(&["simulate", scenario, "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let lines = lines(&stdout);
    let sent: Vec<(String, String, String, u64)> = lines
        .iter()
        .filter(|l| l["type"] == "notification")
        .map(|l| {
            (
                l["at"].as_str().unwrap()[11..16].to_owned(),
                l["alert"]["resources"]["connection_name"].as_str().unwrap().to_owned(),
                l["alert"]["status"].as_str().unwrap().to_owned(),
                l["alert"]["notification_count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("09:30", "github-tools", "firing", 1),
        ("11:00", "bitbucket-prod", "firing", 1),
        ("11:30", "github-tools", "firing", 2),
        ("12:00", "bitbucket-prod", "resolved", 2),
        ("13:30", "github-tools", "firing", 3),
        ("14:00", "github-tools", "resolved", 4),
    ];
    let expected: Vec<_> =
        expected.iter().map(|(t, c, s, n)| ((*t).to_owned(), (*c).to_owned(), (*s).to_owned(), *n)).collect();
    assert_eq!(sent, expected);
    let silenced: f64 = lines
        .iter()
        .filter(|l| l["name"] == "NotificationsSuppressed" && l["dimensions"]["Reason"] == "silenced")
        .map(|l| l["value"].as_f64().unwrap())
        .sum();
    assert_eq!(silenced, 3.0, "bitbucket-prod at 09:00, 09:30 and 10:00");
}
