//! Retry with exponential backoff, for errors a node marks retryable.

use std::time::Duration;

use crate::manifest::limits::{
    DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_INITIAL_DELAY_MS, DEFAULT_RETRY_MAX_DELAY_MS,
};
use crate::manifest::RetrySpec;

/// How often and how patiently to retry a failed node call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retries).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay_ms: u64,
    /// Cap on any single delay.
    pub max_delay_ms: u64,
}

impl RetryPolicy {
    /// The seed's defaults: 3 attempts, 100 ms, doubling, capped at 1600 ms.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: DEFAULT_RETRY_ATTEMPTS,
        initial_delay_ms: DEFAULT_RETRY_INITIAL_DELAY_MS,
        max_delay_ms: DEFAULT_RETRY_MAX_DELAY_MS,
    };

    /// The seed's name for the default policy.
    pub fn exponential_backoff() -> Self {
        Self::DEFAULT
    }

    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::DEFAULT
        }
    }

    /// The default policy with a manifest's overrides applied (already validated).
    pub fn from_spec(spec: Option<&RetrySpec>) -> Self {
        let d = Self::DEFAULT;
        match spec {
            None => d,
            Some(s) => Self {
                max_attempts: s.max_attempts.unwrap_or(d.max_attempts).max(1),
                initial_delay_ms: s.initial_delay_ms.unwrap_or(d.initial_delay_ms),
                max_delay_ms: s.max_delay_ms.unwrap_or(d.max_delay_ms),
            },
        }
    }

    /// The wait after failed attempt number `attempt` (1-based):
    /// `initial_delay_ms * 2^(attempt-1)`, capped at `max_delay_ms`.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 1u64
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u64::MAX);
        Duration::from_millis(
            self.initial_delay_ms
                .saturating_mul(factor)
                .min(self.max_delay_ms),
        )
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::DEFAULT;
        let ms: Vec<u64> = (1..=7)
            .map(|a| p.delay_after(a).as_millis() as u64)
            .collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 1600, 1600]);
        assert_eq!(p.delay_after(200).as_millis(), 1600);
    }

    #[test]
    fn spec_overrides_only_what_it_names() {
        let p = RetryPolicy::from_spec(Some(&RetrySpec {
            max_attempts: Some(5),
            ..Default::default()
        }));
        assert_eq!(p.max_attempts, 5);
        assert_eq!(p.initial_delay_ms, 100);
        assert_eq!(p.max_delay_ms, 1600);
    }
}
