//! Typed configuration from `CONNWATCH_*` environment variables (DESIGN §4.6), parsed once at
//! start-up. A missing or malformed value stops the cold start with a message naming the
//! variable. Durations are human (`15m`, `4h`, `7d`).

use std::time::Duration;

use crate::domain::metric::DEFAULT_NAMESPACE;
use crate::inventory::InventoryPolicy;
use crate::lifecycle::LifecyclePolicy;

/// The DynamoDB state table. Required by every function.
pub const TABLE_NAME: &str = "CONNWATCH_TABLE_NAME";
/// SNS topic for critical alerts. Unset or empty: critical alerts are not published (counted).
pub const CRITICAL_TOPIC_ARN: &str = "CONNWATCH_CRITICAL_TOPIC_ARN";
/// SNS topic for warnings.
pub const WARNING_TOPIC_ARN: &str = "CONNWATCH_WARNING_TOPIC_ARN";
/// SNS topic for info notices.
pub const INFO_TOPIC_ARN: &str = "CONNWATCH_INFO_TOPIC_ARN";
/// CloudWatch namespace (default `Connwatch`).
pub const METRIC_NAMESPACE: &str = "CONNWATCH_METRIC_NAMESPACE";
/// Per-connection metric dimensions (default `false`; each one is a billed custom metric).
pub const DETAILED_METRICS: &str = "CONNWATCH_DETAILED_METRICS";
/// Re-send a firing alert after this long (default `4h`).
pub const REPEAT_INTERVAL: &str = "CONNWATCH_REPEAT_INTERVAL";
/// Keep resolved alerts and processed event ids this long (default `7d`).
pub const RETENTION: &str = "CONNWATCH_RETENTION";
/// Where runbooks live; `#<kind anchor>` is appended (default `docs/alerts.md`).
pub const RUNBOOK_BASE_URL: &str = "CONNWATCH_RUNBOOK_BASE_URL";
/// Timeout of one AWS SDK operation, retries included (default `10s`).
pub const SDK_TIMEOUT: &str = "CONNWATCH_SDK_TIMEOUT";
/// How long a connection may stay PENDING before `connection.pending` (default `1h`).
pub const PENDING_GRACE: &str = "CONNWATCH_PENDING_GRACE";
/// Which listing APIs to call: `codeconnections`, `codestar-connections` or both, comma
/// separated (default both).
pub const CONNECTION_APIS: &str = "CONNWATCH_CONNECTION_APIS";

/// Re-read a pipeline definition after this long (default `1h`).
pub const INVENTORY_MAX_AGE: &str = "CONNWATCH_INVENTORY_MAX_AGE";
/// `GetPipeline` calls per health check run at most (default `20`).
pub const INVENTORY_BATCH: &str = "CONNWATCH_INVENTORY_BATCH";
/// Consecutive source failures of a pipeline after which `pipeline.source_failed` becomes
/// critical (default `3`).
pub const SOURCE_FAILURE_ESCALATION: &str = "CONNWATCH_SOURCE_FAILURE_ESCALATION";
/// Notify `pipeline.failed` for failures outside the source stage (default `false`; the
/// metric is always emitted).
pub const NOTIFY_PIPELINE_FAILURES: &str = "CONNWATCH_NOTIFY_PIPELINE_FAILURES";

/// Roles whose IAM changes are audited besides the pipelines' own (comma-separated names or
/// ARNs, `*` wildcards; default none).
pub const WATCHED_ROLES: &str = "CONNWATCH_WATCHED_ROLES";

/// Only alarms whose name starts with this are routed (default `connwatch-`).
pub const ALARM_PREFIX: &str = "CONNWATCH_ALARM_PREFIX";

/// A configuration value that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{0} is required but not set")]
    Missing(&'static str),
    /// A variable has a value that cannot be parsed.
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// The SNS topic of each severity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    /// Critical topic ARN.
    pub critical: Option<String>,
    /// Warning topic ARN.
    pub warning: Option<String>,
    /// Info topic ARN.
    pub info: Option<String>,
}

/// Settings every function shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// The state table.
    pub table_name: String,
    /// Topics per severity.
    pub topics: Topics,
    /// CloudWatch namespace.
    pub metric_namespace: String,
    /// Per-connection dimensions.
    pub detailed_metrics: bool,
    /// Lifecycle settings.
    pub lifecycle: LifecyclePolicy,
    /// SDK operation timeout.
    pub sdk_timeout: Duration,
}

/// Which connection listing APIs to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionApis {
    /// `codeconnections` (`ListConnections` on the current API).
    pub codeconnections: bool,
    /// `codestar-connections` (`ListConnections` on the original API).
    pub codestar_connections: bool,
}

