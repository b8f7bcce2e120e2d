use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::LlmError;

/// The operator's grant for one module. The default grants nothing: a custom module gets no
/// LLM access until the operator says so, and the denial text names the grant to add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allowed: bool,
    /// Replaces `NTHLAYER_MODEL` for this module (e.g. a cheaper model for summaries).
    pub model_override: Option<String>,
    pub max_calls_per_cycle: Option<u32>,
    /// Input + output tokens over a rolling hour. Checked before a call, charged after it, so
    /// one call may overshoot; the next is refused.
    pub max_tokens_per_hour: Option<u64>,
}

impl Policy {
    pub fn allow() -> Self {
        Self { allowed: true, ..Self::default() }
    }
}

/// Calls made by one module in one cycle. The host creates one per cycle and drops it with the
/// cycle, so the cap resets without any clock.
#[derive(Debug, Default)]
pub struct CycleBudget {
    calls: AtomicU32,
}

impl CycleBudget {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Takes a call slot unless the cap is reached.
    fn take(&self, cap: Option<u32>) -> bool {
        let Some(cap) = cap else {
            self.calls.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        self.calls.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < cap).then_some(n + 1)).is_ok()
    }
}

/// Rolling token windows per module; shared by every cycle of the host's lifetime.
#[derive(Debug)]
pub struct Budget {
    window: Duration,
    spent: Mutex<HashMap<String, VecDeque<(Instant, u64)>>>,
}

impl Default for Budget {
    fn default() -> Self {
        Self::with_window(Duration::from_secs(3600))
    }
}

impl Budget {
    pub fn new() -> Self {
        Self::default()
    }

    /// A shorter window lets tests watch spend expire.
    pub fn with_window(window: Duration) -> Self {
        Self { window, spent: Mutex::new(HashMap::new()) }
    }

    /// Tokens charged to `module` within the window ending now.
    pub fn tokens_in_window(&self, module: &str) -> u64 {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        match spent.get_mut(module) {
            Some(q) => self.prune_sum(q),
            None => 0,
        }
    }

    pub fn charge(&self, module: &str, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.entry(module.to_owned()).or_default().push_back((Instant::now(), tokens));
    }

    fn prune_sum(&self, q: &mut VecDeque<(Instant, u64)>) -> u64 {
        let now = Instant::now();
        while q.front().is_some_and(|(t, _)| now.duration_since(*t) >= self.window) {
            q.pop_front();
        }
        q.iter().map(|(_, n)| n).sum()
    }

    /// Grant, then hourly tokens, then the per-cycle cap, so a refused call never uses a slot.
    pub(crate) fn admit(&self, module: &str, policy: &Policy, cycle: &CycleBudget) -> Result<(), LlmError> {
        if !policy.allowed {
            return Err(LlmError::denied(format!(
                "llm not granted to module {module}: add \"llm\" to the grants of module \
                 {module} in the host configuration"
            )));
        }
        if let Some(limit) = policy.max_tokens_per_hour {
            let used = self.tokens_in_window(module);
            if used >= limit {
                return Err(LlmError::denied(format!(
                    "token budget exhausted: module {module} used {used} of {limit} tokens in \
                     the last {}s; raise max_tokens_per_hour or wait",
                    self.window.as_secs()
                )));
            }
        }
        if !cycle.take(policy.max_calls_per_cycle) {
            return Err(LlmError::denied(format!(
                "call budget exhausted: module {module} reached max_calls_per_cycle={} this \
                 cycle",
                policy.max_calls_per_cycle.unwrap_or(0)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_cap() {
        let c = CycleBudget::new();
        assert!(c.take(Some(2)) && c.take(Some(2)));
        assert!(!c.take(Some(2)));
        assert_eq!(c.calls(), 2);
    }

    #[test]
    fn window_expires() {
        let b = Budget::with_window(Duration::from_millis(30));
        b.charge("m", 10);
        assert_eq!(b.tokens_in_window("m"), 10);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.tokens_in_window("m"), 0);
    }
}
