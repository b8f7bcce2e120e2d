//! Event wake across replicas: a record delivered by replica A wakes a subscribed task that
//! replica B leads. Each replica announces the (record, kind) pairs its tasks' wake rules ask
//! for under `<prefix>/wake-kinds/<replica>` (bound to its lease, so a dead replica's go with
//! it); a replica that delivers a record of a kind another one asks for puts it under
//! `<prefix>/wake/<replica>`; every replica watches `<prefix>/wake/` and matches what others
//! put against its own rules (the wake room), as if it had delivered the record itself.
//!
//! Why announce kinds instead of relaying every record: one etcd write per delivered record
//! would put observe's whole output through etcd; wake rules name a handful of kinds
//! (breaches, unhealthy SLO statuses), so only those cost a write. A missed relay (etcd
//! down, a watch re-established) costs latency only: the interval stays the fallback.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use etcd_client::{EventType, GetOptions, PutOptions, WatchOptions};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::elector::Elector;
use crate::backend::envelope::RecordKind;
use crate::capability::Services;
use crate::wake::WakeBus;

fn spell(r: RecordKind) -> &'static str {
    match r {
        RecordKind::Assessment => "assessment",
        RecordKind::Verdict => "verdict",
    }
}

fn parse(s: &str) -> Option<RecordKind> {
    match s {
        "assessment" => Some(RecordKind::Assessment),
        "verdict" => Some(RecordKind::Verdict),
        _ => None,
    }
}

/// Largest record relayed (etcd's requests are capped at 1.5 MiB by default).
const MAX_RELAYED: usize = 256 << 10;

pub struct WakeRelay {
    elector: Arc<Elector>,
    services: Arc<Services>,
    /// "record:kind" that other replicas' tasks wake on.
    wanted: Mutex<BTreeSet<String>>,
}

impl WakeRelay {
    pub fn start(elector: Arc<Elector>, services: Arc<Services>, stop: CancellationToken) {
        let me = Arc::new(WakeRelay { elector, services, wanted: Mutex::default() });
        let relay = me.clone();
        me.bus().set_relay(Box::new(move |task, record, map, id| relay.relay(task, record, map, id)));
        tokio::spawn(me.clone().announce(stop.clone()));
        tokio::spawn(me.watch(stop));
    }

    fn bus(&self) -> &WakeBus {
        &self.services.wake
    }

    fn key(&self, what: &str) -> String {
        format!("{}/{what}/{}", self.elector.prefix, self.elector.replica)
    }

    /// Puts a delivered record where the others watch, if some other replica wakes on its kind.
    fn relay(&self, task: &str, record: RecordKind, map: &Map<String, Value>, id: &str) {
        let kind = map.get(record.subtype_key()).and_then(Value::as_str).unwrap_or_default();
        if !self.wanted.lock().expect("relay lock").contains(&format!("{}:{kind}", spell(record))) {
            return;
        }
        let body = json!({"task": task, "record": spell(record), "id": id, "map": map}).to_string();
        if body.len() > MAX_RELAYED {
            tracing::debug!(%task, id, bytes = body.len(), "record too large to relay; other replicas wake at their interval");
            return;
        }
        let (mut c, key) = (self.elector.client(), self.key("wake"));
        tokio::spawn(async move {
            if let Err(e) = c.put(key, body, None).await {
                tracing::debug!(error = %e, "cannot relay a wake to other replicas");
            }
        });
    }

    /// Every retry period: announces this replica's wake kinds (again when its lease
    /// changed) and reads the others'.
    async fn announce(self: Arc<Self>, stop: CancellationToken) {
        let mut last: Option<(i64, String)> = None;
        let dir = format!("{}/wake-kinds/", self.elector.prefix);
        loop {
            let mine: Vec<String> = self.bus().kinds().into_iter().map(|(r, k)| format!("{}:{k}", spell(r))).collect();
            let mine = serde_json::to_string(&mine).expect("strings serialise");
            let mut c = self.elector.client();
            if let Some(lease) = self.elector.lease_id() {
                if last.as_ref() != Some(&(lease, mine.clone())) {
                    let put = c.put(self.key("wake-kinds"), mine.clone(), Some(PutOptions::new().with_lease(lease)));
                    if put.await.is_ok() {
                        last = Some((lease, mine));
                    }
                }
            }
            if let Ok(r) = c.get(dir.as_str(), Some(GetOptions::new().with_prefix())).await {
                let own = self.key("wake-kinds");
                let wanted = r
                    .kvs()
                    .iter()
                    .filter(|kv| kv.key() != own.as_bytes())
                    .filter_map(|kv| serde_json::from_slice::<Vec<String>>(kv.value()).ok())
                    .flatten()
                    .collect();
                *self.wanted.lock().expect("relay lock") = wanted;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.elector.timing.retry) => {}
            }
        }
    }

    /// Watches the others' relayed records and wakes the tasks here that match them.
    async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let dir = format!("{}/wake/", self.elector.prefix);
        let own = self.key("wake");
        loop {
            let mut c = self.elector.client();
            if let Ok(mut events) = c.watch(dir.as_str(), Some(WatchOptions::new().with_prefix())).await {
                loop {
                    let msg = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = events.message() => m,
                    };
                    let Ok(Some(resp)) = msg else { break };
                    for ev in resp.events().iter().filter(|e| e.event_type() == EventType::Put) {
                        let Some(kv) = ev.kv().filter(|kv| kv.key() != own.as_bytes()) else { continue };
                        let Ok(v) = serde_json::from_slice::<Value>(kv.value()) else { continue };
                        let (Some(task), Some(record), Some(id), Some(map)) = (
                            v["task"].as_str(),
                            v["record"].as_str().and_then(parse),
                            v["id"].as_str(),
                            v["map"].as_object(),
                        ) else {
                            continue;
                        };
                        let woken = self.bus().publish_here(task, record, map, id);
                        if !woken.is_empty() {
                            tracing::debug!(%task, id, ?woken, "record relayed from another replica wakes tasks");
                        }
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.elector.timing.retry) => {}
            }
        }
    }
}
