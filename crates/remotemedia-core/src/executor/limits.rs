//! Memory and size limits checked before a node allocates (issue 9): each node states the
//! bytes a call will allocate ([`Node::output_bytes`](crate::node::Node::output_bytes)), and
//! the executor refuses the call when that is over a limit, so a request too large for the
//! process fails with [`ExecutorError::LimitExceeded`] instead of aborting it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ExecutorError;
use crate::manifest::limits::{DEFAULT_MAX_CALL_BYTES, DEFAULT_MAX_RUN_BYTES};

/// Limits on what one pipeline may allocate and return. Set with
/// [`Pipeline::with_limits`](super::Pipeline::with_limits); the gRPC server sets them from the
/// `[limits]` section of its config (same names). A limit of `u64::MAX` (or `None`) is off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceLimits {
    /// Most bytes one node call may allocate (its output plus working buffers, as the node
    /// states before the call). Default 4 GiB.
    pub max_call_bytes: u64,
    /// Most bytes all node calls of one run may allocate together: a whole
    /// [`Pipeline::run`](super::Pipeline::run), or one pushed chunk of a stream (each chunk
    /// starts from zero). Default 8 GiB.
    pub max_run_bytes: u64,
    /// Most bytes of audio the sinks may return for one run (or one streamed chunk). Default
    /// off; the server sets it to its message size limit, since that is all a response holds.
    pub max_output_bytes: u64,
    /// Longest input a [`Pipeline::run`](super::Pipeline::run) takes, in seconds of audio;
    /// longer input must be streamed. Default off.
    pub max_run_input_secs: Option<f64>,
    /// Most trace slices (one per node call) a session keeps for
    /// [`Session::chrome_trace`](super::Session::chrome_trace); later calls are counted, not
    /// stored. Default [`MAX_TRACE_EVENTS`](super::MAX_TRACE_EVENTS) (about 8 MB); the server
    /// sets 0, since it never reads traces and a long stream would hold them for its lifetime.
    pub max_trace_events: usize,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            max_call_bytes: DEFAULT_MAX_CALL_BYTES,
            max_run_bytes: DEFAULT_MAX_RUN_BYTES,
            max_output_bytes: u64::MAX,
            max_run_input_secs: None,
            max_trace_events: super::MAX_TRACE_EVENTS,
        }
    }
}

/// Bytes in a human unit, for messages.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

const ADVICE: &str = "send the audio as a stream of smaller chunks (a session, or the Stream \
                      RPC) or raise the limit";

/// What one run (or streamed chunk) has claimed so far. Shared by the node tasks of a step.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    run: AtomicU64,
    output: AtomicU64,
}

impl Budget {
    pub(crate) fn reset(&self) {
        self.run.store(0, Ordering::Relaxed);
        self.output.store(0, Ordering::Relaxed);
    }

    /// Claims `bytes` for one call of a node before it runs. `advice` replaces the default
    /// advice of the error (see [`Node::holding_advice`](crate::node::Node::holding_advice)).
    pub(crate) fn claim(
        &self,
        limits: &ResourceLimits,
        node_id: &str,
        node_type: &str,
        bytes: u64,
        advice: Option<&str>,
    ) -> Result<(), ExecutorError> {
        let advice = advice.unwrap_or(ADVICE);
        let fail = |limit: &'static str, max: u64, what: String| ExecutorError::LimitExceeded {
            node_id: Some(node_id.to_string()),
            node_type: Some(node_type.to_string()),
            limit,
            max,
            requested: bytes,
            message: format!(
                "node '{node_id}' ({node_type}) {what}, over the limit {limit} = {max} bytes \
                 ({}); {advice}",
                human_bytes(max)
            ),
        };
        if bytes > limits.max_call_bytes {
            return Err(fail(
                "max_call_bytes",
                limits.max_call_bytes,
                format!(
                    "would allocate {bytes} bytes ({}) for this call",
                    human_bytes(bytes)
                ),
            ));
        }
        let run = self
            .run
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if run > limits.max_run_bytes {
            return Err(fail(
                "max_run_bytes",
                limits.max_run_bytes,
                format!(
                    "would bring this run's allocations to {run} bytes ({})",
                    human_bytes(run)
                ),
            ));
        }
        Ok(())
    }

    /// Counts `bytes` of sink output against `max_output_bytes`.
    pub(crate) fn output(
        &self,
        limits: &ResourceLimits,
        node_id: &str,
        node_type: &str,
        bytes: u64,
    ) -> Result<(), ExecutorError> {
        let out = self
            .output
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if out > limits.max_output_bytes {
            let max = limits.max_output_bytes;
            return Err(ExecutorError::LimitExceeded {
                node_id: Some(node_id.to_string()),
                node_type: Some(node_type.to_string()),
                limit: "max_output_bytes",
                max,
                requested: out,
                message: format!(
                    "the output of sink '{node_id}' ({node_type}) would reach {out} bytes ({}), \
                     over the limit max_output_bytes = {max} bytes ({}) of one response; {ADVICE}",
                    human_bytes(out),
                    human_bytes(max)
                ),
            });
        }
        Ok(())
    }
}

/// Checks a whole-input run's duration against `max_run_input_secs`.
pub(crate) fn check_run_input(
    limits: &ResourceLimits,
    input: &crate::data::Data,
) -> Result<(), ExecutorError> {
    let Some(max) = limits.max_run_input_secs else {
        return Ok(());
    };
    let secs = match input {
        crate::data::Data::Audio(a) => a.duration_secs(),
        crate::data::Data::Map(m) => m
            .values()
            .filter_map(|d| d.as_audio().map(|a| a.duration_secs()))
            .fold(0.0, f64::max),
        _ => 0.0,
    };
    if secs > max {
        return Err(ExecutorError::LimitExceeded {
            node_id: None,
            node_type: None,
            limit: "max_run_input_secs",
            max: max.ceil() as u64,
            requested: secs.ceil() as u64,
            message: format!(
                "the input is {secs:.1} s of audio, over the limit max_run_input_secs = {max} s \
                 for one whole-input run; {ADVICE}"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_names_the_node_and_the_limit() {
        let limits = ResourceLimits {
            max_call_bytes: 100,
            max_run_bytes: 150,
            max_output_bytes: 60,
            max_run_input_secs: None,
            max_trace_events: 0,
        };
        let b = Budget::default();
        let e = b
            .claim(&limits, "up", "ChannelMixNode", 101, None)
            .unwrap_err();
        assert_eq!(e.code(), "limit");
        let text = e.to_string();
        assert!(
            text.contains("node 'up' (ChannelMixNode) would allocate 101 bytes"),
            "{text}"
        );
        assert!(text.contains("max_call_bytes = 100 bytes"), "{text}");
        assert!(text.contains("stream"), "{text}");
        b.claim(&limits, "a", "T", 100, None).unwrap();
        let e = b.claim(&limits, "b", "T", 60, None).unwrap_err();
        assert!(e.to_string().contains("max_run_bytes = 150"), "{e}");
        let e = b
            .claim(&limits, "g", "T", 101, Some("hold less"))
            .unwrap_err();
        assert!(e.to_string().ends_with("; hold less"), "{e}");
        b.reset();
        b.output(&limits, "s", "T", 50).unwrap();
        let e = b.output(&limits, "s", "T", 20).unwrap_err();
        assert!(e.to_string().contains("would reach 70 bytes"), "{e}");
        assert_eq!(human_bytes(12 << 30), "12.0 GiB");
    }
}
