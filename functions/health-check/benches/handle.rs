//! Wall time of one health check `handle` over 1,000 connections on the in-memory adapters
//! (DESIGN §6: the budget is about parse + decide + render without I/O).
//!
//! Run: `cargo bench -p health-check --bench handle`. Prints figures; asserts nothing about
//! time (timings are not tests).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use connwatch::adapters::memory::{
    ManualClock, MemoryDirectory, MemoryPipelines, MemoryStore, RecordingMetrics, RecordingNotifier,
};
use connwatch::domain::connection::{Connection, ConnectionArn, ConnectionId, ConnectionStatus, ProviderType};
use connwatch::domain::health::HealthPolicy;
use connwatch::inventory::InventoryPolicy;
use connwatch::lifecycle::LifecyclePolicy;
use health_check::{Deps, handle};

const CONNECTIONS: usize = 1_000;
const ROUNDS: usize = 30;

fn connection(n: usize, status: ConnectionStatus) -> Connection {
    let id = ConnectionId::from_uuid(uuid::Uuid::from_u128(n as u128 + 1));
    let arn = ConnectionArn::parse(&format!("arn:aws:codeconnections:eu-west-1:123456789012:connection/{id}"))
        .expect("valid arn");
    let provider = [ProviderType::Bitbucket, ProviderType::GitHub, ProviderType::GitLab][n % 3].clone();
    Connection { arn, name: format!("conn-{n}"), provider, status, owner_account_id: None, host_arn: None }
}

fn world() -> Deps<MemoryDirectory, MemoryPipelines, MemoryStore, RecordingNotifier, RecordingMetrics, ManualClock> {
    Deps {
        directory: MemoryDirectory::default(),
        pipelines: MemoryPipelines::default(),
        store: MemoryStore::default(),
        notifier: RecordingNotifier::default(),
        metrics: RecordingMetrics::default(),
        clock: ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).single().expect("valid time")),
        health: HealthPolicy { pending_grace: Duration::from_secs(3600), detailed_metrics: false },
        lifecycle: LifecyclePolicy::default(),
        inventory: InventoryPolicy::default(),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let input = serde_json::json!({});
    let (mut first, mut steady, mut outage) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let w = world();
        for n in 0..CONNECTIONS {
            w.directory.upsert(connection(n, ConnectionStatus::Available));
        }
        let timed = || {
            let start = Instant::now();
            runtime.block_on(handle(&input, &w)).expect("handle succeeds");
            w.clock.advance(Duration::from_secs(60));
            start.elapsed()
        };
        first.push(timed());
        steady.push(timed());
        // 10% of the fleet goes ERROR: 100 pages rendered and published.
        for n in (0..CONNECTIONS).step_by(10) {
            w.directory.upsert(connection(n, ConnectionStatus::Error));
        }
        outage.push(timed());
        assert_eq!(w.notifier.published().len(), CONNECTIONS / 10);
    }
    println!("health-check handle over {CONNECTIONS} connections, in-memory adapters, median of {ROUNDS}:");
    println!("  first run (all new, 1,000 state writes): {:?}", median(first));
    println!("  steady run (no change):                  {:?}", median(steady));
    println!("  outage run (100 go ERROR, 100 pages):    {:?}", median(outage));
}
