//! The durable outbox: nothing a committed cycle produced is lost while core is down.
//!
//! A scheduled cycle's effects — records, outcome resolutions, cases, arbiter reductions
//! ([`effects::Effect`]) — are held in the rooms' per-cycle state (the module gets at once the id
//! core will store each under). When the cycle succeeds, [`Outbox::commit`] writes its
//! effects and its new state to the spool in one fsynced transaction; a failed cycle is
//! dropped with its store, so it delivers nothing. The
//! [`sender`] then delivers in order per task, retrying what core cannot take now, counting core's 409 (an id it
//! already has) as delivered — record ids are spooled with the records, so a replay after a
//! crash repeats ids core can reject, never new ones. docs/OUTBOX.md is the module author's
//! view of this.

pub mod admin;
pub mod aside;
pub mod config;
pub mod effects;
pub mod identity;
mod order;
mod pace;
pub mod posted;
pub mod retry;
pub mod schema;
pub mod sender;
pub mod spool;
pub mod state;
mod thread;

pub use effects::{Effect, Held};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::runtime::task_state::TaskState;
use spool::{Backlog, LocalState, NewEntry, Spool, What};

/// Bytes of effects one room (core, the arbiter) may hold in one cycle before committing: a
/// module cannot make the host buffer without bound (the spool's cap then bounds what is
/// kept across cycles). Records are held as their JSON text and count at what holding it
/// takes (~0.7 KB for an observe slo_status): 64 MiB holds a 10,000-service collect three
/// times over (docs/SANDBOX.md).
pub const MAX_HELD_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub dir: PathBuf,
    /// Undelivered bytes beyond which the spool is full.
    pub max_bytes: u64,
    /// Age of the oldest undelivered entry beyond which the spool is full.
    pub max_age: Duration,
    /// How long an entry core cannot take (no answer, 5xx, 429) is retried before it is
    /// set aside.
    pub retry_window: Duration,
}

impl OutboxConfig {
    /// A spool in `dir` with roomy caps (1 MiB, an hour, an hour's retry window): for tests.
    #[cfg(any(test, feature = "test-support"))]
    pub fn in_dir(dir: &std::path::Path) -> Self {
        OutboxConfig {
            dir: dir.into(),
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(3600),
            retry_window: Duration::from_secs(3600),
        }
    }
}

pub struct Outbox {
    spool: Arc<Mutex<Spool>>,
    config: OutboxConfig,
    /// Pokes the sender: something was committed.
    kick: Notify,
    /// The spool's content as of the last commit or delivery pass.
    backlog: Mutex<Backlog>,
    /// Last body cached per key, so an unchanged manifest list costs no write.
    cached: Mutex<std::collections::HashMap<String, u64>>,
    /// The core now answering (identity.rs), with the breaker's comeback count it was
    /// established at.
    identity: Mutex<Option<(u64, state::CoreIdentity)>>,
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Outbox {
    pub fn open(config: OutboxConfig) -> anyhow::Result<Arc<Outbox>> {
        let spool = Spool::open(&config.dir)?;
        let backlog = spool.backlog()?;
        if backlog.entries > 0 {
            tracing::info!(records = backlog.records, entries = backlog.entries, bytes = backlog.bytes,
                dir = %config.dir.display(), "spool holds undelivered entries from an earlier run; delivering them");
        }
        Ok(Arc::new(Outbox {
            spool: Arc::new(Mutex::new(spool)),
            config,
            kick: Notify::new(),
            backlog: Mutex::new(backlog),
            cached: Mutex::default(),
            identity: Mutex::default(),
        }))
    }

    /// Runs `f` on the spool in the blocking pool (SQLite calls block, commits fsync).
    async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Spool) -> T + Send + 'static) -> T {
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || f(&mut spool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
            .await
            .expect("spool task panicked")
    }

