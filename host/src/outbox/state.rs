//! Task state, persisted in nthlayer-core's component-state table.
//!
//! Core 4.0.1 keeps only `last_cursor` (string), `hysteresis_state` and `dedup_cache` (JSON)
//! and silently drops every other key — which is how the Python workers lose all their state.
//! We pack ours into `hysteresis_state` with a format tag, so we can tell our rows from rows
//! another writer left (those restore as "no state", never as garbage).

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::backend::core::CoreClient;
use crate::backend::ClientError;
use crate::runtime::task_state::TaskState;

/// Which core: its URL and the marker it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreIdentity {
    pub url: String,
    pub marker: String,
}

impl fmt::Display for CoreIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (marker {})", self.url, self.marker)
    }
}

pub const FORMAT: &str = "nthlayer-host/1";

/// The component-state key reserved for the core's identity marker (outbox/identity.rs):
/// core 4.0.1 has no identity of its own, so the host gives it one.
pub const MARKER_KEY: &str = "nthlayer-host.core-identity";

/// What a component-state row held.
#[derive(Debug, Clone, PartialEq)]
pub enum Restored {
    /// Our packed state.
    Ours { state: TaskState, version: String },
    /// No row, or a row we did not write (e.g. the Python workers' all-null rows).
    Nothing,
}

/// Our component-state row, serialised with the state's text written in as it is (no tree
/// of it is built). Fields in this order: the same bytes the row always had.
#[derive(Serialize)]
pub struct Packed<'a> {
    last_cursor: (),
    hysteresis_state: Hysteresis<'a>,
    dedup_cache: (),
}

#[derive(Serialize)]
struct Hysteresis<'a> {
    format: &'static str,
    module: &'a str,
    version: &'a str,
    task: &'a str,
    saved_at: String,
    state: &'a TaskState,
}

impl Packed<'_> {
    /// When it was packed (RFC 3339): what core will hold as `saved_at`.
    pub fn saved_at(&self) -> &str {
        &self.hysteresis_state.saved_at
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("strings and validated JSON always serialise")
    }
}

pub fn pack<'a>(module: &'a str, version: &'a str, task: &'a str, state: &'a TaskState) -> Packed<'a> {
    let saved_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    Packed {
        last_cursor: (),
        hysteresis_state: Hysteresis { format: FORMAT, module, version, task, saved_at, state },
        dedup_cache: (),
    }
}

pub fn unpack(row: Option<&Value>) -> Restored {
    let Some(h) = row.and_then(|r| r.get("hysteresis_state")) else { return Restored::Nothing };
    if h.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Restored::Nothing;
    }
    match h.get("state") {
        Some(s) if !s.is_null() => Restored::Ours {
            state: TaskState::from_value(s),
            version: h.get("version").and_then(Value::as_str).unwrap_or_default().to_string(),
        },
        _ => Restored::Nothing,
    }
}

/// When our packed state was saved (`saved_at`, RFC 3339), if the row is ours: what tells
/// a core that holds the host's latest state from one that holds an older one or none.
pub fn saved_at(packed: Option<&Value>) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let h = packed?.get("hysteresis_state")?;
    if h.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(h.get("saved_at")?.as_str()?).ok()
}

#[derive(Clone)]
pub struct StateStore {
    core: CoreClient,
}

impl StateStore {
    pub fn new(core: CoreClient) -> Self {
        StateStore { core }
    }

    pub async fn load(&self, task: &str) -> Result<Restored, ClientError> {
        let row = self.core.get_component_state(task).await?;
        Ok(unpack(row.as_ref()))
    }

    /// Restores a task's state, retrying while core cannot answer: running with empty state
    /// would overwrite good state at the end of the first cycle. Returns None on shutdown.
    pub async fn restore_until_ok(&self, task: &str, shutdown: &CancellationToken) -> Option<Restored> {
        let mut wait = Duration::from_secs(1);
        loop {
            match self.load(task).await {
                Ok(r) => return Some(r),
                Err(e) => {
                    tracing::warn!(task, error = %e, retry_in = ?wait, "cannot read task state from core; task waits instead of starting empty");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    pub async fn save(&self, module: &str, version: &str, task: &str, state: &TaskState) -> Result<(), ClientError> {
        self.core.put_component_state(task, &pack(module, version, task, state)).await
    }

    /// A copy that gives up after one attempt (shutdown must be bounded).
    pub fn impatient(&self) -> Self {
        StateStore { core: self.core.with_retry(crate::backend::retry::RetryPolicy::none()) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(packed: &Packed) -> Value {
        serde_json::from_str(&packed.to_text()).unwrap()
    }

    #[test]
    fn pack_survives_cores_key_filter_and_unpacks() {
        let state = TaskState::from(json!({"seq": 42}));
        let row = row(&pack("observe", "0.1.0", "observe.collect", &state));
        // Only these three keys survive core 4.0.1.
        let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["last_cursor", "hysteresis_state", "dedup_cache"]);
        let served = json!({"component":"observe.collect","last_cursor":null,"hysteresis_state":row["hysteresis_state"],"dedup_cache":null});
        assert_eq!(unpack(Some(&served)), Restored::Ours { state, version: "0.1.0".into() });
    }

    /// The row written from the state's text is the row the host always wrote from its tree:
    /// spools and core rows from before restore, and core gets the same bytes.
    #[test]
    fn the_packed_text_is_the_bytes_the_tree_made() {
        let tree = json!({"incidents": {"z-1": {"score": 0.1, "at": 1.7e9, "note": "é \"q\" \\ \u{1}", "n": [-0.0, 1e300]}},
            "a": null, "b": [true, {}], "k": 18446744073709551615u64});
        let state = TaskState::from(tree.clone());
        let packed = pack("respond", "4.0", "respond.tick", &state);
        let before = json!({
            "last_cursor": null,
            "hysteresis_state": {
                "format": FORMAT, "module": "respond", "version": "4.0", "task": "respond.tick",
                "saved_at": packed.saved_at(), "state": tree,
            },
            "dedup_cache": null,
        });
        assert_eq!(packed.to_text(), before.to_string());
        assert_eq!(unpack(Some(&before)), Restored::Ours { state, version: "4.0".into() });
    }

    #[test]
    fn saved_at_is_read_from_our_rows_only() {
        let row = row(&pack("measure", "1", "measure.evaluate", &json!({}).into()));
        let at = saved_at(Some(&row)).expect("our row has saved_at");
        assert!(chrono::Utc::now().signed_duration_since(at).num_seconds() < 60);
        assert_eq!(saved_at(Some(&json!({"hysteresis_state": {"saved_at": "2026-01-01T00:00:00Z"}}))), None);
        assert_eq!(saved_at(None), None);
    }

    #[test]
    fn foreign_rows_restore_as_nothing() {
        let python = json!({"component":"measure","last_cursor":null,"hysteresis_state":null,"dedup_cache":null});
        assert_eq!(unpack(Some(&python)), Restored::Nothing);
        assert_eq!(unpack(Some(&json!({"hysteresis_state":{"fraud:rr":"breach"}}))), Restored::Nothing);
        assert_eq!(unpack(None), Restored::Nothing);
    }
}
