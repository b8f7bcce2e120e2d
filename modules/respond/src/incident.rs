//! The incident record and the task state that carries incidents between cycles.
//!
//! Field order is the reference's `IncidentContext` (so state dumps read the same); the
//! fields after `metadata` are ours. Unlike the reference, this state survives restarts
//! (the host packs it into core's component-state row), which is what makes dedup hold
//! across restarts.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use nthlayer_sdk::{time, Host, Level};

pub const TERMINAL: [&str; 3] = ["resolved", "escalated", "failed"];
pub const AWAITING_APPROVAL: &str = "awaiting_approval";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Incident {
    pub id: String,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    pub trigger_source: String,
    pub trigger_verdict_ids: Vec<String>,
    pub topology: Value,
    pub triage: Option<Value>,
    pub investigation: Option<Value>,
    pub communication: Option<Value>,
    pub remediation: Option<Value>,
    pub verdict_chain: Vec<String>,
    pub last_completed_step_index: Option<i64>,
    pub error: Option<String>,
    pub metadata: Map<String, Value>,
    /// Verdict ids already written, by slot (see `verdict::slot_id`), so a retried step
    /// never writes a second verdict for the same slot.
    pub posted: Map<String, Value>,
    /// The operator's decision on the proposed remediation, once read from core.
    pub approval: Option<Value>,
    /// `created_at` of the trigger: ids derive from it, so a replay yields the same ids
    /// even across midnight.
    pub trigger_at: String,
}

impl Default for Incident {
    fn default() -> Self {
        Incident {
            id: String::new(),
            state: "triggered".into(),
            created_at: String::new(),
            updated_at: String::new(),
            trigger_source: String::new(),
            trigger_verdict_ids: Vec::new(),
            topology: json!({"services": []}),
            triage: None,
            investigation: None,
            communication: None,
            remediation: None,
            verdict_chain: Vec::new(),
            last_completed_step_index: None,
            error: None,
            metadata: Map::new(),
            posted: Map::new(),
            approval: None,
            trigger_at: String::new(),
        }
    }
}

impl Incident {
    pub fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.state.as_str())
    }
    /// The first service in the topology: what the incident is "on".
    pub fn service(&self) -> &str {
        self.topology["services"][0]["name"].as_str().unwrap_or("unknown")
    }
    /// Unix time ids are stamped with: the trigger's, else the opening's.
    pub fn id_time(&self) -> f64 {
        time::parse_iso(&self.trigger_at).or_else(|| time::parse_iso(&self.created_at)).unwrap_or(0.0)
    }
    pub fn services(&self) -> Vec<String> {
        self.topology["services"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
}

/// How much of the incidents the state keeps (`config.respond.max_incidents` and
/// `max_incident_bytes`): the reference keeps every incident until it is terminal and a day
/// old, so its memory grows with every snapshot; here the state stays within the host's
/// state cap whatever the rate of snapshots (docs/PARITY.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keep {
    pub incidents: usize,
    pub bytes: usize,
}

impl Default for Keep {
    fn default() -> Self {
        // An eighth of the host's default 8 MiB state cap: the state is parsed and written
        // every cycle, so what it keeps costs every cycle; 500 incidents is days of them at
        // a steady rate of real incidents, and active ones are kept before terminal ones.
        Keep { incidents: 500, bytes: 1 << 20 }
    }
}

/// Everything respond keeps between cycles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub snapshot_after: Option<String>,
    pub breach_after: Option<String>,
    /// Open order (ids sort by opening time only within a service, so keep our own order).
    pub incidents: Vec<Incident>,
}

impl State {
    /// A malformed incident is logged and dropped rather than failing the whole cycle.
    pub fn load(host: &dyn Host, state: Option<&Value>) -> Self {
        let Some(s) = state else { return State::default() };
        let cursor = |k: &str| s["cursors"][k].as_str().map(str::to_string);
        let mut incidents = Vec::new();
        if let Some(map) = s["incidents"].as_object() {
            for (id, v) in map {
                match serde_json::from_value::<Incident>(v.clone()) {
                    Ok(inc) => incidents.push(inc),
                    Err(e) => host.log(
                        Level::Warn,
                        "respond_state_incident_dropped",
                        &[("incident_id", id), ("error", &e.to_string())],
                    ),
                }
            }
        }
        State { snapshot_after: cursor("snapshot_after"), breach_after: cursor("breach_after"), incidents }
    }

