//! What a client may retry. A refused call (UNAVAILABLE: the replica is shutting down or
//! unreachable; RESOURCE_EXHAUSTED: it is at its concurrency limit) did not run, so a unary
//! `execute` can be sent again, through a load balancer to another replica. A stream whose
//! replica died has lost its session state (filters, VAD): it cannot be resumed, only opened
//! again and fed from the start of whatever the caller can replay.

use std::time::Duration;

use tonic::Code;

use crate::client::ClientError;

impl ClientError {
    /// Whether sending the same unary call again may succeed: the server refused it before
    /// running it, or could not be reached. Errors about the input or a node never are.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. } => true,
            // A request over the server's size limits (error code "limit") is refused the
            // same way by every replica: only load shedding is worth retrying.
            ClientError::Status {
                code, error_code, ..
            } => {
                matches!(code, Code::Unavailable | Code::ResourceExhausted)
                    && error_code.as_deref() != Some("limit")
            }
            ClientError::Protocol(_) => false,
        }
    }
}

/// The pause before retry `attempt` (1-based): exponential from `base`, capped at `max`,
/// with up to 50% jitter taken from `seed`'s low bits so that clients refused together do not
/// come back together.
pub fn backoff(attempt: u32, base: Duration, max: Duration, seed: u64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(max);
    let jitter = (seed % 1000) as f64 / 1000.0 * 0.5;
    capped.mul_f64(1.0 - jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_retryable_and_input_errors_are_not() {
        let status = |code| ClientError::Status {
            code,
            message: String::new(),
            node_id: None,
            error_code: None,
            kind: None,
        };
        assert!(status(Code::Unavailable).is_retryable());
        assert!(status(Code::ResourceExhausted).is_retryable());
        assert!(!status(Code::InvalidArgument).is_retryable());
        assert!(!status(Code::Internal).is_retryable());
        assert!(!status(Code::DeadlineExceeded).is_retryable());
        assert!(!ClientError::Protocol("x".into()).is_retryable());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let (b, m) = (Duration::from_millis(50), Duration::from_secs(1));
        assert_eq!(backoff(1, b, m, 0), Duration::from_millis(50));
        assert_eq!(backoff(3, b, m, 0), Duration::from_millis(200));
        assert_eq!(backoff(10, b, m, 0), Duration::from_secs(1));
        assert_eq!(backoff(1, b, m, 500), Duration::from_micros(37_500));
    }
}