    /// Commits a successful cycle: its held effects, in the order the module made them, and
    /// (if it returned one) its new state, in one transaction. `Err` means nothing was
    /// written: the cycle counts as failed.
    pub async fn commit<E: Into<Effect>>(
        &self,
        task: &str,
        module: &str,
        version: &str,
        state: Option<&TaskState>,
        held: impl IntoIterator<Item = E>,
    ) -> Result<(), String> {
        let entries: Vec<NewEntry> = held.into_iter().map(|e| e.into().entry()).collect();
        let core = self.known_identity();
        let state = state.map(|s| {
            let packed = crate::outbox::state::pack(module, version, task, s);
            let saved_at = Some(packed.saved_at().to_string());
            let local = LocalState { module: module.into(), version: version.into(), state: s.clone(), saved_at, core };
            let put = NewEntry {
                what: What::State,
                component: module.into(),
                record_id: String::new(),
                body: packed.to_text(),
            };
            (local, put)
        });
        let n = entries.len();
        let kinds: Vec<&'static str> = entries.iter().map(|e| e.what.as_str()).collect();
        let (task, task_name) = (task.to_string(), task);
        let r = self
            .with(move |s| {
                s.commit(&task, &entries, state.as_ref().map(|(l, p)| (l, p.clone())))?;
                s.backlog()
            })
            .await;
        match r {
            Ok(b) => {
                tracing::debug!(records = n, backlog = b.records, "cycle committed to the spool");
                // One counter update per kind, not per record (a cycle commits thousands).
                let mut counted = std::collections::BTreeMap::<&str, u64>::new();
                kinds.iter().for_each(|k| *counted.entry(k).or_default() += 1);
                counted.iter().for_each(|(k, n)| crate::telemetry::committed(module, task_name, k, *n));
                *self.backlog.lock().expect("backlog lock") = b;
                if self.full().is_some() {
                    self.drop_heartbeats().await;
                }
                self.kick.notify_one();
                Ok(())
            }
            Err(e) => Err(format!("cannot commit the cycle to the spool in {}: {e}", self.config.dir.display())),
        }
    }

    /// The task's last committed state, if this host's spool has one.
    pub async fn local_state(&self, task: &str) -> Option<LocalState> {
        let t = task.to_string();
        match self.with(move |s| s.local_state(&t)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(task, error = %e, "cannot read the task's state from the spool; asking core");
                None
            }
        }
    }

    /// Spools a heartbeat that could not be sent (replacing an older one), unless the spool
    /// is full: heartbeats are the first thing given up.
    pub async fn heartbeat(&self, state: &Value) {
        if self.full().is_some() {
            return;
        }
        let body = state.to_string();
        if let Err(e) = self.with(move |s| s.heartbeat(&body)).await {
            tracing::warn!(error = %e, "cannot spool the heartbeat");
        }
        self.kick.notify_one();
    }

    async fn drop_heartbeats(&self) {
        match self.with(|s| s.drop_heartbeats().and_then(|n| Ok((n, s.backlog()?)))).await {
            Ok((0, _)) => {}
            Ok((n, b)) => {
                tracing::warn!(dropped = n, "spool full: undelivered heartbeat dropped");
                self.set_backlog(b);
            }
            Err(e) => tracing::warn!(error = %e, "cannot drop heartbeats from the spool"),
        }
    }

    /// Keeps `body` (JSON text) as the last good copy of `key` (written only when it changed).
    pub async fn cache_put(&self, key: &str, body: &str) {
        let h = hash(body);
        if self.cached.lock().expect("cache lock").get(key) == Some(&h) {
            return;
        }
        let (k, body) = (key.to_string(), body.to_string());
        match self.with(move |s| s.cache_put(&k, &body)).await {
            Ok(()) => {
                self.cached.lock().expect("cache lock").insert(key.to_string(), h);
            }
            Err(e) => tracing::warn!(key, error = %e, "cannot keep a copy in the spool"),
        }
    }

    /// The last good copy of `key` and its age.
    pub async fn cache_get(&self, key: &str) -> Option<(Box<serde_json::value::RawValue>, Duration)> {
        let k = key.to_string();
        let (body, at) = self.with(move |s| s.cache_get(&k)).await.ok()??;
        let age = (chrono::Utc::now().timestamp_millis() - at).max(0) as u64;
        Some((serde_json::value::RawValue::from_string(body).ok()?, Duration::from_millis(age)))
    }

    pub fn backlog(&self) -> Backlog {
        self.backlog.lock().expect("backlog lock").clone()
    }

    /// Why the spool is full, if it is.
    pub fn full(&self) -> Option<String> {
        let b = self.backlog();
        if b.bytes > self.config.max_bytes {
            return Some(format!("{} undelivered bytes exceed the cap of {}", b.bytes, self.config.max_bytes));
        }
        let age = oldest_age(&b)?;
        (age > self.config.max_age).then(|| {
            format!("oldest undelivered entry is {} s old (cap {} s)", age.as_secs(), self.config.max_age.as_secs())
        })
    }

    /// What heartbeats and logs report about the spool.
    pub fn report(&self) -> Value {
        let b = self.backlog();
        json!({
            "records": b.records,
            "entries": b.entries,
            "bytes": b.bytes,
            "oldest_age_seconds": oldest_age(&b).map(|a| a.as_secs()),
            "rejected": b.rejected,
            "retrying": b.retrying,
            "oldest_failure_age_seconds": b.oldest_failure_ms.map(|at| age_of(at).as_secs()),
            "last_error": b.last_error,
            "full": self.full(),
            "max_bytes": self.config.max_bytes,
            "max_age_seconds": self.config.max_age.as_secs(),
        })
    }

    fn set_backlog(&self, b: Backlog) {
        *self.backlog.lock().expect("backlog lock") = b;
    }
}

