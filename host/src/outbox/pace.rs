//! Delivery pace: how fast the sender gets records into core and how far behind their
//! commit they arrive, for heartbeats (`HostStatus`'s `outbox.delivery`) and, later, metrics.
//! Whether the host keeps up with its cycles is read here, not guessed from the backlog.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The window the rate is taken over: long enough to span a slow task's interval.
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Pace {
    /// Entries delivered since start (records, states, heartbeats, every kind).
    delivered: u64,
    /// (when, how many) per pass that delivered something, within [`WINDOW`].
    recent: VecDeque<(Instant, u64)>,
    /// Spooled -> delivered of the newest delivered record, and the largest in the window.
    last_lag_ms: Option<i64>,
    max_lag: VecDeque<(Instant, i64)>,
}

impl Pace {
    /// Notes one pass's deliveries and the largest spooled -> delivered time among them.
    pub fn note(&mut self, delivered: u64, newest_lag_ms: Option<i64>, largest_lag_ms: Option<i64>) {
        let now = Instant::now();
        if delivered > 0 {
            self.delivered += delivered;
            self.recent.push_back((now, delivered));
        }
        if let Some(l) = newest_lag_ms {
            self.last_lag_ms = Some(l);
        }
        if let Some(l) = largest_lag_ms {
            self.max_lag.push_back((now, l));
        }
        self.prune(now);
    }

    fn prune(&mut self, now: Instant) {
        while self.recent.front().is_some_and(|(t, _)| now.duration_since(*t) > WINDOW) {
            self.recent.pop_front();
        }
        while self.max_lag.front().is_some_and(|(t, _)| now.duration_since(*t) > WINDOW) {
            self.max_lag.pop_front();
        }
    }

    /// `{delivered_total, rate_per_second (last minute), lag_ms (newest), max_lag_ms (last minute), concurrency}`.
    pub fn report(&mut self, concurrency: usize) -> Value {
        self.prune(Instant::now());
        let in_window: u64 = self.recent.iter().map(|(_, n)| n).sum();
        json!({
            "delivered_total": self.delivered,
            "rate_per_second": (in_window as f64 / WINDOW.as_secs_f64() * 100.0).round() / 100.0,
            "lag_ms": self.last_lag_ms,
            "max_lag_ms": self.max_lag.iter().map(|(_, l)| *l).max(),
            "concurrency": concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_lag_cover_the_last_minute() {
        let mut p = Pace::default();
        p.note(120, Some(40), Some(900));
        p.note(0, None, None);
        p.note(60, Some(15), Some(30));
        let r = p.report(8);
        assert_eq!(r["delivered_total"], 180);
        assert_eq!(r["rate_per_second"], 3.0);
        assert_eq!(r["lag_ms"], 15);
        assert_eq!(r["max_lag_ms"], 900);
        assert_eq!(r["concurrency"], 8);
    }
}
