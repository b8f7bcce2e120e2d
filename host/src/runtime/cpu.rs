//! Guest CPU accounting: what a cycle's `cpu_ms` budget is charged.
//!
//! Wasmtime's call hooks bracket every transition between guest and host code — imports,
//! WASI calls (a clock wait is a `poll` host call), libcalls such as `memory.grow`, and the
//! epoch callback itself. The clock runs only between "entering the guest" (`CallingWasm`,
//! `ReturningFromHost`) and "leaving it" (`CallingHost`, `ReturningFromWasm`), and what it
//! measures is the OS thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! - time in a host call (an HTTP round trip, a WASI sleep, an LLM call) is outside every
//!   segment, so waiting on a backend never counts, however many calls a cycle makes;
//! - a guest segment cannot be suspended (only host calls suspend the fiber), so it starts
//!   and ends on one OS thread and that thread's CPU clock is the guest's;
//! - time the guest waited in the executor's run queue, or the OS ran another process on a
//!   loaded machine, is not CPU the guest used, so it is not charged either.
//!
//! The epoch callback (every [`super::engine::TICK`] of guest execution at most) checks the
//! charge against the budget, so a runaway loop is stopped within one tick of its budget.

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

/// The charge of one store (one cycle, or one `describe()`).
#[derive(Debug)]
pub struct GuestClock {
    budget: Duration,
    /// Guest CPU charged in closed segments.
    used: Duration,
    /// Thread CPU time at which the open guest segment began (None: in the host).
    segment: Option<Duration>,
    /// Guest CPU since the guest last gave its thread back to the executor.
    since_yield: Duration,
    /// When the current host call began (wall clock), to tell a real wait from a quick call.
    in_host_since: Option<Instant>,
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
        GuestClock { budget, used: Duration::ZERO, segment: None, since_yield: Duration::ZERO, in_host_since: None }
    }

    /// Updates the clock at a guest/host transition. Leaving the guest over budget fails the
    /// call there (the import returns the trap), so a guest that spins between host calls
    /// that each re-arm the deadline is stopped too, not only one the epoch callback sees.
    pub fn on_hook(&mut self, hook: CallHook, tick: Duration) -> Result<AfterHook, CpuExceeded> {
        match hook {
            CallHook::CallingWasm | CallHook::ReturningFromHost => {
                self.close();
                self.segment = Some(thread_cpu());
                let waited = self.in_host_since.take().map(|t| t.elapsed()).unwrap_or_default();
                if matches!(hook, CallHook::ReturningFromHost) && waited >= tick {
                    // A host call this long awaited something: the guest's thread was
                    // given back to the executor, which is what yielding is for.
                    self.since_yield = Duration::ZERO;
                    return Ok(AfterHook::RearmDeadline);
                }
                Ok(AfterHook::Nothing)
            }
            CallHook::CallingHost | CallHook::ReturningFromWasm => {
                self.close();
                self.in_host_since = Some(Instant::now());
                self.check()?;
                Ok(AfterHook::Nothing)
            }
        }
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
        if self.since_yield >= tick / 2 {
            self.since_yield = Duration::ZERO;
            return true;
        }
        false
    }
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
            std::thread::sleep(Duration::from_millis(15)); // a backend wait: never charged
            assert_eq!(c.on_hook(CallHook::ReturningFromHost, TICK).unwrap(), AfterHook::RearmDeadline);
        }
        spin(Duration::from_millis(20));
        c.on_hook(CallHook::ReturningFromWasm, TICK).unwrap();
        let used = c.used();
        // 40 ms spun; 300 ms slept in "host calls" must not show up.
        assert!(used >= Duration::from_millis(40) && used < Duration::from_millis(100), "{used:?}");
        assert!(c.check().is_ok());
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
        // The open segment counts toward `used` before it is closed.
        c.on_hook(CallHook::ReturningFromHost, TICK).unwrap();
        spin(Duration::from_millis(3));
        assert!(c.used() >= Duration::from_millis(11));
        assert!(c.check().is_ok());
    }

    #[test]
    fn leaving_the_guest_over_budget_fails_the_call() {
        let mut c = GuestClock::new(Duration::from_millis(5));
        c.on_hook(CallHook::CallingWasm, TICK).unwrap();
        spin(Duration::from_millis(6));
        assert!(c.check().is_err(), "the open segment is over budget");
        assert!(c.on_hook(CallHook::CallingHost, TICK).is_err());
    }
}
