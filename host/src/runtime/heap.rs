//! The host's own heap, tuned for a process that serves for months. glibc's allocator by
//! default gives each busy thread its own arena (up to 8 per core) and keeps freed memory
//! for reuse; a cycle that parses a large answer (1,000 manifests, thousands of query
//! results) leaves its peak resident in whichever arena served it, so RSS ratchets up to the
//! sum of every thread's worst cycle. Measured with every built-in module at 1,000 services
//! (docs/BENCH.md, "Soak"): ~185 MB at four minutes with the defaults, ~120 MB with two
//! arenas, 128 KiB thresholds and a periodic trim.
//!
//! The trim also runs shortly after every cycle ([`settle`]): what a cycle freed in the
//! middle of an arena stays resident until `malloc_trim` hands it back, and with only the
//! periodic trim a 30-second task kept its cycle's memory for up to a third of its interval
//! (docs/BENCH.md, "Three more cuts": the heap's mean 10.35 -> 9.10 MB side by side; no
//! CPU cost seen in the side-by-side runs).
//!
//! Only on glibc; elsewhere the system allocator is left as it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Once, OnceLock};
#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::{sync::mpsc, time::Duration};

#[cfg(all(target_os = "linux", target_env = "gnu"))]
/// How often freed heap is handed back to the kernel when no cycle asks sooner.
const TRIM_EVERY: Duration = Duration::from_secs(10);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
/// How long after a cycle's end the trim waits: long enough for the commit, the state's
/// persistence and the after-cycle hooks to free what they held, and for cycles ending
/// together to share one trim.
const SETTLE: Duration = Duration::from_millis(100);

static SETTLED: OnceLock<SyncSender<()>> = OnceLock::new();
static TUNED: Once = Once::new();
/// Trims done so far (what the tests read).
static TRIMS: AtomicU64 = AtomicU64::new(0);

/// Call before the async runtime starts its threads; later calls do nothing.
pub fn tune() {
    TUNED.call_once(tune_once);
}

fn tune_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; called before other threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            // Large buffers (answers, held records' vectors) are mapped and unmapped on
            // their own instead of staying in an arena after use.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
        }
        // One pending wake is enough: cycles that end while a trim waits share it.
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(move || loop {
            match rx.recv_timeout(TRIM_EVERY) {
                Ok(()) => {
                    std::thread::sleep(SETTLE);
                    while rx.try_recv().is_ok() {}
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            // SAFETY: malloc_trim is thread-safe; it returns free pages of every arena.
            unsafe { libc::malloc_trim(0) };
            TRIMS.fetch_add(1, Ordering::Relaxed);
        });
        match spawned {
            Ok(_) => {
                let _ = SETTLED.set(tx);
            }
            Err(e) => tracing::warn!(error = %e, "cannot start the heap trimmer; freed memory stays resident"),
        }
    }
}

/// A cycle has ended: hand what it freed back to the kernel soon. Never blocks; a no-op
/// when [`tune`] was not called (tests, other allocators).
pub fn settle() {
    if let Some(tx) = SETTLED.get() {
        let _ = tx.try_send(());
    }
}

/// Trims done since start.
pub fn trims() -> u64 {
    TRIMS.load(Ordering::Relaxed)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A cycle's end trims within the settle delay, not at the next periodic trim 10 s on.
    #[test]
    fn a_cycle_end_trims_soon() {
        tune();
        // Let a trim that an earlier settle (another test's cycle) asked for pass first.
        std::thread::sleep(SETTLE * 3);
        let before = trims();
        let asked = Instant::now();
        settle();
        while trims() == before {
            assert!(asked.elapsed() < Duration::from_secs(5), "no trim within 5 s of a cycle's end");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
