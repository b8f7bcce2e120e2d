//! Guest CPU accounting: what a cycle's `cpu_ms` budget is charged.
//!
//! Wasmtime's call hooks bracket every transition between guest and host code — imports,
//! WASI calls (a clock wait is a `poll` host call), libcalls such as `memory.grow`, and the
//! epoch callback itself. What is charged is the OS thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), not wall time, over segments that run while the guest holds
//! its thread:
//! - a segment starts when the guest is entered (`CallingWasm`) or resumes after its thread
//!   was given away (`ReturningFromHost` after a suspension), and ends when the guest returns
//!   (`ReturningFromWasm`) or the future driving the store returns `Pending` ([`charged`]);
//! - so waiting — on a backend, a WASI sleep, an LLM call, an execution slot, or in the
//!   executor's run queue — never counts, however many calls a cycle makes, and neither does
//!   another task's work on the same thread;
//! - a host call that completes without giving the thread away (a log line, a clock read, a
//!   held record) stays inside the segment: its host-side work is done for the guest and is
//!   charged to it. That saves the two clock reads (system calls) such a call used to cost,
//!   most of a trivial cycle's hooks (docs/BENCH.md);
//! - a segment cannot span two OS threads: the fiber moves only while suspended, and a
//!   suspension ends the segment.
//!
//! The epoch callback (every [`super::engine::TICK`] of guest execution at most) checks the
//! charge against the budget, as does every resumption and return, so a runaway loop is
//! stopped within one tick of its budget.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::CallHook;

/// CPU time of the calling OS thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on every
    // Linux and macOS the host supports, and clock_gettime only writes to `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The error a store's call fails with once the guest's charge passes its budget.
#[derive(Debug)]
pub struct CpuExceeded;
impl std::fmt::Display for CpuExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cpu budget exceeded")
    }
}
impl std::error::Error for CpuExceeded {}

/// A store's clock, shared by its call hooks and the future that drives the store
/// ([`charged`]): the future is what sees the guest's thread given away.
pub type SharedClock = Arc<Mutex<GuestClock>>;

/// The charge of one store (one cycle, or one `describe()`).
#[derive(Debug)]
pub struct GuestClock {
    budget: Duration,
    /// Guest CPU charged in closed segments.
    used: Duration,
    /// Thread CPU time at which the open segment began (None: closed).
    segment: Option<Duration>,
    /// Guest CPU since the guest last gave its thread back to the executor.
    since_yield: Duration,
    /// When the guest's thread was last given away (wall clock), to tell how long it waited.
    /// Not read at every host call: on this kind of VM even the monotonic clock is a system
    /// call.
    suspended_at: Option<Instant>,
}

/// What a hook asks of the store after the clock has been updated.
#[derive(Debug, PartialEq)]
pub enum AfterHook {
    Nothing,
    /// The guest comes back from a host call long enough for the epoch to have moved on:
    /// re-arm the deadline one tick ahead, so the guest is not interrupted the moment it
    /// resumes for a tick it did not run.
    RearmDeadline,
}

impl GuestClock {
    pub fn new(budget: Duration) -> Self {
        GuestClock { budget, used: Duration::ZERO, segment: None, since_yield: Duration::ZERO, suspended_at: None }
    }

    pub fn shared(budget: Duration) -> SharedClock {
        Arc::new(Mutex::new(GuestClock::new(budget)))
    }

    /// Updates the clock at a guest/host transition. The thread's CPU clock (a system call)
    /// is read only where a segment must begin or end: when the guest is entered from the
    /// top, when it returns, and when it resumes after its thread was given away
    /// ([`GuestClock::suspended`]). A host call that completes without giving the thread
    /// away leaves the segment open: its few microseconds of host work on the guest's behalf
    /// are charged to the guest, and two clock reads per call are saved.
    pub fn on_hook(&mut self, hook: CallHook, tick: Duration) -> Result<AfterHook, CpuExceeded> {
        match hook {
            CallHook::CallingWasm => {
                self.close();
                self.segment = Some(thread_cpu());
                Ok(AfterHook::Nothing)
            }
            CallHook::ReturningFromHost => {
                if self.segment.is_some() {
                    // The call never gave the thread away: the segment simply goes on.
                    return Ok(AfterHook::Nothing);
                }
                self.segment = Some(thread_cpu());
                self.check()?;
                let waited = self.suspended_at.take().map(|t| t.elapsed()).unwrap_or_default();
                Ok(if waited >= tick { AfterHook::RearmDeadline } else { AfterHook::Nothing })
            }
            CallHook::CallingHost => {
                // Over budget in closed segments: stop here, without reading the clock.
                if self.used > self.budget {
                    return Err(CpuExceeded);
                }
                Ok(AfterHook::Nothing)
            }
            CallHook::ReturningFromWasm => {
                self.close();
                self.check()?;
                Ok(AfterHook::Nothing)
            }
        }
    }

    /// The future driving the store returned `Pending`: the guest's thread goes to other
    /// work, so the open segment ends here (waiting is never charged), and the guest has
    /// yielded.
    pub fn suspended(&mut self) {
        if self.segment.is_some() {
            self.close();
            self.suspended_at = Some(Instant::now());
        }
        self.since_yield = Duration::ZERO;
    }

    /// Err once the charge exceeds the budget.
    pub fn check(&self) -> Result<(), CpuExceeded> {
        if self.used() > self.budget {
            return Err(CpuExceeded);
        }
        Ok(())
    }

