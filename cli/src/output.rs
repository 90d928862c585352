//! Output lines shared by the CLI's commands: the JSON-lines records and their text forms.

use chrono::{DateTime, Utc};
use connwatch::domain::metric::Datum;
use connwatch::render::Rendered;
use serde_json::{Value, json};

/// A published notification as a JSON line:
/// `{"type":"notification","at":…,"topic":…,"subject":…,"alert":{…}}`.
///
/// The alert is parsed back from the exact body SNS would deliver, so the output shows what
/// subscribers receive, not what we meant to send.
///
/// With `bodies`, the line also holds `"bodies"`: the exact string SNS delivers to each
/// protocol, so anyone can preview what on-call will receive.
pub(crate) fn notification_line(at: DateTime<Utc>, topic: &str, rendered: &Rendered, bodies: bool) -> Value {
    let alert =
        serde_json::from_str::<Value>(&rendered.message).unwrap_or_else(|_| Value::String(rendered.message.clone()));
    let mut line =
        json!({"type": "notification", "at": at, "topic": topic, "subject": rendered.subject, "alert": alert});
    if bodies {
        line["bodies"] = json!({
            "default": rendered.body_for("default"),
            "email": rendered.body_for("email"),
            "https": rendered.body_for("https"),
            "sqs": rendered.body_for("sqs"),
        });
    }
    line
}

/// The subject, email and https bodies, indented, for text output with `--bodies`.
pub(crate) fn text_bodies(rendered: &Rendered) -> String {
    let indent = |text: &str| text.lines().map(|l| format!("            | {l}")).collect::<Vec<_>>().join("\n");
    let https = serde_json::from_str::<Value>(&rendered.https)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| rendered.https.clone());
    format!(
        "          subject: {}\n          email:\n{}\n          https:\n{}",
        rendered.subject,
        indent(&rendered.email),
        indent(&https)
    )
}

/// A metric datum as a JSON line:
/// `{"type":"metric","at":…,"name":…,"dimensions":{…},"value":…,"unit":…}`.
pub(crate) fn metric_line(datum: &Datum) -> Value {
    json!({
        "type": "metric",
        "at": datum.timestamp,
        "name": datum.name.as_str(),
        "dimensions": datum.dimensions,
        "value": datum.value,
        "unit": datum.unit().as_str(),
    })
}

/// `Name Dim=value Dim=value`, for text output.
pub(crate) fn metric_label(datum: &Datum) -> String {
    let mut label = datum.name.as_str().to_owned();
    for (name, value) in &datum.dimensions {
        label.push_str(&format!(" {name}={value}"));
    }
    label
}
