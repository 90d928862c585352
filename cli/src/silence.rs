//! `connwatch silence add|list|expire`: silences in a deployed state table, for maintenance
//! windows. Needs `dynamodb:Query` and `dynamodb:PutItem` on the table.

use std::io::Write;
use std::time::Duration;

use aws_config::BehaviorVersion;
use chrono::{DateTime, Utc};
use connwatch::adapters::aws::dynamodb::DynamoStore;
use connwatch::domain::silence::{Matcher, Silence};
use connwatch::error_chain;
use connwatch::ports::SilenceStore;

/// Where the table is.
#[derive(Debug)]
pub(crate) struct TableOptions {
    pub(crate) table: String,
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
}

/// What to do.
#[derive(Debug)]
pub(crate) enum Action {
    Add { matchers: Vec<String>, duration: Duration, starts_at: Option<DateTime<Utc>>, author: String, comment: String },
    List { all: bool },
    Expire { id: String },
}

/// Runs a silence command; errors are messages for a person.
pub(crate) async fn run(table: &TableOptions, action: Action, out: &mut impl Write) -> Result<(), String> {
    let store = store(table).await;
    let now = Utc::now();
    match action {
        Action::Add { matchers, duration, starts_at, author, comment } => {
            let matchers = matchers.iter().map(|m| Matcher::parse(m)).collect::<Result<Vec<_>, _>>()?;
            let silence = new_silence(matchers, starts_at.unwrap_or(now), duration, author, comment)?;
            store.put_silence(&silence).await.map_err(|e| error_chain(&e))?;
            writeln!(out, "{}", silence.id).map_err(|e| e.to_string())
        }
        Action::List { all } => {
            let mut silences = store.list_silences().await.map_err(|e| error_chain(&e))?;
            silences.retain(|s| all || s.ends_at > now);
            silences.sort_by_key(|s| s.starts_at);
            print_silences(&silences, now, out).map_err(|e| e.to_string())
        }
        Action::Expire { id } => {
            let silences = store.list_silences().await.map_err(|e| error_chain(&e))?;
            let mut silence = silences.into_iter().find(|s| s.id == id).ok_or_else(|| format!("no silence {id}"))?;
            silence.ends_at = now.min(silence.ends_at);
            store.put_silence(&silence).await.map_err(|e| error_chain(&e))?;
            writeln!(out, "expired {id}").map_err(|e| e.to_string())
        }
    }
}

/// A validated silence: at least one matcher, a positive duration, an author and a reason.
pub(crate) fn new_silence(
    matchers: Vec<Matcher>,
    starts_at: DateTime<Utc>,
    duration: Duration,
    author: String,
    comment: String,
) -> Result<Silence, String> {
    if matchers.is_empty() {
        return Err("a silence needs at least one --matcher (a silence matching everything is refused)".to_owned());
    }
    if comment.trim().is_empty() {
        return Err("a silence needs a --comment saying why".to_owned());
    }
    let length = chrono::Duration::from_std(duration).map_err(|_| "duration too long".to_owned())?;
    if length <= chrono::Duration::zero() {
        return Err("the duration must be greater than zero".to_owned());
    }
    Ok(Silence {
        id: uuid::Uuid::new_v4().to_string(),
        matchers,
        starts_at,
        ends_at: starts_at + length,
        author,
        comment,
    })
}

async fn store(table: &TableOptions) -> DynamoStore {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &table.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &table.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.table.clone())
}

fn print_silences(silences: &[Silence], now: DateTime<Utc>, out: &mut impl Write) -> std::io::Result<()> {
    if silences.is_empty() {
        return writeln!(out, "no silences");
    }
    for s in silences {
        let state = if s.is_active(now) {
            "active"
        } else if s.ends_at <= now {
            "expired"
        } else {
            "pending"
        };
        let matchers: Vec<String> = s
            .matchers
            .iter()
            .map(|m| {
                format!("{}={}", serde_json::to_value(m.field).unwrap_or_default().as_str().unwrap_or("?"), m.value)
            })
            .collect();
        writeln!(
            out,
            "{}  {state:<7}  {} → {}  by {}  [{}]  {}",
            s.id,
            s.starts_at.format("%Y-%m-%d %H:%M"),
            s.ends_at.format("%Y-%m-%d %H:%M UTC"),
            s.author,
            matchers.join(", "),
            s.comment
        )?;
    }
    Ok(())
}
