//! A per-node circuit breaker: after `failure_threshold` consecutive failed attempts it opens
//! and refuses calls at once; after `cooldown` it half-opens and lets one trial call through.
//! A success closes it; a failed trial re-opens it.

use std::time::{Duration, Instant};

use crate::manifest::limits::{DEFAULT_BREAKER_COOLDOWN_MS, DEFAULT_BREAKER_THRESHOLD};
use crate::manifest::CircuitBreakerSpec;

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker; `None`: it never opens.
    pub failure_threshold: Option<u32>,
    /// Time spent open before a trial call.
    pub cooldown: Duration,
}

impl BreakerConfig {
    /// No `circuit_breaker` in the manifest: disabled. A local pipeline must not refuse a
    /// run because earlier runs failed unless its user asked for that (issue 9).
    pub const DISABLED: BreakerConfig = BreakerConfig {
        failure_threshold: None,
        cooldown: Duration::from_millis(DEFAULT_BREAKER_COOLDOWN_MS),
    };

    /// The breaker a manifest asks for: disabled without a `circuit_breaker` object; with
    /// one, its fields or the defaults (5 failures, 30 s cool-down). Already validated.
    pub fn from_spec(spec: Option<&CircuitBreakerSpec>) -> Self {
        match spec {
            None => Self::DISABLED,
            Some(s) => Self {
                failure_threshold: Some(
                    s.failure_threshold
                        .unwrap_or(DEFAULT_BREAKER_THRESHOLD)
                        .max(1),
                ),
                cooldown: s
                    .cooldown_ms
                    .map(Duration::from_millis)
                    .unwrap_or(Self::DISABLED.cooldown),
            },
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; counts consecutive failures.
    Closed {
        /// Failures since the last success.
        consecutive_failures: u32,
    },
    /// Calls are refused until `until`.
    Open {
        /// When the breaker half-opens.
        until: Instant,
    },
    /// One trial call is in flight.
    HalfOpen,
}

/// A circuit breaker (see module docs).
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    opened_after: u32,
    times_opened: u64,
}

/// A refused call: how long until the breaker lets a trial through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Time left in the open state.
    pub retry_after: Duration,
    /// Consecutive failures that opened the breaker.
    pub failures: u32,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed {
                consecutive_failures: 0,
            },
            opened_after: 0,
            times_opened: 0,
        }
    }

    /// Its settings.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Consecutive failures behind the last opening.
    pub fn opened_after(&self) -> u32 {
        self.opened_after
    }

    /// How many times it has opened (re-opening after a failed trial counts).
    pub fn times_opened(&self) -> u64 {
        self.times_opened
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Asks to make a call now.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Rejected> {
        match self.state {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                Ok(())
            }
            BreakerState::Open { until } => Err(Rejected {
                retry_after: until - now,
                failures: self.opened_after,
            }),
            // The trial call is in flight (calls into one node are serialised, so this is a
            // new call after a trial whose outcome was not reported): let it through.
            BreakerState::HalfOpen => Ok(()),
        }
    }

    /// Reports a successful call.
    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed {
            consecutive_failures: 0,
        };
    }

    /// Reports a failed call.
    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            BreakerState::Closed {
                consecutive_failures,
            } => {
                let n = consecutive_failures.saturating_add(1);
                if self.config.failure_threshold.is_some_and(|t| n >= t) {
                    self.opened_after = n;
                    self.times_opened += 1;
                    BreakerState::Open {
                        until: now + self.config.cooldown,
                    }
                } else {
                    BreakerState::Closed {
                        consecutive_failures: n,
                    }
                }
            }
            BreakerState::HalfOpen | BreakerState::Open { .. } => {
                self.opened_after += 1;
                self.times_opened += 1;
                BreakerState::Open {
                    until: now + self.config.cooldown,
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_rejects_then_half_opens() {
        let cfg = BreakerConfig {
            failure_threshold: Some(3),
            cooldown: Duration::from_millis(50),
        };
        let mut b = CircuitBreaker::new(cfg);
        let t0 = Instant::now();
        for _ in 0..2 {
            b.try_acquire(t0).unwrap();
            b.on_failure(t0);
        }
        b.try_acquire(t0).unwrap();
        b.on_success();
        for _ in 0..3 {
            b.try_acquire(t0).unwrap();
            b.on_failure(t0);
        }
        let r = b.try_acquire(t0 + Duration::from_millis(10)).unwrap_err();
        assert_eq!(r.retry_after, Duration::from_millis(40));
        assert_eq!(r.failures, 3);
        assert_eq!(b.times_opened(), 1);
        // After the cool-down one trial goes through; its failure re-opens at once.
        let t1 = t0 + Duration::from_millis(60);
        b.try_acquire(t1).unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.on_failure(t1);
        assert!(b.try_acquire(t1).is_err());
        assert_eq!(b.times_opened(), 2);
        // A successful trial closes it.
        let t2 = t1 + Duration::from_millis(60);
        b.try_acquire(t2).unwrap();
        b.on_success();
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
    }
}