/// Settings of the health check.
#[derive(Debug, Clone)]
pub struct HealthCheckConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// PENDING grace period.
    pub pending_grace: Duration,
    /// Listing APIs.
    pub apis: ConnectionApis,
    /// Pipeline inventory refresh.
    pub inventory: InventoryPolicy,
}

/// Settings of the pipeline-events function.
#[derive(Debug, Clone)]
pub struct PipelineEventsConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// Consecutive source failures before `pipeline.source_failed` turns critical.
    pub escalate_after: u32,
    /// Whether `pipeline.failed` is notified.
    pub notify_pipeline_failures: bool,
    /// Pipeline inventory freshness (on-demand reads).
    pub inventory: InventoryPolicy,
}

impl PipelineEventsConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&Env(|name: &str| std::env::var(name).ok()))
    }

    /// Reads the settings through a lookup function.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_lookup(env)?,
            escalate_after: env.count(SOURCE_FAILURE_ESCALATION, 3)?,
            notify_pipeline_failures: env.bool(NOTIFY_PIPELINE_FAILURES, false)?,
            inventory: inventory_policy(env)?,
        })
    }
}

/// Settings of the api-audit function.
#[derive(Debug, Clone)]
pub struct ApiAuditConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// Extra roles whose IAM changes are audited.
    pub watched_roles: Vec<String>,
}

impl ApiAuditConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&Env(|name: &str| std::env::var(name).ok()))
    }

    /// Reads the settings through a lookup function.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_lookup(env)?,
            watched_roles: env
                .get(WATCHED_ROLES)
                .map(|v| v.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }
}

/// Settings of the alarm-router function.
#[derive(Debug, Clone)]
pub struct AlarmRouterConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// The alarm name prefix of this stack's alarms.
    pub alarm_prefix: String,
}

impl AlarmRouterConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&Env(|name: &str| std::env::var(name).ok()))
    }

    /// Reads the settings through a lookup function.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_lookup(env)?,
            alarm_prefix: env.get(ALARM_PREFIX).unwrap_or_else(|| "connwatch-".to_owned()),
        })
    }
}

fn inventory_policy<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<InventoryPolicy, ConfigError> {
    let defaults = InventoryPolicy::default();
    Ok(InventoryPolicy {
        max_age: env.duration(INVENTORY_MAX_AGE, defaults.max_age)?,
        batch: env.count(INVENTORY_BATCH, 20)? as usize,
    })
}

/// Reads variables through a lookup function, so tests need not touch the process env.
#[derive(Debug, Clone, Copy)]
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A variable's value; empty counts as unset (CloudFormation passes `""` for unset
    /// optional parameters).
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.get(name).map_or(Ok(default), |value| parse_duration(name, &value))
    }

    fn count(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        self.get(name).map_or(Ok(default), |value| {
            value.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| ConfigError::Invalid {
                name,
                value: value.clone(),
                reason: "expected a whole number greater than zero".to_owned(),
            })
        })
    }

    fn bool(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => {
                Err(ConfigError::Invalid { name, value: other.to_owned(), reason: "expected true or false".to_owned() })
            }
        }
    }
}

/// Parses a human duration (`90s`, `15m`, `4h`, `7d`); zero is refused.
pub fn parse_duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name, value: value.to_owned(), reason };
    let duration = humantime::parse_duration(value).map_err(|e| invalid(format!("{e} (examples: 15m, 4h, 7d)")))?;
    if duration.is_zero() {
        return Err(invalid("must be greater than zero".to_owned()));
    }
    Ok(duration)
}

impl CommonConfig {
    /// Reads the shared settings.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let defaults = LifecyclePolicy::default();
        Ok(Self {
            table_name: env.required(TABLE_NAME)?,
            topics: Topics {
                critical: env.get(CRITICAL_TOPIC_ARN),
                warning: env.get(WARNING_TOPIC_ARN),
                info: env.get(INFO_TOPIC_ARN),
            },
            metric_namespace: env.get(METRIC_NAMESPACE).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            detailed_metrics: env.bool(DETAILED_METRICS, false)?,
            lifecycle: LifecyclePolicy {
                repeat_interval: env.duration(REPEAT_INTERVAL, defaults.repeat_interval)?,
                retention: env.duration(RETENTION, defaults.retention)?,
                runbook_base: env.get(RUNBOOK_BASE_URL).unwrap_or(defaults.runbook_base),
            },
            sdk_timeout: env.duration(SDK_TIMEOUT, Duration::from_secs(10))?,
        })
    }
}

