//! One election per task, on etcd: the leader of `task` is whoever holds the key
//! `<prefix>/leader/<task>`, created bound to its lease. The key's create revision is the
//! leadership's fencing token: etcd's revisions only grow, so a later leader of the same task
//! always has a larger one, and a key that expired and was taken again never has the old one.
//!
//! Why lease-bound keys with a create-revision compare rather than etcd's election service
//! (`v3election.Campaign`): Campaign is one blocking call per task that waits for the
//! previous leader and cannot be bounded by our retry period, so a replica cut off from
//! quorum would sit inside it unable to tell how stale its view is; and the fence needs the
//! token in a transaction of our own anyway. A read of the prefix per retry period plus a
//! create-if-absent transaction per free task is the same protocol client-go's lease lock
//! runs, in two requests we time ourselves.
//!
//! One lease per replica, shared by all its tasks: one keep-alive per retry period whatever
//! the number of tasks, and a dead replica's tasks all free up together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::HaConfig;
use super::timing::Timing;
use crate::capability::core::shard::Shard;
use crate::runtime::task_state::TaskState;

/// What the fence stores as a task's handover, the state's text written in as it is.
#[derive(serde::Serialize)]
struct Fenced<'a> {
    module: &'a str,
    version: &'a str,
    task: &'a str,
    replica: &'a str,
    state: Option<&'a TaskState>,
    at_ms: u64,
    interval_ms: u64,
}

/// What a replica does with a task it just won.
pub type OnWon = Box<dyn Fn(&str) + Send + Sync>;

/// A task this replica leads.
#[derive(Debug, Clone)]
pub struct Term {
    /// The leader key's create revision: the fencing token.
    pub token: i64,
    pub since: Instant,
    /// The state the previous leader handed over has not been taken up yet (cleared by the
    /// first commit of this term).
    pub fresh: bool,
    /// What the previous leader fenced last (read once, at the term's first cycle): its
    /// state record, and when this term may start its first cycle.
    pub handed: Option<(Value, SystemTime)>,
    /// A shard this replica holds but no longer should (a replica joined): no new cycle
    /// starts; its key is deleted once the cycle in flight is done.
    pub releasing: bool,
    /// A cycle passed `before` (then) and has not ended yet.
    pub busy: Option<Instant>,
    /// When the term's last committed (fenced) cycle started.
    pub last_start: Option<Instant>,
}

#[derive(Default)]
struct View {
    lease: Option<i64>,
    /// When the last successful renewal (or the grant) was *sent*.
    renewed: Option<Instant>,
    /// Tasks this replica would run.
    wanted: BTreeSet<String>,
    led: BTreeMap<String, Term>,
    /// Who leads the tasks this replica wants but does not lead.
    others: BTreeMap<String, String>,
    /// Replicas with a live presence key (read only when shards are wanted).
    live: BTreeSet<String>,
    last_error: Option<String>,
}

pub struct Elector {
    pub replica: String,
    pub prefix: String,
    pub timing: Timing,
    /// Bound on one etcd call: half the renew deadline, so a slow answer still leaves time
    /// for another attempt before leadership lapses (a round's calls are sequential).
    call: Duration,
    client: Client,
    view: Mutex<View>,
    /// Ask the loop to campaign now (a task was wanted for the first time).
    kick: Notify,
    /// Something a status reader should see changed.
    pub changed: Notify,
    /// Told the task this replica just won, so its loop need not wait out its interval.
    pub on_won: std::sync::OnceLock<OnWon>,
}

use super::presence::{bounded, key, Etcd};

