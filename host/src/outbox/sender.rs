//! The background sender: delivers the spool to core, in `seq` order within each lane
//! (task) where order matters, lanes side by side. A lane stops at its first entry core could not take and
//! backs off on its own (the other lanes go on), so a task's records never overtake each other.
//!
//! Per entry, core's answer decides, by class (never by count):
//! - 2xx, or 409 on a record (core has that id: an earlier attempt or run delivered it) —
//!   delivered; the tasks a delivered record matches are woken (wake.rs), so a woken task
//!   finds the record in core;
//! - no answer (down, timeout, circuit open), 5xx, 429, or 409 on a state/heartbeat —
//!   transient: kept and retried with capped, jittered exponential backoff for the retry
//!   window (`--delivery-retry-seconds`); attempts and first failure are kept in the spool.
//!   Core 4.0.1 answers 500 for every store error, a passing "database is locked" included,
//!   so a 5xx says nothing about the payload;
//! - another 4xx — a payload core will never take: set aside at once (the spool's
//!   `rejected` table) with core's status and answer, for the operator (`outbox` commands);
//! - a transient failure past the window, or a spooled body that is not JSON — set aside too.
//!
//! Requests to core in flight are bounded across lanes (`--delivery-concurrency`); within a
//! lane only runs of order-free entries (order.rs: a cycle's `slo_status` records) go out
//! concurrently, and the lane moves past a run only once every member is delivered.
//! Delivery rate and lag go into the heartbeat's `outbox.delivery` (pace.rs).
//!
//! Delivery never waits for a commit while something is due: a pass that made progress is
//! followed at once by the next; the sender sleeps only when every lane is empty or backing off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use tokio::sync::Semaphore;

use super::pace::Pace;
use super::posted::{posted_labeled, Posted};
use super::retry::{classify, Backoff, Class, Fate};
use super::spool::{Entry, What};
use super::Outbox;
use crate::backend::arbiter::ArbiterClient;
use crate::backend::core::CoreClient;
use crate::backend::core::COMPONENT;
use crate::backend::retry::RetryPolicy;
use crate::backend::ClientError;
use crate::wake::WakeBus;

/// Entries read per lane per pass (deletes are batched per pass).
const BATCH: usize = 256;

/// How often the backlog is counted while delivery goes on: the count scans every
/// undelivered entry, so once per pass of 256 grew with the square of a backlog.
const RECOUNT: Duration = Duration::from_secs(1);

/// Where the sender delivers: core, and the arbiter when one is configured (autonomy
/// reductions); then the wake bus. The outbox knows the clients, never the capability rooms that built them.
#[derive(Clone)]
pub struct Targets {
    pub core: CoreClient,
    pub arbiter: Option<ArbiterClient>,
    /// Told of every record core took, so the tasks subscribed to it run (outbox/posted.rs).
    pub wake: Arc<WakeBus>,
}

/// Who hears how the backlog changed: the host's status, whose heartbeat and surfaces
/// report it. A trait, so the outbox never imports the lifecycle above it.
pub trait BacklogWatch: Send + Sync {
    fn backlog(&self, report: Value);
}

/// Nobody listening (tests, one-shot commands).
impl BacklogWatch for () {
    fn backlog(&self, _report: Value) {}
}

pub struct Sender {
    outbox: Arc<Outbox>,
    targets: Targets,
    status: Arc<dyn BacklogWatch>,
    instance_id: String,
    /// How long an entry is retried after its first failure before it is set aside.
    window: Duration,
    /// Lanes backing off after a failure: not tried again before their time.
    waits: Mutex<HashMap<String, Backoff>>,
    /// Requests to core in flight at once, across lanes (`--delivery-concurrency`).
    slots: Semaphore,
    concurrency: usize,
    pace: Mutex<Pace>,
    /// Requests in flight now, and the most there ever were (the heartbeat's
    /// `peak_in_flight`: whether `--delivery-concurrency` is what limits delivery).
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// When the backlog was last counted (see [`Sender::recount`]).
    counted: Mutex<Option<Instant>>,
}

/// Requests in flight when no `--delivery-concurrency` is given (outbox/config.rs).
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How long the sender's thread lets core's answers gather before it waits for them, while
/// two or more requests are in flight. Core answers a run of records one at a time, each
/// long after the host finished with the one before (~0.5 ms at 1,000 services on the
/// bench machine against the host's tens of µs), so without this the thread slept and was
/// woken once per answer, and the wake-up was the largest part of a record's host CPU.
/// After this pause the thread takes every answer that came in one wake-up and sends the
/// next requests. Core's queue does not run dry as long as the pause is shorter than the
/// time the slots' requests wait in it (8 slots × ~0.5 ms); an answer is taken up at most
/// this much after it came; a lane delivering one entry at a time never pauses.
const GATHER: Duration = Duration::from_millis(2);

