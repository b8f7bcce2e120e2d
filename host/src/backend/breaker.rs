//! Circuit breaker for core: once core is known to be down, calls fail at once instead of
//! each paying the retry schedule (~7 s with the reference's policy), and one call at a time
//! — the probe — finds out when it is back.
//!
//! "Down" means consecutive attempts without an answer (transport errors, 429/502/503/504).
//! Any answer, even a 4xx, closes the breaker: core is there, it just said no.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failed attempts that open the breaker: one reference-style call (1 + 3
/// retries) that never got an answer.
pub const OPEN_AFTER: u32 = 4;
/// How often a call may go through while open, to see whether core is back.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// What the breaker lets a caller do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Core answers: use the normal retry policy.
    Go,
    /// Open, but a probe is due: one attempt, no retries.
    Probe,
    /// Open: fail at once. Carries how long core has been down.
    Reject(Duration),
}

#[derive(Debug, Default)]
struct Inner {
    failures: u32,
    open_since: Option<Instant>,
    last_probe: Option<Instant>,
    /// Times the breaker closed again (core came back).
    closed: u64,
}

#[derive(Debug, Default)]
pub struct Breaker {
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn admit(&self) -> Admit {
        let mut s = self.inner.lock().expect("breaker lock");
        let Some(since) = s.open_since else { return Admit::Go };
        let now = Instant::now();
        if s.last_probe.is_none_or(|p| now.duration_since(p) >= PROBE_EVERY) {
            s.last_probe = Some(now);
            return Admit::Probe;
        }
        Admit::Reject(now.duration_since(since))
    }

    /// Core answered something.
    pub fn answered(&self) {
        let mut s = self.inner.lock().expect("breaker lock");
        if let Some(since) = s.open_since.take() {
            tracing::info!(down_for_s = since.elapsed().as_secs(), "core answers again; circuit closed");
            s.closed += 1;
            crate::telemetry::breaker("core", false);
        }
        s.failures = 0;
        s.last_probe = None;
    }

    /// An attempt got no answer.
    pub fn failed(&self) {
        let mut s = self.inner.lock().expect("breaker lock");
        s.failures = s.failures.saturating_add(1);
        if s.failures >= OPEN_AFTER && s.open_since.is_none() {
            tracing::warn!(
                attempts = s.failures,
                probe_every_s = PROBE_EVERY.as_secs(),
                "core does not answer; circuit open: core calls fail fast until a probe succeeds"
            );
            s.open_since = Some(Instant::now());
            crate::telemetry::breaker("core", true);
            s.last_probe = Some(Instant::now());
        }
    }

    /// How often core came back after being down: a change tells a reader that the core now
    /// answering may not be the one that went away.
    pub fn comebacks(&self) -> u64 {
        self.inner.lock().expect("breaker lock").closed
    }

    pub fn is_open(&self) -> bool {
        self.inner.lock().expect("breaker lock").open_since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_probes_and_closes_on_any_answer() {
        let b = Breaker::default();
        for _ in 0..OPEN_AFTER - 1 {
            b.failed();
            assert_eq!(b.admit(), Admit::Go);
        }
        b.failed();
        assert!(b.is_open());
        // Just opened: the next probe is PROBE_EVERY away.
        assert!(matches!(b.admit(), Admit::Reject(_)));
        b.inner.lock().unwrap().last_probe = Some(Instant::now() - PROBE_EVERY);
        assert_eq!(b.admit(), Admit::Probe);
        assert!(matches!(b.admit(), Admit::Reject(_)), "one probe at a time");
        b.answered();
        assert_eq!(b.admit(), Admit::Go);
        assert!(!b.is_open());
    }
}
