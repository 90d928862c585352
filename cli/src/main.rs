//! `connwatch`: the command-line face of connwatch.
//!
//! - `connwatch simulate [SCENARIO] [--format text|json]`: the whole system in-process on a
//!   scenario (the default one is embedded), printing the pages it would send and the metrics.
//! - `connwatch check [--profile P] [--region R] [--format table|json] [--publish]`: the
//!   connections of a real account; exit 1 when any is not AVAILABLE. Needs
//!   `codeconnections:ListConnections` and `codestar-connections:ListConnections`, plus
//!   `cloudwatch:PutMetricData` with `--publish`.
//!
//! Exit codes: 0 success, 1 a connection is not AVAILABLE (`check`), 2 bad input or a failure
//! to reach AWS. Logs go to stderr (`RUST_LOG` sets the level; default `warn`, and `off` for
//! `simulate`, whose output already shows every failure).

mod check;
mod output;
mod scenario;
mod simulate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use connwatch::config::ConnectionApis;
use connwatch::domain::metric::DEFAULT_NAMESPACE;

#[derive(Debug, Parser)]
#[command(name = "connwatch", version, about = "Monitoring for AWS CodeConnections and the pipelines that use them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system in-process on a scenario and print the pages it would send.
    Simulate {
        /// A scenario file (TOML); the bundled default scenario when omitted.
        scenario: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SimulateFormat::Text)]
        format: SimulateFormat,
    },
    /// Check the connections of a real AWS account (read-only).
    Check {
        /// AWS profile to use.
        #[arg(long)]
        profile: Option<String>,
        /// AWS region to check.
        #[arg(long)]
        region: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Table)]
        format: CheckFormat,
        /// Send the health metrics to CloudWatch with PutMetricData.
        #[arg(long)]
        publish: bool,
        /// CloudWatch namespace for --publish.
        #[arg(long, default_value = DEFAULT_NAMESPACE)]
        namespace: String,
        /// Listing APIs: codeconnections, codestar-connections or both (comma separated).
        #[arg(long, default_value = "codeconnections,codestar-connections")]
        apis: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SimulateFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckFormat {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // simulate reports failures in its own output; its logs would only repeat them.
    init_logging(if matches!(cli.command, Command::Simulate { .. }) { "off" } else { "warn" });
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    match cli.command {
        Command::Simulate { scenario, format } => runtime.block_on(simulate(scenario, format)),
        Command::Check { profile, region, format, publish, namespace, apis } => {
            let apis = match ConnectionApis::parse(&apis) {
                Ok(apis) => apis,
                Err(error) => return fail(&error.to_string()),
            };
            let options = check::CheckOptions {
                profile,
                region,
                json: matches!(format, CheckFormat::Json),
                publish,
                namespace,
                apis,
            };
            match runtime.block_on(check::run(&options, &mut std::io::stdout().lock())) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(error) => fail(&error.to_string()),
            }
        }
    }
}

async fn simulate(path: Option<PathBuf>, format: SimulateFormat) -> ExitCode {
    let text = match &path {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => return fail(&format!("cannot read scenario {}: {error}", path.display())),
        },
        None => scenario::DEFAULT.to_owned(),
    };
    let scenario = match scenario::Scenario::parse(&text) {
        Ok(scenario) => scenario,
        Err(error) => {
            let name = path.map_or_else(|| "default scenario".to_owned(), |p| p.display().to_string());
            return fail(&format!("{name}: {}", connwatch::error_chain(&error)));
        }
    };
    let results = simulate::run(&scenario).await;
    let mut out = std::io::stdout().lock();
    let written = match format {
        SimulateFormat::Text => simulate::write_text(&scenario, &results, &mut out),
        SimulateFormat::Json => simulate::write_json(&results, &mut out),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => fail(&format!("cannot write output: {error}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("connwatch: {message}");
    ExitCode::from(2)
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