/// What one lane's pass did.
#[derive(Default)]
struct LaneRun {
    delivered: Vec<i64>,
    /// Entries set aside (progress too: the lane moved on).
    set_aside: usize,
    stalled: bool,
    /// Spooled -> delivered (ms) of the last delivered entry, and the largest.
    newest_lag_ms: Option<i64>,
    largest_lag_ms: Option<i64>,
}

impl LaneRun {
    fn took(&mut self, e: &Entry) {
        self.delivered.push(e.seq);
        let lag = (super::spool::now_ms() - e.spooled_at_ms).max(0);
        self.newest_lag_ms = Some(lag);
        self.largest_lag_ms = self.largest_lag_ms.max(Some(lag));
    }
}

/// What became of one attempted entry.
enum Settled {
    Delivered,
    SetAside,
    Stalled,
}

/// What one pass did.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    /// Entries delivered or set aside: the next pass follows at once.
    pub progress: usize,
    /// The earliest time a backing-off lane is due again.
    pub next_due: Option<Instant>,
}

impl Sender {
    pub fn new(outbox: Arc<Outbox>, targets: Targets, status: Arc<dyn BacklogWatch>, instance_id: String) -> Self {
        let window = outbox.config.retry_window;
        let concurrency = DEFAULT_CONCURRENCY;
        let (slots, pace) = (Semaphore::new(concurrency), Mutex::default());
        let (in_flight, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        Sender {
            outbox,
            targets,
            status,
            instance_id,
            window,
            waits: Mutex::default(),
            slots,
            concurrency,
            pace,
            in_flight,
            peak,
            counted: Mutex::default(),
        }
    }

    /// At most `n` (at least 1) requests to core in flight at once, across all lanes.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self.slots = Semaphore::new(self.concurrency);
        self
    }

    /// The sender owns retrying: one attempt per entry per pass (the breaker makes an
    /// attempt while core is down cost nothing).
    fn core(&self) -> CoreClient {
        self.targets.core.with_retry(RetryPolicy::none())
    }

    /// At shutdown, after the last cycles committed: delivers what core takes within
    /// `within`, so a stopped host leaves core up to date when it can. The rest waits in
    /// the spool for the next start.
    pub async fn drain(&self, within: Duration) {
        let core = self.core();
        // Backoffs do not apply: this is the last chance before the host stops.
        self.waits.lock().expect("waits lock").clear();
        let drained = tokio::time::timeout(within, async {
            while self.outbox.backlog().entries > 0 && self.pass(&core, true).await.progress > 0 {}
        })
        .await;
        let b = self.outbox.backlog();
        self.status.backlog(self.full_report());
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

    /// Delivers until `shutdown`, on a thread and runtime of its own (thread.rs), with its
    /// own connections to core.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let watch = self.clone();
        let gather = move || {
            if watch.in_flight.load(Ordering::Relaxed) >= 2 {
                std::thread::sleep(GATHER);
            }
        };
        super::thread::run("nthlayer-delivery", move || self.serve(shutdown), gather).await
    }

    /// The client the running sender delivers with: its own connections (thread.rs).
    fn own_core(&self) -> CoreClient {
        match self.targets.core.with_own_connections() {
            Ok(own) => own.with_retry(RetryPolicy::none()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the sender's own client for core; sharing the host's");
                self.core()
            }
        }
    }

