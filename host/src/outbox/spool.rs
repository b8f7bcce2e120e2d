//! The on-disk spool: one SQLite file in the state directory.
//!
//! Why SQLite (through rusqlite, SQLite compiled in): a cycle's commit must put its records
//! and its new state on disk together or not at all, survive SIGKILL and power loss, and be
//! readable by an operator with a stock tool (`sqlite3 spool.db`). SQLite's transactions in
//! WAL mode with `synchronous=FULL` give exactly that (the commit returns after the WAL is
//! fsynced) and it is the most-used embedded store there is; redb would do the same without
//! the C build but with no tool to look inside.
//!
//! Tables:
//! - `outbox`: what is still to be sent to core, in `seq` order per `lane` (the task; the
//!   heartbeat has its own lane, a task's arbiter reductions theirs). `what` is assessment /
//!   verdict / outcome / case / autonomy / state / heartbeat. An entry that failed keeps its
//!   attempt count, first failure and last error here (aside.rs), so a restart does not reset
//!   its retry window.
//! - `task_state`: the last committed state of each task (restores without core), with its
//!   `saved_at` and the core it is for (url + marker, outbox/identity.rs).
//! - `rejected`: entries set aside (core refused them, their retry window ran out, or their
//!   body is corrupt), kept for the operator (`nthlayer-host outbox`, admin.rs).
//! - `cache`: the last good copy of reads modules need to work (manifests).
//!
//! All calls are blocking; [`super::Outbox`] runs them on the blocking pool.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::backend::envelope::{Emitted, RecordKind};

/// The lane of a task's arbiter reductions: ordered within itself, apart from the task's
/// core lane, so an arbiter that is down never holds back the task's records and state.
pub fn arbiter_lane(task: &str) -> String {
    format!("arbiter:{task}")
}

/// Lane of the heartbeat (task names are never empty).
pub const HEARTBEAT_LANE: &str = "";

/// The kinds that are a module's effects (counted as `records`, refused by a full spool).
const EFFECTS: &str = "('assessment','verdict','outcome','case','autonomy')";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Assessment,
    Verdict,
    State,
    Heartbeat,
    /// An outcome resolution: `component` holds the resolved verdict's id, `record_id` the
    /// id core stores the new verdict under, `body` the request body.
    Outcome,
    /// A case: `record_id` is its id, `body` the case.
    Case,
    /// An arbiter reduction (`{"agent","reason"}`), in the task's arbiter lane.
    Autonomy,
}

impl What {
    pub fn as_str(self) -> &'static str {
        match self {
            What::Assessment => "assessment",
            What::Verdict => "verdict",
            What::State => "state",
            What::Heartbeat => "heartbeat",
            What::Outcome => "outcome",
            What::Case => "case",
            What::Autonomy => "autonomy",
        }
    }
    fn parse(s: &str) -> rusqlite::Result<Self> {
        Ok(match s {
            "assessment" => What::Assessment,
            "verdict" => What::Verdict,
            "state" => What::State,
            "heartbeat" => What::Heartbeat,
            "outcome" => What::Outcome,
            "case" => What::Case,
            "autonomy" => What::Autonomy,
            other => return Err(rusqlite::Error::InvalidColumnName(format!("unknown outbox entry kind {other:?}"))),
        })
    }
}

/// One entry to spool.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub what: What,
    /// CloudEvents source component for records; the module for state.
    pub component: String,
    /// The record's id ("" for state and heartbeats): what core dedups on.
    pub record_id: String,
    /// JSON: the record (not yet wrapped), the packed component-state, the heartbeat state.
    pub body: String,
}

/// One spooled entry, as the sender reads it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: i64,
    pub lane: String,
    pub what: What,
    pub component: String,
    pub record_id: String,
    pub body: String,
    pub spooled_at_ms: i64,
}

