//! HA's flags, flattened into `serve`'s. Without `--ha-etcd` none of the rest matters and no
//! etcd is contacted.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use super::timing::Timing;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct HaArgs {
    /// etcd endpoints (URL[,URL…]): run several replicas of this host with one active per
    /// task, elected through etcd (docs/HA.md). Each replica needs its own --instance-id.
    #[arg(long, env = "NTHLAYER_HA_ETCD", value_delimiter = ',')]
    pub ha_etcd: Vec<String>,
    /// Key prefix of this deployment in etcd: replicas with the same prefix share tasks.
    #[arg(long, env = "NTHLAYER_HA_PREFIX", default_value = "/nthlayer-host/default")]
    pub ha_prefix: String,
    /// Leadership lease (seconds). The renew deadline is 2/3 of it and the retry period
    /// 2/15 of it (15 s: 10 s and 2 s, client-go's defaults); failover takes at most about
    /// lease + retry period + the task's interval.
    #[arg(long, env = "NTHLAYER_HA_LEASE_SECONDS", default_value_t = 15)]
    pub ha_lease_seconds: u64,
    /// TASK=N: split a task's services over N shards with one election each (repeatable).
    /// Only measure and observe.drift split by service (docs/HA.md "Shards").
    #[arg(long = "ha-shards", value_name = "TASK=N")]
    pub ha_shards: Vec<String>,
}

/// The tasks whose work splits by service, so that a shard seeing only its services' manifests
/// does the same work as the whole task on those services: measure and observe's drift.
/// Others read across services and would silently lose or split what their shard does not
/// see: observe.collect ends every cycle with one `portfolio_status` rollup over all services
/// (N shards would post N partial portfolios), topology is a graph, correlate, respond and
/// learn join records of several services.
pub const SHARDABLE: &[&str] = &["measure", "observe.drift"];

/// Each shard is a task loop, an election and an etcd write per cycle: more than this is a
/// typo, not a deployment.
pub const MAX_SHARDS: u32 = 256;

/// What `serve` runs HA with, checked.
#[derive(Debug, Clone)]
pub struct HaConfig {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub timing: Timing,
    pub shards: BTreeMap<String, u32>,
}

impl HaArgs {
    /// `None` without `--ha-etcd`; bad values name the flag.
    pub fn config(&self) -> Result<Option<HaConfig>> {
        let endpoints: Vec<String> =
            self.ha_etcd.iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
        if endpoints.is_empty() {
            if !self.ha_shards.is_empty() {
                bail!("--ha-shards needs --ha-etcd");
            }
            return Ok(None);
        }
        let prefix = self.ha_prefix.trim_end_matches('/').to_string();
        if !prefix.starts_with('/') || prefix.len() < 2 {
            bail!("--ha-prefix {:?}: expected an absolute key prefix such as /nthlayer-host/prod", self.ha_prefix);
        }
        let timing = Timing::from_lease_seconds(self.ha_lease_seconds).context("--ha-lease-seconds")?;
        let mut shards = BTreeMap::new();
        for spec in &self.ha_shards {
            let (task, n) = spec.split_once('=').with_context(|| format!("--ha-shards {spec:?}: expected TASK=N"))?;
            let n: u32 = n.parse().ok().filter(|n| (1..=MAX_SHARDS).contains(n)).with_context(|| {
                format!("--ha-shards {spec:?}: the shard count must be a whole number from 1 to {MAX_SHARDS}")
            })?;
            shards.insert(task.to_string(), n);
        }
        if let Some((task, _)) = shards.iter().find(|(t, n)| **n > 1 && !SHARDABLE.contains(&t.as_str())) {
            bail!(
                "--ha-shards {task}=…: task {task:?} does not split by service; only {} may run as shards \
                 (docs/HA.md \"Shards\")",
                SHARDABLE.join(", ")
            );
        }
        Ok(Some(HaConfig { endpoints, prefix, timing, shards }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(etcd: &[&str], lease: u64, shards: &[&str]) -> HaArgs {
        HaArgs {
            ha_etcd: etcd.iter().map(|s| s.to_string()).collect(),
            ha_prefix: "/nthlayer-host/t/".into(),
            ha_lease_seconds: lease,
            ha_shards: shards.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn no_endpoints_is_no_ha_and_bad_values_name_their_flag() {
        assert!(args(&[], 15, &[]).config().unwrap().is_none());
        let c = args(&["http://127.0.0.1:2379"], 15, &["measure=1"]).config().unwrap().unwrap();
        assert_eq!(c.prefix, "/nthlayer-host/t");
        assert_eq!(c.shards["measure"], 1);
        let e = |a: HaArgs| format!("{:#}", a.config().unwrap_err());
        assert!(e(args(&[], 15, &["measure=2"])).contains("--ha-shards needs --ha-etcd"));
        assert!(e(args(&["h"], 0, &[])).contains("--ha-lease-seconds"));
        assert!(e(args(&["h"], 15, &["measure"])).contains("expected TASK=N"));
        assert!(e(args(&["h"], 15, &["measure=0"])).contains("from 1 to 256"));
        assert_eq!(args(&["h"], 15, &["measure=3"]).config().unwrap().unwrap().shards["measure"], 3);
        let refused = e(args(&["h"], 15, &["observe.drift=2", "observe.collect=2"]));
        assert!(refused.contains("\"observe.collect\" does not split by service"), "{refused}");
        let mut rel = args(&["h"], 15, &[]);
        rel.ha_prefix = "nthlayer".into();
        assert!(e(rel).contains("--ha-prefix"));
    }
}
