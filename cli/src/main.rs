//! `connwatch`: the command-line face of connwatch.
//!
//! - `connwatch simulate [SCENARIO] [--format text|json] [--bodies]`: the whole system in-process on a
//!   scenario (the default one is embedded), printing the pages it would send and the metrics.
//! - `connwatch replay [--state SCENARIO] [--format text|json] [--stats] [--bodies] FILE...`: what the
//!   handlers would do with recorded EventBridge events, in one in-memory world.
//! - `connwatch silence add|list|expire --table T`: silences in a deployed state table.
//! - `connwatch check [--profile P] [--region R] [--format table|json] [--publish]`: the
//!   connections of a real account; exit 1 when any is not AVAILABLE. Needs
//!   `codeconnections:ListConnections` and `codestar-connections:ListConnections`, plus
//!   `cloudwatch:PutMetricData` with `--publish`.
//!
//! Exit codes: 0 success, 1 a connection is not AVAILABLE (`check`), 2 bad input or a failure
//! to reach AWS. Logs go to stderr (`RUST_LOG` sets the level; default `warn` for `check` and
//! `off` for `simulate` and `replay`, whose output already shows every failure).

mod check;
mod output;
mod replay;
mod scenario;
mod silence;
mod simulate;
mod world;

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
        /// Also show the subject and the exact body each protocol receives.
        #[arg(long)]
        bodies: bool,
    },
    /// Show what connwatch would do with recorded EventBridge events.
    Replay {
        /// Files holding one EventBridge event or a JSON array of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Start from a scenario's connections and pipelines instead of an empty world.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SimulateFormat::Text)]
        format: SimulateFormat,
        /// Print the number of events and events per second to stderr.
        #[arg(long)]
        stats: bool,
        /// Also show the subject and the exact body each protocol receives.
        #[arg(long)]
        bodies: bool,
    },
    /// Manage silences in a deployed state table (maintenance windows).
    Silence {
        /// The state table (the stack's `StateTableName` output).
        #[arg(long, global = true, env = "CONNWATCH_TABLE_NAME")]
        table: Option<String>,
        /// AWS profile to use.
        #[arg(long, global = true)]
        profile: Option<String>,
        /// AWS region of the stack.
        #[arg(long, global = true)]
        region: Option<String>,
        #[command(subcommand)]
        action: SilenceCommand,
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

#[derive(Debug, Subcommand)]
enum SilenceCommand {
    /// Silence matching alerts for a while; prints the new silence's id.
    Add {
        /// field=value, all must match: kind, severity, dedup_key_prefix, connection_name,
        /// connection_arn, pipeline, repository (`*` wildcards allowed except in the prefix).
        #[arg(long = "matcher", required = true)]
        matchers: Vec<String>,
        /// How long (`30m`, `2h`, `1d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Start later than now (RFC 3339).
        #[arg(long)]
        starts_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Who is silencing (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        author: String,
        /// Why.
        #[arg(long)]
        comment: String,
    },
    /// List current and upcoming silences.
    List {
        /// Include expired ones still in the table.
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire {
        /// The silence id.
        id: String,
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
    // simulate and replay report failures in their own output; their logs would only repeat them.
    init_logging(if matches!(cli.command, Command::Check { .. }) { "warn" } else { "off" });
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    match cli.command {
        Command::Simulate { scenario, format, bodies } => runtime.block_on(simulate(scenario, format, bodies)),
        Command::Replay { files, state, format, stats, bodies } => {
            runtime.block_on(replay(&files, state, format, stats, bodies))
        }
        Command::Silence { table, profile, region, action } => {
            let Some(table) = table else {
                return fail("--table (or CONNWATCH_TABLE_NAME) is required: the stack's StateTableName output");
            };
            let action = match action {
                SilenceCommand::Add { matchers, duration, starts_at, author, comment } => {
                    silence::Action::Add { matchers, duration, starts_at, author, comment }
                }
                SilenceCommand::List { all } => silence::Action::List { all },
                SilenceCommand::Expire { id } => silence::Action::Expire { id },
            };
            let options = silence::TableOptions { table, profile, region };
            match runtime.block_on(silence::run(&options, action, &mut std::io::stdout().lock())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&error),
            }
        }
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

/// Reads a scenario file, or the embedded default; the error names the file.
fn load_scenario(path: Option<&PathBuf>) -> Result<scenario::Scenario, String> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read scenario {}: {error}", path.display()))?,
        None => scenario::DEFAULT.to_owned(),
    };
    scenario::Scenario::parse(&text).map_err(|error| {
        let name = path.map_or_else(|| "default scenario".to_owned(), |p| p.display().to_string());
        format!("{name}: {}", connwatch::error_chain(&error))
    })
}

async fn replay(
    files: &[PathBuf],
    state: Option<PathBuf>,
    format: SimulateFormat,
    stats: bool,
    bodies: bool,
) -> ExitCode {
    let events = match replay::read_events(files) {
        Ok(events) => events,
        Err(error) => return fail(&error.to_string()),
    };
    let scenario = match state.as_ref().map(|p| load_scenario(Some(p))).transpose() {
        Ok(scenario) => scenario,
        Err(error) => return fail(&error),
    };
    let world = replay::world(scenario.as_ref()).await;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let started = std::time::Instant::now();
    let written = replay::run(&world, &events, matches!(format, SimulateFormat::Json), bodies, &mut out).await;
    let elapsed = started.elapsed();
    match written.and_then(|n| out.flush().map(|()| n)) {
        Ok(count) => {
            if stats {
                let rate = count as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
                eprintln!("replayed {count} events in {elapsed:.2?} ({rate:.0} events/s)");
            }
            ExitCode::SUCCESS
        }
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => fail(&format!("cannot write output: {error}")),
    }
}

async fn simulate(path: Option<PathBuf>, format: SimulateFormat, bodies: bool) -> ExitCode {
    let scenario = match load_scenario(path.as_ref()) {
        Ok(scenario) => scenario,
        Err(error) => return fail(&error),
    };
    let results = simulate::run(&scenario).await;
    let mut out = std::io::stdout().lock();
    let written = match format {
        SimulateFormat::Text => simulate::write_text(&scenario, &results, bodies, &mut out),
        SimulateFormat::Json => simulate::write_json(&results, bodies, &mut out),
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