impl Entry {
    /// A spooled assessment or verdict read back as the record it was committed as.
    pub fn emitted(&self) -> Result<Emitted, String> {
        let kind = match self.what {
            What::Assessment => RecordKind::Assessment,
            What::Verdict => RecordKind::Verdict,
            other => return Err(format!("spool entry {} is a {}, not a record", self.seq, other.as_str())),
        };
        // Kept as the text it was committed as: parsed only when it is wrapped for core.
        Ok(Emitted::from_text(kind, self.component.clone(), self.body.clone(), self.record_id.clone()))
    }
}

/// What the spool holds, for heartbeats, logs and the size cap.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Backlog {
    /// Effects (records, outcomes, cases, arbiter reductions) not yet delivered.
    pub records: u64,
    /// Entries of every kind not yet delivered.
    pub entries: u64,
    /// Bytes of bodies not yet delivered.
    pub bytes: u64,
    /// Spool time of the oldest undelivered entry (unix ms), if any.
    pub oldest_ms: Option<i64>,
    /// Entries set aside (core refused them, or their retry window ran out), in `rejected`.
    pub rejected: u64,
    /// Entries that failed at least once and wait for another attempt.
    pub retrying: u64,
    /// First failure of the longest-failing entry (unix ms), and its last error.
    pub oldest_failure_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A task's last committed state.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalState {
    pub module: String,
    pub version: String,
    pub state: crate::runtime::task_state::TaskState,
    /// The packed state's `saved_at` (RFC 3339), as core will hold it once delivered.
    pub saved_at: Option<String>,
    /// The core this state is for: the one the host knew when the cycle committed (None:
    /// not known yet, core had not answered since start).
    pub core: Option<super::state::CoreIdentity>,
}

pub struct Spool {
    pub(super) db: Connection,
    /// The host's lock file, held open (and locked) for the life of the spool.
    _lock: Option<std::fs::File>,
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Spool {
    /// Opens (or creates) `<dir>/spool.db` for a host. Fails when another process holds
    /// its lock file: two hosts sharing one spool would deliver each other's records twice.
    /// The lock is a separate file, not SQLite's exclusive mode, so that `outbox` commands
    /// can work on the spool while the host runs (SQLite's own locking orders their short
    /// transactions against the host's).
    pub fn open(dir: &Path) -> anyhow::Result<Spool> {
        use anyhow::Context;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create state directory {}", dir.display()))?;
        let path = dir.join("spool.db");
        let lock_path = dir.join("spool.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "spool {} is in use by another process (another host with the same --state-dir?)",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow::Error::new(e).context(format!("cannot lock {}", lock_path.display())))
            }
        }
        let mut spool = Spool::connect(&path)?;
        spool._lock = Some(lock);
        Ok(spool)
    }

    /// Opens an existing spool without the host's lock, for the `outbox` commands: they run
    /// beside a serving host and rely on SQLite's locking for their short transactions.
    pub fn open_shared(dir: &Path) -> anyhow::Result<Spool> {
        let path = dir.join("spool.db");
        if !path.is_file() {
            anyhow::bail!("no spool in state directory {} (no {} file)", dir.display(), path.display());
        }
        Spool::connect(&path)
    }

    fn connect(path: &Path) -> anyhow::Result<Spool> {
        use anyhow::Context;
        let db = Connection::open(path).with_context(|| format!("cannot open spool {}", path.display()))?;
        // A command's transaction and the host's wait for each other instead of failing.
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS outbox(
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 lane TEXT NOT NULL, what TEXT NOT NULL, component TEXT NOT NULL,
                 record_id TEXT NOT NULL, body TEXT NOT NULL, bytes INTEGER NOT NULL,
                 spooled_at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS outbox_lane ON outbox(lane, seq);
             CREATE TABLE IF NOT EXISTS task_state(
                 task TEXT PRIMARY KEY, module TEXT NOT NULL, version TEXT NOT NULL,
                 state TEXT NOT NULL, committed_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS rejected(
                 seq INTEGER PRIMARY KEY, lane TEXT NOT NULL, what TEXT NOT NULL,
                 record_id TEXT NOT NULL, body TEXT NOT NULL, status INTEGER NOT NULL,
                 error TEXT NOT NULL, rejected_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS cache(
                 key TEXT PRIMARY KEY, body TEXT NOT NULL, fetched_at INTEGER NOT NULL);",
        )
        .and_then(|()| super::schema::upgrade_bookkeeping(&db))
        .and_then(|()| db.execute_batch("COMMIT;"))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => anyhow::anyhow!(
                "spool {} is in use by another process (another host with the same --state-dir?)",
                path.display()
            ),
            _ => anyhow::Error::new(e).context(format!("cannot initialise spool {}", path.display())),
        })?;
        super::schema::add_identity_columns(&db).with_context(|| format!("cannot upgrade spool {}", path.display()))?;
        Ok(Spool { db, _lock: None })
    }

