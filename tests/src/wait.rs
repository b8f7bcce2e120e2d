//! Polling helpers with timeouts. Tests use these instead of fixed sleeps.

use std::time::{Duration, Instant};

/// How often [`wait_until`] polls.
pub const POLL: Duration = Duration::from_millis(250);

/// Poll `f` every [`POLL`] until it returns `Some`, and return that value.
/// Panics with `desc` after `timeout`.
pub fn wait_until<T>(desc: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    match try_wait_until(timeout, POLL, f) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for: {desc}"),
    }
}

/// Poll `f` every `every` until it returns `Some`; `None` after `timeout`. `f` is always
/// called at least once, and once more right at the deadline.
pub fn try_wait_until<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

/// Poll until `cond` is true; panics with `desc` after `timeout`.
pub fn wait_for(desc: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    wait_until(desc, timeout, || cond().then_some(()))
}

/// Assert that `cond` stays true for the whole of `period` (checked every [`POLL`]).
pub fn assert_stays(desc: &str, period: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        assert!(cond(), "condition stopped holding: {desc}");
        std::thread::sleep(POLL);
    }
    assert!(cond(), "condition stopped holding: {desc}");
}
