//! One in-memory world shared by every handler, as the deployed functions share one table,
//! one set of topics and one metric namespace. `simulate` and `replay` drive it.

use chrono::{DateTime, Utc};
use connwatch::adapters::memory::{
    ManualClock, MemoryDirectory, MemoryPipelines, MemoryStore, RecordingMetrics, RecordingNotifier,
};
use connwatch::domain::health::HealthPolicy;
use connwatch::domain::metric::Datum;
use connwatch::error_chain;
use connwatch::inventory::InventoryPolicy;
use connwatch::lifecycle::{LifecyclePolicy, Outcome};
use connwatch::render::Rendered;
use pipeline_events::PipelinePolicy;
use serde_json::Value;

use crate::scenario::Settings;

/// The handlers an event can reach.
pub(crate) const HEALTH_CHECK: &str = "health-check";
pub(crate) const PIPELINE_EVENTS: &str = "pipeline-events";
pub(crate) const API_AUDIT: &str = "api-audit";
pub(crate) const ALARM_ROUTER: &str = "alarm-router";

/// The in-memory adapters and the settings of every handler.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) directory: MemoryDirectory,
    pub(crate) pipelines: MemoryPipelines,
    pub(crate) store: MemoryStore,
    pub(crate) notifier: RecordingNotifier,
    pub(crate) metrics: RecordingMetrics,
    pub(crate) clock: ManualClock,
    health: HealthPolicy,
    lifecycle: LifecyclePolicy,
    pipeline: PipelinePolicy,
}

/// What a handler decided about one event.
#[derive(Debug)]
pub(crate) struct Handled {
    /// Which handler took it (`None`: no handler takes such events).
    pub(crate) handler: Option<&'static str>,
    /// Why it was skipped or failed, when it was.
    pub(crate) skipped: Option<String>,
    /// One line on the decision.
    pub(crate) decision: String,
    /// What the lifecycle did.
    pub(crate) outcomes: Vec<Outcome>,
}

impl World {
    pub(crate) fn new(start: DateTime<Utc>, settings: &Settings) -> Self {
        Self {
            directory: MemoryDirectory::default(),
            pipelines: MemoryPipelines::default(),
            store: MemoryStore::default(),
            notifier: RecordingNotifier::default(),
            metrics: RecordingMetrics::default(),
            clock: ManualClock::new(start),
            health: HealthPolicy { pending_grace: settings.pending_grace, detailed_metrics: settings.detailed_metrics },
            lifecycle: LifecyclePolicy { repeat_interval: settings.repeat_interval, ..LifecyclePolicy::default() },
            pipeline: PipelinePolicy { detailed_metrics: settings.detailed_metrics, ..PipelinePolicy::default() },
        }
    }

    /// A world holding a scenario's initial connections, pipelines and silences.
    pub(crate) async fn from_scenario(scenario: &crate::scenario::Scenario) -> Self {
        let world = Self::new(scenario.start, &scenario.settings);
        for connection in &scenario.initial {
            world.directory.upsert(connection.clone());
        }
        for pipeline in &scenario.pipelines {
            world.pipelines.upsert(pipeline.clone());
        }
        for silence in &scenario.silences {
            world.add_silence(silence).await;
        }
        world
    }

    /// Runs the health check once, through the Lambda's own `handle`.
    pub(crate) async fn health_check(&self, input: &Value) -> Result<health_check::RunReport, String> {
        let deps = health_check::Deps {
            directory: &self.directory,
            pipelines: &self.pipelines,
            store: &self.store,
            notifier: &self.notifier,
            metrics: &self.metrics,
            clock: &self.clock,
            health: self.health.clone(),
            lifecycle: self.lifecycle.clone(),
            inventory: InventoryPolicy::default(),
        };
        health_check::handle(input, &deps).await.map_err(|e| error_chain(&e))
    }