    fn close(&mut self) {
        if let Some(start) = self.segment.take() {
            let ran = thread_cpu().saturating_sub(start);
            self.used += ran;
            self.since_yield += ran;
        }
    }

    /// Guest CPU charged so far (the open segment included).
    pub fn used(&self) -> Duration {
        let open = self.segment.map(|s| thread_cpu().saturating_sub(s)).unwrap_or_default();
        self.used + open
    }

    /// Whether the guest has run long enough since it last yielded that it should yield now
    /// (so a spinning guest neither starves other tasks nor escapes the wall-clock timeout).
    /// Resets the count when it says yes.
    pub fn should_yield(&mut self, tick: Duration) -> bool {
        let open = self.used() - self.used;
        if self.since_yield + open >= tick / 2 {
            // Restart the open segment so the count starts from now.
            if self.segment.is_some() {
                self.close();
                self.segment = Some(thread_cpu());
            }
            self.since_yield = Duration::ZERO;
            return true;
        }
        false
    }
}

/// Drives `run` (the future that runs a store) and tells `clock` each time it gives its
/// thread back: the only moment the guest's segment must end early.
pub async fn charged<F: std::future::Future>(run: F, clock: SharedClock) -> F::Output {
    let mut run = std::pin::pin!(run);
    std::future::poll_fn(move |cx| {
        let r = run.as_mut().poll(cx);
        if r.is_pending() {
            clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).suspended();
        }
        r
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let start = thread_cpu();
        while thread_cpu() - start < d {
            std::hint::black_box(0u64);
        }
    }

    const TICK: Duration = Duration::from_millis(10);

    #[test]
    fn only_guest_segments_are_charged_and_waits_are_not() {
        let mut c = GuestClock::new(Duration::from_millis(100));
        c.on_hook(CallHook::CallingWasm, TICK).unwrap();
        spin(Duration::from_millis(20));
        for _ in 0..20 {
            assert_eq!(c.on_hook(CallHook::CallingHost, TICK).unwrap(), AfterHook::Nothing);
            c.suspended(); // the host call awaits a backend: the thread goes elsewhere
            spin_elsewhere(Duration::from_millis(3)); // ... and does other work: never charged
            std::thread::sleep(Duration::from_millis(15));
            assert_eq!(c.on_hook(CallHook::ReturningFromHost, TICK).unwrap(), AfterHook::RearmDeadline);
        }
        spin(Duration::from_millis(20));
        c.on_hook(CallHook::ReturningFromWasm, TICK).unwrap();
        let used = c.used();
        // 40 ms spun; 60 ms of other work and 300 ms slept while suspended must not show up.
        assert!(used >= Duration::from_millis(40) && used < Duration::from_millis(100), "{used:?}");
        assert!(c.check().is_ok());
    }

    /// Work on the thread that is not the guest's (the executor's other tasks).
    fn spin_elsewhere(d: Duration) {
        spin(d)
    }

    #[test]
    fn a_host_call_that_keeps_the_thread_keeps_the_segment_open() {
        let mut c = GuestClock::new(Duration::from_millis(100));
        c.on_hook(CallHook::CallingWasm, TICK).unwrap();
        spin(Duration::from_millis(2));
        c.on_hook(CallHook::CallingHost, TICK).unwrap();
        spin(Duration::from_millis(3)); // host work on the guest's behalf: charged
        assert_eq!(c.on_hook(CallHook::ReturningFromHost, TICK).unwrap(), AfterHook::Nothing);
        assert!(c.segment.is_some() && c.used == Duration::ZERO, "one segment across the quick call");
        c.on_hook(CallHook::ReturningFromWasm, TICK).unwrap();
        assert!(c.used() >= Duration::from_millis(5), "{:?}", c.used());
    }

    #[test]
    fn quick_host_calls_do_not_reset_the_yield_count() {
        let mut c = GuestClock::new(Duration::from_millis(15));
        c.on_hook(CallHook::CallingWasm, TICK).unwrap();
        for _ in 0..4 {
            spin(Duration::from_millis(2));
            c.on_hook(CallHook::CallingHost, TICK).unwrap();
            assert_eq!(c.on_hook(CallHook::ReturningFromHost, TICK).unwrap(), AfterHook::Nothing);
        }
        c.on_hook(CallHook::CallingHost, TICK).unwrap();
        assert!(c.should_yield(TICK), "8 ms of guest CPU since the last yield");
        assert!(!c.should_yield(TICK), "the count restarts after a yield");
        c.on_hook(CallHook::ReturningFromHost, TICK).unwrap();
        spin(Duration::from_millis(3));
        assert!(c.used() >= Duration::from_millis(11));
        assert!(c.check().is_ok());
    }

    #[test]
    fn over_budget_the_guest_is_stopped_when_it_returns_or_resumes() {
        let mut c = GuestClock::new(Duration::from_millis(5));
        c.on_hook(CallHook::CallingWasm, TICK).unwrap();
        spin(Duration::from_millis(6));
        assert!(c.check().is_err(), "the open segment is over budget");
        c.on_hook(CallHook::CallingHost, TICK).unwrap();
        c.suspended();
        assert!(c.on_hook(CallHook::ReturningFromHost, TICK).is_err(), "resuming over budget fails");
        assert!(c.on_hook(CallHook::CallingHost, TICK).is_err(), "closed segments over budget fail at once");
        assert!(c.on_hook(CallHook::ReturningFromWasm, TICK).is_err());
    }
}