    /// A cycle's commit, in one transaction: its records, then (if it returned one) its new
    /// state — spooled for core and kept as the task's local state. An older undelivered
    /// state of the task is superseded (core only needs the newest, after its records).
    pub fn commit(
        &mut self,
        task: &str,
        records: &[NewEntry],
        state: Option<(&LocalState, NewEntry)>,
    ) -> rusqlite::Result<()> {
        let now = now_ms();
        let tx = self.db.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox(lane, what, component, record_id, body, bytes, spooled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let arbiter = arbiter_lane(task);
            for r in records {
                let lane = if r.what == What::Autonomy { arbiter.as_str() } else { task };
                insert.execute(params![lane, r.what.as_str(), r.component, r.record_id, r.body, r.body.len(), now])?;
            }
            if let Some((local, put)) = state {
                tx.execute("DELETE FROM outbox WHERE lane = ?1 AND what = 'state'", params![task])?;
                insert.execute(params![task, "state", put.component, "", put.body, put.body.len(), now])?;
                let (url, marker) = local.core.as_ref().map(|c| (&c.url, &c.marker)).unzip();
                tx.execute(
                    "INSERT INTO task_state(task, module, version, state, committed_at, saved_at, core_url, core_marker)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(task) DO UPDATE SET module = ?2, version = ?3, state = ?4, committed_at = ?5,
                         saved_at = ?6, core_url = ?7, core_marker = ?8",
                    params![task, local.module, local.version, local.state.as_str(), now, local.saved_at, url, marker],
                )?;
            }
        }
        tx.commit()
    }

