//! `connwatch simulate`: the whole system in-process on a scenario, with in-memory adapters
//! and a virtual clock. The health check runs through the very `handle` the Lambda runs.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use connwatch::domain::metric::Datum;
use connwatch::ports::DirectoryError;
use connwatch::render::Rendered;
use serde_json::json;

use crate::output::{metric_label, metric_line, notification_line, text_bodies};
use crate::scenario::{Change, ListingFailure, Scenario};
use crate::world::World;

/// What one step produced.
#[derive(Debug)]
pub(crate) struct StepResult {
    pub(crate) at: DateTime<Utc>,
    pub(crate) note: String,
    /// Failures of the health check or of an event's handler.
    pub(crate) errors: Vec<String>,
    /// One line per delivered event: what its handler decided.
    pub(crate) decisions: Vec<String>,
    pub(crate) notifications: Vec<(String, Rendered)>,
    pub(crate) metrics: Vec<Datum>,
}

/// Runs a scenario and returns what each step produced. Each step applies its changes, runs
/// the health check once (as the schedule would), then delivers its events.
pub(crate) async fn run(scenario: &Scenario) -> Vec<StepResult> {
    let world = World::from_scenario(scenario).await;
    let mut results = Vec::with_capacity(scenario.steps.len());
    for step in &scenario.steps {
        world.clock.set(step.at);
        apply(&world, &step.changes);
        if let Some(failure) = step.fail_listing {
            world.directory.fail_next(injected(failure));
        }
        let input = json!({"scheduled_time": step.at, "source": "connwatch simulate"});
        let mut errors: Vec<String> = world.health_check(&input).await.err().into_iter().collect();
        let mut decisions = Vec::new();
        for event in &step.events {
            let handled = world.deliver(event).await;
            let subject = event["detail"]["pipeline"].as_str().unwrap_or(handled.handler.unwrap_or("no handler"));
            decisions.push(format!("{subject}: {}", handled.decision));
            errors.extend(handled.skipped.filter(|reason| reason.starts_with("error")));
        }
        let (notifications, metrics) = world.drain();
        results.push(StepResult { at: step.at, note: step.note.clone(), errors, decisions, notifications, metrics });
    }
    results
}

fn apply(world: &World, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Upsert(connection) => world.directory.upsert(connection.clone()),
            Change::Delete(name) => {
                if let Some(found) = world.directory.connections().into_iter().find(|c| &c.name == name) {
                    world.directory.remove(found.id());
                }
            }
        }
    }
}

fn injected(failure: ListingFailure) -> DirectoryError {
    let api = "codeconnections";
    match failure {
        ListingFailure::Throttled => DirectoryError::Throttled { api, source: "Rate exceeded (simulated)".into() },
        ListingFailure::AccessDenied => {
            DirectoryError::AccessDenied { api, source: "not authorized to perform ListConnections (simulated)".into() }
        }
        ListingFailure::ServiceError => DirectoryError::Service { api, source: "HTTP 503 (simulated)".into() },
    }
}

/// Writes the results as JSON lines: notifications and metrics, in time order.
pub(crate) fn write_json(results: &[StepResult], bodies: bool, out: &mut impl Write) -> std::io::Result<()> {
    for step in results {
        for (topic, rendered) in &step.notifications {
            writeln!(out, "{}", notification_line(step.at, topic, rendered, bodies))?;
        }
        for datum in &step.metrics {
            writeln!(out, "{}", metric_line(datum))?;
        }
    }
    Ok(())
}

/// Writes the results as a readable timeline and a metrics summary.
pub(crate) fn write_text(
    scenario: &Scenario,
    results: &[StepResult],
    bodies: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "Scenario {}: {}", scenario.name, scenario.description)?;
    writeln!(out, "Started {}\n", scenario.start.format("%Y-%m-%d %H:%M UTC"))?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for step in results {
        let time = step.at.format("%H:%M");
        writeln!(out, "{time}  -- {}", if step.note.is_empty() { "health check" } else { &step.note })?;
        for decision in &step.decisions {
            writeln!(out, "{time}     {:<9} {decision}", "EVENT")?;
        }
        for (topic, rendered) in &step.notifications {
            *counts.entry(topic.clone()).or_default() += 1;
            let alert: serde_json::Value = serde_json::from_str(&rendered.message).unwrap_or_default();
            let status = alert["status"].as_str().unwrap_or("?").to_uppercase();
            let title = alert["title"].as_str().unwrap_or(&rendered.subject);
            writeln!(out, "{time}     {:<9} {:<9} {title}", topic.to_uppercase(), status)?;
            if bodies {
                writeln!(out, "{}", text_bodies(rendered))?;
            }
        }
        for error in &step.errors {
            writeln!(out, "{time}     {:<9} {error} (Lambda would retry)", "ERROR")?;
        }
    }
    let total: usize = counts.values().sum();
    let by_topic: Vec<String> = counts.iter().map(|(topic, n)| format!("{topic} {n}")).collect();
    writeln!(out, "\nNotifications: {total} ({})", by_topic.join(", "))?;
    write_metric_summary(results, out)
}

/// Counters are summed over the run; gauges show their value at the last run that emitted them.
fn write_metric_summary(results: &[StepResult], out: &mut impl Write) -> std::io::Result<()> {
    let mut counters: BTreeMap<String, f64> = BTreeMap::new();
    let mut gauges: BTreeMap<String, f64> = BTreeMap::new();
    for step in results {
        if step.metrics.iter().any(|d| d.name.is_gauge()) {
            gauges.retain(|_, _| false);
        }
        for datum in &step.metrics {
            let target = if datum.name.is_gauge() { &mut gauges } else { &mut counters };
            *target.entry(metric_label(datum)).or_default() += datum.value;
        }
    }
    writeln!(out, "\nMetrics, counted over the run:")?;
    for (label, value) in &counters {
        writeln!(out, "  {label:<60} {value}")?;
    }
    writeln!(out, "\nMetrics, as of the last run:")?;
    for (label, value) in &gauges {
        writeln!(out, "  {label:<60} {value}")?;
    }
    Ok(())
}
