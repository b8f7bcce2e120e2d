//! An operator's hands on a task's schedule: pause, resume, run now (the admin API's
//! routes). The scheduler asks [`TaskControl::hold`] before every cycle and nothing else
//! changes in its loop.
//!
//! Pauses are written to a small JSON file in the state directory (atomically: a temporary
//! file renamed over it) so a paused task stays paused across a restart — an operator who
//! paused a misbehaving task must not find it running again after a deploy. Run-now is not
//! persisted: it means "once, now".

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The file under the state directory that holds the paused tasks.
pub const PAUSED_FILE: &str = "paused-tasks.json";

#[derive(Default)]
pub struct TaskControl {
    inner: Mutex<Inner>,
    /// Poked on every change, so a held task re-checks at once.
    changed: Notify,
}

#[derive(Default)]
struct Inner {
    paused: BTreeMap<String, String>,
    run_now: BTreeSet<String>,
    file: Option<PathBuf>,
}

/// What a held task was told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Run the cycle.
    Run,
    /// The host is shutting down while the task was paused.
    Stop,
}

impl TaskControl {
    /// Reads the paused tasks kept in `dir` (none if the file is absent) and persists every
    /// later change there.
    pub fn open(dir: &Path) -> Result<Arc<Self>> {
        let file = dir.join(PAUSED_FILE);
        let paused = match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{}: not the paused-task file this host writes", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        let c = TaskControl::default();
        *c.inner.lock().expect("control lock") = Inner { paused, run_now: BTreeSet::new(), file: Some(file) };
        Ok(Arc::new(c))
    }

    /// The paused tasks with when each was paused (RFC 3339).
    pub fn paused(&self) -> BTreeMap<String, String> {
        self.inner.lock().expect("control lock").paused.clone()
    }

    pub fn is_paused(&self, task: &str) -> bool {
        self.inner.lock().expect("control lock").paused.contains_key(task)
    }

    /// Pauses (`true`) or resumes a task; returns whether that changed anything. The file is
    /// written before the change is announced: a pause the API confirmed survives a crash.
    pub fn set_paused(&self, task: &str, paused: bool) -> Result<bool> {
        let mut inner = self.inner.lock().expect("control lock");
        let mut next = inner.paused.clone();
        let changed = if paused { next.insert(task.to_string(), now()).is_none() } else { next.remove(task).is_some() };
        if changed {
            if let Some(file) = &inner.file {
                write_atomically(file, serde_json::to_string_pretty(&next)?.as_bytes())?;
            }
            inner.paused = next;
        }
        drop(inner);
        self.changed.notify_waiters();
        Ok(changed)
    }

    /// Asks for one cycle of `task` now, paused or not (the task's wake signal does the
    /// waking; this flag lets a paused task through once).
    pub fn run_now(&self, task: &str) {
        self.inner.lock().expect("control lock").run_now.insert(task.to_string());
        self.changed.notify_waiters();
    }

    /// Called by the scheduler before each cycle: returns at once unless the task is paused;
    /// a paused task waits here until resumed, asked to run now, or shutdown.
    pub async fn hold(&self, task: &str, shutdown: &CancellationToken) -> Hold {
        let mut logged = false;
        loop {
            let notified = self.changed.notified();
            {
                let mut inner = self.inner.lock().expect("control lock");
                if inner.run_now.remove(task) || !inner.paused.contains_key(task) {
                    return Hold::Run;
                }
            }
            if !logged {
                tracing::info!(%task, "task paused by the operator; its cycles wait until it is resumed");
                logged = true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Hold::Stop,
                _ = notified => {}
            }
        }
    }
}

impl Hold {
    pub fn stops(self) -> bool {
        self == Hold::Stop
    }
}

/// The scheduler's one call before each cycle; without a control (one-shot commands,
/// tests) every cycle runs.
pub async fn hold(control: &std::sync::OnceLock<Arc<TaskControl>>, task: &str, shutdown: &CancellationToken) -> Hold {
    match control.get() {
        Some(c) => c.hold(task, shutdown).await,
        None => Hold::Run,
    }
}

/// Now, as the status reports spell times (RFC 3339, seconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A scheduler instant as wall-clock time, for the status reports.
pub fn at(when: tokio::time::Instant) -> String {
    let ahead = when.saturating_duration_since(tokio::time::Instant::now());
    let t = chrono::Utc::now() + chrono::Duration::from_std(ahead).unwrap_or_default();
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed over
/// `path`: a reader (or a restart after a crash) sees the old file or the new, never half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_pause_survives_reopening_and_run_now_lets_one_cycle_through() {
        let dir = tempfile::tempdir().unwrap();
        let c = TaskControl::open(dir.path()).unwrap();
        assert!(c.set_paused("measure", true).unwrap());
        assert!(!c.set_paused("measure", true).unwrap(), "already paused");
        let again = TaskControl::open(dir.path()).unwrap();
        assert!(again.is_paused("measure"), "{:?}", again.paused());

        let stop = CancellationToken::new();
        let held = tokio::time::timeout(Duration::from_millis(50), again.hold("measure", &stop)).await;
        assert!(held.is_err(), "a paused task waits");
        again.run_now("measure");
        assert_eq!(again.hold("measure", &stop).await, Hold::Run);
        assert!(again.is_paused("measure"), "run-now does not resume");
        assert!(again.set_paused("measure", false).unwrap());
        assert_eq!(again.hold("measure", &stop).await, Hold::Run);
        assert!(TaskControl::open(dir.path()).unwrap().paused().is_empty());
        assert_eq!(again.hold("other", &stop).await, Hold::Run);
    }
}
