//! The background sender: delivers the spool to core, in `seq` order within each lane
//! (task), lanes side by side. A lane stops at its first entry core could not take and
//! waits for the next pass, so a task's records never overtake each other.
//!
//! Per entry, core's answer decides:
//! - 2xx, or 409 on a record (core has that id: an earlier attempt or run delivered it) —
//!   delivered; the tasks a delivered record matches are woken (wake.rs), so a woken task
//!   finds the record in core;
//! - no answer (down, timeout, 429/502/503/504, circuit open) — kept; the pass backs off;
//! - 5xx — kept and retried, [`MAX_5XX`] times, then refused for good;
//! - another 4xx — refused for good: moved to the spool's `rejected` table and logged with
//!   the task and id, counted in the heartbeat. Never silently dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::spool::{Entry, What};
use super::Outbox;
use crate::capability::core::CoreClient;
use crate::capability::services::Services;
use crate::capability::shared::envelope::RecordKind;
use crate::capability::shared::retry::RetryPolicy;
use crate::capability::shared::ClientError;
use crate::lifecycle::status::HostStatus;

/// Entries read per lane per pass (deletes are batched per pass).
const BATCH: usize = 256;
/// Attempts of an entry that core answers with 5xx before it is refused for good.
pub const MAX_5XX: u32 = 5;
/// Backoff between passes while core does not answer.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Sender {
    outbox: Arc<Outbox>,
    services: Arc<Services>,
    status: Arc<HostStatus>,
    instance_id: String,
    /// Entries core answered with 5xx, and how often (across passes).
    failures_5xx: Mutex<HashMap<i64, u32>>,
}

/// What happened to one entry.
enum Fate {
    Delivered,
    /// Core did not take it now; try again later.
    Later(String),
    Refused(u16, String),
}

/// What one lane's pass did.
#[derive(Default)]
struct LaneRun {
    delivered: Vec<i64>,
    stalled: bool,
}

impl Sender {
    pub fn new(outbox: Arc<Outbox>, services: Arc<Services>, status: Arc<HostStatus>, instance_id: String) -> Self {
        Sender { outbox, services, status, instance_id, failures_5xx: Mutex::default() }
    }

    /// The sender owns retrying: one attempt per entry per pass (the breaker makes an
    /// attempt while core is down cost nothing).
    fn core(&self) -> CoreClient {
        self.services.backends.core.with_retry(RetryPolicy::none())
    }

    /// At shutdown, after the last cycles committed: delivers what core takes within
    /// `within`, so a stopped host leaves core up to date when it can. The rest waits in
    /// the spool for the next start.
    pub async fn drain(&self, within: Duration) {
        let core = self.core();
        let drained = tokio::time::timeout(within, async {
            while self.outbox.backlog().entries > 0 && !self.pass(&core).await {}
        })
        .await;
        let b = self.outbox.backlog();
        self.status.set_outbox(self.outbox.report());
        if b.entries > 0 {
            let why = if drained.is_err() { "drain time over" } else { "core cannot take them now" };
            tracing::info!(
                records = b.records,
                entries = b.entries,
                why,
                "undelivered entries stay in the spool for the next start"
            );
        }
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let core = self.core();
        let mut backoff = FIRST_BACKOFF;
        let mut last_report = std::time::Instant::now();
        loop {
            let stalled = self.pass(&core).await;
            self.report(&mut last_report);
            let wait = if stalled {
                let w = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                Some(w)
            } else {
                backoff = FIRST_BACKOFF;
                None
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = async {
                    match wait {
                        Some(w) => tokio::time::sleep(w).await,
                        None => self.outbox.kick.notified().await,
                    }
                } => {}
            }
        }
    }

