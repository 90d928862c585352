//! Harness for the integration tests: a local AWS emulator (moto server) on loopback and SDK
//! configuration pointed at it.
//!
//! The emulator is the one `scripts/test` started (`CONNWATCH_TEST_AWS_ENDPOINT`), or else one
//! this harness starts on a free port from `MOTO_SERVER` or `./.venv/bin/moto_server` and
//! stops when the [`Emulator`] is dropped. moto serves DynamoDB, SNS and SQS; it has no
//! CodeConnections and cannot speak CloudWatch's CBOR protocol, so those stay on the in-memory
//! adapter and `aws-smithy-mocks` respectively (DESIGN §5).
// A test-support crate: failing loudly on a broken harness is the point.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The variable `scripts/test` sets to share one emulator across test binaries.
pub const ENDPOINT_VAR: &str = "CONNWATCH_TEST_AWS_ENDPOINT";

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    child: Option<Child>,
}

impl Emulator {
    /// Connects to the shared emulator, or starts a private one.
    pub fn start() -> Self {
        if let Ok(endpoint) = std::env::var(ENDPOINT_VAR) {
            return Self { endpoint, child: None };
        }
        let server = moto_server();
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {} ({e}); run the tests with scripts/test, which installs moto", server.display())
            });
        let emulator = Self { endpoint: format!("http://127.0.0.1:{port}"), child: Some(child) };
        emulator.wait_until_listening(port);
        emulator
    }

    fn wait_until_listening(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto server did not listen on {} within 20s", self.endpoint);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The emulator's URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for the emulator: fixed test credentials, `us-east-1`, and no
    /// retries, so a failing call fails the test at once instead of being hidden by retries.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(20)).build(),
            )
            .load()
            .await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _killed = child.kill();
            let _reaped = child.wait();
        }
    }
}

fn moto_server() -> PathBuf {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

/// A name unique to one test, so tests sharing an emulator never see each other's resources.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates the state table exactly as `infra/template.yaml` declares it (pk/sk strings,
/// on-demand).
pub async fn create_state_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let key =
        |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create the state table");
}

/// An SQS queue subscribed to a topic; returns the queue URL.
pub async fn subscribed_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_arn: &str,
    raw_delivery: bool,
) -> String {
    let url = sqs.create_queue().queue_name(unique("alerts")).send().await.unwrap().queue_url.unwrap();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attributes.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let mut subscribe = sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(queue_arn);
    if raw_delivery {
        subscribe = subscribe.attributes("RawMessageDelivery", "true");
    }
    subscribe.send().await.unwrap();
    url
}

/// Receives every message that arrives within `wait`, deleting them.
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        for message in received.messages.unwrap_or_default() {
            if let Some(handle) = &message.receipt_handle {
                sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await.unwrap();
            }
            bodies.extend(message.body);
        }
        if Instant::now() >= deadline {
            return bodies;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