fn oldest_age(b: &Backlog) -> Option<Duration> {
    Some(age_of(b.oldest_ms?))
}

fn age_of(at_ms: i64) -> Duration {
    Duration::from_millis((chrono::Utc::now().timestamp_millis() - at_ms).max(0) as u64)
}

impl Outbox {
    /// Whether a new cycle of `task` may run. When the spool is full, new cycles of tasks with
    /// undelivered records are refused: they would add records the host cannot keep, and
    /// records are never dropped. (The scheduler asks through its before-cycle hook.)
    pub async fn admit(&self, task: &str) -> Result<(), String> {
        let Some(why) = self.full() else { return Ok(()) };
        let lane = task.to_string();
        let pending = self.with(move |s| s.lane_records(&lane)).await.unwrap_or(1);
        if pending == 0 {
            return Ok(());
        }
        Err(format!("spool full ({why}); {pending} records of this task wait for core"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::envelope::{Emitted, RecordKind};

    fn emitted(id: &str) -> Emitted {
        let pad = "x".repeat(100);
        let Value::Object(record) = json!({"id": id, "kind": "k", "service": "s", "created_at": "t", "pad": pad})
        else {
            unreachable!()
        };
        Emitted::new(RecordKind::Assessment, "m".into(), record)
    }

    #[tokio::test]
    async fn a_full_spool_refuses_tasks_with_records_drops_heartbeats_and_keeps_records() {
        let dir = tempfile::tempdir().unwrap();
        let config = OutboxConfig {
            dir: dir.path().into(),
            max_bytes: 600,
            max_age: Duration::from_secs(3600),
            retry_window: Duration::from_secs(60),
        };
        let outbox = Outbox::open(config).unwrap();
        outbox.heartbeat(&json!({"alive": true})).await;
        assert_eq!(outbox.backlog().entries, 0, "backlog is refreshed by commits and sender passes");
        outbox.commit("a", "m", "1", Some(&json!({"n": 1}).into()), vec![emitted("r1"), emitted("r2")]).await.unwrap();
        assert!(outbox.full().is_none(), "{:?}", outbox.backlog());
        assert!(outbox.admit("a").await.is_ok());
        outbox.commit("a", "m", "1", Some(&json!({"n": 2}).into()), vec![emitted("r3"), emitted("r4")]).await.unwrap();
        let why = outbox.full().expect("over 600 bytes");
        assert!(why.contains("exceed the cap of 600"), "{why}");
        let refused = outbox.admit("a").await.unwrap_err();
        assert!(refused.starts_with("spool full") && refused.contains("4 records"), "{refused}");
        assert!(outbox.admit("b").await.is_ok(), "a task with nothing queued still runs");
        let b = outbox.backlog();
        // The heartbeat went when the spool filled; every record and the newest state stay.
        assert_eq!((b.records, b.entries), (4, 5), "{b:?}");
        outbox.heartbeat(&json!({"alive": true})).await;
        assert_eq!(outbox.with(|s| s.head(spool::HEARTBEAT_LANE, 10)).await.unwrap().len(), 0);
        assert_eq!(outbox.local_state("a").await.unwrap().state.to_value(), json!({"n": 2}));
        assert_eq!(outbox.report()["records"], 4);
    }

    #[tokio::test]
    async fn the_last_good_copy_comes_back_with_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let config = OutboxConfig {
            dir: dir.path().into(),
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(3600),
            retry_window: Duration::from_secs(60),
        };
        let outbox = Outbox::open(config).unwrap();
        assert!(outbox.cache_get("manifests").await.is_none());
        outbox.cache_put("manifests", r#"[{"service": "a"}]"#).await;
        let (v, age) = outbox.cache_get("manifests").await.unwrap();
        assert_eq!(v.get(), r#"[{"service": "a"}]"#);
        assert!(age < Duration::from_secs(60));
    }
}