    /// One pass over every lane; true when some lane could not deliver.
    async fn pass(&self, core: &CoreClient) -> bool {
        let lanes = match self.outbox.with(|s| s.lanes()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                return true;
            }
        };
        if lanes.is_empty() {
            return false;
        }
        let mut stalled = false;
        let runs = join_all(lanes.iter().map(|lane| self.lane(core, lane))).await;
        for run in runs {
            stalled |= run.stalled;
            let seqs = run.delivered;
            if !seqs.is_empty() {
                if let Err(e) = self.outbox.with(move |s| s.delivered(&seqs)).await {
                    tracing::error!(error = %e, "cannot remove delivered entries from the spool (they will be re-sent; core dedups)");
                }
            }
        }
        match self.outbox.with(|s| s.backlog()).await {
            Ok(b) => self.outbox.set_backlog(b),
            Err(e) => tracing::error!(error = %e, "cannot read the spool's backlog"),
        }
        stalled
    }

    /// Delivers one lane's head in order until core cannot take an entry.
    async fn lane(&self, core: &CoreClient, lane: &str) -> LaneRun {
        let mut run = LaneRun::default();
        let l = lane.to_string();
        let head = match self.outbox.with(move |s| s.head(&l, BATCH)).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(lane, error = %e, "cannot read the spool");
                run.stalled = true;
                return run;
            }
        };
        for e in head {
            match self.deliver(core, &e).await {
                Fate::Delivered => run.delivered.push(e.seq),
                Fate::Later(why) => {
                    tracing::debug!(task = lane, seq = e.seq, error = %why, "core cannot take the entry yet");
                    run.stalled = true;
                    break;
                }
                Fate::Refused(status, why) if status >= 500 => {
                    let n = {
                        let mut f = self.failures_5xx.lock().expect("5xx lock");
                        let n = f.entry(e.seq).or_default();
                        *n += 1;
                        *n
                    };
                    if n < MAX_5XX {
                        tracing::warn!(task = lane, id = %e.record_id, status, attempts = n, error = %why, "core failed on a spooled entry; will retry");
                        run.stalled = true;
                        break;
                    }
                    self.failures_5xx.lock().expect("5xx lock").remove(&e.seq);
                    self.refuse(&e, status, &why).await;
                }
                Fate::Refused(status, why) => self.refuse(&e, status, &why).await,
            }
        }
        run
    }

    async fn refuse(&self, e: &Entry, status: u16, why: &str) {
        tracing::error!(task = %e.lane, what = e.what.as_str(), id = %e.record_id, status, error = %why,
            "core refused a spooled entry for good; kept in the spool's rejected table");
        let (entry, why) = (e.clone(), why.to_string());
        if let Err(err) = self.outbox.with(move |s| s.reject(&entry, status, &why)).await {
            tracing::error!(error = %err, "cannot move the refused entry aside; it stays queued");
        }
    }

    async fn deliver(&self, core: &CoreClient, e: &Entry) -> Fate {
        let r = match e.what {
            What::Assessment | What::Verdict => return self.deliver_record(core, e).await,
            What::Outcome | What::Case | What::Autonomy => {
                super::effects::deliver(&self.outbox, &self.services, core, e).await
            }
            What::State => match serde_json::from_str::<Value>(&e.body) {
                Ok(body) => core.put_component_state(&e.lane, &body).await,
                Err(err) => return Fate::Refused(0, format!("spooled state is not JSON: {err}")),
            },
            What::Heartbeat => match serde_json::from_str::<Value>(&e.body) {
                Ok(state) => core.heartbeat(crate::lifecycle::heartbeat::COMPONENT, &self.instance_id, &state).await,
                Err(err) => return Fate::Refused(0, format!("spooled heartbeat is not JSON: {err}")),
            },
        };
        fate(r)
    }

    async fn deliver_record(&self, core: &CoreClient, e: &Entry) -> Fate {
        let map: Map<String, Value> = match serde_json::from_str(&e.body) {
            Ok(m) => m,
            Err(err) => return Fate::Refused(0, format!("spooled record is not a JSON object: {err}")),
        };
        let (kind, record, what) = match e.what {
            What::Verdict => (RecordKind::Verdict, crate::lifecycle::wake::Record::Verdict, "verdict"),
            _ => (RecordKind::Assessment, crate::lifecycle::wake::Record::Assessment, "assessment"),
        };
        let r = core.submit(kind, &map, &e.component).await;
        let duplicate = matches!(&r, Err(ClientError::Rejected { status: 409, .. }));
        let f = if duplicate { Fate::Delivered } else { fate(r.map(|_| ())) };
        if let Fate::Delivered = f {
            let sub = map.get("kind").or_else(|| map.get("type")).and_then(Value::as_str).unwrap_or("");
            let service = map.get("service").and_then(Value::as_str).unwrap_or("");
            let spooled_ms = chrono::Utc::now().timestamp_millis() - e.spooled_at_ms;
            tracing::info!(task = %e.lane, id = %e.record_id, kind = sub, service, duplicate, spooled_ms, "posted {what}");
            let woken = self.services.wake.publish(&e.lane, record, &map, &e.record_id);
            if !woken.is_empty() {
                tracing::debug!(task = %e.lane, id = %e.record_id, ?woken, "record wakes subscribed tasks");
            }
        }
        f
    }

    /// Puts the spool's condition into the status (heartbeats) and, while records wait,
    /// into the log every 10 s.
    fn report(&self, last: &mut std::time::Instant) {
        let report = self.outbox.report();
        self.status.set_outbox(report.clone());
        let b = self.outbox.backlog();
        if b.records > 0 && last.elapsed() >= Duration::from_secs(10) {
            *last = std::time::Instant::now();
            tracing::warn!(records = b.records, entries = b.entries, bytes = b.bytes,
                oldest_age_s = ?report["oldest_age_seconds"].as_u64(), full = ?self.outbox.full(),
                "spool backlog waiting for core");
        }
    }
}

fn fate(r: Result<(), ClientError>) -> Fate {
    match r {
        Ok(()) => Fate::Delivered,
        // A 2xx whose body was not JSON: core took it.
        Err(ClientError::Invalid(_)) => Fate::Delivered,
        Err(ClientError::Unavailable(m) | ClientError::Timeout(m)) => Fate::Later(m),
        Err(ClientError::Rejected { status, code, detail }) => Fate::Refused(status, format!("{code}: {detail}")),
    }
}