    /// Delivers one EventBridge event to the handler its rule would route it to.
    pub(crate) async fn deliver(&self, event: &Value) -> Handled {
        match route(event) {
            Some(HEALTH_CHECK) => match self.health_check(event).await {
                Ok(report) => Handled {
                    handler: Some(HEALTH_CHECK),
                    skipped: None,
                    decision: format!("{} connections, {} notified", report.connections, report.notified),
                    outcomes: vec![],
                },
                Err(error) => failed(HEALTH_CHECK, &error),
            },
            Some(API_AUDIT) => self.api_call(event).await,
            Some(ALARM_ROUTER) => self.alarm(event).await,
            Some(_) => self.pipeline_event(event).await,
            None => Handled {
                handler: None,
                skipped: Some(format!(
                    "no handler for source {:?}, detail-type {:?}",
                    event.get("source").and_then(Value::as_str).unwrap_or(""),
                    event.get("detail-type").and_then(Value::as_str).unwrap_or("")
                )),
                decision: "skipped".to_owned(),
                outcomes: vec![],
            },
        }
    }

    async fn pipeline_event(&self, event: &Value) -> Handled {
        let deps = pipeline_events::Deps {
            pipelines: &self.pipelines,
            store: &self.store,
            notifier: &self.notifier,
            metrics: &self.metrics,
            clock: &self.clock,
            policy: self.pipeline.clone(),
            lifecycle: self.lifecycle.clone(),
        };
        match pipeline_events::handle(event, &deps).await {
            Ok(report) => Handled {
                handler: Some(PIPELINE_EVENTS),
                skipped: report.skipped,
                decision: report.decision,
                outcomes: report.outcomes,
            },
            Err(error) => failed(PIPELINE_EVENTS, &error_chain(&error)),
        }
    }

    async fn api_call(&self, event: &Value) -> Handled {
        let deps = api_audit::Deps {
            store: &self.store,
            notifier: &self.notifier,
            metrics: &self.metrics,
            clock: &self.clock,
            policy: api_audit::AuditPolicy::default(),
            lifecycle: self.lifecycle.clone(),
        };
        match api_audit::handle(event, &deps).await {
            Ok(report) => Handled {
                handler: Some(API_AUDIT),
                skipped: report.skipped,
                decision: report.decision,
                outcomes: report.outcomes,
            },
            Err(error) => failed(API_AUDIT, &error_chain(&error)),
        }
    }

    async fn alarm(&self, event: &Value) -> Handled {
        let deps = alarm_router::Deps {
            store: &self.store,
            notifier: &self.notifier,
            metrics: &self.metrics,
            clock: &self.clock,
            policy: alarm_router::RouterPolicy::default(),
            lifecycle: self.lifecycle.clone(),
        };
        match alarm_router::handle(event, &deps).await {
            Ok(report) => Handled {
                handler: Some(ALARM_ROUTER),
                skipped: report.skipped,
                decision: report.decision,
                outcomes: report.outcomes,
            },
            Err(error) => failed(ALARM_ROUTER, &error_chain(&error)),
        }
    }

    /// Adds a silence to the world's store.
    async fn add_silence(&self, silence: &connwatch::domain::silence::Silence) {
        // The in-memory store fails only when told to, and nothing here tells it to.
        if let Err(error) = connwatch::ports::SilenceStore::put_silence(&self.store, silence).await {
            tracing::error!(error = %error, "silence not stored");
        }
    }

    /// Takes what was published and emitted since the last call.
    pub(crate) fn drain(&self) -> (Vec<(String, Rendered)>, Vec<Datum>) {
        let published = self.notifier.take().into_iter().map(|p| (p.topic.as_str().to_owned(), p.rendered)).collect();
        (published, self.metrics.take())
    }
}

fn failed(handler: &'static str, error: &str) -> Handled {
    Handled {
        handler: Some(handler),
        skipped: Some(format!("error: {error}")),
        decision: "failed".to_owned(),
        outcomes: vec![],
    }
}

/// The handler whose EventBridge rule matches the event (mirrors infra/template.yaml).
pub(crate) fn route(event: &Value) -> Option<&'static str> {
    let source = event.get("source").and_then(Value::as_str)?;
    let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or("");
    match (source, detail_type) {
        (
            "aws.codestar-connections" | "aws.codeconnections" | "aws.iam" | "aws.codepipeline",
            connwatch::domain::audit::DETAIL_TYPE,
        ) => Some(API_AUDIT),
        ("aws.codepipeline", _) => Some(PIPELINE_EVENTS),
        ("aws.events", "Scheduled Event") => Some(HEALTH_CHECK),
        ("aws.cloudwatch", alarm_router::DETAIL_TYPE) => Some(ALARM_ROUTER),
        _ => None,
    }
}