impl Elector {
    /// Connects lazily: etcd may be down at start, and the loop keeps trying.
    pub async fn new(cfg: &HaConfig, replica: &str) -> anyhow::Result<Arc<Elector>> {
        let t = cfg.timing;
        let call = t.renew_deadline / 2;
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(call)
            .with_timeout(call)
            // A member that lost its leader answers at once instead of queueing the request.
            .with_require_leader(true);
        // A balanced channel that connects on first use: no request is made here.
        let client = Client::connect(&cfg.endpoints, Some(opts))
            .await
            .map_err(|e| anyhow::anyhow!("--ha-etcd {}: {e}", cfg.endpoints.join(",")))?;
        Ok(Arc::new(Elector {
            replica: replica.to_string(),
            prefix: cfg.prefix.clone(),
            timing: t,
            call,
            client,
            view: Mutex::default(),
            kick: Notify::new(),
            changed: Notify::new(),
            on_won: std::sync::OnceLock::new(),
        }))
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The term of `task` if this replica leads it *now*: elected, and its lease renewed
    /// within the renew deadline. Otherwise why not, naming the leader when known. The first
    /// call for a task enters it in the election.
    pub fn leads(&self, task: &str) -> Result<Term, String> {
        let mut v = self.view();
        if v.wanted.insert(task.to_string()) {
            self.kick.notify_one();
        }
        if !self.timing.holds(v.renewed, Instant::now()) {
            return Err(format!(
                "lease not renewed within the renew deadline of {} ms{}",
                self.timing.renew_deadline.as_millis(),
                v.last_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
            ));
        }
        match v.led.get(task) {
            Some(t) if t.releasing => Err(format!("shard {task} is being released to its owner")),
            Some(t) => Ok(t.clone()),
            None => Err(match v.others.get(task) {
                Some(r) => format!("replica {r} leads task {task}"),
                None => format!("task {task} is being campaigned for"),
            }),
        }
    }

    /// Reads what the previous leader fenced last, once per term, for the handover; and
    /// paces a shard to one cycle per interval across terms and replicas. Before a term's
    /// first cycle of a shard: refuses to start before its interval since the previous
    /// holder's last fenced cycle has passed, so a shard that moved is not run twice in one
    /// interval. Within a term: refuses a start less than 90 % of the interval after the
    /// last committed one (a retry off the scheduler's grid followed by the grid's own tick;
    /// the slack absorbs a late start on the grid). Plain tasks are not paced: they may be
    /// woken by records (event wake), and the shardable tasks have no wake rules.
    pub async fn takeover(&self, task: &str, interval: Duration) -> Result<(), String> {
        let paced = Shard::parse(task).is_some();
        let handed = match self.view().led.get(task) {
            Some(t) if t.fresh => t.handed.clone(),
            Some(_) if !paced => return Ok(()),
            Some(t) => {
                let since = t.last_start.map(|s| s.elapsed());
                return match since.filter(|d| *d < interval.mul_f64(0.9)) {
                    Some(d) => Err(format!(
                        "task {task}'s last cycle started {} ms ago, less than its interval of {} ms",
                        d.as_millis(),
                        interval.as_millis()
                    )),
                    None => Ok(()),
                };
            }
            None => return Ok(()),
        };
        let (last, not_before) = match handed {
            Some(h) => h,
            None => {
                let mut c = self.client.clone();
                let r = bounded(self.call, c.get(key(&self.prefix, "state", task), None)).await?;
                let last: Value = match r.kvs().first() {
                    Some(kv) => {
                        serde_json::from_slice(kv.value()).map_err(|e| format!("state of {task} in etcd: {e}"))?
                    }
                    None => Value::Null,
                };
                let at = last["at_ms"].as_u64().unwrap_or(0) + last["interval_ms"].as_u64().unwrap_or(0);
                let not_before = UNIX_EPOCH + Duration::from_millis(at);
                if let Some(t) = self.view().led.get_mut(task) {
                    t.handed = Some((last.clone(), not_before));
                }
                (last, not_before)
            }
        };
        match not_before.duration_since(SystemTime::now()) {
            Ok(wait) if paced && !wait.is_zero() => Err(format!(
                "task {task} last ran on replica {} less than its interval ago; its first cycle here waits {} ms",
                last["replica"].as_str().unwrap_or("?"),
                wait.as_millis()
            )),
            _ => Ok(()),
        }
    }

    /// The state the previous leader committed, for the first cycle of a term. `None`: no
    /// handover (not fresh, or no leader ever committed one of this module's).
    pub fn handed_state(&self, task: &str, module: &str) -> Option<Value> {
        let v = self.view();
        let (last, _) = v.led.get(task).filter(|t| t.fresh)?.handed.as_ref()?;
        (last["module"].as_str() == Some(module)).then(|| last.get("state").filter(|s| !s.is_null()).cloned())?
    }

    /// Marks a cycle of `task` in flight (`true`) or done, so a release waits for it.
    pub fn busy(&self, task: &str, busy: bool) {
        if let Some(t) = self.view().led.get_mut(task) {
            t.busy = busy.then(Instant::now);
        }
    }

    /// The fence: in one etcd transaction, if the leader key of `task` still has this term's
    /// create revision, store the cycle's new state as the task's handover; else nothing. Ok
    /// means the cycle may commit to the spool.
    pub async fn fence(
        &self,
        task: &str,
        module: &str,
        version: &str,
        state: Option<&TaskState>,
        interval: Duration,
    ) -> Result<(), String> {
        // A releasing term still fences the cycle it let start.
        let term = match self.leads(task) {
            Ok(t) => t,
            Err(e) => self.view().led.get(task).filter(|t| t.releasing).cloned().ok_or(e)?,
        };
        let leader = key(&self.prefix, "leader", task);
        let cmp = Compare::create_revision(leader.as_str(), CompareOp::Equal, term.token);
        // The last cycle's time goes with the state, even without one: the next leader's
        // first cycle waits for the interval since (`takeover`).
        let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let interval_ms = interval.as_millis() as u64;
        let body = Fenced { module, version, task, replica: &self.replica, state, at_ms, interval_ms };
        let body = serde_json::to_string(&body).map_err(|e| format!("fence for {task}: {e}"))?;
        let then = [TxnOp::put(key(&self.prefix, "state", task), body, None)];
        let txn = Txn::new().when([cmp]).and_then(then);
        let mut c = self.client.clone();
        let t = Instant::now();
        let r = bounded(self.call, c.txn(txn)).await.map_err(|e| format!("fence for {task}: {e}"))?;
        tracing::debug!(%task, token = term.token, passed = r.succeeded(), us = t.elapsed().as_micros() as u64, "fence");
        if !r.succeeded() {
            self.lose(task, "its leader key changed (another replica took over)");
            return Err(format!("fence for {task}: this replica's leadership (token {}) is gone", term.token));
        }
        if let Some(t) = self.view().led.get_mut(task) {
            t.fresh = false;
            t.last_start = t.busy.or(t.last_start);
        }
        Ok(())
    }

    fn lose(&self, task: &str, why: &str) {
        if self.view().led.remove(task).is_some() {
            tracing::warn!(%task, replica = %self.replica, why, "leadership lost");
            self.changed.notify_one();
        }
    }

    /// Renews the lease and campaigns for free tasks every retry period until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut keeper: Option<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream)> = None;
        loop {
            if let Err(e) = self.round(&mut keeper).await {
                let mut v = self.view();
                if v.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(replica = %self.replica, error = %e, "etcd");
                }
                v.last_error = Some(e);
            } else {
                self.view().last_error = None;
            }
            self.changed.notify_one();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.timing.retry) => {}
                _ = self.kick.notified() => {}
            }
        }
    }

    async fn round(
        &self,
        keeper: &mut Option<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream)>,
    ) -> Result<(), String> {
        let t = self.timing;
        let mut c = self.client.clone();
        let lease = self.view().lease;
        let sent = Instant::now();
        match lease {
            None => {
                let g = bounded(self.call, c.lease_grant(t.lease.as_secs() as i64, None)).await?;
                {
                    let mut v = self.view();
                    v.lease = Some(g.id());
                    v.renewed = Some(sent);
                    v.live.clear();
                }
                *keeper = None;
                tracing::info!(replica = %self.replica, lease = g.id(), ttl_s = g.ttl(), "etcd lease granted");
            }
            Some(id) => {
                if keeper.is_none() {
                    *keeper = Some(bounded(self.call, c.lease_keep_alive(id)).await?);
                }
                let (k, s) = keeper.as_mut().expect("set above");
                let renewed = async {
                    k.keep_alive().await?;
                    s.message().await
                };
                let r = match bounded(self.call, renewed).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        *keeper = None;
                        return Err("the lease's keep-alive stream closed".into());
                    }
                    Err(e) => {
                        *keeper = None;
                        return Err(e);
                    }
                };
                if r.ttl() <= 0 {
                    // Expired in etcd (a pause or a partition longer than the lease): every
                    // leader key went with it.
                    *keeper = None;
                    let mut v = self.view();
                    v.lease = None;
                    v.renewed = None;
                    let lost: Vec<String> = std::mem::take(&mut v.led).into_keys().collect();
                    drop(v);
                    tracing::warn!(replica = %self.replica, ?lost, "etcd lease expired; every leadership lost");
                    return Ok(());
                }
                self.view().renewed = Some(sent);
            }
        }
        self.campaign().await
    }

    /// Reads every leader key; takes the wanted tasks nobody holds.
    async fn campaign(&self) -> Result<(), String> {
        let (lease, wanted) = {
            let v = self.view();
            (v.lease, v.wanted.clone())
        };
        let Some(lease) = lease else { return Ok(()) };
        let mut c = self.client.clone();
        let dir = format!("{}/leader/", self.prefix);
        let r = bounded(self.call, c.get(dir.as_str(), Some(GetOptions::new().with_prefix()))).await?;
        let mut held: BTreeMap<String, (String, i64, i64)> = BTreeMap::new();
        for kv in r.kvs() {
            let task = String::from_utf8_lossy(&kv.key()[dir.len()..]).to_string();
            held.insert(task, (String::from_utf8_lossy(kv.value()).to_string(), kv.create_revision(), kv.lease()));
        }
        let live = if wanted.iter().any(|t| Shard::parse(t).is_some()) {
            self.live(&mut c, lease).await?
        } else {
            BTreeSet::new()
        };
        for task in wanted {
            let mine = super::ring::mine(&task, &self.replica, &live);
            match held.get(&task) {
                Some((_, rev, l)) if *l == lease && mine => self.won(&task, *rev, false),
                Some((_, rev, l)) if *l == lease => self.release(&mut c, &task, *rev, &live).await?,
                Some((by, _, _)) => {
                    self.lose(&task, "another replica holds its leader key");
                    self.view().others.insert(task, by.clone());
                }
                None if !mine => {
                    let owner = super::ring::owner(&task, &live).cloned().unwrap_or_default();
                    self.view().others.insert(task, format!("{owner} (its owner; taking it)"));
                }
                None => {
                    let k = key(&self.prefix, "leader", &task);
                    let txn = Txn::new().when([Compare::create_revision(k.as_str(), CompareOp::Equal, 0)]).and_then([
                        TxnOp::put(k.as_str(), self.replica.as_str(), Some(PutOptions::new().with_lease(lease))),
                    ]);
                    let r = bounded(self.call, c.txn(txn)).await?;
                    if r.succeeded() {
                        let rev = r.header().map_or(0, |h| h.revision());
                        self.won(&task, rev, true);
                    }
                }
            }
        }
        Ok(())
    }

    fn won(&self, task: &str, token: i64, new: bool) {
        let mut v = self.view();
        v.others.remove(task);
        if v.led.get(task).is_some_and(|t| t.token == token) {
            return;
        }
        let term = Term {
            token,
            since: Instant::now(),
            fresh: true,
            handed: None,
            releasing: false,
            busy: None,
            last_start: None,
        };
        v.led.insert(task.to_string(), term);
        drop(v);
        tracing::info!(%task, replica = %self.replica, token, new, "leadership acquired");
        self.changed.notify_one();
        if let Some(f) = self.on_won.get() {
            f(task);
        }
    }

    /// Gives every task up at once (a stopping replica), so others need not wait the lease out.
    pub async fn resign(&self) {
        let lease = {
            let mut v = self.view();
            v.led.clear();
            v.renewed = None;
            v.lease.take()
        };
        if let Some(id) = lease {
            let mut c = self.client.clone();
            match bounded(self.call, c.lease_revoke(id)).await {
                Ok(_) => tracing::info!(replica = %self.replica, "etcd lease revoked; leaderships released"),
                Err(e) => {
                    tracing::warn!(replica = %self.replica, error = %e, "cannot revoke the etcd lease; it expires by itself")
                }
            }
        }
    }

    /// A handle on the same connection (cheap: the channel is shared).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// This replica's etcd lease, if it has one.
    pub fn lease_id(&self) -> Option<i64> {
        self.view().lease
    }

    /// The replicas with a live presence key (putting this one's if missing), noted in the view.
    async fn live(&self, c: &mut Client, lease: i64) -> Result<BTreeSet<String>, String> {
        let live = self.etcd().live(c, &self.replica, lease).await?;
        let mut v = self.view();
        if v.live != live {
            tracing::info!(replica = %self.replica, live = ?live, "live replicas changed; shard ownership follows");
            v.live = live.clone();
            drop(v);
            self.changed.notify_one();
        }
        Ok(live)
    }

    /// Gives up `task` (a shard held under `token`) to its rightful owner: no new cycle starts
    /// from now; once none is in flight (or the one in flight is older than a lease: its
    /// replica is stopping) the leader key is deleted if it is still this term's, and the
    /// owner takes it at its next round, continuing from the state this one fenced.
    async fn release(&self, c: &mut Client, task: &str, token: i64, live: &BTreeSet<String>) -> Result<(), String> {
        {
            let mut v = self.view();
            let Some(term) = v.led.get_mut(task) else { return Ok(()) };
            if !term.releasing {
                term.releasing = true;
                tracing::info!(%task, replica = %self.replica, "shard belongs to another replica now; releasing it after its cycle in flight");
            }
            if term.busy.is_some_and(|since| since.elapsed() < self.timing.lease) {
                return Ok(());
            }
        }
        self.etcd().delete_own(c, task, token).await?;
        let owner = super::ring::owner(task, live).cloned().unwrap_or_default();
        self.lose(task, "released to its owner");
        self.view().others.insert(task.to_string(), owner.clone());
        tracing::info!(%task, replica = %self.replica, to = %owner, "shard released");
        Ok(())
    }

    fn etcd(&self) -> Etcd<'_> {
        Etcd { prefix: &self.prefix, call: self.call }
    }

    /// What the heartbeat reports: only what changes with leadership, so a steady replica
    /// adds no heartbeats.
    pub fn status(&self) -> Value {
        let v = self.view();
        json!({
            "replica": self.replica,
            "prefix": self.prefix,
            "lease_seconds": self.timing.lease.as_secs(),
            "lease_held": self.timing.holds(v.renewed, Instant::now()),
            "leader_of": v.led.iter().map(|(t, term)| (t.clone(), term.token)).collect::<BTreeMap<_, _>>(),
            "led_by_others": v.others,
            "last_error": v.last_error,
        })
    }
}