impl ConnectionApis {
    /// Parses `codeconnections,codestar-connections` (either or both).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let mut apis = Self { codeconnections: false, codestar_connections: false };
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "codeconnections" => apis.codeconnections = true,
                "codestar-connections" => apis.codestar_connections = true,
                other => {
                    return Err(ConfigError::Invalid {
                        name: CONNECTION_APIS,
                        value: value.to_owned(),
                        reason: format!("unknown API `{other}` (use codeconnections, codestar-connections)"),
                    });
                }
            }
        }
        if !apis.codeconnections && !apis.codestar_connections {
            return Err(ConfigError::Invalid {
                name: CONNECTION_APIS,
                value: value.to_owned(),
                reason: "at least one API must be enabled".to_owned(),
            });
        }
        Ok(apis)
    }
}

impl Default for ConnectionApis {
    fn default() -> Self {
        Self { codeconnections: true, codestar_connections: true }
    }
}

impl HealthCheckConfig {
    /// Reads the health check's settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&Env(|name: &str| std::env::var(name).ok()))
    }

    /// Reads the health check's settings through a lookup function.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_lookup(env)?,
            pending_grace: env.duration(PENDING_GRACE, Duration::from_secs(3600))?,
            apis: env.get(CONNECTION_APIS).map_or(Ok(ConnectionApis::default()), |v| ConnectionApis::parse(&v))?,
            inventory: inventory_policy(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_table_is_set() {
        let config = HealthCheckConfig::from_lookup(&env(&[(TABLE_NAME, "connwatch")])).unwrap();
        assert_eq!(config.common.table_name, "connwatch");
        assert_eq!(config.pending_grace, Duration::from_secs(3600));
        assert_eq!(config.common.lifecycle.repeat_interval, Duration::from_secs(4 * 3600));
        assert_eq!(config.common.metric_namespace, "Connwatch");
        assert!(!config.common.detailed_metrics);
        assert_eq!(config.apis, ConnectionApis::default());
        assert_eq!(config.common.topics, Topics::default());
    }

    #[test]
    fn missing_table_names_the_variable() {
        let error = HealthCheckConfig::from_lookup(&env(&[])).unwrap_err();
        assert_eq!(error.to_string(), "CONNWATCH_TABLE_NAME is required but not set");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (name, value) in [
            (PENDING_GRACE, "soon"),
            (PENDING_GRACE, "0s"),
            (DETAILED_METRICS, "maybe"),
            (CONNECTION_APIS, "github"),
            (CONNECTION_APIS, ","),
        ] {
            let error = HealthCheckConfig::from_lookup(&env(&[(TABLE_NAME, "t"), (name, value)])).unwrap_err();
            assert!(error.to_string().starts_with(&format!("{name}=")), "{error}");
        }
    }

    #[test]
    fn pipeline_settings_have_defaults_and_validate_counts() {
        let config = PipelineEventsConfig::from_lookup(&env(&[(TABLE_NAME, "t")])).unwrap();
        assert_eq!(config.escalate_after, 3);
        assert!(!config.notify_pipeline_failures);
        assert_eq!(config.inventory.batch, 20);
        for bad in ["0", "-1", "three"] {
            let error = PipelineEventsConfig::from_lookup(&env(&[(TABLE_NAME, "t"), (SOURCE_FAILURE_ESCALATION, bad)]))
                .unwrap_err();
            assert!(error.to_string().starts_with("CONNWATCH_SOURCE_FAILURE_ESCALATION="), "{error}");
        }
    }

    #[test]
    fn human_durations_and_lists_parse() {
        let config = HealthCheckConfig::from_lookup(&env(&[
            (TABLE_NAME, "t"),
            (PENDING_GRACE, "15m"),
            (REPEAT_INTERVAL, "2h 30m"),
            (CONNECTION_APIS, "codeconnections"),
            (CRITICAL_TOPIC_ARN, "arn:aws:sns:eu-west-1:123456789012:critical"),
            (WARNING_TOPIC_ARN, ""),
            (DETAILED_METRICS, "TRUE"),
        ]))
        .unwrap();
        assert_eq!(config.pending_grace, Duration::from_secs(900));
        assert_eq!(config.common.lifecycle.repeat_interval, Duration::from_secs(9000));
        assert_eq!(config.apis, ConnectionApis { codeconnections: true, codestar_connections: false });
        assert_eq!(config.common.topics.critical.as_deref(), Some("arn:aws:sns:eu-west-1:123456789012:critical"));
        assert_eq!(config.common.topics.warning, None, "empty means unset");
        assert!(config.common.detailed_metrics);
    }
}
