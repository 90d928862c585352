//! `connwatch check`: the health of the connections of a real account, from a laptop or a CI
//! job. Read-only (`ListConnections` on both APIs); with `--publish`, the same metrics the
//! health check emits go to CloudWatch with `PutMetricData`.

use std::io::Write;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use chrono::Utc;
use connwatch::adapters::aws::cloudwatch::CloudWatchMetrics;
use connwatch::adapters::aws::connections::AwsConnectionDirectory;
use connwatch::config::ConnectionApis;
use connwatch::domain::connection::{Connection, ConnectionStatus};
use connwatch::domain::health::{self, HealthPolicy};
use connwatch::error_chain;
use connwatch::ports::{ConnectionDirectory, MetricSink};
use serde_json::json;

/// Options of `check`.
#[derive(Debug)]
pub(crate) struct CheckOptions {
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) json: bool,
    pub(crate) publish: bool,
    pub(crate) namespace: String,
    pub(crate) apis: ConnectionApis,
}

/// Why `check` could not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    #[error(
        "no AWS credentials found ({0}). Set AWS_PROFILE or pass --profile, run `aws sso login`, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials(String),
    #[error("no AWS region configured. Pass --region, or set AWS_REGION or a region in your profile")]
    NoRegion,
    #[error("listing connections failed: {0}")]
    Listing(String),
    #[error("publishing metrics failed: {0}")]
    Publish(String),
}

/// Lists and evaluates the account's connections; returns whether all are AVAILABLE.
pub(crate) async fn run(options: &CheckOptions, out: &mut impl Write) -> Result<bool, CheckError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &options.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(CheckError::NoRegion);
    }
    // Ask for credentials up front: the SDK's own error for missing credentials surfaces as a
    // dispatch failure deep in the first call, which says little to a person.
    let provider = sdk.credentials_provider().ok_or_else(|| CheckError::NoCredentials("no provider".to_owned()))?;
    provider.provide_credentials().await.map_err(|e| CheckError::NoCredentials(error_chain(&e)))?;

    let directory = AwsConnectionDirectory::new(
        options.apis.codeconnections.then(|| aws_sdk_codeconnections::Client::new(&sdk)),
        options.apis.codestar_connections.then(|| aws_sdk_codestarconnections::Client::new(&sdk)),
    );
    let listing = directory.list_connections().await.map_err(|e| CheckError::Listing(error_chain(&e)))?;
    print_listing(&listing, options.json, out).map_err(|e| CheckError::Listing(e.to_string()))?;

    if options.publish {
        // The same rules and metrics as the Lambda, minus the heartbeat: a laptop must not
        // keep the heartbeat alarm quiet while the deployed checker is dead.
        let policy = HealthPolicy { pending_grace: std::time::Duration::from_secs(3600), detailed_metrics: false };
        let eval = health::evaluate(&[], &listing, Utc::now(), &policy);
        let sink = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk), options.namespace.clone());
        sink.emit(&eval.metrics).await.map_err(|e| CheckError::Publish(error_chain(&e)))?;
        eprintln!("published {} metric datums to namespace {}", eval.metrics.len(), options.namespace);
    }
    Ok(listing.iter().all(|c| c.status == ConnectionStatus::Available))
}

fn print_listing(listing: &[Connection], as_json: bool, out: &mut impl Write) -> std::io::Result<()> {
    if as_json {
        let rows: Vec<_> = listing
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "provider": c.provider, "status": c.status,
                    "arn": c.arn, "owner": c.owner_account_id, "id": c.id(),
                })
            })
            .collect();
        return writeln!(out, "{}", serde_json::Value::Array(rows));
    }
    let headers = ["NAME", "PROVIDER", "STATUS", "ARN", "OWNER"];
    let rows: Vec<[String; 5]> = listing
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                c.provider.to_string(),
                c.status.to_string(),
                c.arn.to_string(),
                c.owner_account_id.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&headers))?;
    for row in &rows {
        writeln!(out, "{}", line(&row.each_ref().map(String::as_str)))?;
    }
    let bad = listing.iter().filter(|c| c.status != ConnectionStatus::Available).count();
    writeln!(out, "\n{} connections, {bad} not AVAILABLE", listing.len())
}
