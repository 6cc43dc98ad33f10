//! How long a flow waits before it sends a failed request again. *Whether* it may is each flow's
//! rule (a token request that spends a refresh token, the interactive flows' resends);
//! this is only the schedule they share: the server's `Retry-After`, else exponential backoff with
//! jitter, never longer than `max_delay`.

use std::time::Duration;

use crate::Error;

/// Retry limits for one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Total attempts including the first (1 = never retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Longest delay; a server asking for a longer `Retry-After` fails the flow instead.
    pub max_delay: Duration,
}

impl RetrySettings {
    /// How long to wait after failed attempt number `attempt` (1-based): the server's `Retry-After`,
    /// else `base_delay` doubled per attempt and scaled by `0.5 + jitter` (jitter in [0, 1)). `None`
    /// when that is longer than `max_delay`: the flow fails instead of waiting.
    pub fn delay_before_retry(&self, attempt: u32, error: &Error, jitter: f64) -> Option<Duration> {
        self.delay_after(attempt, error.retry_after(), jitter)
    }

    /// [`RetrySettings::delay_before_retry`] with the server's `Retry-After` given directly.
    pub fn delay_after(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
        let backoff = self
            .base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0));
        let delay = retry_after.unwrap_or(backoff);
        (delay <= self.max_delay).then_some(delay)
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings { max_attempts: 3, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}
