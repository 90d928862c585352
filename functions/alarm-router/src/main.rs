//! Lambda entry point of `alarm-router`: configuration, clients, `run`. Wiring only; the
//! behaviour and its documentation live in the library (`src/lib.rs`).
// The handler future nests the SDK futures deeply; computing its layout needs more depth.
#![recursion_limit = "256"]

use alarm_router::{Deps, RouterPolicy, handle};
use connwatch::adapters::aws::dynamodb::DynamoStore;
use connwatch::adapters::aws::load_sdk_config;
use connwatch::adapters::aws::sns::SnsNotifier;
use connwatch::adapters::emf::EmfSink;
use connwatch::config::AlarmRouterConfig;
use connwatch::ports::SystemClock;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Fail the cold start, naming the variable, rather than the first event.
    let config = AlarmRouterConfig::from_env()?;
    // Loads credentials lazily: no network call before the first event.
    let sdk = load_sdk_config(config.common.sdk_timeout).await;
    let deps = Deps {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.common.table_name.clone()),
        notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), config.common.topics.clone()),
        metrics: EmfSink::stdout(config.common.metric_namespace.clone(), "alarm-router"),
        clock: SystemClock,
        policy: RouterPolicy { alarm_prefix: config.alarm_prefix.clone() },
        lifecycle: config.common.lifecycle.clone(),
    };
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let deps = &deps;
        async move { handle(&event.payload, deps).await.map(|report| report.decision) }
    }))
    .await
}
