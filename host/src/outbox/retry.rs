//! How the sender judges core's answer to one spooled entry, and how long a lane waits
//! before trying again.
//!
//! By class, never by count: nthlayer-core 4.0.1 answers 500 for every store error,
//! including a passing "database is locked", so any number of 5xx in a row says nothing
//! about the payload. Only a 4xx (other than 409 and 429) does: core will never take it.

use std::time::{Duration, Instant};

/// First wait of a lane after a failure; doubles per failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    /// Core has it (2xx, or 409 on a record: an earlier attempt delivered it).
    Delivered,
    /// Try again later: no answer, timeout, 5xx, 429, 409 on a state or heartbeat. The
    /// status (0: no answer) and the error.
    Transient(u16, String),
    /// Set aside now: a 4xx core will never take, or a corrupt body (status 0).
    Permanent(u16, String),
}

/// What happened to one entry.
pub(super) enum Fate {
    Delivered,
    /// Core did not answer; try again later.
    Later(String),
    /// Core answered this status (classified by [`classify`]) or, with 0, the body is corrupt.
    Refused(u16, String),
}

/// Classifies what delivering one entry came to. A 409 on a record never gets here: the
/// record path counts it as delivered.
pub(super) fn classify(f: Fate) -> Class {
    match f {
        Fate::Delivered => Class::Delivered,
        Fate::Later(why) => Class::Transient(0, why),
        Fate::Refused(0, why) => Class::Permanent(0, why),
        Fate::Refused(status, why) if status >= 500 || status == 429 || status == 409 => Class::Transient(status, why),
        Fate::Refused(status, why) => Class::Permanent(status, why),
    }
}

/// A lane's capped exponential backoff with jitter, so many lanes (and many hosts) failing
/// together do not come back in lockstep.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
    due: Option<Instant>,
}

impl Backoff {
    /// One more failure: the lane is due again after a jittered wait.
    pub fn fail(&mut self) {
        self.failures += 1;
        self.due = Some(Instant::now() + wait(self.failures));
    }

    pub fn due(&self) -> Instant {
        self.due.unwrap_or_else(Instant::now)
    }
}

/// The wait after `failures` failures: "equal jitter", between half and all of the capped
/// exponential step, so the wait never collapses to zero.
pub fn wait(failures: u32) -> Duration {
    let step = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    step.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_class() {
        let cases = [
            (Fate::Delivered, Class::Delivered),
            (Fate::Later("timed out".into()), Class::Transient(0, "timed out".into())),
            (Fate::Later("connection failed".into()), Class::Transient(0, "connection failed".into())),
            (Fate::Refused(500, "locked".into()), Class::Transient(500, "locked".into())),
            (Fate::Refused(503, "x".into()), Class::Transient(503, "x".into())),
            (Fate::Refused(429, "x".into()), Class::Transient(429, "x".into())),
            (Fate::Refused(409, "x".into()), Class::Transient(409, "x".into())),
            (Fate::Refused(400, "bad".into()), Class::Permanent(400, "bad".into())),
            (Fate::Refused(422, "bad".into()), Class::Permanent(422, "bad".into())),
            (Fate::Refused(404, "bad".into()), Class::Permanent(404, "bad".into())),
            (Fate::Refused(0, "not JSON".into()), Class::Permanent(0, "not JSON".into())),
        ];
        for (fate, class) in cases {
            assert_eq!(classify(fate), class);
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for n in 1..40 {
            let step = FIRST_BACKOFF.saturating_mul(1 << (n - 1).min(16)).min(MAX_BACKOFF);
            let w = wait(n);
            assert!(w >= step / 2 && w <= step, "{n}: {w:?} outside [{:?}, {step:?}]", step / 2);
        }
        assert!(wait(30) <= MAX_BACKOFF);
        let spread: std::collections::HashSet<Duration> = (0..20).map(|_| wait(5)).collect();
        assert!(spread.len() > 1, "no jitter: {spread:?}");
    }
}