    /// The state to save, without terminal incidents older than `retention` seconds (a
    /// malformed `updated_at` keeps the incident, as in the reference), and within `keep`:
    /// past it, terminal incidents go first, then active ones, then those awaiting an
    /// operator, each oldest update first. Returns the evicted `(id, state)` pairs to log.
    pub fn save(&self, now: f64, retention: f64, keep: Keep) -> (Value, Vec<(String, String)>) {
        let mut kept: Vec<(usize, Value, usize)> = Vec::new();
        for (i, inc) in self.incidents.iter().enumerate() {
            let expired = inc.is_terminal() && time::parse_iso(&inc.updated_at).is_some_and(|t| now - t >= retention);
            if !expired {
                let v = serde_json::to_value(inc).unwrap_or(Value::Null);
                let size = v.to_string().len();
                kept.push((i, v, size));
            }
        }
        let class = |inc: &Incident| match (inc.is_terminal(), inc.state == AWAITING_APPROVAL) {
            (true, _) => 2,
            (false, false) => 1,
            (false, true) => 0,
        };
        let updated = |inc: &Incident| time::parse_iso(&inc.updated_at).unwrap_or(f64::MIN);
        kept.sort_by(|(a, ..), (b, ..)| {
            let (a, b) = (&self.incidents[*a], &self.incidents[*b]);
            class(a).cmp(&class(b)).then(updated(b).total_cmp(&updated(a)))
        });
        let (mut bytes, mut evicted) = (0, Vec::new());
        let mut within: Vec<(usize, Value)> = Vec::new();
        for (i, v, size) in kept {
            if within.len() < keep.incidents && bytes + size <= keep.bytes {
                bytes += size;
                within.push((i, v));
            } else {
                evicted.push((self.incidents[i].id.clone(), self.incidents[i].state.clone()));
            }
        }
        within.sort_by_key(|(i, _)| *i);
        let incidents: Map<String, Value> =
            within.into_iter().map(|(i, v)| (self.incidents[i].id.clone(), v)).collect();
        let state = json!({
            "cursors": {"snapshot_after": self.snapshot_after, "breach_after": self.breach_after},
            "incidents": incidents,
        });
        (state, evicted)
    }

    /// The incident that already owns trigger `id` (a snapshot or a breach), opened by it
    /// or merged into it.
    pub fn owner_of(&self, id: &str) -> Option<usize> {
        self.incidents.iter().position(|i| {
            i.trigger_verdict_ids.iter().any(|t| t == id)
                || i.metadata
                    .get("merged_snapshot_ids")
                    .and_then(Value::as_array)
                    .is_some_and(|m| m.iter().any(|t| t == id))
        })
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Incident> {
        self.incidents.iter_mut().find(|i| i.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;

    fn inc(id: &str, state: &str, updated_at: &str) -> Incident {
        Incident { id: id.into(), state: state.into(), updated_at: updated_at.into(), ..Incident::default() }
    }

    #[test]
    fn state_round_trips_and_keeps_field_order() {
        let h = FakeHost::new();
        let mut s = State { snapshot_after: Some("2026-11-24T15:00:00.000000+00:00".into()), ..State::default() };
        s.incidents.push(Incident { trigger_verdict_ids: vec!["csn-a".into()], ..inc("INC-A", "triaging", "x") });
        let (saved, _) = s.save(h.now(), 86400.0, Keep::default());
        let keys: Vec<&String> = saved["incidents"]["INC-A"].as_object().unwrap().keys().collect();
        assert_eq!(keys[..3], ["id", "state", "created_at"]);
        assert_eq!(keys[14], "metadata");
        let back = State::load(&h, Some(&saved));
        assert_eq!(back, s);
        assert_eq!(back.owner_of("csn-a"), Some(0));
        assert_eq!(back.owner_of("csn-b"), None);
    }

    #[test]
    fn pruning_drops_only_old_terminal_incidents() {
        let h = FakeHost::new();
        let now = h.now();
        let day_ago = time::iso(now - 86400.0);
        let hour_ago = time::iso(now - 3600.0);
        let s = State {
            incidents: vec![
                inc("old-resolved", "resolved", &day_ago),
                inc("old-active", "awaiting_approval", &day_ago),
                inc("new-escalated", "escalated", &hour_ago),
                inc("bad-time", "failed", "not a time"),
            ],
            ..State::default()
        };
        let (saved, _) = s.save(now, 86400.0, Keep::default());
        let ids: Vec<&String> = saved["incidents"].as_object().unwrap().keys().collect();
        assert_eq!(ids, ["old-active", "new-escalated", "bad-time"]);
    }

    #[test]
    fn a_malformed_incident_is_dropped_with_a_log() {
        let h = FakeHost::new();
        let st = json!({"cursors": {}, "incidents": {"INC-X": {"state": 5}, "INC-Y": {"id": "INC-Y"}}});
        let s = State::load(&h, Some(&st));
        assert_eq!(s.incidents.len(), 1);
        assert!(h.logs.borrow().iter().any(|(_, m)| m == "respond_state_incident_dropped"));
    }
}
