//! A shard of a task sees only its services. Under `--ha-shards TASK=N` the host runs the
//! task as N instances named `TASK#KofN` (K from 1 to N), each with its own election, state
//! chain and spool state (docs/HA.md "Shards"); this file decides which services an instance
//! owns and filters what the guest reads of core's manifests accordingly, so the module
//! needs no change.
//!
//! The split is by a stable hash of the service name (SHA-256, not `std`'s hasher, whose
//! output may change between Rust releases): every replica, every version of the host, puts a
//! service in the same shard. A sharded module must not assume that `get-manifests` lists
//! every service (cross-service totals, dependency graphs), nor that `get-manifest` answers
//! for a service outside its shard (it gets core's 404).

use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::bindings::{HostError, Rejection};

/// Which slice of a task's services an instance runs: `k` of `n`, `k` from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u32,
    pub n: u32,
}

impl Shard {
    /// The shard instance a task name denotes (`measure#2of4`), with the task's own name;
    /// `None` for a plain task.
    pub fn parse(instance: &str) -> Option<(&str, Shard)> {
        let (task, rest) = instance.split_once('#')?;
        let (k, n) = rest.split_once("of")?;
        let (k, n) = (k.parse().ok()?, n.parse().ok()?);
        (1..=n).contains(&k).then_some((task, Shard { k, n }))
    }

    /// The instance name of shard `k` of `n` of `task`.
    pub fn name(task: &str, k: u32, n: u32) -> String {
        format!("{task}#{k}of{n}")
    }

    /// Whether `service` falls in this shard.
    pub fn owns(&self, service: &str) -> bool {
        of(service, self.n) == self.k
    }
}

/// The task's own name: what the guest is told it runs.
pub fn base(instance: &str) -> &str {
    Shard::parse(instance).map_or(instance, |(t, _)| t)
}

/// A stable 64-bit hash of some parts, shared by the service split and HA's ownership.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// The shard (1..=n) a service belongs to.
pub fn of(service: &str, n: u32) -> u32 {
    (stable_hash(&[service]) % u64::from(n.max(1))) as u32 + 1
}

/// What the guest of `task` may see of a manifests read: for a shard instance, only its
/// services (a manifest without a usable name goes to shard 1, so exactly one shard warns
/// about it); a single manifest outside the shard is core's 404. Plain tasks see all.
/// Only a shard's answer is read and rebuilt; every other task gets core's text untouched.
pub fn visible(task: &str, what: &str, raw: Box<RawValue>) -> Result<Box<RawValue>, HostError> {
    let Some((_, shard)) = Shard::parse(task) else { return Ok(raw) };
    let v: Value = serde_json::from_str(raw.get()).map_err(|e| HostError::Unavailable(format!("core's {what}: {e}")))?;
    let mine_only = visible_value(shard, task, what, v)?;
    serde_json::value::to_raw_value(&mine_only).map_err(|e| HostError::Unavailable(format!("core's {what}: {e}")))
}

fn visible_value(shard: Shard, task: &str, what: &str, v: Value) -> Result<Value, HostError> {
    let mine = |m: &Value| match m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(name) => shard.owns(name),
        None => shard.k == 1,
    };
    match (what, v) {
        ("manifests", Value::Array(list)) => Ok(Value::Array(list.into_iter().filter(|m| mine(m)).collect())),
        ("manifest", m) if !mine(&m) => {
            let service = m.get("name").cloned().unwrap_or(Value::Null);
            Err(HostError::Rejected(Rejection {
                status: 404,
                code: "not_found".into(),
                detail: json!({ "service": service, "outside_shard": task }).to_string(),
            }))
        }
        (_, v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_round_trip_and_plain_tasks_are_not_shards() {
        assert_eq!(Shard::parse(&Shard::name("measure", 2, 4)), Some(("measure", Shard { k: 2, n: 4 })));
        assert_eq!(Shard::parse("measure"), None);
        assert_eq!(Shard::parse("measure#5of4"), None);
        assert_eq!(Shard::parse("measure#0of4"), None);
        assert_eq!(base("collect#1of3"), "collect");
        assert_eq!(base("collect"), "collect");
    }

    /// Every service is in exactly one shard, and the shards see disjoint manifest lists
    /// whose union is core's answer.
    const PINNED: u64 = 938_369_117_357_137_733;

    fn raw(v: &Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(v).unwrap()
    }

    fn parsed(r: &RawValue) -> Value {
        serde_json::from_str(r.get()).unwrap()
    }

    #[test]
    fn each_service_is_visible_to_exactly_one_shard() {
        let list: Vec<Value> = (0..200).map(|i| json!({"name": format!("svc-{i}")})).chain([json!({"x": 1})]).collect();
        let mut seen = vec![0u32; list.len()];
        for k in 1..=4 {
            let task = Shard::name("measure", k, 4);
            let mine = parsed(&visible(&task, "manifests", raw(&Value::Array(list.clone()))).unwrap());
            let mine = mine.as_array().unwrap();
            assert!(mine.len() > 20, "shard {k} got only {} of 201", mine.len());
            for m in mine {
                seen[list.iter().position(|x| x == m).unwrap()] += 1;
            }
            for m in &list[..200] {
                let one = visible(&task, "manifest", raw(m));
                assert_eq!(one.is_ok(), mine.contains(m), "{task} {m}");
            }
        }
        assert!(seen.iter().all(|n| *n == 1), "{seen:?}");
        // A task that is not a shard gets core's text byte for byte.
        let text = r#"[{"name":"caf\u00e9", "tier" : 1}]"#;
        let untouched = visible("measure", "manifests", RawValue::from_string(text.into()).unwrap()).unwrap();
        assert_eq!(untouched.get(), text);
        // Stable across processes and releases: pinned values.
        assert_eq!(stable_hash(&["agent-a"]), PINNED, "a changed hash would move every service");
        assert_ne!(stable_hash(&["a", "bc"]), stable_hash(&["ab", "c"]));
    }
}
