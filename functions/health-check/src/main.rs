//! Lambda entry point of `health-check`: configuration, clients, `run`. Wiring only; the
//! behaviour and its documentation live in the library (`src/lib.rs`).
// The handler future nests the SDK futures deeply; computing its layout needs more depth.
#![recursion_limit = "256"]

use connwatch::adapters::aws::codepipeline::AwsPipelineDirectory;
use connwatch::adapters::aws::connections::AwsConnectionDirectory;
use connwatch::adapters::aws::dynamodb::DynamoStore;
use connwatch::adapters::aws::load_sdk_config;
use connwatch::adapters::aws::sns::SnsNotifier;
use connwatch::adapters::emf::EmfSink;
use connwatch::config::HealthCheckConfig;
use connwatch::domain::health::HealthPolicy;
use connwatch::ports::SystemClock;
use health_check::{Deps, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Fail the cold start, naming the variable, rather than the first event.
    let config = HealthCheckConfig::from_env()?;
    // Loads credentials lazily: no network call before the first event.
    let sdk = load_sdk_config(config.common.sdk_timeout).await;
    let deps = Deps {
        directory: AwsConnectionDirectory::new(
            config.apis.codeconnections.then(|| aws_sdk_codeconnections::Client::new(&sdk)),
            config.apis.codestar_connections.then(|| aws_sdk_codestarconnections::Client::new(&sdk)),
        ),
        pipelines: AwsPipelineDirectory::new(aws_sdk_codepipeline::Client::new(&sdk)),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.common.table_name.clone()),
        notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), config.common.topics.clone()),
        metrics: EmfSink::stdout(config.common.metric_namespace.clone(), "health-check"),
        clock: SystemClock,
        health: HealthPolicy { pending_grace: config.pending_grace, detailed_metrics: config.common.detailed_metrics },
        lifecycle: config.common.lifecycle.clone(),
        inventory: config.inventory.clone(),
    };
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let deps = &deps;
        async move { handle(&event.payload, deps).await }
    }))
    .await
}
