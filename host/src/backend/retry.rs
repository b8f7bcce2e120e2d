//! The retry policy of the reference's CoreAPIClient (3 retries, 1-2-4 s doubling backoff
//! capped at 30 s, on 429/502/503/504 and transport errors), configurable so tests and
//! impatient operators can shorten it.

use std::time::Duration;

use backon::ExponentialBuilder;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub retries: usize,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 3, first_delay: Duration::from_secs(1), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// No retries at all: used at shutdown, where a bounded exit matters more than delivery.
    pub fn none() -> Self {
        RetryPolicy { retries: 0, ..Self::default() }
    }

    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.retries)
    }

    /// HTTP statuses worth another attempt: rate limiting and gateway trouble.
    pub fn retryable_status(status: u16) -> bool {
        matches!(status, 429 | 502 | 503 | 504)
    }
}