    /// Spools a heartbeat, replacing any undelivered one: only the newest says anything.
    pub fn heartbeat(&mut self, body: &str) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM outbox WHERE lane = ?1", params![HEARTBEAT_LANE])?;
        tx.execute(
            "INSERT INTO outbox(lane, what, component, record_id, body, bytes, spooled_at)
             VALUES (?1, 'heartbeat', '', '', ?2, ?3, ?4)",
            params![HEARTBEAT_LANE, body, body.len(), now_ms()],
        )?;
        tx.commit()
    }

    /// Lanes with something to send.
    pub fn lanes(&self) -> rusqlite::Result<Vec<String>> {
        let mut st = self.db.prepare_cached("SELECT DISTINCT lane FROM outbox")?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect()
    }

    /// The next `limit` entries of a lane, oldest first.
    pub fn head(&self, lane: &str, limit: usize) -> rusqlite::Result<Vec<Entry>> {
        let mut st = self.db.prepare_cached(
            "SELECT seq, lane, what, component, record_id, body, spooled_at FROM outbox
             WHERE lane = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st.query_map(params![lane, limit as i64], |r| {
            Ok(Entry {
                seq: r.get(0)?,
                lane: r.get(1)?,
                what: What::parse(&r.get::<_, String>(2)?)?,
                component: r.get(3)?,
                record_id: r.get(4)?,
                body: r.get(5)?,
                spooled_at_ms: r.get(6)?,
            })
        })?;
        rows.collect()
    }

    /// Removes delivered entries. Delivery before removal means a crash in between sends
    /// them again: core answers 409 for a record it has, and a state PUT is idempotent.
    pub fn delivered(&mut self, seqs: &[i64]) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            for s in seqs {
                del.execute(params![s])?;
            }
        }
        tx.commit()
    }

    /// Drops undelivered heartbeats (the first thing given up when the spool is full).
    pub fn drop_heartbeats(&mut self) -> rusqlite::Result<usize> {
        self.db.execute("DELETE FROM outbox WHERE lane = ?1", params![HEARTBEAT_LANE])
    }

    pub fn backlog(&self) -> rusqlite::Result<Backlog> {
        let (records, entries, bytes, oldest_ms) = self.db.query_row(
            &format!(
                "SELECT COALESCE(SUM(what IN {EFFECTS}), 0), COUNT(*), COALESCE(SUM(bytes), 0),
                    MIN(spooled_at) FROM outbox"
            ),
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?)),
        )?;
        let rejected: i64 = self.db.query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get(0))?;
        let (retrying, oldest_failure_ms, last_error) = self.failing()?;
        Ok(Backlog {
            records: records as u64,
            entries: entries as u64,
            bytes: bytes as u64,
            oldest_ms,
            rejected: rejected as u64,
            retrying,
            oldest_failure_ms,
            last_error,
        })
    }

    /// Undelivered effects of one task, its arbiter lane included (the size cap refuses
    /// cycles of tasks that have some).
    pub fn lane_records(&self, lane: &str) -> rusqlite::Result<u64> {
        self.db.query_row(
            &format!("SELECT COUNT(*) FROM outbox WHERE lane IN (?1, ?2) AND what IN {EFFECTS}"),
            params![lane, arbiter_lane(lane)],
            |r| r.get::<_, i64>(0).map(|n| n as u64),
        )
    }

    pub fn local_state(&self, task: &str) -> rusqlite::Result<Option<LocalState>> {
        self.db
            .query_row(
                "SELECT module, version, state, saved_at, core_url, core_marker FROM task_state WHERE task = ?1",
                params![task],
                |r| {
                    let text: String = r.get(2)?;
                    let state = crate::runtime::task_state::TaskState::parse(text).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
                    })?;
                    let (url, marker): (Option<String>, Option<String>) = (r.get(4)?, r.get(5)?);
                    let core = url.zip(marker).map(|(url, marker)| super::state::CoreIdentity { url, marker });
                    Ok(LocalState { module: r.get(0)?, version: r.get(1)?, state, saved_at: r.get(3)?, core })
                },
            )
            .optional()
    }

    /// Whether the task's newest state is still waiting to be delivered.
    pub fn state_pending(&self, task: &str) -> rusqlite::Result<bool> {
        self.db.query_row(
            "SELECT EXISTS(SELECT 1 FROM outbox WHERE lane = ?1 AND what = 'state')",
            params![task],
            |r| r.get(0),
        )
    }

    /// Forgets a task's local state (it belongs to a core that no longer holds it).
    pub fn discard_state(&mut self, task: &str) -> rusqlite::Result<()> {
        self.db.execute("DELETE FROM task_state WHERE task = ?1", params![task]).map(|_| ())
    }

    /// Notes which core a kept local state is checked against (it had none recorded).
    pub fn set_state_core(&mut self, task: &str, core: &super::state::CoreIdentity) -> rusqlite::Result<()> {
        self.db
            .execute(
                "UPDATE task_state SET core_url = ?2, core_marker = ?3 WHERE task = ?1",
                params![task, core.url, core.marker],
            )
            .map(|_| ())
    }

    pub fn cache_put(&mut self, key: &str, body: &str) -> rusqlite::Result<()> {
        self.db.execute(
            "INSERT INTO cache(key, body, fetched_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET body = ?2, fetched_at = ?3",
            params![key, body, now_ms()],
        )?;
        Ok(())
    }

    /// The cached body and when it was fetched (unix ms).
    pub fn cache_get(&self, key: &str) -> rusqlite::Result<Option<(String, i64)>> {
        self.db
            .query_row("SELECT body, fetched_at FROM cache WHERE key = ?1", params![key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
    }
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
