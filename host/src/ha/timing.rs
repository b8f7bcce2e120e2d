//! Lease timing, as client-go's leader election sets it: lease duration > renew deadline >
//! 1.2 × retry period. Everything is judged on the local monotonic clock (`Instant`), never on
//! wall time, so a clock step cannot extend a leadership.
//!
//! Why a replica's own deadline is shorter than its lease: etcd counts the lease's TTL from
//! when it *received* the last keep-alive, which is after the replica *sent* it. Measuring
//! from the send, and stopping at the renew deadline, means a replica that cannot renew stops
//! starting cycles a third of a lease before etcd can hand its tasks to another replica.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// The etcd lease's TTL: how long after its last renewal a dead replica keeps its tasks.
    pub lease: Duration,
    /// Leadership counts only this long after the last renewal was sent.
    pub renew_deadline: Duration,
    /// How often the lease is renewed and free tasks are campaigned for.
    pub retry: Duration,
}

impl Timing {
    /// From the lease alone: renew deadline 2/3 of it, retry period 2/15 of it (15 s gives
    /// client-go's 15 / 10 / 2 s).
    pub fn from_lease_seconds(lease: u64) -> Result<Timing> {
        if lease == 0 || lease > 3600 {
            bail!("lease of {lease} s: expected 1 to 3600 seconds");
        }
        let lease = Duration::from_secs(lease);
        let t = Timing { lease, renew_deadline: lease * 2 / 3, retry: lease * 2 / 15 };
        t.check()?;
        Ok(t)
    }

    /// The ordering client-go enforces, with the same margins.
    pub fn check(&self) -> Result<()> {
        if self.lease <= self.renew_deadline {
            bail!("lease {:?} must exceed the renew deadline {:?}", self.lease, self.renew_deadline);
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry.as_secs_f64() {
            bail!("renew deadline {:?} must exceed 1.2 × the retry period {:?}", self.renew_deadline, self.retry);
        }
        Ok(())
    }

    /// Whether a leadership last renewed by a request sent at `sent` still counts at `now`.
    pub fn holds(&self, sent: Option<Instant>, now: Instant) -> bool {
        sent.is_some_and(|s| now.saturating_duration_since(s) < self.renew_deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_client_go_s_and_the_ordering_holds_for_short_leases() {
        let t = Timing::from_lease_seconds(15).unwrap();
        assert_eq!((t.lease.as_secs(), t.renew_deadline.as_secs(), t.retry.as_secs()), (15, 10, 2));
        for lease in [1, 2, 5, 60] {
            let t = Timing::from_lease_seconds(lease).unwrap();
            assert!(t.lease > t.renew_deadline && t.renew_deadline.as_secs_f64() > 1.2 * t.retry.as_secs_f64());
        }
        assert!(Timing::from_lease_seconds(0).is_err());
        let bad = Timing { retry: Duration::from_secs(9), ..t };
        assert!(bad.check().unwrap_err().to_string().contains("1.2"));
    }

    #[test]
    fn a_leadership_lapses_at_the_renew_deadline_counted_from_the_send() {
        let t = Timing::from_lease_seconds(15).unwrap();
        let sent = Instant::now();
        assert!(t.holds(Some(sent), sent + Duration::from_millis(9_999)));
        assert!(!t.holds(Some(sent), sent + Duration::from_secs(10)));
        assert!(!t.holds(None, sent), "never renewed: never leader");
    }
}
