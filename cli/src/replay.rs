//! `connwatch replay`: what would these events do? Each file holds one EventBridge event or a
//! JSON array of them; all events go, in order, through the handlers their rules route them to,
//! in one in-memory world (so a failure followed by a success resolves).

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use connwatch::lifecycle::Outcome;
use serde_json::{Value, json};

use crate::output::{metric_label, metric_line, notification_line, text_bodies};
use crate::scenario::Scenario;
use crate::world::World;

/// Why replay could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{path} is not JSON: {source}")]
    NotJson { path: PathBuf, source: serde_json::Error },
}

/// Reads every file first, so a bad file is reported before anything runs.
pub(crate) fn read_events(files: &[PathBuf]) -> Result<Vec<Value>, ReplayError> {
    let mut events = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(path).map_err(|source| ReplayError::Unreadable { path: path.clone(), source })?;
        match serde_json::from_str::<Value>(&text)
            .map_err(|source| ReplayError::NotJson { path: path.clone(), source })?
        {
            Value::Array(items) => events.extend(items.into_iter().map(unwrap_failure_record)),
            single => events.push(unwrap_failure_record(single)),
        }
    }
    Ok(events)
}

/// Messages from a Lambda on-failure destination wrap the event in `requestPayload`; replay
/// takes them as they sit in the DLQ.
fn unwrap_failure_record(value: Value) -> Value {
    match value {
        Value::Object(mut record) if record.contains_key("requestPayload") && record.contains_key("requestContext") => {
            record.remove("requestPayload").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// The world replay starts from: empty, or a scenario's connections and pipelines with one
/// health check run to record their state (its notifications are part of the setup, not
/// printed).
pub(crate) async fn world(state: Option<&Scenario>) -> World {
    let Some(scenario) = state else {
        return World::new(DateTime::<Utc>::UNIX_EPOCH, &crate::scenario::Settings::default());
    };
    let world = World::from_scenario(scenario).await;
    // A setup failure leaves an empty state, which the output then shows.
    let _setup = world.health_check(&json!({"source": "connwatch replay --state"})).await;
    world.drain();
    world
}

/// Replays the events and writes one block (text) or lines (JSON) per event.
pub(crate) async fn run(
    world: &World,
    events: &[Value],
    json_output: bool,
    bodies: bool,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let mut count = 0;
    for event in events {
        if let Some(time) = event.get("time").and_then(Value::as_str).and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
            // Time only moves forward, as the lifecycle expects.
            if time > connwatch::ports::Clock::now(&world.clock) {
                world.clock.set(time);
            }
        }
        let id = event.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
        let handled = world.deliver(event).await;
        let (notifications, metrics) = world.drain();
        let handler = handled.handler.unwrap_or("none");
        let at = connwatch::ports::Clock::now(&world.clock);
        if json_output {
            if let Some(reason) = &handled.skipped {
                writeln!(
                    out,
                    "{}",
                    json!({"type": "skipped", "event_id": id, "handler": handled.handler, "reason": reason})
                )?;
            }
            for outcome in &handled.outcomes {
                if let Outcome::Suppressed { dedup_key, reason, .. } = outcome {
                    let line = json!({"type": "suppressed", "event_id": id, "handler": handler, "reason": reason.as_str(), "dedup_key": dedup_key});
                    writeln!(out, "{line}")?;
                }
            }
            for (topic, rendered) in &notifications {
                let mut line = notification_line(at, topic, rendered, bodies);
                line["event_id"] = json!(id);
                line["handler"] = json!(handler);
                writeln!(out, "{line}")?;
            }
            for datum in &metrics {
                writeln!(out, "{}", metric_line(datum))?;
            }
        } else {
            let label = if id.is_empty() { "(no id)" } else { id.as_str() };
            writeln!(out, "{label} → {handler}: {}", handled.skipped.as_deref().unwrap_or(&handled.decision))?;
            for (topic, rendered) in &notifications {
                writeln!(out, "    {:<9} {}", topic.to_uppercase(), rendered.subject)?;
                if bodies {
                    writeln!(out, "{}", text_bodies(rendered))?;
                }
            }
            for outcome in &handled.outcomes {
                if let Outcome::Suppressed { dedup_key, reason, .. } = outcome {
                    writeln!(out, "    {:<9} {} ({dedup_key})", "SUPPRESSED", reason.as_str())?;
                }
            }
            for datum in &metrics {
                writeln!(out, "    {:<9} {} = {}", "METRIC", metric_label(datum), datum.value)?;
            }
        }
        count += 1;
    }
    Ok(count)
}