    async fn serve(self: Arc<Self>, shutdown: CancellationToken) {
        let core = self.own_core();
        let mut last_report = Instant::now();
        loop {
            let pass = self.pass(&core, false).await;
            self.report(&mut last_report);
            if shutdown.is_cancelled() {
                return;
            }
            if pass.progress > 0 {
                // More may be due (a lane holds more than a batch): no waiting for a commit.
                tokio::task::yield_now().await;
                continue;
            }
            let due = async {
                match pass.next_due {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.outbox.kick.notified() => {}
                _ = due => {}
            }
        }
    }

    /// One pass over every lane that is due (all of them with `all`).
    async fn pass(&self, core: &CoreClient, all: bool) -> Pass {
        let lanes = match self.outbox.with(|s| s.lanes()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                return Pass { progress: 0, next_due: Some(Instant::now() + Duration::from_secs(1)) };
            }
        };
        let now = Instant::now();
        let due: Vec<&String> = {
            let mut waits = self.waits.lock().expect("waits lock");
            waits.retain(|lane, _| lanes.contains(lane));
            lanes.iter().filter(|l| all || waits.get(*l).is_none_or(|w| w.due() <= now)).collect()
        };
        let mut pass = Pass::default();
        let runs = join_all(due.iter().map(|lane| self.lane(core, lane))).await;
        for (lane, run) in due.iter().zip(runs) {
            pass.progress += run.delivered.len() + run.set_aside;
            self.pace.lock().expect("pace lock").note(
                run.delivered.len() as u64,
                run.newest_lag_ms,
                run.largest_lag_ms,
            );
            if !run.delivered.is_empty() && lane.as_str() != super::spool::HEARTBEAT_LANE {
                // One line per lane and pass (each record's own line is at debug, posted.rs).
                tracing::info!(task = %lane, delivered = run.delivered.len(), set_aside = run.set_aside,
                    lag_ms = run.largest_lag_ms, "delivered to core");
            }
            {
                let mut waits = self.waits.lock().expect("waits lock");
                if run.stalled {
                    waits.entry((*lane).clone()).or_default().fail();
                } else {
                    waits.remove(*lane);
                }
            }
            let seqs = run.delivered;
            if !seqs.is_empty() {
                if let Err(e) = self.outbox.with(move |s| s.delivered(&seqs)).await {
                    tracing::error!(error = %e, "cannot remove delivered entries from the spool (they will be re-sent; core dedups)");
                }
            }
        }
        pass.next_due = self.waits.lock().expect("waits lock").values().map(Backoff::due).min();
        self.recount(pass.progress).await;
        pass
    }

    /// Counts the spool's backlog again (a scan of every undelivered entry), after a pass
    /// that left nothing to do, or at most every [`RECOUNT`] while delivery goes on: in
    /// between, the kept count (heartbeats, the spool's size cap) is up to that old.
    async fn recount(&self, progress: usize) {
        {
            let mut last = self.counted.lock().expect("counted lock");
            if progress > 0 && last.is_some_and(|t| t.elapsed() < RECOUNT) {
                return;
            }
            *last = Some(Instant::now());
        }
        match self.outbox.with(|s| s.backlog()).await {
            Ok(b) => self.outbox.set_backlog(b),
            Err(e) => tracing::error!(error = %e, "cannot read the spool's backlog"),
        }
    }

    /// Delivers one lane's head in order until core cannot take an entry; runs of
    /// order-free entries (order.rs) concurrently, the lane moving past a run only once all
    /// of it is delivered.
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
        for group in super::order::runs(head) {
            let fates = join_all(group.iter().map(|e| self.attempt(core, e))).await;
            for (e, fate) in group.iter().zip(fates) {
                match self.settle(lane, e, fate).await {
                    Settled::Delivered => {
                        crate::telemetry::delivered(e.what.as_str());
                        run.took(e)
                    }
                    Settled::SetAside => run.set_aside += 1,
                    Settled::Stalled => run.stalled = true,
                }
            }
            if run.stalled {
                break;
            }
        }
        run
    }

    /// One delivery attempt, holding one of the sender's `--delivery-concurrency` slots.
    async fn attempt(&self, core: &CoreClient, e: &Entry) -> Fate {
        let _slot = self.slots.acquire().await.expect("the sender's slots are never closed");
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        let fate = self.deliver(core, e).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        fate
    }

    /// The most requests to core that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The spool's report with the delivery pace (pace.rs) in `delivery`.
    fn full_report(&self) -> serde_json::Value {
        let mut report = self.outbox.report();
        report["delivery"] = self.pace.lock().expect("pace lock").report(self.concurrency);
        report["delivery"]["peak_in_flight"] = self.peak_in_flight().into();
        report
    }

    /// What core's answer means for the entry: delivered, set aside, or retried later.
    async fn settle(&self, lane: &str, e: &Entry, fate: Fate) -> Settled {
        let (status, why) = match classify(fate) {
            Class::Delivered => return Settled::Delivered,
            Class::Permanent(status, why) => {
                self.refuse(e, status, &why, 1).await;
                return Settled::SetAside;
            }
            Class::Transient(status, why) => (status, why),
        };
        let (seq, w) = (e.seq, why.clone());
        let failures = match self.outbox.with(move |s| s.failed(seq, status, &w)).await {
            Ok(f) => f,
            Err(err) => {
                tracing::error!(task = lane, seq, error = %err, "cannot record the failed attempt in the spool");
                return Settled::Stalled;
            }
        };
        let failing_ms = (super::spool::now_ms() - failures.first_failed_ms).max(0) as u64;
        if Duration::from_millis(failing_ms) >= self.window {
            let why = format!(
                "retry window of {} s ran out after {} attempts; last error: {why}",
                self.window.as_secs(),
                failures.attempts
            );
            self.refuse(e, status, &why, 0).await;
            return Settled::SetAside;
        }
        tracing::debug!(task = lane, seq, id = %e.record_id, status, attempts = failures.attempts,
            failing_s = failing_ms / 1000, error = %why, "core cannot take the entry yet; will retry");
        Settled::Stalled
    }

    /// Sets an entry aside; `uncounted` as in [`super::spool::Spool::set_aside`].
    async fn refuse(&self, e: &Entry, status: u16, why: &str, uncounted: u32) {
        tracing::error!(task = %e.lane, what = e.what.as_str(), id = %e.record_id, status, error = %why,
            "spooled entry set aside; kept in the spool's rejected table (nthlayer-host outbox list)");
        crate::telemetry::set_aside(e.what.as_str());
        let (entry, why) = (e.clone(), why.to_string());
        if let Err(err) = self.outbox.with(move |s| s.set_aside(&entry, status, &why, uncounted)).await {
            tracing::error!(error = %err, "cannot move the refused entry aside; it stays queued");
        }
    }

    async fn deliver(&self, core: &CoreClient, e: &Entry) -> Fate {
        let r = match e.what {
            What::Assessment | What::Verdict => return self.deliver_record(core, e).await,
            What::Outcome | What::Case | What::Autonomy => {
                super::effects::deliver(&self.outbox, self.targets.arbiter.as_ref(), core, e).await
            }
            What::State => match serde_json::from_str::<&serde_json::value::RawValue>(&e.body) {
                Ok(body) => core.put_component_state(&e.lane, body).await,
                Err(err) => return Fate::Refused(0, format!("spooled state is not JSON: {err}")),
            },
            What::Heartbeat => match serde_json::from_str::<Value>(&e.body) {
                Ok(state) => core.heartbeat(COMPONENT, &self.instance_id, &state).await,
                Err(err) => return Fate::Refused(0, format!("spooled heartbeat is not JSON: {err}")),
            },
        };
        fate(r)
    }

    async fn deliver_record(&self, core: &CoreClient, e: &Entry) -> Fate {
        let record = match e.emitted() {
            Ok(r) => r,
            Err(why) => return Fate::Refused(0, why),
        };
        let (envelope, labels) = match core.envelope(&record) {
            Ok(written) => written,
            Err(err) => return fate(Err(err)),
        };
        let r = core.submit_envelope(&record, envelope).await;
        let duplicate = matches!(&r, Err(ClientError::Rejected { status: 409, .. }));
        let f = if duplicate { Fate::Delivered } else { fate(r.map(|_| ())) };
        if let Fate::Delivered = f {
            let spooled_ms = chrono::Utc::now().timestamp_millis() - e.spooled_at_ms;
            let p = Posted { task: &e.lane, record: &record, id: &record.id, duplicate, spooled_ms };
            posted_labeled(&self.targets.wake, p, labels);
        }
        f
    }

    /// Puts the spool's condition into the status (heartbeats) and, while records wait,
    /// into the log every 10 s.
    fn report(&self, last: &mut Instant) {
        let report = self.full_report();
        self.status.backlog(report.clone());
        let b = self.outbox.backlog();
        if (b.records > 0 || b.retrying > 0) && last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            tracing::warn!(records = b.records, entries = b.entries, bytes = b.bytes,
                oldest_age_s = ?report["oldest_age_seconds"].as_u64(), rejected = b.rejected,
                retrying = b.retrying, oldest_failure_age_s = ?report["oldest_failure_age_seconds"].as_u64(),
                last_error = ?b.last_error, full = ?self.outbox.full(),
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
        // Core's answer in its own shape, kept with the entry if it is set aside.
        Err(ClientError::Rejected { status, code, detail }) => {
            Fate::Refused(status, serde_json::json!({"error": code, "detail": detail}).to_string())
        }
    }
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
